//! The fault-injection harness's quick mode (`faults::Counts::QUICK`) against this test build
//! of `rewind`, which has the fault points (`results/failpoints` is a dev-dependency feature):
//! kills at random moments and at writes, corrupted files, concurrent writers with gc, a full
//! disk and malformed input, on real MNIST runs. `cargo xtask faults` runs the full counts.

#[test]
fn no_fault_of_the_quick_mode_loses_anything() {
    let work = tempfile::tempdir().expect("tempdir");
    let harness = faults::Harness::new(
        env!("CARGO_BIN_EXE_rewind").into(),
        integration::data_dir(),
        work.path().to_path_buf(),
    );
    let report = harness
        .run(&faults::Counts::QUICK)
        .expect("the harness ran");
    println!("{}\n{}", report.markdown(), report.messages(5));
    assert_eq!(report.lost(), 0, "\n{}", report.failures());
    for row in &report.rows {
        assert!(row.injected > 0, "{}: no fault was injected", row.fault);
    }
}

/// The comparison every trial ends with has teeth: a run whose checkpoint was replaced by
/// another run's (valid checksums, another network) resumes from it without complaint, and the
/// harness counts that trial lost.
#[test]
fn a_resumption_from_another_runs_checkpoint_is_counted_lost() {
    let work = tempfile::tempdir().expect("tempdir");
    let harness = faults::Harness::new(
        env!("CARGO_BIN_EXE_rewind").into(),
        integration::data_dir(),
        work.path().to_path_buf(),
    );
    let one = harness.reference(1).expect("seed 1");
    let two = harness.reference(2).expect("seed 2");
    let store = work.path().join("planted");
    faults::copy_tree(&one.store, &store).expect("copy");
    let run = faults::train_runs(&store).remove(0);
    let other = faults::train_runs(&two.store).remove(0);
    let own = faults::train_runs(&one.store).remove(0);
    let planted = "checkpoints/step-0000000150";
    // Seed 1's run, unfinished after step 150, with the step-150 checkpoint of `from`.
    let unfinish_with = |from: &std::path::Path| {
        for name in ["result.json", "result.sha256"] {
            let _ = std::fs::remove_file(run.join(name));
        }
        for entry in std::fs::read_dir(run.join("checkpoints")).expect("checkpoints") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            if name.as_str() >= "step-0000000150" {
                std::fs::remove_dir_all(&path).expect("rm");
            }
        }
        faults::copy_tree(&from.join(planted), &run.join(planted)).expect("plant");
    };
    unfinish_with(&other);
    let row = harness.rerun_and_compare(&store, &one).expect("rerun");
    assert_eq!(row.lost, 1, "{row:?}");
    assert!(row.failures[0].contains("final weights differ"), "{row:?}");
    // The same store with seed 1's own checkpoint recovers.
    unfinish_with(&own);
    let row = harness.rerun_and_compare(&store, &one).expect("rerun");
    assert_eq!(row.recovered, 1, "{row:?}");
}
