use std::io::Write;
use std::path::Path;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use experiments::runs::{DataCache, Job, describe};
use results::RunId;
use store::{RunStatus, Store};

#[derive(Args, Debug)]
pub struct RunsArgs {
    /// The experiment store.
    #[arg(long, value_name = "DIR", default_value = "runs", global = true)]
    store: std::path::PathBuf,

    #[command(subcommand)]
    command: RunsCommand,
}

#[derive(Subcommand, Debug)]
enum RunsCommand {
    /// Every run with its status (done, broken, running, partial, planned), size and what it
    /// is; a broken run (corrupt result) is listed with what to do.
    List {
        /// Only runs with this status (done, broken, running, partial, planned).
        #[arg(long)]
        status: Option<String>,
    },
    /// The identity (full configuration) and result of one run.
    Show { id: String },
    /// Execute one run of a job manifest (what each task of a Slurm job array runs; see
    /// `rewind reproduce --executor slurm`). Waits while another process works on the run,
    /// resumes it from its last checkpoint if one left it unfinished, and does nothing if it
    /// has finished.
    Exec {
        /// A `stage-NN.json` written by the Slurm executor.
        #[arg(long, value_name = "FILE")]
        manifest: std::path::PathBuf,
        /// Index of the run in the manifest (the array task id).
        #[arg(long)]
        task: usize,
        /// Train data-parallel on this many devices (GPUs 0..N).
        #[arg(long, default_value_t = 1)]
        devices: usize,
    },
    /// Write finished runs (results with their checkpoints and metrics) into one checksummed
    /// archive, to carry them to a store on another machine (`runs import`). Unfinished runs
    /// stay: a run must be done to travel.
    Export {
        /// The archive to write (`.tar.gz`).
        #[arg(value_name = "FILE")]
        archive: std::path::PathBuf,
        /// The runs to export (default: every finished run of the store).
        #[arg(value_name = "RUN")]
        ids: Vec<String>,
    },
    /// Add the runs of an archive written by `runs export` to the store. Every file is checked
    /// against the archive's checksums first; runs the store has finished already are kept.
    Import {
        /// The archive to read.
        #[arg(value_name = "FILE")]
        archive: std::path::PathBuf,
    },
    /// Remove stale locks, and temporary files left by killed processes (untouched for the lock
    /// lease, $REWIND_LOCK_LEASE_SECS, default 300 s).
    Gc {
        /// Also delete every run that has not finished, is not running and has not been touched
        /// for the lease (a run just planned by another process stays).
        #[arg(long)]
        unfinished: bool,
    },
}

fn human(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb >= 1000.0 {
        format!("{:.1} GB", mb / 1000.0)
    } else {
        format!("{mb:.1} MB")
    }
}

pub fn run(args: RunsArgs, data_dir: &Path, allow_download: bool) -> Result<()> {
    if !args.store.is_dir() {
        bail!(
            "{} is not an experiment store (no such directory); pass --store DIR",
            args.store.display()
        );
    }
    let store = Store::open(&args.store)?;
    let mut out = crate::listing::stdout();
    match args.command {
        RunsCommand::List { status } => {
            let entries = store.list()?;
            let mut total = 0;
            let mut counts = std::collections::BTreeMap::<String, usize>::new();
            for e in &entries {
                let s = match e.status {
                    RunStatus::Running { .. } => "running".to_string(),
                    ref other => other.to_string(),
                };
                *counts.entry(s.clone()).or_default() += 1;
                total += e.bytes;
                if status.as_deref().is_some_and(|want| want != s) {
                    continue;
                }
                let what = e
                    .identity
                    .clone()
                    .and_then(|v| serde_json::from_value::<Job>(v).ok())
                    .map_or("?".into(), |j| describe(&j));
                writeln!(
                    out,
                    "{:<24} {:<18} {:>10}  {what}",
                    e.id,
                    e.status.to_string(),
                    human(e.bytes)
                )?;
            }
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            writeln!(
                out,
                "{} runs ({}), {} on disk",
                entries.len(),
                summary.join(", "),
                human(total)
            )?;
            let broken: Vec<_> = entries
                .iter()
                .filter_map(|e| match &e.status {
                    RunStatus::Broken { reason } => Some((&e.id, reason)),
                    _ => None,
                })
                .collect();
            if !broken.is_empty() {
                writeln!(out, "\nbroken runs (their result file is corrupt):")?;
                for (id, reason) in broken {
                    writeln!(out, "  {id}: {reason}")?;
                }
                writeln!(
                    out,
                    "Run the command that made them again (`rewind reproduce`, `train`, `imp` or \
                     `instability` with the same options and --store): each broken result is \
                     rebuilt from its run's files, a training from its last checkpoint."
                )?;
            }
        }
        RunsCommand::Show { id } => {
            let id: RunId = id.parse()?;
            let dir = store.dir(&id);
            if !dir.is_dir() {
                bail!("no run {id} in {}", args.store.display());
            }
            let identity: serde_json::Value = store.identity(&id)?;
            writeln!(out, "{id}: {}\n", store.status(&id))?;
            writeln!(
                out,
                "identity:\n{}",
                serde_json::to_string_pretty(&identity)?
            )?;
            if let Some(result) = store.result::<serde_json::Value>(&id)? {
                writeln!(out, "\nresult:\n{}", serde_json::to_string_pretty(&result)?)?;
            }
        }
        RunsCommand::Exec {
            manifest,
            task,
            devices,
        } => {
            let mut runner = paper::runner(
                store,
                DataCache::new(data_dir, allow_download),
                &train::default_device(),
            )
            .with_devices(train::devices(devices));
            runner.show_run_progress = false;
            let task = experiments::slurm::execute_task(&runner, &manifest, task)?;
            writeln!(out, "{} done", task.id)?;
        }
        RunsCommand::Export { archive, ids } => {
            let ids = ids
                .iter()
                .map(|id| id.parse::<RunId>())
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let (runs, bytes) = store.export(&ids, &archive)?;
            writeln!(
                out,
                "exported {runs} finished runs to {} ({})",
                archive.display(),
                human(bytes)
            )?;
        }
        RunsCommand::Import { archive } => {
            let report = store.import(&archive)?;
            writeln!(
                out,
                "imported {} runs ({}); kept {} the store had finished; {} left to the \
                 process running them",
                report.imported.len(),
                human(report.bytes),
                report.kept.len(),
                report.busy.len()
            )?;
        }
        RunsCommand::Gc { unfinished } => {
            let report = store.gc(unfinished)?;
            writeln!(
                out,
                "removed {} stale locks, {} temporary files, {} unfinished runs; {} freed",
                report.stale_locks,
                report.temporaries,
                report.removed_runs.len(),
                human(report.bytes_freed)
            )?;
        }
    }
    Ok(())
}
