//! `rewind`: the command line of the framework. Trains networks with the recipes of Frankle
//! et al., "Linear Mode Connectivity and the Lottery Ticket Hypothesis" (2020), and stores
//! every run with the configuration that produced it.

mod bench_cmd;
mod check_permutation_cmd;
mod gpu_check_cmd;
mod imp_cmd;
mod instability_cmd;
mod listing;
mod parity_cmd;
mod reproduce_cmd;
mod runs_cmd;
mod store_args;
mod train_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Training allocates and frees tensors of megabytes every step; glibc's malloc returns each one
// to the kernel and takes it back (page faults and zeroed pages: a third of a Lenet step).
// mimalloc keeps them (see BENCHMARKS.md, "Where the time goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory for 10 s before returning it to the OS (mimalloc's default is 10 ms, so
/// the buffers of a Resnet step, freed and needed again a second later, were purged and
/// faulted back in every step: 20% of it).
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v2), in milliseconds.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a plain integer option; mimalloc reads it on its next purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) }
}

/// Instability analysis and lottery-ticket experiments on burn.
#[derive(Parser, Debug)]
#[command(name = "rewind", version, about, long_about = None)]
struct Cli {
    /// Directory holding the datasets (`mnist/`, `fashion-mnist/`, `cifar10/`, `cifar100/`,
    /// `svhn/`, `imagenet/`, and folders of your own with a `dataset.toml`).
    /// Defaults to $REWIND_DATA_DIR, then to ~/.cache/rewind/data.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Never download missing datasets; fail with a message naming the files instead.
    #[arg(long, global = true)]
    no_download: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train one network from a Table 1 preset (or a config file) into the experiment store
    /// (or an output directory with --out).
    ///
    /// The run directory receives `config.toml` (everything that determines the run),
    /// `metrics.json` (step, train/test loss and accuracy) and `checkpoints/`. Running the
    /// same command again reuses a finished run and resumes an interrupted one.
    Train(train_cmd::TrainArgs),
    /// Iterative magnitude pruning with rewinding (and random-pruning / reinit baselines).
    ///
    /// Trains the dense network, then per level prunes 20% of the surviving weights globally
    /// by magnitude, rewinds the survivors to step k (weights, BN buffers, step counter and
    /// schedule) and trains again. Every level is a run of the store (--store), reused by any
    /// later command that needs it.
    Imp(imp_cmd::ImpArgs),
    /// Instability analysis: is the network stable to SGD noise from step k on?
    ///
    /// For every init seed, a parent run is checkpointed at every k; from each W_k, children
    /// with different data orders train to the end; every pair is interpolated at evenly
    /// spaced alphas and the rise in error is reported (mean and std over all pairs).
    Instability(instability_cmd::InstabilityArgs),
    /// Reproduce the paper's figures: plans every run they need (deduplicated across
    /// figures), runs what the store does not hold yet, and renders PNG figures and a report.
    ///
    /// Interrupt it at any time: the next invocation resumes where it stopped.
    Reproduce(reproduce_cmd::ReproduceArgs),
    /// Inspect the experiment store: what is done, what is pending, disk used.
    Runs(runs_cmd::RunsArgs),
    /// List the Table 1 presets with their settings.
    Presets,
    /// Measure milliseconds per training step and evaluation throughput on this machine.
    Bench(bench_cmd::BenchArgs),
    /// Check the GPU backend this binary was built with (`--features wgpu` or `cuda`) against
    /// the CPU backend: the same training steps from the same weights, checkpoints moved
    /// between the two, masks, an interpolation curve, determinism, and milliseconds per step.
    GpuCheck(gpu_check_cmd::GpuCheckArgs),
    /// Check that a network's permutation spec (what weight and activation matching permute)
    /// leaves its function unchanged: each group's units permuted alone, then all at once, the
    /// logits compared on random images; a broken group is named with the axis that breaks it.
    CheckPermutation(check_permutation_cmd::CheckPermutationArgs),
    /// Export a recipe's initial weights, batches and per-step losses for a step-for-step
    /// comparison with PyTorch (`bench/parity.py`, `cargo xtask parity`).
    ParityExport(parity_cmd::ParityArgs),
}

fn main() -> ExitCode {
    keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,cubecl_runtime=warn,wgpu_hal=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let _faults = results::faults::Scenario::from_env();
    let cli = Cli::parse();
    let data_dir = data::resolve_data_dir(cli.data_dir.as_deref());
    // Folders of your own images with a dataset.toml: named like the built-in datasets.
    data::folder::register_all(&data_dir);
    // A GPU build without a usable device fails here with one message, not in a panic later.
    let computes = !matches!(cli.command, Command::Presets | Command::Runs(_));
    if computes && let Err(e) = train::check_device() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Train(args) => train_cmd::run(args, &data_dir, !cli.no_download),
        Command::Imp(args) => imp_cmd::run(args, &data_dir, !cli.no_download),
        Command::Instability(args) => instability_cmd::run(args, &data_dir, !cli.no_download),
        Command::Reproduce(args) => reproduce_cmd::run(args, &data_dir, !cli.no_download),
        Command::Runs(args) => runs_cmd::run(args, &data_dir, !cli.no_download),
        Command::Presets => train_cmd::list_presets(),
        Command::CheckPermutation(args) => check_permutation_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::GpuCheck(args) => gpu_check_cmd::run(args),
        Command::ParityExport(args) => parity_cmd::run(args, &data_dir, !cli.no_download),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of a pipe has gone (`rewind runs list | head`): what it read is complete.
        Err(e) if listing::closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: many library errors already show
/// their source in their own message, which `{:#}` would print a second time.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    if let Some(hint) = flag_hint(e) {
        line.push_str(hint);
    }
    line.replace('\n', " ")
}

/// This binary's flag for what a library error asks of its user (libraries do not know the
/// command line they are called from): a missing dataset's `--data-dir`.
fn flag_hint(e: &anyhow::Error) -> Option<&'static str> {
    e.chain()
        .any(|cause| {
            matches!(
                cause.downcast_ref::<data::Error>(),
                Some(data::Error::Missing { .. })
            ) || matches!(
                cause.downcast_ref::<train::Error>(),
                Some(train::Error::Data(data::Error::Missing { .. }))
            )
        })
        .then_some(" (`--data-dir DIR` names another data directory.)")
}
