//! `cargo xtask reproduce-all`: the paper's experiments at a chosen scale through a release
//! `rewind reproduce`, with the commit named in the report.

use std::path::PathBuf;
use std::process::Command as Process;

use anyhow::{Context, Result};
use clap::Args;

use crate::{root, run};

/// Options of `reproduce-all`: what to reproduce becomes a `ReproduceConfig` file (the one
/// `rewind reproduce --config` reads, and the report job of a Slurm submission gets); where
/// and how (store, output, workers, executor) are passed on to `rewind reproduce`.
#[derive(Args)]
pub(crate) struct Reproduce {
    /// smoke (minutes), quick (a few hours on a 2-core CPU) or paper (Table 1).
    #[arg(long, default_value = "quick")]
    scale: results::Scale,
    /// Only these figures, comma separated (fig2..fig8, appb..appe, beyond, levels,
    /// layerwise).
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

pub(crate) fn reproduce_all(r: Reproduce) -> Result<()> {
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
