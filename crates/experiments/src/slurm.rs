//! Hands a [`Plan`] to Slurm instead of running it here: no scheduler of our own.
//!
//! The unfinished runs of a plan are grouped in stages by their depth in the run graph (a
//! run's stage is one more than its deepest unfinished dependency). Each stage becomes one job
//! array (several where it exceeds the cluster's array size), one run per array task, with
//! `--dependency=afterok` on the arrays that hold its runs' parents; a last job renders the
//! report once every array has succeeded. Each task runs `rewind runs exec`, which executes
//! its run in the shared store under the store's lock (see [`crate::lock`]), so a task whose
//! run another job already works on waits for it instead of computing it twice, and a run left
//! behind by a crashed job is resumed from its last checkpoint by the next submission.
//!
//! ```text
//! <store>/slurm/<submission>/rewind              copy of the binary (rebuilding is safe)
//! <store>/slurm/<submission>/stage-03.json       the runs of one array: id and kept steps
//! <store>/slurm/<submission>/stage-03.sbatch     its batch script
//! <store>/slurm/<submission>/reproduce.toml      what the report job reproduces
//! <store>/slurm/<submission>/logs/               one log per array task
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use results::{ReproduceConfig, RunId};
use serde::{Deserialize, Serialize};

use crate::executor::{Execution, Executor};
use crate::runs::{Plan, Runner};
use crate::{Error, Result};

/// How the jobs are submitted.
#[derive(Debug, Clone)]
pub struct SlurmConfig {
    /// `--partition`.
    pub partition: Option<String>,
    /// GPUs per job (`--gres=gpu:N`); 0 for CPU jobs.
    pub gpus_per_job: u32,
    /// `--cpus-per-task`.
    pub cpus_per_job: Option<u32>,
    /// Wall-clock limit of one job, `[D-]HH:MM:SS`.
    pub time: Option<String>,
    /// Most tasks in one job array (the cluster's `MaxArraySize` - 1 at most).
    pub max_array_size: usize,
    /// Further `sbatch` options, e.g. `--account=proj`.
    pub extra: Vec<String>,
    /// The `sbatch` program.
    pub sbatch: PathBuf,
}

impl Default for SlurmConfig {
    fn default() -> SlurmConfig {
        SlurmConfig {
            partition: None,
            gpus_per_job: 0,
            cpus_per_job: None,
            time: None,
            max_array_size: 1000,
            extra: vec![],
            sbatch: PathBuf::from("sbatch"),
        }
    }
}

impl SlurmConfig {
    /// Checks what can be checked before anything is submitted.
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = &self.time {
            let (days, clock) = t.split_once('-').unwrap_or(("0", t));
            let parts: Vec<&str> = clock.split(':').collect();
            let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
            if !numeric(days) || parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
                return Err(Error::Invalid(format!(
                    "--time takes HH:MM:SS or D-HH:MM:SS, e.g. 04:00:00; got `{t}`"
                )));
            }
        }
        if self.max_array_size == 0 {
            return Err(Error::Invalid("the array size must be at least 1".into()));
        }
        Ok(())
    }
}

/// One run of an array task: its id and the checkpoints later runs need from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: RunId,
    pub keep: Vec<u64>,
}

/// What `stage-NN.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub tasks: Vec<Task>,
}

/// One job array: its runs and the arrays it waits for (indices into the list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobArray {
    pub name: String,
    pub stage: usize,
    pub tasks: Vec<Task>,
    pub after: Vec<usize>,
}

/// The job arrays of the runs of `plan` that are not `complete` yet, in submission order.
pub fn job_arrays(
    plan: &Plan,
    complete: impl Fn(&RunId) -> bool,
    max_array_size: usize,
) -> Vec<JobArray> {
    let mut stage_of: BTreeMap<&RunId, usize> = BTreeMap::new();
    // The plan lists dependencies before dependents, so one pass sets every stage.
    for id in plan.ids() {
        if complete(id) {
            continue;
        }
        let stage = plan.job(id).map_or(0, |job| {
            job.dependencies()
                .iter()
                .filter_map(|d| stage_of.get(d))
                .map(|s| s + 1)
                .max()
                .unwrap_or(0)
        });
        stage_of.insert(id, stage);
    }
    let stages = stage_of.values().max().map_or(0, |s| s + 1);
    let mut arrays: Vec<JobArray> = Vec::new();
    let mut arrays_of_stage: Vec<Vec<usize>> = Vec::new();
    for stage in 0..stages {
        let ids: Vec<&RunId> = plan
            .ids()
            .iter()
            .filter(|id| stage_of.get(id) == Some(&stage))
            .collect();
        let parent_stages: BTreeSet<usize> = ids
            .iter()
            .filter_map(|id| plan.job(id))
            .flat_map(|job| job.dependencies())
            .filter_map(|d| stage_of.get(&d).copied())
            .collect();
        let after: Vec<usize> = parent_stages
            .iter()
            .flat_map(|s| arrays_of_stage[*s].iter().copied())
            .collect();
        let chunks = ids.chunks(max_array_size.max(1));
        let many = chunks.len() > 1;
        let mut mine = Vec::new();
        for (part, chunk) in chunks.enumerate() {
            mine.push(arrays.len());
            arrays.push(JobArray {
                name: if many {
                    format!("stage-{stage:02}-part-{part}")
                } else {
                    format!("stage-{stage:02}")
                },
                stage,
                tasks: chunk
                    .iter()
                    .map(|id| Task {
                        id: (*id).clone(),
                        keep: plan.kept_steps(id),
                    })
                    .collect(),
                after: after.clone(),
            });
        }
        arrays_of_stage.push(mine);
    }
    arrays
}

/// What was submitted.
#[derive(Debug, Clone)]
pub struct Submission {
    pub dir: PathBuf,
    pub arrays: Vec<JobArray>,
    /// Slurm's job id of each array, in the order of `arrays`.
    pub array_jobs: Vec<String>,
    /// The job that renders the report after every array succeeded.
    pub final_job: Option<String>,
}

impl Submission {
    pub fn runs(&self) -> usize {
        self.arrays.iter().map(|a| a.tasks.len()).sum()
    }
}

/// The command lines the jobs run.
#[derive(Debug, Clone)]
pub struct JobCommands {
    /// The `rewind` binary to copy into the submission (the jobs run the copy).
    pub rewind: PathBuf,
    /// Options before the subcommand (`--data-dir DIR`, `--no-download`).
    pub global: Vec<String>,
    /// Options `rewind runs exec` gets after `--task` (e.g. `--devices 2`).
    pub exec: Vec<String>,
    /// The last job, which renders the report once every run has finished.
    pub report: Option<ReportJob>,
}

/// The job that renders a reproduction's report: `rewind reproduce --config <file>` with the
/// reproduction written beside the batch scripts, plus where it reads and writes.
#[derive(Debug, Clone)]
pub struct ReportJob {
    pub config: ReproduceConfig,
    /// Options after `--config FILE`: the store, the output directory, devices.
    pub options: Vec<String>,
}

/// A plan handed to Slurm: the unfinished runs of the plan as job arrays, submitted with
/// `sbatch` (the call returns once they are queued).
pub struct Slurm<'a> {
    /// Registers the plan in the store and tells which runs are complete.
    pub runner: &'a Runner,
    pub config: SlurmConfig,
    pub commands: JobCommands,
}

impl Slurm<'_> {
    /// The job arrays that [`Executor::execute`] would submit for `plan`.
    pub fn arrays(&self, plan: &Plan) -> Vec<JobArray> {
        job_arrays(
            plan,
            |id| self.runner.is_complete(plan, id),
            self.config.max_array_size,
        )
    }
}

impl Executor for Slurm<'_> {
    fn execute(&self, plan: &Plan) -> Result<Execution> {
        self.config.validate()?;
        self.runner.register(plan)?;
        let submission = submit(
            self.runner.store.root(),
            self.arrays(plan),
            &self.commands,
            &self.config,
        )?;
        Ok(Execution::Submitted(submission))
    }
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn header(config: &SlurmConfig, name: &str, logs: &Path, array: Option<usize>) -> String {
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name=rewind-{name}"),
    ];
    match array {
        Some(n) => {
            lines.push(format!("#SBATCH --array=0-{}", n - 1));
            lines.push(format!(
                "#SBATCH --output={}",
                logs.join(format!("{name}-%A_%a.out")).display()
            ));
        }
        None => lines.push(format!(
            "#SBATCH --output={}",
            logs.join(format!("{name}-%j.out")).display()
        )),
    }
    // A job whose parents failed is cancelled instead of pending forever; a job of a failed
    // node is queued again (it resumes from its run's last checkpoint).
    lines.push("#SBATCH --kill-on-invalid-dep=yes".into());
    lines.push("#SBATCH --requeue".into());
    if let Some(p) = &config.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    if config.gpus_per_job > 0 {
        lines.push(format!("#SBATCH --gres=gpu:{}", config.gpus_per_job));
    }
    if let Some(c) = config.cpus_per_job {
        lines.push(format!("#SBATCH --cpus-per-task={c}"));
    }
    if let Some(t) = &config.time {
        lines.push(format!("#SBATCH --time={t}"));
    }
    for extra in &config.extra {
        lines.push(format!("#SBATCH {extra}"));
    }
    lines.push("set -eu".into());
    lines.join("\n") + "\n"
}

fn command_line(rewind: &Path, global: &[String], rest: &[String]) -> String {
    let mut words = vec![shell_quote(&rewind.display().to_string())];
    words.extend(global.iter().map(|w| shell_quote(w)));
    words.extend(rest.iter().map(|w| {
        if w == "$SLURM_ARRAY_TASK_ID" {
            "\"$SLURM_ARRAY_TASK_ID\"".to_string()
        } else {
            shell_quote(w)
        }
    }));
    format!("exec {}\n", words.join(" "))
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Writes the batch scripts of `arrays` under `<store>/slurm/` and submits them with
/// `sbatch`, dependencies first. Returns at once: Slurm runs the jobs.
pub fn submit(
    store_root: &Path,
    arrays: Vec<JobArray>,
    commands: &JobCommands,
    config: &SlurmConfig,
) -> Result<Submission> {
    config.validate()?;
    // Nothing is written where nothing can be submitted.
    Command::new(&config.sbatch)
        .arg("--version")
        .output()
        .map_err(|e| no_sbatch(config, e))?;
    let store_root = std::path::absolute(store_root).map_err(|e| io(store_root, e))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = store_root
        .join("slurm")
        .join(format!("{stamp}-{}", std::process::id()));
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| io(&logs, e))?;
    let rewind = dir.join("rewind");
    std::fs::copy(&commands.rewind, &rewind).map_err(|e| io(&commands.rewind, e))?;
    let store_arg = store_root.display().to_string();

    let mut array_jobs: Vec<String> = Vec::new();
    for array in &arrays {
        let manifest = dir.join(format!("{}.json", array.name));
        let text = serde_json::to_vec_pretty(&Manifest {
            tasks: array.tasks.clone(),
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
        train::write_atomic(&manifest, &text)?;
        let mut exec = vec![
            "runs".to_string(),
            "--store".into(),
            store_arg.clone(),
            "exec".into(),
            "--manifest".into(),
            manifest.display().to_string(),
            "--task".into(),
            "$SLURM_ARRAY_TASK_ID".into(),
        ];
        exec.extend(commands.exec.iter().cloned());
        let script = header(config, &array.name, &logs, Some(array.tasks.len()))
            + &command_line(&rewind, &commands.global, &exec);
        let path = dir.join(format!("{}.sbatch", array.name));
        train::write_atomic(&path, script.as_bytes())?;
        let after: Vec<&str> = array
            .after
            .iter()
            .map(|&i| array_jobs[i].as_str())
            .collect();
        array_jobs.push(sbatch(config, &path, &after)?);
    }
    let final_job = match &commands.report {
        Some(report) => {
            let file = dir.join("reproduce.toml");
            let text =
                toml::to_string(&report.config).map_err(|e| Error::Invalid(e.to_string()))?;
            train::write_atomic(&file, text.as_bytes())?;
            let mut last = vec![
                "reproduce".to_string(),
                "--config".into(),
                file.display().to_string(),
            ];
            last.extend(report.options.iter().cloned());
            let script = header(config, "report", &logs, None)
                + &command_line(&rewind, &commands.global, &last);
            let path = dir.join("report.sbatch");
            train::write_atomic(&path, script.as_bytes())?;
            let after: Vec<&str> = array_jobs.iter().map(String::as_str).collect();
            Some(sbatch(config, &path, &after)?)
        }
        None => None,
    };
    Ok(Submission {
        dir,
        arrays,
        array_jobs,
        final_job,
    })
}

fn no_sbatch(config: &SlurmConfig, e: std::io::Error) -> Error {
    Error::Invalid(format!(
        "cannot run `{}` ({e}): --executor slurm needs Slurm's sbatch on PATH; run this on the \
         cluster's login node",
        config.sbatch.display()
    ))
}

/// Submits one script; Slurm's job id.
fn sbatch(config: &SlurmConfig, script: &Path, after: &[&str]) -> Result<String> {
    let mut cmd = Command::new(&config.sbatch);
    cmd.arg("--parsable");
    if !after.is_empty() {
        cmd.arg(format!("--dependency=afterok:{}", after.join(":")));
    }
    cmd.arg(script);
    let output = cmd.output().map_err(|e| no_sbatch(config, e))?;
    if !output.status.success() {
        return Err(Error::Invalid(format!(
            "sbatch refused {}: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let out = String::from_utf8_lossy(&output.stdout);
    let id = out.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Invalid(format!(
            "sbatch printed no job id for {} (got `{}`)",
            script.display(),
            out.trim()
        )));
    }
    Ok(id)
}

/// The task of array task `index` in `manifest`.
pub fn task(manifest: &Path, index: usize) -> Result<Task> {
    let bytes = std::fs::read(manifest).map_err(|e| io(manifest, e))?;
    let manifest_data: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Invalid(format!("{} is not a job manifest: {e}", manifest.display()))
    })?;
    let count = manifest_data.tasks.len();
    manifest_data.tasks.into_iter().nth(index).ok_or_else(|| {
        Error::Invalid(format!(
            "{} has {count} tasks; there is no task {index}",
            manifest.display()
        ))
    })
}
