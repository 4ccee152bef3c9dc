use std::time::Duration;

use results::{JobKind, RunId};

use crate::{Error, RunStatus, Store};

#[test]
fn the_store_locks_runs_and_takes_over_stale_locks() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path())
        .expect("store")
        .with_lease(Duration::from_millis(200));
    let id = store
        .create(JobKind::Train, &serde_json::json!({"x": 1}))
        .expect("create");
    assert_eq!(store.status(&id), RunStatus::Planned);
    assert_eq!(
        store
            .create(JobKind::Train, &serde_json::json!({"x": 1}))
            .expect("same"),
        id
    );
    // A lock without a heartbeat for longer than the lease is stale (see `lock` for the
    // other cases).
    std::fs::write(store.dir(&id).join("lock"), "4000000000").expect("lock");
    assert!(matches!(store.status(&id), RunStatus::Running { .. }));
    assert!(store.try_lock(&id).expect("try").is_none());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(store.status(&id), RunStatus::Planned);
    let lock = store.lock(&id).expect("take over");
    assert!(matches!(store.status(&id), RunStatus::Running { .. }));
    store
        .finish_locked(&lock, &id, &0)
        .expect("finish under the lock");
    std::fs::remove_file(store.dir(&id).join("result.json")).expect("rm");
    drop(lock);
    std::fs::write(store.dir(&id).join(".metrics.json.tmp-1"), "x").expect("tmp");
    let report = store.gc(false).expect("gc");
    assert_eq!(report.temporaries, 1);
    store.finish(&id, &1).expect("finish");
    assert_eq!(store.status(&id), RunStatus::Done);
    assert_eq!(store.result::<i32>(&id).expect("read"), Some(1));
    // A directory whose identity does not match its name is refused.
    std::fs::write(store.dir(&id).join("identity.json"), "{}").expect("tamper");
    let err = store
        .create(JobKind::Train, &serde_json::json!({"x": 1}))
        .expect_err("another identity");
    assert!(matches!(err, Error::IdentityMismatch { .. }), "{err}");
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

/// A changed digit leaves valid JSON: only the checksum sees it. The run is broken until a new
/// result is recorded, and an unfinished run is named as such.
#[test]
fn a_result_that_does_not_match_its_checksum_is_broken_not_done() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("store");
    let id = store
        .create(JobKind::Train, &serde_json::json!({"x": 3}))
        .expect("create");
    assert!(matches!(
        store.finished::<i32>(&id),
        Err(Error::NotFinished(_))
    ));
    store.finish(&id, &41).expect("finish");
    std::fs::write(store.dir(&id).join("result.json"), "42").expect("damage");
    assert!(matches!(store.status(&id), RunStatus::Broken { .. }));
    assert!(matches!(
        store.result::<i32>(&id),
        Err(Error::BrokenResult { .. })
    ));
    assert!(store.discard_broken_result(&id).expect("discard"));
    assert_eq!(store.status(&id), RunStatus::Partial);
    store.finish(&id, &42).expect("finish again");
    assert_eq!(store.finished::<i32>(&id).expect("read"), 42);
}

/// Run ids are the hash of the identity's canonical JSON: key order does not matter, and the
/// names of existing stores never change (this id is pinned).
#[test]
fn run_ids_hash_the_canonical_identity() {
    let a = crate::run_id(JobKind::Train, &serde_json::json!({"a": 1, "b": [2, 3]})).expect("id");
    let b: serde_json::Value = serde_json::from_str(r#"{"b": [2, 3], "a": 1}"#).expect("json");
    assert_eq!(a, crate::run_id(JobKind::Train, &b).expect("id"));
    assert_eq!(a.to_string(), "train-08e9cfc76a1194b0");
    let c = crate::run_id(JobKind::Train, &serde_json::json!({"a": 2, "b": [2, 3]})).expect("id");
    assert_ne!(a, c);
}
