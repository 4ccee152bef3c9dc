//! Project automation, following the [cargo-xtask](https://github.com/matklad/cargo-xtask)
//! convention: `cargo xtask <command>` (alias in `.cargo/config.toml`).

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

mod bench;
mod bench_cuts;
mod cuda_llvm;
mod device_bundle;
mod faults;
mod gpu_check;
mod parity;
mod reproduce;
mod same_results;
mod shared;

use bench::{BenchOptions, bench};
use parity::parity;
use reproduce::{Reproduce, reproduce_all};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project automation for rewind")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per invocation
enum Command {
    /// Benchmark against PyTorch: our training steps, evaluation, interpolation sweep and peak
    /// memory (release build) beside the same work in `bench/reference.py` (CPU torch, installed
    /// into `bench/.venv` with pip on first use), as ours / PyTorch ratios in BENCHMARKS.md.
    Bench {
        /// CPU threads for both (RAYON_NUM_THREADS here, torch.set_num_threads there).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Timed steps per network (medians are reported).
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Untimed warm-up steps per network.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Networks, comma separated (Table 1 presets the reference knows: lenet, resnet20,
        /// vgg16).
        #[arg(long, default_value = "lenet,resnet20,vgg16")]
        presets: String,
        /// Cargo features selecting the backend (e.g. `cuda` or `wgpu`).
        #[arg(long)]
        features: Option<String>,
        /// Measure ours only (no Python, no torch).
        #[arg(long)]
        no_reference: bool,
        /// Print the table without rewriting BENCHMARKS.md.
        #[arg(long)]
        no_write: bool,
    },
    /// Benchmark the narrow networks of the CPU scales (Resnet-20 at width 4 and 8, VGG-16 at
    /// 1/8 width) against PyTorch: one thread, and two runs at once, over several process runs
    /// (median and range), with each step's FLOP limit; a table in BENCHMARKS.md.
    BenchCuts(bench_cuts::BenchCuts),
    /// Reproduce every figure of the paper: `rewind reproduce` on a release build.
    ///
    /// Plans every run the figures need, trains what the store does not hold yet (resumable:
    /// interrupt and re-run at will), then writes the PNG figures, `results.json` and
    /// `REPORT.md` into `--out` (default `reports/<scale>`).
    ReproduceAll(Reproduce),
    /// The real Slurm test: install Slurm and munge (Debian, needs root), start a one-node
    /// cluster here, run the smoke reproduction through `--executor slurm` and check that its
    /// results equal a local run's (`tests/slurm/run.sh`; extra arguments go to `rewind
    /// reproduce`, default `--models lenet,resnet20 --substitute cifar10=fashion-mnist`).
    SlurmTest {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        reproduce_args: Vec<String>,
    },
    /// Regenerate the PyTorch parity fixtures: for each case, `rewind parity-export` writes our
    /// state before every step (dense run and one IMP round), the batches and an
    /// interpolation's endpoints, and `bench/parity.py` repeats every step from our state in
    /// PyTorch, with Table 1's recipe written on its own side, and writes
    /// `tests/fixtures/parity/<simd level>/<case>.json` (x86-64-v3, x86-64-v4, ...: this CPU's).
    ///
    /// Any change to a kernel's summation order changes our replay: regenerate both levels.
    /// `--emulate Haswell` makes the x86-64-v3 ones on an AVX-512 machine (our export runs
    /// under `qemu-x86_64 -cpu Haswell`, from apt's `qemu-user`; Resnet-20 takes ~13 min).
    Parity {
        /// The cases (default: all of lenet, resnet20, vgg16).
        #[arg(long, value_delimiter = ',')]
        cases: Vec<String>,
        /// Directory holding `mnist/` and `fashion-mnist/` (default: $REWIND_DATA_DIR, then
        /// ~/.cache/rewind/data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Run our export under `qemu-x86_64 -cpu <CPU>` (e.g. `Haswell` for x86-64-v3), so
        /// the fixtures of another SIMD level are made here.
        #[arg(long, value_name = "CPU")]
        emulate: Option<String>,
    },
    /// Check and time a GPU backend: builds `rewind` with `--features <backend>` (release),
    /// runs `rewind gpu-check` (the GPU against the CPU backend from the same state: losses,
    /// checkpoints moved between them, masks, an interpolation curve, determinism; then ms per
    /// step), runs `bench/reference.py --device cuda` beside it when a Python with CUDA torch
    /// is found, and writes the GPU section of BENCHMARKS.md.
    ///
    /// On a GPU node without cargo, copy the binary there, run `rewind gpu-check --json
    /// DIR/rewind.json` and `python3 bench/reference.py --device cuda > DIR/torch.json`, and
    /// render the section here with `--from DIR`.
    GpuCheck(GpuCheck),
    /// Put the LLVM that `--features cuda` links where its build script looks, from PyPI (no
    /// GitHub download): two wheels into a venv (~400 MB), linked into
    /// `${XDG_DATA_HOME:-~/.local/share}/tracel/tracel-llvm-<version>/` with the bundler's
    /// sentinel. Then `cargo build --release -p cli --features cuda` builds offline (python3 on
    /// PATH; keep the venv where it is between builds).
    CudaLlvm {
        /// The venv for the wheels (default ~/.cache/rewind/llvm-venv).
        #[arg(long, value_name = "DIR")]
        venv: Option<PathBuf>,
        /// Then build `rewind` with these features (e.g. `cuda,vulkan`).
        #[arg(long, value_name = "FEATURES")]
        build: Option<String>,
        /// The cargo profile of that build.
        #[arg(long, default_value = "release")]
        profile: String,
    },
    /// Prepare the GPU check for a machine with no Rust and no internet: `rewind` in release
    /// once per feature set (installing cuda's LLVM from PyPI first, see `cuda-llvm`),
    /// stripped and xz-compressed into `target/device/` with a manifest. Carry that folder
    /// with the repository and run `bash bench/device-check.sh` there.
    DeviceBundle {
        /// One binary per feature set (repeat the option): `cuda,vulkan` (CUDA and SPIR-V)
        /// and `wgpu` (WGSL) by default.
        #[arg(long = "features", default_values = ["cuda,vulkan", "wgpu"])]
        feature_sets: Vec<String>,
    },
    /// The fault-injection harness at its full counts (100 kills at random moments, 100 at
    /// random writes, 100 corrupted files, 8 concurrent writers with gc, 20 full disks, 300
    /// malformed inputs) against a release `rewind` built with `--features failpoints`, on
    /// real MNIST runs; writes its table into README.md's reliability section and fails when
    /// any trial lost anything.
    Faults(faults::Faults),
    /// Whether two reproductions' outputs hold the same results: `results.json` value for value
    /// (timings and the commit left out) and every PNG byte for byte. For a refactor that must
    /// not change them: run the smoke scale before and after into two directories.
    SameResults(same_results::SameResults),
    /// Run what CI runs (`.ci/run`).
    Ci,
}

#[derive(Args)]
struct GpuCheck {
    /// The GPU backend feature: `wgpu` (Vulkan, Metal, DX12) or `cuda`.
    #[arg(long, default_value = "wgpu")]
    features: String,
    /// The Python (with torch built for CUDA) that runs the reference (default: `python3`).
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Skip the PyTorch reference.
    #[arg(long)]
    no_reference: bool,
    /// Render BENCHMARKS.md's GPU section from `rewind.json` (and `torch.json`) in this
    /// directory instead of running anything.
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// Print the section without rewriting BENCHMARKS.md.
    #[arg(long)]
    no_write: bool,
    /// Arguments passed on to `rewind gpu-check` (e.g. `--steps 50`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rewind_args: Vec<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn run(cmd: &mut Process) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `target/` in the repository.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bench {
            threads,
            steps,
            warmup,
            presets,
            features,
            no_reference,
            no_write,
        } => bench(BenchOptions {
            threads,
            steps,
            warmup,
            presets,
            features,
            reference: !no_reference,
            write: !no_write,
        }),
        Command::ReproduceAll(r) => reproduce_all(r),
        Command::SlurmTest { reproduce_args } => run(Process::new("bash")
            .arg(root().join("tests/slurm/run.sh"))
            .args(reproduce_args)),
        Command::Parity {
            cases,
            data_dir,
            emulate,
        } => parity(cases, data_dir, emulate),
        Command::GpuCheck(g) => gpu_check::run(&root(), g),
        Command::CudaLlvm {
            venv,
            build,
            profile,
        } => {
            let venv = match venv {
                Some(v) => v,
                None => cuda_llvm::default_venv()?,
            };
            cuda_llvm::install(&root(), &venv)?;
            match build {
                Some(features) => run(Process::new("cargo")
                    .current_dir(root())
                    .args(["build", "-p", "cli", "--profile", &profile, "--features"])
                    .arg(features)),
                None => Ok(()),
            }
        }
        Command::DeviceBundle { feature_sets } => device_bundle::build(&root(), &feature_sets),
        Command::Faults(f) => faults::run(&root(), f),
        Command::SameResults(s) => same_results::run(s),
        Command::BenchCuts(b) => bench_cuts::run(&root(), b),
        Command::Ci => run(Process::new("bash").arg(root().join(".ci/run"))),
    }
}
