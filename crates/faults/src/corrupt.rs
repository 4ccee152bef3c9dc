//! Files damaged on disk: one byte flipped or the file truncated, at a random offset.
//!
//! The files are those the next command reads: a finished run's result, its checksum and
//! identity; an unfinished run's latest checkpoint (every file of it), its metrics and its
//! configuration; a run trained to the end but killed before its result, its metrics and last
//! checkpoint; the dataset's files and their `SHA256SUMS`. After the damage the same
//! command runs again. It must rebuild the run to the undisturbed network, or refuse with one
//! error line naming the file (or its run), and never end with another network.

use std::path::{Path, PathBuf};

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use crate::process::{Fingerprint, copy_tree, files_under, train_runs};
use crate::{Harness, Reference, Result, Row, io};

/// Where a damaged file lies, which decides the store and data directory of the trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Finished,
    Unfinished,
    /// Trained to the end, killed before its result was recorded.
    Unrecorded,
    Data,
}

pub fn files(h: &Harness, reference: &Reference, n: usize, rng: &mut StdRng) -> Result<Row> {
    let mut row = Row::new(
        "one byte flipped or the file truncated at a random offset (results, checksums, \
         identities, checkpoints, metrics, configs, dataset files)",
    );
    if n == 0 {
        return Ok(row);
    }
    let (writes, checkpoints) = crate::kills::count_fault_points(h, reference.seed)?;
    // Halfway: the abort at the middle checkpoint write.
    let unfinished = stopped_at(h, reference, "unfinished", writes + checkpoints / 2, writes)?;
    // At the end: the abort at the last write, the result's.
    let unrecorded = stopped_at(h, reference, "unrecorded", writes.saturating_sub(1), writes)?;
    let data = h.fresh("corrupt-data")?;
    copy_tree(&h.data_dir.join("mnist"), &data.join("mnist"))?;
    let finished_run = one_run(&reference.store)?;
    let unfinished_run = one_run(&unfinished)?;
    let unrecorded_run = one_run(&unrecorded)?;
    let latest = latest_checkpoint(&unfinished_run);
    let mut targets: Vec<(Place, PathBuf)> = Vec::new();
    for name in ["result.json", "result.sha256", "identity.json"] {
        targets.push((Place::Finished, finished_run.join(name)));
    }
    for name in ["metrics.json", "config.toml", "identity.json"] {
        let path = unfinished_run.join(name);
        if path.is_file() {
            targets.push((Place::Unfinished, path));
        }
    }
    if let Some(latest) = &latest {
        for path in files_under(latest) {
            targets.push((Place::Unfinished, path));
        }
    }
    targets.push((Place::Unrecorded, unrecorded_run.join("metrics.json")));
    if let Some(last) = latest_checkpoint(&unrecorded_run) {
        for path in files_under(&last) {
            targets.push((Place::Unrecorded, path));
        }
    }
    for path in files_under(&data.join("mnist")) {
        targets.push((Place::Data, path));
    }
    for i in 0..n {
        row.trials += 1;
        let (place, original) = targets.choose(rng).cloned().expect("targets");
        let trial = h.fresh(&format!("corrupt-{i}"))?;
        let store = trial.join("store");
        let (target, data_dir) = match place {
            Place::Finished => {
                copy_tree(&reference.store, &store)?;
                (
                    rebase(&original, &reference.store, &store),
                    h.data_dir.clone(),
                )
            }
            Place::Unfinished => {
                copy_tree(&unfinished, &store)?;
                (rebase(&original, &unfinished, &store), h.data_dir.clone())
            }
            Place::Unrecorded => {
                copy_tree(&unrecorded, &store)?;
                (rebase(&original, &unrecorded, &store), h.data_dir.clone())
            }
            Place::Data => {
                std::fs::create_dir_all(&store).map_err(|e| io(&store, e))?;
                (original.clone(), data.clone())
            }
        };
        let pristine = std::fs::read(&target).map_err(|e| io(&target, e))?;
        let (damaged, how) = damage(&pristine, rng);
        if damaged == pristine {
            continue;
        }
        std::fs::write(&target, &damaged).map_err(|e| io(&target, e))?;
        row.injected += 1;
        let what = format!(
            "trial {i}: {how} of {}",
            target.strip_prefix(&h.work).unwrap_or(&target).display()
        );
        let exit = h.train(&store, reference.seed).data_dir(&data_dir).run()?;
        if place == Place::Data {
            // The dataset copy is shared by the trials: put the file back.
            std::fs::write(&target, &pristine).map_err(|e| io(&target, e))?;
        }
        if exit.success() {
            match Fingerprint::of_store(&store) {
                Ok(f) => match f.difference(&reference.fingerprint) {
                    None => row.recovered += 1,
                    Some(d) => row.lose(format!("{what}: loaded silently: {d}")),
                },
                Err(e) => row.lose(format!("{what}: succeeded but {e}")),
            }
        } else if exit.clear_refusal() && names(exit.error_lines()[0], &target) {
            row.refuse(exit.error_lines()[0]);
        } else {
            row.lose(format!("{what}: {}", exit.summary()));
        }
    }
    Ok(row)
}

/// A run ended by an abort at the `hit`-th pass of the fault points, in a store of its own.
fn stopped_at(
    h: &Harness,
    reference: &Reference,
    name: &str,
    hit: usize,
    writes: usize,
) -> Result<PathBuf> {
    let store = h.fresh(&format!("corrupt-{name}"))?;
    let spec = crate::kills::nth_fault_point(hit, writes, "abort");
    let exit = h.train(&store, reference.seed).failpoints(&spec).run()?;
    if exit.success() {
        return Err(crate::Error::Reference(format!(
            "the run meant to stop at {spec} finished"
        )));
    }
    Ok(store)
}

fn one_run(store: &Path) -> Result<PathBuf> {
    train_runs(store).into_iter().next().ok_or_else(|| {
        crate::Error::Reference(format!("{} holds no training run", store.display()))
    })
}

fn latest_checkpoint(run: &Path) -> Option<PathBuf> {
    let mut steps: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
        })
        .collect();
    steps.sort();
    steps.pop()
}

fn rebase(path: &Path, from: &Path, to: &Path) -> PathBuf {
    to.join(path.strip_prefix(from).unwrap_or(path))
}

/// One byte flipped (xor with a random non-zero byte) or the file cut, at a random offset.
fn damage(bytes: &[u8], rng: &mut StdRng) -> (Vec<u8>, String) {
    let mut out = bytes.to_vec();
    if bytes.is_empty() {
        return (b"x".to_vec(), "a byte written into the empty file".into());
    }
    let at = rng.random_range(0..bytes.len());
    if rng.random_bool(0.5) {
        out[at] ^= rng.random_range(1..=255u8);
        (out, format!("byte {at} of {} flipped", bytes.len()))
    } else {
        out.truncate(at);
        (out, format!("cut to {at} of {} bytes", bytes.len()))
    }
}

/// Whether an error line names the damaged file: its name, or its checkpoint or run directory.
fn names(line: &str, target: &Path) -> bool {
    let file = target.file_name().map(|n| n.to_string_lossy().into_owned());
    let dirs = target
        .ancestors()
        .skip(1)
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.starts_with("train-") || n.starts_with("step-"));
    file.into_iter().chain(dirs).any(|n| line.contains(&n))
}
