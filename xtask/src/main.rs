//! Project automation, following the [cargo-xtask](https://github.com/matklad/cargo-xtask)
//! convention: `cargo xtask <command>` (alias in `.cargo/config.toml`).

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project automation for rewind")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark training steps and evaluation (release build) and write BENCHMARKS.md.
    Bench {
        /// CPU threads for the backend (RAYON_NUM_THREADS).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Timed steps per network.
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Cargo features selecting the backend (e.g. `cuda` or `wgpu`).
        #[arg(long)]
        features: Option<String>,
    },
    /// Reproduce every figure of the paper: `rewind reproduce` on a release build.
    ///
    /// Plans every run the figures need, trains what the store does not hold yet (resumable:
    /// interrupt and re-run at will), then writes the PNG figures, `results.json` and
    /// `REPORT.md` into `--out` (default `reports/<scale>`).
    ReproduceAll(Reproduce),
    /// Run what CI runs (`.ci/run`).
    Ci,
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

fn bench(threads: usize, steps: usize, features: Option<String>) -> Result<()> {
    let root = root();
    let raw = root.join("target").join("bench-table.md");
    let mut cmd = Process::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args(["run", "--release", "--quiet", "-p", "cli"]);
    if let Some(f) = &features {
        cmd.args(["--features", f]);
    }
    cmd.args(["--", "bench", "--steps", &steps.to_string(), "--markdown"])
        .arg(&raw)
        .env("RAYON_NUM_THREADS", threads.to_string());
    run(&mut cmd)?;
    let table = std::fs::read_to_string(&raw)?;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let generated = format!(
        "{BENCH_START}\nWritten by `cargo xtask bench` (release build; synthetic data with the exact shapes and pipelines of MNIST and CIFAR-10).\n\nMachine: {cpu}, {} logical cores; backend threads: {threads}.\n\n{table}{BENCH_END}\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    // Replace only the generated section: hand-written sections (GPU runs, ImageNet) stay.
    let path = root.join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let doc = match (old.find(BENCH_START), old.find(BENCH_END)) {
        (Some(start), Some(end)) if start < end => format!(
            "{}{generated}{}",
            &old[..start],
            old[end + BENCH_END.len()..].trim_start_matches('\n')
        ),
        _ => format!(
            "# Benchmarks\n\n{generated}\n{}",
            old.trim_start_matches("# Benchmarks").trim_start()
        ),
    };
    std::fs::write(&path, doc)?;
    println!("wrote BENCHMARKS.md");
    Ok(())
}

/// Options of `reproduce-all`, passed on to `rewind reproduce`.
#[derive(Args)]
struct Reproduce {
    /// smoke (minutes), quick (a few hours on a 2-core CPU) or paper (Table 1).
    #[arg(long, default_value = "quick")]
    scale: String,
    /// Only these figures, comma separated (fig2..fig8, appb..appe).
    #[arg(long)]
    only: Option<String>,
    /// Only these networks, comma separated (Table 1 presets).
    #[arg(long)]
    models: Option<String>,
    /// Runs trained at the same time.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// The experiment store.
    #[arg(long, default_value = "runs")]
    store: PathBuf,
    /// Datasets to substitute, e.g. `cifar10=fashion-mnist` (repeatable).
    #[arg(long)]
    substitute: Vec<String>,
    /// Output directory of the figures and the report.
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
}

fn reproduce_all(r: Reproduce) -> Result<()> {
    let mut cmd = Process::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["run", "--release", "--quiet", "-p", "cli"]);
    if let Some(f) = &r.features {
        cmd.args(["--features", f]);
    }
    cmd.arg("--");
    if let Some(d) = &r.data_dir {
        cmd.arg("--data-dir").arg(d);
    }
    cmd.args([
        "reproduce",
        "--scale",
        &r.scale,
        "--jobs",
        &r.jobs.to_string(),
    ])
    .arg("--store")
    .arg(&r.store);
    if let Some(o) = &r.only {
        cmd.args(["--only", o]);
    }
    if let Some(m) = &r.models {
        cmd.args(["--models", m]);
    }
    for s in &r.substitute {
        cmd.args(["--substitute", s]);
    }
    if let Some(o) = &r.out {
        cmd.arg("--out").arg(o);
    }
    if r.dry_run {
        cmd.arg("--dry-run");
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
            features,
        } => bench(threads, steps, features),
        Command::ReproduceAll(r) => reproduce_all(r),
        Command::Ci => run(Process::new("bash").arg(root().join(".ci/run"))),
    }
}
