//! The experiment store: one directory per run, named by the hash of everything that
//! determines the run, under one root ([`Store`]). A finished run is reused, never recomputed;
//! an unfinished one is resumed by whoever takes its lock next; two processes never work on one
//! run at the same time, also on different machines sharing the store over a network
//! filesystem ([`lock`]). Results are checksummed and verified on every read.
//!
//! Finished runs move between stores without a shared filesystem as one checksummed archive
//! ([`Store::export`], [`Store::import`]).
//!
//! The store knows nothing of training or of burn: what a run *is* (its identity) is any
//! serialisable value, and what it produced any serialisable result. The `experiments` crate
//! plans and executes runs in it; the CLI lists and collects it; a Slurm login node or a
//! figure renderer can use it without a backend.

pub mod lock;
mod store;
mod transfer;

use std::path::{Path, PathBuf};

use results::RunId;

pub use lock::RunLock;
pub use store::{GcReport, RunEntry, RunStatus, Store, dir_size, run_id, summary_name};
pub use transfer::ImportReport;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An atomic write failed (full disk, permissions).
    #[error(transparent)]
    Write(#[from] results::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("run {0} has not finished")]
    NotFinished(RunId),
    #[error(
        "run {id} is broken: {reason}. Run the same command again: executing the run rebuilds \
         its result from its files (a training from its last checkpoint)"
    )]
    BrokenResult { id: RunId, reason: String },
    #[error(
        "{0}: this process lost the run's lock (no heartbeat for longer than the lease, \
         REWIND_LOCK_LEASE_SECS) and another process took the run over; it records the result"
    )]
    LostLock(RunId),
    #[error("{} holds another identity than its name says; remove that directory", dir.display())]
    IdentityMismatch { dir: PathBuf },
    #[error("{} is not readable ({reason}); remove that run directory to recompute it", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("cannot lock {}: {source} (the store needs a filesystem with hard links)", path.display())]
    NoHardLinks {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An archive of runs that cannot be imported as it is.
    #[error(
        "{} cannot be imported: {reason}. Nothing of it was added to the store; export the runs \
         again from their store",
        path.display()
    )]
    Archive { path: PathBuf, reason: String },
    /// An identity, result or lock owner that serde cannot write as JSON.
    #[error("cannot write {what} as JSON: {reason}")]
    Serialize { what: &'static str, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An I/O error with the path it happened on.
fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests;
