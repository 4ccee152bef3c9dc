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
    // A temporary file is a killed writer's once nothing has touched it for the lease; a
    // younger one may be a live writer's (some write outside any lock) and stays.
    let touched = |path: &std::path::Path, at: std::time::SystemTime| {
        std::fs::write(path, "x").expect("tmp");
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(at))
            .expect("touch");
    };
    let hour = Duration::from_secs(3600);
    let young = store.dir(&id).join(".identity.json.tmp-2");
    touched(&young, std::time::SystemTime::now() + hour);
    let old = store.dir(&id).join(".metrics.json.tmp-1");
    touched(&old, std::time::SystemTime::now() - hour);
    let report = store.gc(false).expect("gc");
    assert_eq!(report.temporaries, 1);
    assert!(young.exists() && !old.exists());
    std::fs::remove_file(&young).expect("rm");
    store.finish(&id, &1).expect("finish");
    assert_eq!(store.status(&id), RunStatus::Done);
    assert_eq!(store.result::<i32>(&id).expect("read"), Some(1));
    // An identity file damaged on disk (it no longer hashes to its directory's name) is
    // rewritten from the plan, and the finished result stays.
    let identity = store.dir(&id).join("identity.json");
    let written = std::fs::read(&identity).expect("identity");
    for damaged in [b"{}".to_vec(), written[..written.len() / 2].to_vec()] {
        std::fs::write(&identity, damaged).expect("tamper");
        let again = store
            .create(JobKind::Train, &serde_json::json!({"x": 1}))
            .expect("repaired");
        assert_eq!(again, id);
        assert_eq!(std::fs::read(&identity).expect("identity"), written);
        assert_eq!(store.status(&id), RunStatus::Done);
    }
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

/// A store with two finished runs (one with a checkpoint file in a subdirectory) and one
/// unfinished.
fn store_with_runs(dir: &std::path::Path) -> (Store, Vec<RunId>, RunId) {
    let store = Store::open(dir).expect("store");
    let mut done = Vec::new();
    for x in 0..2 {
        let id = store
            .create(JobKind::Train, &serde_json::json!({ "x": x }))
            .expect("create");
        let ck = store.dir(&id).join("checkpoints/step-0000000004");
        std::fs::create_dir_all(&ck).expect("ck");
        std::fs::write(ck.join("model.bpk"), vec![x as u8; 3000]).expect("model");
        store
            .finish(&id, &serde_json::json!({ "accuracy": x }))
            .expect("finish");
        done.push(id);
    }
    done.sort_by_key(|id| id.to_string());
    let open = store
        .create(JobKind::Pair, &serde_json::json!({ "y": 1 }))
        .expect("create");
    (store, done, open)
}

#[test]
fn finished_runs_move_between_stores_through_one_archive() {
    let (a, b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let (source, done, open) = store_with_runs(a.path());
    let archive = a.path().join("runs.tar.gz");
    assert!(matches!(
        source.export(std::slice::from_ref(&open), &archive),
        Err(Error::NotFinished(_))
    ));
    let (count, _) = source.export(&[], &archive).expect("export");
    assert_eq!(count, 2, "the finished runs only");
    let target = Store::open(b.path()).expect("store");
    let report = target.import(&archive).expect("import");
    assert_eq!(report.imported, done);
    for id in &done {
        assert_eq!(target.status(id), RunStatus::Done);
        let file = "checkpoints/step-0000000004/model.bpk";
        assert_eq!(
            std::fs::read(target.dir(id).join(file)).expect("copied"),
            std::fs::read(source.dir(id).join(file)).expect("original")
        );
        let result: serde_json::Value = target.finished(id).expect("result");
        assert_eq!(
            result,
            source.finished::<serde_json::Value>(id).expect("result")
        );
    }
    // Imported again: the finished runs are kept as they are.
    let again = target.import(&archive).expect("again");
    assert_eq!((again.imported.len(), again.kept), (0, done.clone()));
    assert_eq!(
        std::fs::read_dir(b.path()).expect("dir").count(),
        2,
        "no staging directory left behind"
    );
}

/// Every corruption of an archive is refused with one message naming it, and adds nothing.
#[test]
fn a_damaged_archive_is_refused_and_adds_nothing() {
    let a = tempfile::tempdir().expect("tmp");
    let (source, _, _) = store_with_runs(a.path());
    let archive = a.path().join("runs.tar.gz");
    source.export(&[], &archive).expect("export");
    let good = std::fs::read(&archive).expect("archive");
    // The archive's content, uncompressed, with one byte of the first run's model flipped.
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(good.as_slice()), &mut tar)
        .expect("gunzip");
    let at = tar
        .windows(3000)
        .position(|w| w.iter().all(|b| *b == 0))
        .expect("the zero model");
    let mut flipped = tar.clone();
    flipped[at + 1500] ^= 1;
    let gzip = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, bytes).expect("gzip");
        e.finish().expect("gzip")
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("flipped", gzip(&flipped), "does not match the checksum"),
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "cannot be imported",
        ),
        ("garbage", b"not an archive".to_vec(), "cannot be imported"),
    ];
    for (what, bytes, expected) in cases {
        let b = tempfile::tempdir().expect("tmp");
        let path = b.path().join("in.tar.gz");
        std::fs::write(&path, bytes).expect("write");
        let target = Store::open(&b.path().join("store")).expect("store");
        let err = target.import(&path).expect_err(what);
        assert!(matches!(err, Error::Archive { .. }), "{what}: {err}");
        assert!(err.to_string().contains(expected), "{what}: {err}");
        assert!(
            target.list().expect("list").is_empty(),
            "{what}: a run was added"
        );
        assert_eq!(
            std::fs::read_dir(target.root()).expect("dir").count(),
            0,
            "{what}: nothing left behind"
        );
    }
}

/// `gc --unfinished` leaves a run planned within the lease (another process may be about to
/// claim it) and removes an older one whole, leaving nothing half-removed behind.
#[test]
fn gc_removes_only_unfinished_runs_untouched_for_the_lease() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path())
        .expect("open")
        .with_lease(Duration::from_secs(600));
    let fresh = store
        .create(JobKind::Train, &serde_json::json!({"x": 1}))
        .expect("plan");
    let old = store
        .create(JobKind::Train, &serde_json::json!({"x": 2}))
        .expect("plan");
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for path in [store.dir(&old), store.dir(&old).join("identity.json")] {
        std::fs::File::open(&path)
            .and_then(|f| f.set_modified(long_ago))
            .expect("age it");
    }
    let report = store.gc(true).expect("gc");
    assert_eq!(report.removed_runs, vec![old.clone()]);
    assert!(store.dir(&fresh).join("identity.json").exists());
    assert!(!store.dir(&old).exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("root")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}
