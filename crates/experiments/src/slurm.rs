//! Hands a [`Plan`] to Slurm instead of running it here: no scheduler of our own.
//!
//! The unfinished runs of a plan are grouped in stages by their depth in the run graph (a
//! run's stage is one more than its deepest unfinished dependency). Each stage becomes one job
//! array (several where it exceeds the cluster's array size), one run per array task, with
//! `--dependency=afterok` on the arrays that hold its runs' parents; a last job renders the
//! report once every array has succeeded. Each task runs the binary's task command (for
//! `rewind`, `rewind runs exec`; the binary says how, through [`JobInvocation`]), which
//! executes its run in the shared store under the store's lock, so a task whose
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

use crate::executor::{Execution, Executor, Submission, SubmittedJob};
use crate::models::ModelFactory;
use crate::runs::{Job, Plan, Runner};
use crate::{Error, Result};
use store::Store;

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
                    "a Slurm time limit is HH:MM:SS or D-HH:MM:SS, e.g. 04:00:00; got `{t}`"
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

/// The shell word that expands to the array task's index in a job script.
pub const ARRAY_TASK_ID: &str = "$SLURM_ARRAY_TASK_ID";

/// How a job invokes the binary. The binary supplies its own command grammar: no library
/// writes the command line.
pub trait JobInvocation {
    /// The arguments (after the binary) that execute task [`ARRAY_TASK_ID`] of `manifest`
    /// (read with [`task`]) in the store at `store`.
    fn run_task(&self, store: &Path, manifest: &Path) -> Vec<String>;
    /// The arguments that reproduce the config in `config` (TOML, a [`ReproduceConfig`])
    /// from the finished store at `store` and render its report.
    fn render_report(&self, store: &Path, config: &Path) -> Vec<String>;
}

/// What the jobs run.
pub struct JobCommands<'a> {
    /// The binary to copy into the submission (the jobs run the copy).
    pub binary: PathBuf,
    pub invocation: &'a dyn JobInvocation,
    /// The reproduction the last job renders once every run has finished; none: no report
    /// job.
    pub report: Option<ReproduceConfig>,
}

/// A plan handed to Slurm: the unfinished runs of the plan as job arrays, submitted with
/// `sbatch` (the call returns once they are queued). Needs no data and no device: only the
/// store, to register the runs and tell which are complete.
pub struct Slurm<'a> {
    pub config: SlurmConfig,
    pub commands: JobCommands<'a>,
}

impl Slurm<'_> {
    /// The job arrays that [`Executor::execute`] would submit for `plan` in `store`.
    pub fn arrays(&self, plan: &Plan, store: &Store) -> Vec<JobArray> {
        job_arrays(
            plan,
            |id| plan.is_complete(store, id),
            self.config.max_array_size,
        )
    }
}

impl Executor for Slurm<'_> {
    fn execute(&self, plan: &Plan, store: &Store) -> Result<Execution> {
        self.config.validate()?;
        plan.register(store)?;
        let submission = submit(
            store.root(),
            &self.arrays(plan, store),
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

fn command_line(binary: &Path, args: &[String]) -> String {
    let mut words = vec![shell_quote(&binary.display().to_string())];
    words.extend(args.iter().map(|w| {
        if w == ARRAY_TASK_ID {
            format!("\"{ARRAY_TASK_ID}\"")
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
    arrays: &[JobArray],
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
    let binary = dir.join(
        commands
            .binary
            .file_name()
            .unwrap_or(std::ffi::OsStr::new("rewind")),
    );
    std::fs::copy(&commands.binary, &binary).map_err(|e| io(&commands.binary, e))?;

    let mut jobs: Vec<SubmittedJob> = Vec::new();
    for array in arrays {
        let manifest = dir.join(format!("{}.json", array.name));
        let text = serde_json::to_vec_pretty(&Manifest {
            tasks: array.tasks.clone(),
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
        train::write_atomic(&manifest, &text)?;
        let args = commands.invocation.run_task(&store_root, &manifest);
        let script = header(config, &array.name, &logs, Some(array.tasks.len()))
            + &command_line(&binary, &args);
        let path = dir.join(format!("{}.sbatch", array.name));
        train::write_atomic(&path, script.as_bytes())?;
        let after: Vec<String> = array.after.iter().map(|&i| jobs[i].id.clone()).collect();
        jobs.push(SubmittedJob {
            name: array.name.clone(),
            id: sbatch(config, &path, &after)?,
            runs: array.tasks.len(),
            after,
        });
    }
    let final_job = match &commands.report {
        Some(reproduction) => {
            let file = dir.join("reproduce.toml");
            let text = toml::to_string(reproduction).map_err(|e| Error::Invalid(e.to_string()))?;
            train::write_atomic(&file, text.as_bytes())?;
            let args = commands.invocation.render_report(&store_root, &file);
            let script = header(config, "report", &logs, None) + &command_line(&binary, &args);
            let path = dir.join("report.sbatch");
            train::write_atomic(&path, script.as_bytes())?;
            let after: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
            Some(sbatch(config, &path, &after)?)
        }
        None => None,
    };
    Ok(Submission {
        dir,
        jobs,
        final_job,
    })
}

fn no_sbatch(config: &SlurmConfig, e: std::io::Error) -> Error {
    Error::Invalid(format!(
        "cannot run `{}` ({e}): the Slurm executor needs Slurm's sbatch on PATH; run this on the \
         cluster's login node",
        config.sbatch.display()
    ))
}

/// Submits one script; Slurm's job id.
fn sbatch(config: &SlurmConfig, script: &Path, after: &[String]) -> Result<String> {
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

/// What array task `index` of `manifest` runs: its run, executed by `runner` in the shared
/// store (where the submission registered it), keeping the checkpoints later runs need. A
/// binary's task command (see [`JobInvocation::run_task`]) is this call with its own factory.
pub fn execute_task<F: ModelFactory>(
    runner: &Runner<F>,
    manifest: &Path,
    index: usize,
) -> Result<Task> {
    let task = task(manifest, index)?;
    train::compute_here(train::available_threads());
    let job: Job = runner.store.identity(&task.id).map_err(|e| {
        Error::Invalid(format!(
            "{} names run {}, which the store {} does not hold ({e}): submit the plan again",
            manifest.display(),
            task.id,
            runner.store.root().display()
        ))
    })?;
    tracing::info!("{}: {}", task.id, crate::runs::describe(&job));
    runner.execute(&task.id, &job, &task.keep)?;
    Ok(task)
}
