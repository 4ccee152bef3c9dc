//! The same plan on a Slurm cluster. The library submits it ([`submit`]: one job array per
//! stage of unfinished runs, then a report job); what each job runs is this example's own
//! binary, by the grammar [`ExampleJobs`] states: `custom-model exec` for an array task (one
//! run, [`execute_task`]) and `custom-model report` for the report job
//! ([`read_reproduction`], then [`run_config`](crate::run_config)). A network of your own does
//! the same with its binary: a `JobInvocation` naming two commands, and those two commands
//! calling [`experiments::slurm::execute_task`] and `reproduce` with its factory.

use std::path::{Path, PathBuf};

use anyhow::Context;
use experiments::executor::Submission;
use experiments::reproduce::{self, Outcome};
use experiments::runs::{DataCache, PublishedSizes, Runner};
use experiments::slurm::{ARRAY_TASK_ID, JobCommands, JobInvocation, Slurm, SlurmConfig, Task};
use results::ReproduceConfig;
use store::Store;

use crate::{Options, SMALL_RESNET, SmallResNets, reproduction};

/// How the jobs invoke this example's binary (paths absolute: jobs start elsewhere).
#[derive(Debug, Clone)]
pub struct ExampleJobs {
    pub data_dir: PathBuf,
    /// Where the report job writes the report.
    pub out: PathBuf,
}

impl JobInvocation for ExampleJobs {
    fn run_task(&self, store: &Path, manifest: &Path) -> Vec<String> {
        [
            "exec",
            "--data-dir",
            &self.data_dir.display().to_string(),
            "--store",
            &store.display().to_string(),
            "--manifest",
            &manifest.display().to_string(),
            "--task",
            ARRAY_TASK_ID,
        ]
        .map(String::from)
        .to_vec()
    }

    fn render_report(&self, store: &Path, config: &Path) -> Vec<String> {
        [
            "report",
            "--data-dir",
            &self.data_dir.display().to_string(),
            "--store",
            &store.display().to_string(),
            "--config",
            &config.display().to_string(),
            "--out",
            &self.out.display().to_string(),
        ]
        .map(String::from)
        .to_vec()
    }
}

/// What [`submit`] handed to Slurm.
#[derive(Debug)]
pub struct Submitted {
    pub submission: Submission,
    /// Runs of the whole plan, finished ones included.
    pub planned: usize,
}

/// Submits [`run`](crate::run)'s plan at `options.scale` to Slurm with `sbatch`: the
/// unfinished runs as job arrays that run `binary` (this example's, copied into the
/// submission), and a report job into `options.out`. Plans from the datasets' published
/// sizes: nothing is read on the login node. Returns once the jobs are queued.
pub fn submit(options: &Options, slurm: SlurmConfig, binary: &Path) -> anyhow::Result<Submitted> {
    let config = reproduction(options.scale);
    let absolute = |p: &Path| {
        std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
    };
    let jobs = ExampleJobs {
        data_dir: absolute(&options.data_dir)?,
        out: absolute(&options.out)?,
    };
    let store = Store::open(&options.store)?;
    let executor = Slurm {
        config: slurm,
        commands: JobCommands {
            binary: binary.to_path_buf(),
            invocation: &jobs,
            report: Some(config.clone()),
        },
    };
    match reproduce::run_networks(
        &config,
        &[&SMALL_RESNET],
        &PublishedSizes,
        &executor,
        &store,
    )? {
        Outcome::Submitted {
            submission,
            planned,
        } => Ok(Submitted {
            submission,
            planned,
        }),
        Outcome::Finished(_) => anyhow::bail!("the Slurm executor ran the plan in place"),
    }
}

/// Array task `index` of `manifest`: one run, in the experiment store at `store`, with the
/// datasets of `data`.
pub fn execute_task(
    store: &Path,
    data: DataCache,
    manifest: &Path,
    index: usize,
) -> anyhow::Result<Task> {
    let mut runner = Runner::with_models(
        Store::open(store)?,
        data,
        &train::default_device(),
        SmallResNets::default(),
    );
    runner.show_run_progress = false;
    Ok(experiments::slurm::execute_task(&runner, manifest, index)?)
}

/// The reproduction a submission wrote for its report job (`reproduce.toml`, TOML). The report
/// job runs it with [`run_config`](crate::run_config) on the store its jobs filled: every run
/// is there, so it only collects and draws.
pub fn read_reproduction(config_file: &Path) -> anyhow::Result<ReproduceConfig> {
    let text = std::fs::read_to_string(config_file)
        .with_context(|| format!("cannot read {}", config_file.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("{} is not a reproduction config", config_file.display()))
}
