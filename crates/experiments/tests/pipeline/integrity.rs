//! The store does not trust what it reads: a result that does not match its checksum, or is
//! not JSON, makes its run broken (listed so, never read as finished), and executing the run
//! rebuilds the result from its files.

use sparsity::PruneRule;

use super::{eval, resnet_recipe, run_plan, runner};
use experiments::runs::{Plan, TrainResult};
use store::RunStatus;

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
    assert!(matches!(err, store::Error::BrokenResult { .. }), "{err}");
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
