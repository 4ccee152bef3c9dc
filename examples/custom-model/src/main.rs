//! `cargo run --release -p custom-model -- run smoke`: the example of bringing your own model
//! (see the library docs), on MNIST from `$REWIND_DATA_DIR` (or downloaded into the user
//! cache); its runs go to the store `target/custom-model/runs`, its report to
//! `target/custom-model/<scale>`. Run it twice: the second invocation trains nothing.
//! `submit` hands the same plan to Slurm, whose jobs call `exec` and `report`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use experiments::runs::DataCache;
use experiments::slurm::SlurmConfig;
use results::Scale;

/// A small residual CNN of this example through every experiment of the paper: the
/// instability analyses, IMP with rewinding and its baselines, alignment, every figure.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Directory holding `mnist/` (default: $REWIND_DATA_DIR, else the user cache).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Never download a missing dataset.
    #[arg(long, global = true)]
    no_download: bool,
    /// The experiment store: one directory per run, finished runs reused.
    #[arg(long, global = true, default_value = "target/custom-model/runs")]
    store: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Plan and run here (reusing finished runs, resuming interrupted ones), then write the
    /// report.
    Run {
        /// `smoke` (40 iterations, about a minute) or `quick` (the recipe's 1,000).
        #[arg(default_value = "quick", value_parser = example_scale)]
        scale: Scale,
        /// Where the report goes (default: target/custom-model/<scale>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Hand the plan to Slurm: the unfinished runs as job arrays of this binary's `exec`,
    /// then a job running `report`. Returns once the jobs are queued.
    Submit {
        #[arg(default_value = "quick", value_parser = example_scale)]
        scale: Scale,
        /// Where the report job writes the report (default: target/custom-model/<scale>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// `--partition` of every job.
        #[arg(long)]
        partition: Option<String>,
        /// GPUs per job (`--gres=gpu:N`); 0 for CPU jobs.
        #[arg(long, default_value_t = 0)]
        gpus_per_job: u32,
        /// `--cpus-per-task` of every job.
        #[arg(long)]
        cpus_per_job: Option<u32>,
        /// Wall-clock limit of one job, `[D-]HH:MM:SS`.
        #[arg(long)]
        time: Option<String>,
        /// The `sbatch` program.
        #[arg(long, default_value = "sbatch")]
        sbatch: PathBuf,
    },
    /// One array task of a submitted job manifest (what each Slurm array task runs).
    Exec {
        /// The array's manifest (`<store>/slurm/<submission>/stage-NN.json`).
        #[arg(long)]
        manifest: PathBuf,
        /// The array task's index ($SLURM_ARRAY_TASK_ID).
        #[arg(long)]
        task: usize,
    },
    /// The report of a submitted reproduction from its finished store (the report job).
    Report {
        /// The reproduction (`<store>/slurm/<submission>/reproduce.toml`).
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

fn example_scale(s: &str) -> Result<Scale, String> {
    s.parse::<Scale>()
        .ok()
        .filter(|s| matches!(s, Scale::Smoke | Scale::Quick))
        .ok_or_else(|| format!("unknown scale `{s}`: smoke or quick"))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let data_dir = data::resolve_data_dir(cli.data_dir.as_deref());
    let options = |scale: Scale, out: Option<PathBuf>| custom_model::Options {
        data_dir: data_dir.clone(),
        allow_download: !cli.no_download,
        store: cli.store.clone(),
        out: out.unwrap_or_else(|| Path::new("target/custom-model").join(scale.as_str())),
        scale,
    };
    match cli.command {
        Command::Run { scale, out } => {
            let options = options(scale, out);
            let report = custom_model::run(&options)?;
            println!(
                "{} runs in {} ({} of them reused from earlier invocations); report: {}",
                report.runs,
                options.store.display(),
                report.reused,
                report.written.report.display()
            );
        }
        Command::Submit {
            scale,
            out,
            partition,
            gpus_per_job,
            cpus_per_job,
            time,
            sbatch,
        } => {
            let slurm = SlurmConfig {
                partition,
                gpus_per_job,
                cpus_per_job,
                time,
                sbatch,
                ..SlurmConfig::default()
            };
            let binary = std::env::current_exe().context("cannot find this binary")?;
            let submitted = custom_model::cluster::submit(&options(scale, out), slurm, &binary)?;
            let s = &submitted.submission;
            println!(
                "{} of {} runs submitted as {} job arrays (scripts and logs in {}); report job: {}",
                s.runs(),
                submitted.planned,
                s.jobs.len(),
                s.dir.display(),
                s.final_job.as_deref().unwrap_or("none")
            );
        }
        Command::Exec { manifest, task } => {
            let data = DataCache::new(&data_dir, !cli.no_download);
            let task = custom_model::cluster::execute_task(&cli.store, data, &manifest, task)?;
            println!("{} done", task.id);
        }
        Command::Report { config, out } => {
            let config = custom_model::cluster::read_reproduction(&config)?;
            let report = custom_model::run_config(&options(config.scale, Some(out)), &config)?;
            println!("report: {}", report.written.report.display());
        }
    }
    Ok(())
}
