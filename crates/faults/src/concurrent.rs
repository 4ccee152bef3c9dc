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
        .within(&h.work)
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
    // Problems of one invocation, of one run (all its invocations), or of the store (every
    // invocation): an invocation is lost once, whatever it met.
    let mut own: Vec<(u64, Option<String>)> = Vec::new();
    let mut trainers: BTreeMap<u64, usize> = BTreeMap::new();
    for (seed, exit) in exits {
        let exit = exit?;
        let problem = if !exit.success() {
            Some(exit.summary())
        } else if exit.stderr.contains("stale lock") {
            Some("took over a lock of a live process".to_string())
        } else {
            None
        };
        // A process that trained logs the run's evaluations; one that found it done does not.
        if exit
            .stderr
            .contains(&format!("step {}/{}", h.steps / 3, h.steps))
        {
            *trainers.entry(seed).or_default() += 1;
        }
        own.push((seed, problem));
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
    let mut of_run: BTreeMap<u64, String> = BTreeMap::new();
    for r in &references {
        let problem = match (
            trainers.get(&r.seed).copied().unwrap_or(0),
            finished.get(&r.seed),
        ) {
            (n, _) if n != 1 => Some(format!("trained by {n} processes")),
            (_, None) => Some("no finished run in the store".to_string()),
            (_, Some(f)) => f.difference(&r.fingerprint),
        };
        if let Some(p) = problem {
            of_run.insert(r.seed, p);
        }
    }
    let mut of_store: Vec<String> = Vec::new();
    of_store.extend(
        gc_failures
            .into_iter()
            .map(|f| format!("runs gc failed: {f}")),
    );
    of_store.extend(
        seen_broken
            .into_iter()
            .map(|b| format!("runs list saw a partial result: {b}")),
    );
    for path in files_under(&store) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "lock" || name.contains(".tmp") || name.starts_with(".lock") {
            of_store.push(format!("left behind: {}", path.display()));
        }
    }
    for (seed, problem) in own {
        row.trials += 1;
        row.injected += 1;
        let problems: Vec<String> = problem
            .into_iter()
            .chain(of_run.get(&seed).cloned())
            .chain(of_store.iter().cloned())
            .collect();
        if problems.is_empty() {
            row.recovered += 1;
        } else {
            row.lose(format!("seed {seed}: {}", problems.join("; ")));
        }
    }
    Ok(row)
}
