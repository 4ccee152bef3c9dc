//! One directory per run, named by the hash of the run's full identity, under one root.
//!
//! ```text
//! <root>/<kind>-<hash>/identity.json   what the run is (the hash is over this text)
//! <root>/<kind>-<hash>/lock            held while a process works on the run
//! <root>/<kind>-<hash>/result.sha256   the SHA-256 of result.json, written just before it
//! <root>/<kind>-<hash>/result.json     written last, atomically: the run is finished
//! ```
//!
//! A result that does not match its checksum (or is not JSON) makes the run *broken*: listed as
//! such, never read as finished, and rebuilt by the next execution of the run from its files.
//!
//! A finished run is reused, never recomputed; an unfinished one is resumed by whoever takes
//! its lock next; two processes never work on one run at the same time, also when they run on
//! different machines sharing the store over a network filesystem (see [`crate::lock`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use results::{JobKind, RunId};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::lock::{LockState, RunLock};
use crate::{Error, Result, io};

const IDENTITY: &str = "identity.json";
const RESULT: &str = "result.json";
const RESULT_SUM: &str = "result.sha256";
pub(crate) const LOCK: &str = "lock";

/// A store root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    lease: Duration,
}

/// What `list` reports of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Done,
    /// Its `result.json` is corrupt (`reason`): the next execution rebuilds it.
    Broken {
        reason: String,
    },
    /// Locked by a live process (`host pid N[, job J]`).
    Running {
        owner: String,
    },
    /// Started (has files besides its identity) but neither finished nor locked.
    Partial,
    /// Only its identity exists.
    Planned,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunStatus::Done => write!(f, "done"),
            RunStatus::Broken { .. } => write!(f, "broken"),
            RunStatus::Running { owner } => write!(f, "running ({owner})"),
            RunStatus::Partial => write!(f, "partial"),
            RunStatus::Planned => write!(f, "planned"),
        }
    }
}

/// One run of the store.
#[derive(Debug, Clone)]
pub struct RunEntry {
    pub id: RunId,
    pub status: RunStatus,
    pub bytes: u64,
    pub identity: Option<serde_json::Value>,
}

/// What `gc` removed.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    pub stale_locks: usize,
    pub temporaries: usize,
    pub removed_runs: Vec<RunId>,
    pub bytes_freed: u64,
}

/// The id of a run of `kind` with this identity (no file is touched).
pub fn run_id(kind: JobKind, identity: &impl Serialize) -> Result<RunId> {
    Ok(RunId::new(kind, hash(identity)?))
}

/// `<what>-<hash of identity>`: the file name of a summary of an experiment (`imp-…`).
pub fn summary_name(what: &str, identity: &impl Serialize) -> Result<String> {
    Ok(format!("{what}-{}", hash(identity)?))
}

/// 16 hex digits of the SHA-256 of the canonical JSON of `identity`.
fn hash(identity: &impl Serialize) -> Result<String> {
    let text = canonical_json(identity)?;
    Ok(results::sha256_hex(text.as_bytes())[..16].to_string())
}

fn canonical_json(value: &impl Serialize) -> Result<String> {
    // `serde_json::Value` keeps object keys sorted, so equal identities give equal text.
    let value = serde_json::to_value(value).map_err(|e| serialize("an identity", e))?;
    serde_json::to_string_pretty(&value).map_err(|e| serialize("an identity", e))
}

fn serialize(what: &'static str, e: serde_json::Error) -> Error {
    Error::Serialize {
        what,
        reason: e.to_string(),
    }
}

impl Store {
    /// Opens (creating it if needed) the store at `root`, with the lock lease of
    /// `REWIND_LOCK_LEASE_SECS` (default 300 s).
    pub fn open(root: &Path) -> Result<Store> {
        std::fs::create_dir_all(root).map_err(|e| io(root, e))?;
        Ok(Store {
            root: root.to_path_buf(),
            lease: crate::lock::lease_from_env(),
        })
    }

    /// How long a lock of another machine stays valid without a heartbeat.
    pub fn with_lease(mut self, lease: Duration) -> Store {
        self.lease = lease;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &RunId) -> PathBuf {
        self.root.join(id.to_string())
    }

    /// Creates the directory of a run and writes its identity, or checks that the identity
    /// already there is this one. Returns the run's id.
    pub fn create(&self, kind: JobKind, identity: &impl Serialize) -> Result<RunId> {
        let id = run_id(kind, identity)?;
        let dir = self.dir(&id);
        let text = canonical_json(identity)?;
        let path = dir.join(IDENTITY);
        let planned = serde_json::to_value(identity).map_err(|e| serialize("an identity", e))?;
        let parsed = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).ok();
        match std::fs::read(&path) {
            Ok(existing) if existing == text.as_bytes() => {}
            // The same identity written otherwise (line endings, spacing): kept as it is.
            Ok(existing) if parsed(&existing).as_ref() == Some(&planned) => {}
            // Another identity that hashes to this name: a collision of 64-bit names.
            Ok(existing)
                if parsed(&existing)
                    .and_then(|v| run_id(kind, &v).ok())
                    .is_some_and(|other| other == id) =>
            {
                return Err(Error::IdentityMismatch { dir });
            }
            Ok(_) => {
                // The name is the hash of the identity, so a file that does not hash to it was
                // damaged after it was written; the plan's identity is what it held.
                tracing::warn!(
                    "{} was damaged (it no longer hashes to the run's name); rewritten from the plan",
                    path.display()
                );
                results::write_atomic(&path, text.as_bytes())?;
            }
            Err(_) => results::write_atomic(&path, text.as_bytes())?,
        }
        Ok(id)
    }

    /// The identity of a run, parsed.
    pub fn identity<T: DeserializeOwned>(&self, id: &RunId) -> Result<T> {
        read_json(&self.dir(id).join(IDENTITY))
    }

    /// The result of a finished run, `None` when it has not finished; an error when its result
    /// is broken.
    pub fn result<T: DeserializeOwned>(&self, id: &RunId) -> Result<Option<T>> {
        match self.checked_result(id) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| Error::BrokenResult {
                        id: id.clone(),
                        reason: format!("result.json does not hold this kind of result: {e}"),
                    })
            }
            Err(reason) => Err(Error::BrokenResult {
                id: id.clone(),
                reason,
            }),
        }
    }

    /// The bytes of run `id`'s result: `None` when it has not finished, `Err(why)` when the
    /// file does not match its checksum (or, written before checksums, is not JSON).
    fn checked_result(&self, id: &RunId) -> std::result::Result<Option<Vec<u8>>, String> {
        let dir = self.dir(id);
        let bytes = match std::fs::read(dir.join(RESULT)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("result.json cannot be read: {e}")),
        };
        match std::fs::read_to_string(dir.join(RESULT_SUM)) {
            Ok(sum) if sum.trim() != results::sha256_hex(&bytes) => {
                return Err("result.json does not match the checksum written with it".into());
            }
            Ok(_) => {}
            // Results written before checksums existed have none: they are checked as JSON.
            Err(_) => {
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                    return Err(format!("result.json is not valid JSON ({e})"));
                }
            }
        }
        Ok(Some(bytes))
    }

    /// Removes the broken result of run `id` (with a warning that names it), so that executing
    /// the run rebuilds it; returns whether there was one.
    pub fn discard_broken_result(&self, id: &RunId) -> Result<bool> {
        let Err(reason) = self.checked_result(id) else {
            return Ok(false);
        };
        let path = self.dir(id).join(RESULT);
        tracing::warn!("{id}: {reason}; rebuilding the result from the run's files");
        std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        Ok(true)
    }

    /// The result of a run that must have finished (an error names the run otherwise).
    pub fn finished<T: DeserializeOwned>(&self, id: &RunId) -> Result<T> {
        self.result(id)?
            .ok_or_else(|| Error::NotFinished(id.clone()))
    }

    /// Whether run `id` has finished with an intact result.
    pub fn is_done(&self, id: &RunId) -> bool {
        matches!(self.checked_result(id), Ok(Some(_)))
    }

    /// Marks a run finished with its result (atomically; the last write of a run), its checksum
    /// written just before it.
    pub fn finish(&self, id: &RunId, result: &impl Serialize) -> Result<()> {
        let json = serde_json::to_vec_pretty(result).map_err(|e| serialize("a result", e))?;
        let dir = self.dir(id);
        results::write_atomic(&dir.join(RESULT_SUM), results::sha256_hex(&json).as_bytes())?;
        results::write_atomic(&dir.join(RESULT), &json)?;
        Ok(())
    }

    /// [`Store::finish`] under `lock`, refused when the lock was lost meanwhile (taken over
    /// after a lapsed heartbeat): the process that took it over records the result.
    pub fn finish_locked(&self, lock: &RunLock, id: &RunId, result: &impl Serialize) -> Result<()> {
        if !lock.is_held() {
            return Err(Error::LostLock(id.clone()));
        }
        self.finish(id, result)
    }

    /// Takes the lock of a run, waiting while a live process (on any machine sharing the
    /// store) holds it. A stale lock is taken over (see [`crate::lock`]).
    pub fn lock(&self, id: &RunId) -> Result<RunLock> {
        crate::lock::acquire(&self.dir(id).join(LOCK), &id.to_string(), self.lease)
    }

    /// Takes the lock of a run if no live process holds it.
    pub fn try_lock(&self, id: &RunId) -> Result<Option<RunLock>> {
        crate::lock::try_acquire(&self.dir(id).join(LOCK), self.lease)
    }

    /// Every run in the store, sorted by id.
    pub fn list(&self) -> Result<Vec<RunEntry>> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(|e| io(&self.root, e))? {
            let entry = entry.map_err(|e| io(&self.root, e))?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only `<kind>-<16 hex>` directories are runs; anything else is left alone.
            let Ok(id) = name.parse::<RunId>() else {
                continue;
            };
            if name.len() != id.kind().as_str().len() + 17 {
                continue;
            }
            let identity = read_json(&path.join(IDENTITY)).ok();
            entries.push(RunEntry {
                status: self.status(&id),
                bytes: dir_size(&path),
                identity,
                id,
            });
        }
        entries.sort_by_key(|e| e.id.to_string());
        Ok(entries)
    }

    pub fn status(&self, id: &RunId) -> RunStatus {
        let dir = self.dir(id);
        match self.checked_result(id) {
            Ok(Some(_)) => return RunStatus::Done,
            Err(reason) => return RunStatus::Broken { reason },
            Ok(None) => {}
        }
        if let Some(lock) = LockState::read(&dir.join(LOCK))
            && !lock.is_stale(self.lease)
        {
            let owner = lock
                .owner
                .map_or_else(|| "unknown holder".to_string(), |o| o.to_string());
            return RunStatus::Running { owner };
        }
        let started = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name() != IDENTITY && e.file_name() != LOCK)
            })
            .unwrap_or(false);
        if started {
            RunStatus::Partial
        } else {
            RunStatus::Planned
        }
    }

    /// Removes stale locks and leftover temporary files (of killed writers: untouched for the
    /// lock lease) everywhere; with `unfinished`, also every run that is neither done nor
    /// running.
    pub fn gc(&self, unfinished: bool) -> Result<GcReport> {
        let mut report = GcReport::default();
        for entry in self.list()? {
            if matches!(entry.status, RunStatus::Running { .. }) {
                continue;
            }
            let dir = self.dir(&entry.id);
            let stale = dir.join(LOCK).exists();
            // An unfinished run touched within the lease may be one a planner has just
            // registered and is about to claim: it stays. (Read before the lock below, whose
            // file touches the directory.)
            let recent = modified_within(&dir, self.lease);
            let remove = unfinished && !self.is_done(&entry.id) && !recent;
            // Nothing to do in this run: its lock is not taken (a read-only store stays so).
            if !stale && !remove && !has_temporaries(&dir) {
                continue;
            }
            // Everything below happens under the run's lock (taking a stale one over): a
            // process that claimed the run after the listing keeps its temporary files. A run
            // removed meanwhile (another gc) is passed over.
            let lock = match self.try_lock(&entry.id) {
                Ok(Some(lock)) => lock,
                Ok(None) => continue,
                Err(_) if !dir.exists() => continue,
                Err(e) => return Err(e),
            };
            if stale {
                report.stale_locks += 1;
            }
            if remove {
                // Renamed away first, so no claimant ever sees a half-removed run.
                let doomed = self.root.join(format!(".{}.removing.tmp", entry.id));
                std::fs::rename(&dir, &doomed).map_err(|e| io(&dir, e))?;
                std::fs::remove_dir_all(&doomed).map_err(|e| io(&doomed, e))?;
                report.bytes_freed += entry.bytes;
                report.removed_runs.push(entry.id);
            } else {
                remove_temporaries(&dir, self.lease, &mut report);
            }
            drop(lock);
        }
        Ok(report)
    }
}

/// Whether `dir` holds a temporary file or directory of a writer (at any depth).
fn has_temporaries(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name.starts_with('.') && name.contains(".tmp"))
                || (e.path().is_dir() && has_temporaries(&e.path()))
        })
}

/// Whether `dir` or its identity changed within `lease`.
fn modified_within(dir: &Path, lease: Duration) -> bool {
    [dir.to_path_buf(), dir.join(IDENTITY)].iter().any(|p| {
        p.metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < lease)
    })
}

/// Removes the temporary files and directories under `dir` that nothing has touched for
/// `lease`: some are written outside any run lock (a planner writing a run's identity), so
/// only their age tells a killed writer's from a live one's, on any machine sharing the store.
fn remove_temporaries(dir: &Path, lease: Duration, report: &mut GcReport) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp") {
            let age = path
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_none_or(|age| age < lease) {
                continue;
            }
            let bytes = if path.is_dir() {
                dir_size(&path)
            } else {
                path.metadata().map(|m| m.len()).unwrap_or(0)
            };
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if removed.is_ok() {
                report.temporaries += 1;
                report.bytes_freed += bytes;
            }
        } else if path.is_dir() {
            remove_temporaries(&path, lease, report);
        }
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Bytes under `path`.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(read) = std::fs::read_dir(path) else {
        return 0;
    };
    read.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_size(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}
