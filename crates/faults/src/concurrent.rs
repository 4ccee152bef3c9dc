//! Many processes on one store: each asks for the same runs in its own order, while
//! `rewind runs gc` and `rewind runs list` loop beside them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::process::{Exit, Fingerprint, Invocation, files_under, train_runs};
use crate::{Harness, Result, Row};

/// Init seeds of the shared runs (apart from the other trials' seed 1).
const FIRST_SEED: u64 = 101;

pub fn writers(h: &Harness, writers: usize, shared: usize, rng: &mut StdRng) -> Result<Row> {
    let references = (0..shared as u64)
        .map(|i| h.reference(FIRST_SEED + i))
        .collect::<Result<Vec<_>>>()?;
    let store = h.fresh("concurrent")?;
    let orders: Vec<Vec<u64>> = (0..writers)
        .map(|_| {
            let mut seeds: Vec<u64> = (0..shared as u64).map(|i| FIRST_SEED + i).collect();
            seeds.shuffle(rng);
            seeds
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let gc_passes = Arc::new(AtomicUsize::new(0));
    let list_passes = Arc::new(AtomicUsize::new(0));
    let store_arg = store.display().to_string();
    let runs_cmd = |what: &str| {
        Invocation::new(
            &h.rewind,
            &h.data_dir,
            vec![
                "runs".into(),
                "--store".into(),
                store_arg.clone(),
                what.into(),
            ],
        )
    };
    let (exits, gc_failures, seen_broken) = std::thread::scope(|scope| {
        let workers: Vec<_> = orders
            .iter()
            .map(|order| {
                scope.spawn(|| {
                    order
                        .iter()
                        .map(|&seed| (seed, h.train(&store, seed).run()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let gc = {
            let (done, passes, cmd) = (done.clone(), gc_passes.clone(), runs_cmd("gc"));
            scope.spawn(move || {
                let mut failures = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    match cmd.run() {
                        Ok(e) if e.success() => {}
                        Ok(e) => failures.push(e.summary()),
                        Err(e) => failures.push(e.to_string()),
                    }
                    passes.fetch_add(1, Ordering::SeqCst);
                }
                failures
            })
        };
        let lister = {
            let (done, passes, cmd) = (done.clone(), list_passes.clone(), runs_cmd("list"));
            scope.spawn(move || {
                let mut broken = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    if let Ok(e) = cmd.run() {
                        broken.extend(
                            e.stdout
                                .lines()
                                .filter(|l| l.contains("broken"))
                                .map(str::to_string),
                        );
                    }
                    passes.fetch_add(1, Ordering::SeqCst);
                }
                broken
            })
        };
        let exits: Vec<(u64, Result<Exit>)> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect();
        done.store(true, Ordering::SeqCst);
        let gc_failures = gc.join().unwrap_or_default();
        let broken = lister.join().unwrap_or_default();
        (exits, gc_failures, broken)
    });
    let mut row = Row::new(format!(
        "{writers} processes asking for the same {shared} runs in their own orders on one \
         store, beside {} `runs gc` and {} `runs list` passes",
        gc_passes.load(Ordering::SeqCst),
        list_passes.load(Ordering::SeqCst)
    ));
    let mut trainers: BTreeMap<u64, usize> = BTreeMap::new();
    for (seed, exit) in exits {
        row.trials += 1;
        row.injected += 1;
        let exit = exit?;
        if !exit.success() {
            row.lose(format!("seed {seed}: {}", exit.summary()));
            continue;
        }
        if exit.stderr.contains("stale lock") {
            row.lose(format!("seed {seed}: took over a lock of a live process"));
        }
        // A process that trained logs the run's evaluations; one that found it done does not.
        if exit
            .stderr
            .contains(&format!("step {}/{}", h.steps / 3, h.steps))
        {
            *trainers.entry(seed).or_default() += 1;
        }
        row.recovered += 1;
    }
    for r in &references {
        match trainers.get(&r.seed).copied().unwrap_or(0) {
            1 => {}
            n => row.lose(format!("seed {}: trained by {n} processes", r.seed)),
        }
    }
    let finished: BTreeMap<u64, Fingerprint> = train_runs(&store)
        .iter()
        .filter_map(|dir| {
            let identity: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("identity.json")).ok()?).ok()?;
            let seed = identity.get("init_seed")?.as_u64()?;
            Some((seed, Fingerprint::of_run(dir).ok()?))
        })
        .collect();
    for r in &references {
        match finished.get(&r.seed) {
            None => row.lose(format!("seed {}: no finished run in the store", r.seed)),
            Some(f) => {
                if let Some(d) = f.difference(&r.fingerprint) {
                    row.lose(format!("seed {}: {d}", r.seed));
                }
            }
        }
    }
    for f in gc_failures {
        row.lose(format!("runs gc failed: {f}"));
    }
    for b in seen_broken {
        row.lose(format!("runs list saw a partial result: {b}"));
    }
    for path in files_under(&store) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "lock" || name.contains(".tmp") || name.starts_with(".lock") {
            row.lose(format!("left behind: {}", path.display()));
        }
    }
    Ok(row)
}
