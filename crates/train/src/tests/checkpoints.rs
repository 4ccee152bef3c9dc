//! Checkpoints that fail to write, arrive damaged or come from other numerics, and runs that
//! diverge.

use super::*;

/// A checkpoint that cannot be written (a full disk, here a name that cannot be taken) is
/// reported as a write failure, with what to do, and leaves no temporary directory behind.
#[test]
fn a_failed_checkpoint_write_says_so_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = CheckpointStore::new(dir.path());
    let t = trainer(lenet(), 1);
    let state = t.initial_state::<Network>().expect("init");
    // A dangling symlink where the checkpoint goes: every file is written, the final rename
    // fails.
    let target = store.dir_of(3);
    std::fs::create_dir_all(target.parent().expect("parent")).expect("dir");
    std::os::unix::fs::symlink("/nonexistent/rewind-test", &target).expect("symlink");
    let err = store
        .save(3, &state.model, &state.optimizer, &[])
        .expect_err("cannot be written");
    assert!(matches!(err, Error::CheckpointWrite { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("could not write checkpoint"), "{text}");
    assert!(!text.contains("cannot be loaded"), "{text}");
    let left: Vec<String> = std::fs::read_dir(target.parent().expect("parent"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporaries left: {left:?}");
    assert!(!store.has(3));
}

/// The run of `a_run_killed_midway_resumes_bit_identically` with its latest checkpoint
/// (step 10) damaged by `damage`: resuming moves it aside, resumes from step 4 and ends with
/// the weights of an uninterrupted run.
fn resumes_past_a_damaged_checkpoint(damage: impl Fn(&std::path::Path)) {
    let (whole, broken) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let t = trainer(lenet(), 1);
    t.run::<Network>(whole.path(), &mut NoHooks)
        .expect("uninterrupted");
    t.run::<Network>(broken.path(), &mut CrashAt(12))
        .expect_err("crash");
    let store = CheckpointStore::new(broken.path());
    assert_eq!(store.steps(), vec![0, 4, 10]);
    damage(&store.dir_of(10));
    let err = store
        .load(
            10,
            t.build_model::<Network>().expect("model"),
            lenet().optimizer.init(),
        )
        .err()
        .expect("the damaged checkpoint does not load");
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    trainer(lenet(), 1)
        .run::<Network>(broken.path(), &mut NoHooks)
        .expect("resumed from step 4");
    assert!(
        broken
            .path()
            .join("checkpoints/corrupt-step-0000000010")
            .is_dir()
    );
    assert_eq!(
        final_weights(&t, whole.path()),
        final_weights(&t, broken.path())
    );
}

#[test]
fn a_flipped_bit_in_a_checkpoint_is_caught_and_resuming_falls_back() {
    resumes_past_a_damaged_checkpoint(|dir| {
        let path = dir.join("model.bpk");
        let mut bytes = std::fs::read(&path).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&path, bytes).expect("write");
    });
}

#[test]
fn a_truncated_checkpoint_file_is_caught_and_resuming_falls_back() {
    resumes_past_a_damaged_checkpoint(|dir| {
        let path = dir.join("optimizer.bpk");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 3]).expect("write");
    });
}

/// A checkpoint written before checksums existed (no `sha256` in `state.json`) still loads.
#[test]
fn a_checkpoint_without_checksums_loads() {
    let dir = tempfile::tempdir().expect("tmp");
    let t = trainer(lenet(), 1);
    t.run::<Network>(dir.path(), &mut NoHooks).expect("run");
    let state = CheckpointStore::new(dir.path())
        .dir_of(20)
        .join("state.json");
    std::fs::write(&state, r#"{"step":20}"#).expect("old state.json");
    // A checkpoint with running.json is newer than checksums: one that lists none has a
    // damaged state.json (a flipped byte in its key), and is refused.
    let err = t
        .load_state::<Network>(dir.path(), 20)
        .err()
        .expect("refused while running.json is there");
    assert!(err.to_string().contains("lists no checksums"), "{err}");
    // The old layout, before running totals and checksums, loads unverified.
    std::fs::remove_file(state.with_file_name("running.json")).expect("old layout");
    let loaded = t
        .load_state::<Network>(dir.path(), 20)
        .expect("loads unverified");
    assert_eq!(loaded.step, 20);
}

/// A learning rate of 1e9 blows the loss up without ever reaching infinity; the divergence
/// rule stops the run, and with the rule off (the perturbation) the same run goes on to the end.
#[test]
fn a_finite_blow_up_stops_as_divergence() {
    let blow_up = || {
        let mut r = lenet();
        r.schedule = LrSchedule::constant(1e9);
        trainer(r, 1).with_loss_read_every(1)
    };
    let dir = tempfile::tempdir().expect("tmp");
    let err = blow_up()
        .run::<Network>(dir.path(), &mut NoHooks)
        .expect_err("diverges");
    assert!(matches!(err, Error::Diverged { .. }), "{err}");
    assert!(err.to_string().contains("Lower the learning rate"), "{err}");
    assert!(CheckpointStore::new(dir.path()).has(0));
    let mut off = blow_up();
    off.config.divergence.factor = f64::INFINITY;
    let dir = tempfile::tempdir().expect("tmp");
    off.run::<Network>(dir.path(), &mut NoHooks)
        .expect("without the rule the blown-up run trains to its end");
    let mut three = lenet();
    three.schedule = LrSchedule::constant(3.0);
    let dir = tempfile::tempdir().expect("tmp");
    let err = trainer(three, 1)
        .with_loss_read_every(1)
        .run::<Network>(dir.path(), &mut NoHooks)
        .expect_err("a rate of 3 diverges too");
    assert!(matches!(err, Error::Diverged { .. }), "{err}");
    let healthy = tempfile::tempdir().expect("tmp");
    trainer(lenet(), 1)
        .with_loss_read_every(1)
        .run::<Network>(healthy.path(), &mut NoHooks)
        .expect("a healthy run does not trip the rule");
}

/// A checkpoint records the numerics that trained it, and a run is resumed only with the same:
/// one interrupted under other kernels' summation orders (here, its `state.json` edited to say
/// so) is refused with a message that names both and what to do; with the record left as
/// written (the perturbation) the same resumption goes through.
#[test]
fn a_run_started_with_other_numerics_is_not_resumed() {
    let dir = tempfile::tempdir().expect("tmp");
    let t = trainer(lenet(), 1);
    t.run::<Network>(dir.path(), &mut CrashAt(12))
        .expect_err("crash");
    let state_path = CheckpointStore::new(dir.path())
        .dir_of(10)
        .join("state.json");
    let text = std::fs::read_to_string(&state_path).expect("state.json");
    let now = crate::numerics(&t.device);
    assert!(text.contains(&now), "the checkpoint records {now}: {text}");
    std::fs::write(
        &state_path,
        text.replace(&now, "flex (CPU), kernels numerics 0"),
    )
    .expect("edited");
    let err = t
        .run::<Network>(dir.path(), &mut NoHooks)
        .expect_err("refused");
    let message = err.to_string();
    assert!(
        matches!(err, crate::Error::NumericsChanged { step: 10, .. }),
        "{message}"
    );
    assert!(
        message.contains("kernels numerics 0") && message.contains(&now),
        "{message}"
    );
    // A checkpoint that records no numerics was written by kernels numerics 1 or earlier.
    let mut unrecorded: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).expect("json");
    unrecorded.remove("numerics");
    std::fs::write(
        &state_path,
        serde_json::to_string(&unrecorded).expect("json"),
    )
    .expect("old");
    let err = t
        .run::<Network>(dir.path(), &mut NoHooks)
        .expect_err("refused");
    assert!(err.to_string().contains("not recorded"), "{err}");
    std::fs::write(&state_path, &text).expect("restored");
    assert!(
        !t.run::<Network>(dir.path(), &mut NoHooks)
            .expect("resumed")
            .reused
    );
}
