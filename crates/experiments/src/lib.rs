//! Experiments of Frankle et al. (2020) as graphs of runs in a content-addressed store.
//!
//! * [`store`]: one directory per run, named by the hash of everything that determines it;
//!   finished runs are reused, interrupted ones resumed, and a lock keeps two processes off
//!   the same run, also across the machines of a cluster ([`lock`]).
//! * [`runs`]: what a run is ([`runs::TrainSpec`]: recipe, seeds, pruning rule and where its
//!   first state comes from; [`runs::PairSpec`]: an interpolation), the [`runs::Plan`] that
//!   deduplicates them, and the [`runs::Runner`] that executes a plan with parallel workers.
//! * [`imp`]: iterative magnitude pruning with rewinding and its baselines (Algorithm 2).
//! * [`instability`]: instability analysis (Algorithm 1) for dense and sparse parents.
//! * [`slurm`]: a plan handed to Slurm as job arrays, stage by stage, instead of run here.
//! * [`reproduce`]: every run the paper's figures need, at a chosen scale, and the results
//!   the figures are drawn from.

pub mod imp;
pub mod instability;
pub mod lock;
pub mod reproduce;
pub mod runs;
pub mod slurm;
pub mod store;

use std::path::PathBuf;

/// Errors of the store and of experiments.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Train(#[from] train::Error),
    #[error(transparent)]
    Data(#[from] data::Error),
    #[error(transparent)]
    Lmc(#[from] lmc::Error),
    #[error(transparent)]
    Sparsity(#[from] sparsity::Error),
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
