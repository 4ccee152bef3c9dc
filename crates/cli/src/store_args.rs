//! Options and helpers shared by the commands that work in the experiment store.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use experiments::executor::{Executor, Local};
use experiments::runs::{DataCache, Plan, Runner};
use paper::PaperNetworks;
use store::Store;

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The experiment store: every run lives in `<store>/<kind>-<hash of its configuration>`
    /// and is reused by any later command that needs it.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub store: PathBuf,

    /// Runs trained at the same time (each uses all cores; more helps on GPUs and on
    /// machines with many cores).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,

    /// Train every run data-parallel on this many devices (GPUs 0..N with --features cuda or
    /// wgpu): each takes a share of every batch's micro-batches (`micro_batches` of the
    /// recipe, --micro-batches), gradients are summed on the first. The numbers do not depend
    /// on N.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
}

impl StoreArgs {
    pub fn runner(
        &self,
        data_dir: &Path,
        allow_download: bool,
        quiet: bool,
    ) -> Result<Runner<PaperNetworks>> {
        let mut runner = paper::runner(
            Store::open(&self.store)?,
            DataCache::new(data_dir, allow_download),
            &train::default_device(),
        )
        .with_devices(train::devices(self.devices));
        // Several workers would draw over each other's bars: show the overall one only.
        runner.show_run_progress = !quiet && self.jobs <= 1;
        Ok(runner)
    }
}

/// Runs a plan here with an overall progress bar (runs done / total, ETA).
pub fn execute(
    runner: &Runner<PaperNetworks>,
    plan: &Plan,
    jobs: usize,
    quiet: bool,
) -> Result<()> {
    Local {
        runner,
        workers: jobs,
        progress: progress_bar(quiet),
    }
    .execute(plan, &runner.store)?;
    Ok(())
}

/// The overall bar of a plan: runs done / total, elapsed, ETA, and what runs now.
pub fn progress_bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "runs [{bar:30}] {pos}/{len} done ({elapsed} elapsed, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Writes a summary as pretty JSON under `<store>/summaries/` and returns its path.
pub fn write_summary(store: &Store, name: &str, value: &impl serde::Serialize) -> Result<PathBuf> {
    let path = store.root().join("summaries").join(format!("{name}.json"));
    train::write_atomic(&path, &serde_json::to_vec_pretty(value)?)?;
    Ok(path)
}
