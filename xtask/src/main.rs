//! Project automation, following the [cargo-xtask](https://github.com/matklad/cargo-xtask)
//! convention: `cargo xtask <command>` (alias in `.cargo/config.toml`).

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

mod bench_cuts;
mod cuda_llvm;
mod device_bundle;
mod faults;
mod gpu_check;

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

/// Markers around the part of BENCHMARKS.md that `cargo xtask bench` rewrites.
const BENCH_START: &str = "<!-- cargo xtask bench: start -->";
const BENCH_END: &str = "<!-- cargo xtask bench: end -->";

/// Options of `cargo xtask bench`.
struct BenchOptions {
    threads: usize,
    steps: usize,
    warmup: usize,
    presets: String,
    features: Option<String>,
    reference: bool,
    write: bool,
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `target/` in the repository.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn parity(cases: Vec<String>, data_dir: Option<PathBuf>, emulate: Option<String>) -> Result<()> {
    let root = root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Under emulation the export runs a built binary (cargo cannot run it through qemu): the
    // release one, whose export is byte-identical to the test profile's and ~10x faster there.
    if emulate.is_some() {
        run(Process::new(&cargo).args(["build", "--release", "-p", "cli"]))?;
    }
    let cases = if cases.is_empty() {
        vec!["lenet".into(), "resnet20".into(), "vgg16".into()]
    } else {
        cases
    };
    let python = reference_python(&root)?;
    for case in cases {
        let export = root
            .join("target")
            .join("xtask")
            .join(format!("parity-{case}"));
        // The test profile: the parity tests replay the export in it, state for state.
        let mut rewind = match &emulate {
            Some(cpu) => {
                let mut qemu = Process::new("qemu-x86_64");
                qemu.args(["-cpu", cpu])
                    .arg(target_dir(&root).join("release").join("rewind"));
                qemu
            }
            None => {
                let mut cargo = Process::new(&cargo);
                cargo.args(["run", "-p", "cli", "--"]);
                cargo
            }
        };
        if let Some(d) = &data_dir {
            rewind.arg("--data-dir").arg(d);
        }
        rewind
            .args(["parity-export", "--case", &case, "--out"])
            .arg(&export);
        run(&mut rewind)?;
        // Our replay is bit for bit only among machines of one SIMD level: one folder each.
        let export_json = export.join("export.json");
        let level = std::fs::read_to_string(&export_json)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|v| v["simd_level"].as_str().map(str::to_owned))
            .with_context(|| format!("{} names no simd_level", export_json.display()))?;
        run(Process::new(&python)
            .arg(root.join("bench").join("parity.py"))
            .arg(&export)
            .arg("--out")
            .arg(root.join(format!("tests/fixtures/parity/{level}/{case}.json"))))?;
    }
    Ok(())
}

/// The Python of `bench/.venv`, created and given torch (`bench/requirements.txt`) on first use.
fn reference_python(root: &Path) -> Result<PathBuf> {
    let venv = root.join("bench").join(".venv");
    let python = venv.join("bin").join("python");
    let has_torch = |python: &Path| {
        Process::new(python)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if python.is_file() && has_torch(&python) {
        return Ok(python);
    }
    println!(
        "installing the PyTorch reference into {} (pip)",
        venv.display()
    );
    run(Process::new("python3").arg("-m").arg("venv").arg(&venv))
        .context("creating the venv needs python3 with its venv module")?;
    run(Process::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(root.join("bench").join("requirements.txt")))
    .context("installing torch with pip (it needs PyPI; pass --no-reference to skip it)")?;
    Ok(python)
}

/// `bench/reference.py` with `threads` threads and `args`; the JSON it prints.
pub(crate) fn run_reference(
    root: &Path,
    python: &Path,
    threads: usize,
    args: &[&str],
) -> Result<serde_json::Value> {
    let out = Process::new(python)
        .arg(root.join("bench").join("reference.py"))
        .args(["--threads", &threads.to_string()])
        .args(args)
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .context("running bench/reference.py")?;
    if !out.status.success() {
        bail!(
            "bench/reference.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("bench/reference.py printed no JSON")
}

/// `cargo build --release -p cli` with `features`, and the binary's path.
pub(crate) fn build_release_rewind(root: &Path, features: Option<&str>) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Process::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "-p", "cli"]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    run(&mut cmd)?;
    Ok(target_dir(root).join("release/rewind"))
}

fn bench(o: BenchOptions) -> Result<()> {
    let root = root();
    let ours_json = root.join("target").join("bench-ours.json");
    let mut cmd = Process::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args(["run", "--release", "--quiet", "-p", "cli"]);
    if let Some(f) = &o.features {
        cmd.args(["--features", f]);
    }
    cmd.args([
        "--",
        "bench",
        "--steps",
        &o.steps.to_string(),
        "--warmup",
        &o.warmup.to_string(),
        "--presets",
        &o.presets,
        "--json",
    ])
    .arg(&ours_json)
    .env("RAYON_NUM_THREADS", o.threads.to_string());
    run(&mut cmd)?;
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(&ours_json)?)?;
    let reference = if o.reference {
        let python = reference_python(&root)?;
        Some(run_reference(
            &root,
            &python,
            o.threads,
            &[
                "--steps",
                &o.steps.to_string(),
                "--warmup",
                &o.warmup.to_string(),
                "--presets",
                &o.presets,
            ],
        )?)
    } else {
        None
    };
    let table = comparison_table(&ours, reference.as_ref());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let torch = reference
        .as_ref()
        .and_then(|r| r["torch"].as_str())
        .map_or_else(|| "not run".to_string(), |v| format!("torch {v}"));
    let generated = format!(
        "{BENCH_START}\nWritten by `cargo xtask bench` (release build). Both sides do the same \
         work on random data of the datasets' shapes; ours includes its data pipeline (batch \
         assembly, augmentation) in training steps, the reference feeds ready tensors; both \
         evaluate images already built as tensors, after one untimed pass. Medians of {} timed \
         samples after {} warm-up steps; a sample is one step, or as many steps as take 100 ms \
         (Lenet), divided. Ratio = ours / PyTorch in time (for images/s: PyTorch / \
         ours), so below 1 means faster than PyTorch.\n\nMachine: {cpu}, {} logical cores; \
         threads: {} on both sides; backend: {}; reference: {torch}.\n\n{table}{BENCH_END}\n\n",
        o.steps,
        o.warmup,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        o.threads,
        ours["backend"].as_str().unwrap_or("?"),
    );
    print!("{generated}");
    if !o.write {
        return Ok(());
    }
    // Replace only the generated section: hand-written sections (GPU runs, ImageNet) stay.
    replace_section(
        &root.join("BENCHMARKS.md"),
        BENCH_START,
        BENCH_END,
        &generated,
        true,
    )?;
    println!("wrote BENCHMARKS.md");
    Ok(())
}

/// Replaces the text from `start` to `end` (markers included, `generated` holds them) in the
/// Markdown file `path`; where the markers are missing, puts `generated` after the title
/// (`at_top`) or at the end. Hand-written sections stay.
fn replace_section(
    path: &Path,
    start: &str,
    end: &str,
    generated: &str,
    at_top: bool,
) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let doc = match (old.find(start), old.find(end)) {
        (Some(s), Some(e)) if s < e => format!(
            "{}{generated}{}",
            &old[..s],
            old[e + end.len()..].trim_start_matches('\n')
        ),
        _ if at_top => format!(
            "# Benchmarks\n\n{generated}\n{}",
            old.trim_start_matches("# Benchmarks").trim_start()
        ),
        _ => format!("{}\n\n{generated}", old.trim_end()),
    };
    std::fs::write(path, doc).with_context(|| format!("writing {}", path.display()))
}

/// The Markdown table of ours beside the reference: one line per measurement.
fn comparison_table(ours: &serde_json::Value, reference: Option<&serde_json::Value>) -> String {
    let row_of = |report: &serde_json::Value, preset: &str| -> Option<serde_json::Value> {
        report["rows"]
            .as_array()?
            .iter()
            .find(|r| r["preset"] == preset)
            .cloned()
    };
    let fmt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    let mut lines = vec![
        "| measurement | ours | PyTorch | ratio | % of peak, ours / PyTorch |".to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    let peak = ours["peak"]["gflops"].as_f64();
    // The share of the measured peak a step of `gflop` in `ms` reaches.
    let share = |gflop: Option<f64>, ms: Option<f64>| match (gflop, ms, peak) {
        (Some(g), Some(ms), Some(peak)) if ms > 0.0 && peak > 0.0 => {
            format!("{:.0}%", 100.0 * g / (ms / 1e3) / peak)
        }
        _ => "-".to_string(),
    };
    let mut limits = Vec::new();
    // (label, ours, theirs, ratio as time: ours / theirs; as rate: theirs / ours, peak shares)
    let mut push = |label: String,
                    a: Option<f64>,
                    b: Option<f64>,
                    time: bool,
                    digits: usize,
                    shares: Option<(String, String)>| {
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some(if time { a / b } else { b / a }),
            _ => None,
        };
        let shares = shares.map_or_else(|| "-".to_string(), |(a, b)| format!("{a} / {b}"));
        lines.push(format!(
            "| {label} | {} | {} | {} | {shares} |",
            fmt(a, digits),
            fmt(b, digits),
            fmt(ratio, 2)
        ));
    };
    let empty = serde_json::Value::Null;
    let reference = reference.unwrap_or(&empty);
    let presets: Vec<String> = ours["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["preset"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for preset in &presets {
        let (a, b) = (row_of(ours, preset), row_of(reference, preset));
        let get =
            |r: &Option<serde_json::Value>, key: &str| r.as_ref().and_then(|r| r[key].as_f64());
        let batch = get(&a, "batch").unwrap_or(0.0);
        let gflop = get(&a, "conv_gflop_per_step");
        let (ours_ms, theirs_ms) = (get(&a, "ms_per_step"), get(&b, "ms_per_step"));
        let shares = gflop.map(|_| (share(gflop, ours_ms), share(gflop, theirs_ms)));
        if let (Some(g), Some(p), Some(ms)) = (gflop, peak, ours_ms) {
            let limit = g / p * 1e3;
            limits.push(format!(
                "{preset}: {g:.1} GFLOP of convolutions per step, a limit of {limit:.0} ms at \
                 the peak; ours takes {:.1}x it",
                ms / limit
            ));
        }
        push(
            format!("{preset}: ms per training step (batch {batch})"),
            ours_ms,
            theirs_ms,
            true,
            1,
            shares,
        );
        push(
            format!("{preset}: eval images / s"),
            get(&a, "eval_images_per_s"),
            get(&b, "eval_images_per_s"),
            false,
            0,
            None,
        );
    }
    push(
        "interpolation sweep: ms (Lenet, 30 alphas x 10,000 test images)".into(),
        ours["interpolation_ms"].as_f64(),
        reference["interpolation_ms"].as_f64(),
        true,
        0,
        None,
    );
    push(
        "peak resident memory: MiB (whole process)".into(),
        ours["peak_rss_mib"].as_f64(),
        reference["peak_rss_mib"].as_f64(),
        true,
        0,
        None,
    );
    let mut text = lines.join("\n") + "\n";
    if let Some(p) = peak {
        text += &format!(
            "\nPeak: {p:.0} GFLOP/s, measured ({} fused multiply-adds on {} threads at once). \
             A step's FLOPs are its convolutions' (2 per multiply-add; the backward counted as \
             twice the forward).\n",
            ours["peak"]["isa"].as_str().unwrap_or("?"),
            ours["peak"]["threads"].as_u64().unwrap_or(0)
        );
        for l in limits {
            text += &format!("- {l}.\n");
        }
    }
    text
}

/// Options of `reproduce-all`: what to reproduce becomes a `ReproduceConfig` file (the one
/// `rewind reproduce --config` reads, and the report job of a Slurm submission gets); where
/// and how (store, output, workers, executor) are passed on to `rewind reproduce`.
#[derive(Args)]
struct Reproduce {
    /// smoke (minutes), quick (a few hours on a 2-core CPU) or paper (Table 1).
    #[arg(long, default_value = "quick")]
    scale: results::Scale,
    /// Only these figures, comma separated (fig2..fig8, appb..appe).
    #[arg(long, value_delimiter = ',')]
    only: Vec<results::Figure>,
    /// Only these networks, comma separated (registry names: `rewind presets`). Default: the
    /// scale's.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Runs trained at the same time.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// The experiment store.
    #[arg(long, default_value = "runs")]
    store: PathBuf,
    /// Datasets to substitute, e.g. `cifar10=fashion-mnist` (repeatable).
    #[arg(long, value_name = "PAPER=USED")]
    substitute: Vec<String>,
    /// Output directory of the figures and the report (default: `reports/<scale>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Cargo features selecting the backend: `cuda` or `wgpu` (default: the CPU).
    #[arg(long)]
    features: Option<String>,
    /// Directory holding the datasets (default: $REWIND_DATA_DIR, then ~/.cache/rewind/data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print the plan and stop.
    #[arg(long)]
    dry_run: bool,
    /// local (run here, --jobs at a time) or slurm (submit job arrays with sbatch and
    /// return; the store and data must be on a filesystem every node sees).
    #[arg(long, default_value = "local")]
    executor: String,
    /// Slurm partition (--executor slurm).
    #[arg(long)]
    partition: Option<String>,
    /// GPUs per Slurm job (--executor slurm).
    #[arg(long)]
    gpus_per_job: Option<u32>,
    /// CPU cores per Slurm job (--executor slurm).
    #[arg(long)]
    cpus_per_job: Option<u32>,
    /// Wall-clock limit of each Slurm job, HH:MM:SS (--executor slurm).
    #[arg(long)]
    time: Option<String>,
    /// A further sbatch option for every job, e.g. `--sbatch-arg=--account=proj`.
    #[arg(long, allow_hyphen_values = true)]
    sbatch_arg: Vec<String>,
}

/// The reproduction the options ask for.
fn reproduce_config(r: &Reproduce) -> Result<results::ReproduceConfig> {
    let mut config = results::ReproduceConfig::new(r.scale, r.models.clone());
    if !r.only.is_empty() {
        config.figures = r.only.clone();
    }
    for s in &r.substitute {
        config
            .substitutes
            .push(results::parse_substitute(s).context("--substitute")?);
    }
    Ok(config)
}

fn reproduce_all(r: Reproduce) -> Result<()> {
    let config = reproduce_config(&r)?;
    let file = root()
        .join("target")
        .join("xtask")
        .join(format!("reproduce-{}.toml", r.scale));
    std::fs::create_dir_all(file.parent().context("target directory")?)?;
    std::fs::write(&file, toml::to_string(&config)?)?;
    let mut cmd = Process::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Without --quiet: a first release build takes minutes, and cargo shows its progress.
    cmd.args(["run", "--release", "-p", "cli"]);
    if let Some(f) = &r.features {
        cmd.args(["--features", f]);
    }
    cmd.arg("--");
    if let Some(d) = &r.data_dir {
        cmd.arg("--data-dir").arg(d);
    }
    cmd.args(["reproduce", "--config"])
        .arg(&file)
        .args(["--jobs", &r.jobs.to_string()])
        .arg("--store")
        .arg(&r.store)
        .arg("--out")
        .arg(
            r.out
                .clone()
                .unwrap_or_else(|| PathBuf::from("reports").join(r.scale.as_str())),
        );
    if r.dry_run {
        cmd.arg("--dry-run");
    }
    cmd.args(["--executor", &r.executor]);
    if let Some(p) = &r.partition {
        cmd.args(["--partition", p]);
    }
    if let Some(g) = r.gpus_per_job {
        cmd.args(["--gpus-per-job", &g.to_string()]);
    }
    if let Some(c) = r.cpus_per_job {
        cmd.args(["--cpus-per-job", &c.to_string()]);
    }
    if let Some(t) = &r.time {
        cmd.args(["--time", t]);
    }
    for a in &r.sbatch_arg {
        cmd.arg(format!("--sbatch-arg={a}"));
    }
    // The report names the commit that produced it, whatever the working directory.
    if let Ok(out) = Process::new("git")
        .current_dir(root())
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        && out.status.success()
    {
        cmd.env(
            "REWIND_GIT_COMMIT",
            String::from_utf8_lossy(&out.stdout).trim(),
        );
    }
    run(&mut cmd)
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
        Command::BenchCuts(b) => bench_cuts::run(&root(), b),
        Command::Ci => run(Process::new("bash").arg(root().join(".ci/run"))),
    }
}
