//! Checks of the computation itself, outside the experiment pipeline (which plans, trains and
//! interpolates; see the `experiments` crate):
//!
//! * [`parity`]: step-for-step comparison with PyTorch (golden files from `bench/parity.py`).
//! * [`backend_check`]: a GPU backend against the CPU backend from the same state.
//! * [`host_reads`]: a run's device-to-host reads, counted against the schedule.

pub mod backend_check;
pub mod host_reads;
pub mod parity;

use std::path::PathBuf;

/// What can stop a check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Experiments(#[from] experiments::Error),
    #[error(transparent)]
    Train(#[from] train::Error),
    #[error(transparent)]
    Data(#[from] data::Error),
    #[error(transparent)]
    Model(#[from] nets::Error),
    #[error(transparent)]
    Lmc(#[from] lmc::Error),
    #[error(transparent)]
    Sparsity(#[from] sparsity::Error),
    #[error(transparent)]
    Results(#[from] results::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
