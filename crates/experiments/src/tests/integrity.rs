//! The store does not trust what it reads: a result that does not match its checksum, or is
//! not JSON, makes its run broken (listed so, never read as finished), and executing the run
//! rebuilds the result from its files.

use results::{JobKind, RunId};
use sparsity::PruneRule;

use super::{eval, resnet_recipe, run_plan, runner};
use crate::Error;
use crate::runs::{Plan, TrainResult};
use crate::store::{RunStatus, Store};

/// A store with one trained run; `damage` is applied to its `result.json`; the run must then
/// be listed as broken and rebuilt, by executing the plan again, to the same result.
fn a_damaged_result_is_broken_and_rebuilt(damage: impl Fn(&std::path::Path)) {
    let dir = tempfile::tempdir().expect("tmp");
    let runner = runner(dir.path());
    let mut plan = Plan::new();
    let id = plan
        .train_from_init(&resnet_recipe(), 1, 0, &eval(), &PruneRule::default())
        .expect("plan");
    run_plan(&runner, &plan);
    let before: TrainResult = runner.store.finished(&id).expect("finished");
    damage(&runner.store.dir(&id).join("result.json"));
    let status = runner.store.status(&id);
    assert!(matches!(status, RunStatus::Broken { .. }), "{status:?}");
    assert!(!runner.store.is_done(&id));
    let listed = runner.store.list().expect("list");
    assert!(matches!(listed[0].status, RunStatus::Broken { .. }));
    let err = runner
        .store
        .result::<TrainResult>(&id)
        .expect_err("not read as finished");
    assert!(matches!(err, Error::BrokenResult { .. }), "{err}");
    assert!(
        err.to_string().contains("Run the same command again"),
        "{err}"
    );
    run_plan(&runner, &plan);
    assert_eq!(runner.store.status(&id), RunStatus::Done);
    let after: TrainResult = runner.store.finished(&id).expect("rebuilt");
    assert_eq!(
        (after.last.test_accuracy, after.last.test_loss),
        (before.last.test_accuracy, before.last.test_loss)
    );
}

#[test]
fn a_garbage_result_makes_its_run_broken_until_rebuilt() {
    a_damaged_result_is_broken_and_rebuilt(|path| {
        std::fs::write(path, b"\x00\x13garbage").expect("write");
    });
}

/// A changed digit leaves valid JSON: only the checksum sees it.
#[test]
fn a_changed_digit_in_a_result_is_caught_by_its_checksum() {
    a_damaged_result_is_broken_and_rebuilt(|path| {
        let text = std::fs::read_to_string(path).expect("read");
        let at = text
            .find(|c: char| c.is_ascii_digit() && c != '9')
            .expect("a digit");
        let mut bytes = text.into_bytes();
        bytes[at] += 1;
        std::fs::write(path, &bytes).expect("write");
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).expect("still JSON");
        assert!(parsed.is_object());
    });
}

/// Results written before checksums existed (no `result.sha256`) are read as before.
#[test]
fn a_result_without_a_checksum_is_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let id: RunId = store
        .create(JobKind::Train, &serde_json::json!({"x": 2}))
        .expect("create");
    store.finish(&id, &7).expect("finish");
    std::fs::remove_file(store.dir(&id).join("result.sha256")).expect("rm sum");
    assert_eq!(store.status(&id), RunStatus::Done);
    assert_eq!(store.result::<i32>(&id).expect("read"), Some(7));
}
