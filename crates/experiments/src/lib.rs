//! Experiments of Frankle et al. (2020) as graphs of runs in the content-addressed store of
//! the `store` crate (one directory per run, named by the hash of everything that determines
//! it; finished runs reused, interrupted ones resumed, locks that hold across a cluster).
//!
//! * [`registry`]: what the pipeline knows of a network, one [`registry::Entry`] each
//!   (recipe, pruning schedule, k values, the paper's numbers, per-scale cuts). The paper's
//!   networks are the `paper` crate's entries; this crate knows none of them.
//! * [`runs`]: what a run is ([`runs::TrainSpec`]: recipe, seeds, pruning rule and where its
//!   first state comes from; [`runs::PairSpec`]: an interpolation), the [`runs::Plan`] that
//!   deduplicates them, and the [`runs::Runner`] that executes runs in the store.
//! * [`models`]: what the runner needs of a network ([`models::ModelFactory`]): the paper's
//!   networks (`paper::PaperNetworks`) or your own.
//! * [`executor`]: a plan brought to completion here ([`executor::Local`]) or on a Slurm
//!   cluster ([`slurm::Slurm`]), behind one trait ([`executor::Executor`]).
//! * [`imp`]: iterative magnitude pruning with rewinding and its baselines (Algorithm 2).
//! * [`instability`]: instability analysis (Algorithm 1) for dense and sparse parents.
//! * [`reproduce`]: every run the paper's figures need, at a chosen scale, planned from the
//!   entries without touching data, and the `results::Results` the figures are drawn from.
//!
//! The checks of the computation itself (PyTorch parity, GPU backends against the CPU, device
//! reads) are the `checks` crate's.

pub mod executor;
pub mod imp;
pub mod instability;
pub mod models;
pub mod registry;
pub mod reproduce;
pub mod runs;
pub mod slurm;

use std::path::PathBuf;

use data::DatasetName;
use results::RunId;

/// Errors of experiments.
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
    #[error(transparent)]
    Align(#[from] align::Error),
    #[error(transparent)]
    Results(#[from] results::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The files of a dataset a run needs are not there (and could not be downloaded).
    #[error("{source}")]
    MissingDataset {
        dataset: DatasetName,
        #[source]
        source: data::Error,
    },
    #[error("unknown network `{name}`: the registry has {known}")]
    UnknownNetwork { name: String, known: String },
    #[error(
        "`{name}` has no {scale} cut (a cut is piloted for that scale's budget): run it at \
         quick or paper scale, or leave it out of the networks to reproduce"
    )]
    NoCut { name: String, scale: results::Scale },
    #[error("{0} is not a training run of this plan or store")]
    NotATrainingRun(RunId),
    #[error("run {id} failed: {source}")]
    RunFailed {
        id: RunId,
        #[source]
        source: Box<Error>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The dataset that was missing, if that is what went wrong (also inside a failed run).
    pub fn missing_dataset(&self) -> Option<DatasetName> {
        match self {
            Error::MissingDataset { dataset, .. } => Some(*dataset),
            Error::RunFailed { source, .. } => source.missing_dataset(),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
