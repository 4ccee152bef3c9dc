//! The example's Slurm path without a cluster: `submit` with a stand-in `sbatch` that only
//! queues, then every job script the submission wrote run by hand, in submission order
//! (dependencies first) and with `SLURM_ARRAY_TASK_ID` set, as Slurm would run them. (The real
//! one-node Slurm cluster of `tests/slurm/run.sh` runs the `rewind` binary's jobs.)

use std::path::{Path, PathBuf};
use std::process::Command;

use experiments::slurm::SlurmConfig;
use results::Scale;

fn data_dir() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if std::env::var_os(data::DATA_DIR_ENV).is_none() && beside.join("mnist").is_dir() {
        beside
    } else {
        data::resolve_data_dir(None)
    }
}

/// Runs one batch script as Slurm would (task `task` of an array); panics with its output
/// when it fails.
fn run_job(script: &Path, task: Option<usize>) {
    let mut cmd = Command::new("bash");
    cmd.arg(script);
    if let Some(t) = task {
        cmd.env("SLURM_ARRAY_TASK_ID", t.to_string());
    }
    let output = cmd.output().expect("bash");
    assert!(
        output.status.success(),
        "{} (task {task:?}) failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_submitted_jobs_run_every_run_of_the_plan_and_render_the_report() {
    let dir = tempfile::tempdir().expect("tmp");
    // Prints successive job ids, as `sbatch --parsable` does; queues nothing.
    let sbatch = dir.path().join("sbatch");
    std::fs::write(
        &sbatch,
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'slurm 23.11'; exit 0; }\n\
         n=$(cat \"$0.count\" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > \"$0.count\"; echo $n\n",
    )
    .expect("sbatch");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let options = custom_model::Options {
        data_dir: data_dir(),
        allow_download: true,
        store: dir.path().join("runs"),
        out: dir.path().join("report"),
        scale: Scale::Smoke,
    };
    let slurm = SlurmConfig {
        sbatch,
        ..SlurmConfig::default()
    };
    let binary = Path::new(env!("CARGO_BIN_EXE_custom-model"));
    let submitted = custom_model::cluster::submit(&options, slurm.clone(), binary).expect("submit");
    let submission = &submitted.submission;
    // A fresh store: every run of the plan is handed over, in more than one stage.
    assert_eq!(submission.runs(), submitted.planned);
    assert!(submission.jobs.len() > 1, "{:?}", submission.jobs);
    assert!(submission.final_job.is_some());

    for job in &submission.jobs {
        let script = submission.dir.join(format!("{}.sbatch", job.name));
        for task in 0..job.runs {
            run_job(&script, Some(task));
        }
    }
    assert!(!options.out.join("REPORT.md").exists());
    run_job(&submission.dir.join("report.sbatch"), None);
    let report = std::fs::read_to_string(options.out.join("REPORT.md")).expect("report");
    assert!(report.contains("Small ResNet"), "{report}");

    // The jobs ran every run: planning again here finds them all in the store, and a second
    // submission hands nothing over.
    let again = custom_model::run(&options).expect("again");
    assert_eq!(
        (again.runs, again.reused),
        (submitted.planned, submitted.planned)
    );
    let resubmitted = custom_model::cluster::submit(&options, slurm, binary).expect("again");
    assert_eq!(resubmitted.submission.runs(), 0);
}
