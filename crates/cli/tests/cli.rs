//! The `rewind` binary as a user sees it: help text, clear errors, outputs, reuse.

use std::process::Command;

fn rewind() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("rewind runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_explains_every_train_option() {
    let (ok, stdout, _) = run(rewind().args(["train", "--help"]));
    assert!(ok);
    for option in [
        "--preset",
        "--steps",
        "--init-seed",
        "--data-seed",
        "--out",
        "--data-dir",
        "--config",
        "--keep",
    ] {
        assert!(stdout.contains(option), "{option} missing from:\n{stdout}");
    }
    let (ok, stdout, _) = run(rewind().arg("presets"));
    assert!(
        ok && stdout.contains("resnet20-warmup") && stdout.contains("63000it"),
        "{stdout}"
    );
}

#[test]
fn user_errors_are_one_clear_message_not_a_panic() {
    let empty = tempfile::tempdir().expect("tmp");
    let out = tempfile::tempdir().expect("tmp");
    let cases: [(&[&str], &str); 4] = [
        (
            &["train", "--preset", "lenet", "--no-download", "--out"],
            "--data-dir",
        ),
        (
            &["train", "--preset", "resnet56", "--out"],
            "available presets",
        ),
        (
            &["train", "--steps", "12parsecs", "--out"],
            "invalid step string",
        ),
        (
            &["train", "--preset", "lenet", "--dataset", "svhn", "--out"],
            "unknown dataset",
        ),
    ];
    for (args, expected) in cases {
        let (ok, _, stderr) = run(rewind()
            .arg("--data-dir")
            .arg(empty.path())
            .args(args)
            .arg(out.path()));
        assert!(!ok, "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn trains_on_real_mnist_writes_config_and_metrics_and_reuses_the_run() {
    let out = tempfile::tempdir().expect("tmp");
    let data = integration::data_dir();
    let args = [
        "train",
        "--preset",
        "lenet",
        "--steps",
        "200it",
        "--eval-every",
        "100it",
        "--train-eval-subset",
        "500",
        "--quiet",
    ];
    let (ok, stdout, stderr) = run(rewind()
        .arg("--data-dir")
        .arg(&data)
        .args(args)
        .arg("--out")
        .arg(out.path()));
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("trained"), "{stdout}");
    let config = std::fs::read_to_string(out.path().join("config.toml")).expect("config");
    assert!(
        config.contains("init_seed = 1") && config.contains("training_steps = \"200it\""),
        "{config}"
    );
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("metrics.json")).expect("metrics"))
            .expect("json");
    let records = metrics.as_array().expect("array");
    assert_eq!(records.len(), 2);
    assert!(
        records[1]["test_accuracy"].as_f64().expect("accuracy") > 0.85,
        "{metrics}"
    );
    assert!(records[1]["train_eval_accuracy"].is_number());
    let (ok, stdout, _) = run(rewind()
        .arg("--data-dir")
        .arg(&data)
        .args(args)
        .arg("--out")
        .arg(out.path()));
    assert!(ok && stdout.starts_with("reused"), "{stdout}");
    // Same directory, other seed: refused, nothing lost.
    let (ok, _, stderr) = run(rewind()
        .arg("--data-dir")
        .arg(&data)
        .args(args)
        .args(["--data-seed", "2", "--out"])
        .arg(out.path()));
    assert!(
        !ok && stderr.contains("different configuration"),
        "{stderr}"
    );
    assert!(out.path().join("metrics.json").is_file());
}
