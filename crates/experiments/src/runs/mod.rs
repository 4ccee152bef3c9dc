//! Runs as data: what a training run or an interpolation is ([`TrainSpec`], [`PairSpec`],
//! [`Job`]), the graph of runs an experiment needs ([`Plan`]), the datasets they share
//! ([`DataCache`]), and the [`Runner`] that brings runs to completion in the store.

mod data;
mod jobs;
mod plan;
mod runner;

pub use data::{DataCache, EpochLength, PublishedSizes};
pub use jobs::{
    Job, MaskSource, OptimizerAtRewind, PairSpec, Start, TrainResult, TrainSpec, WeightSource,
    describe, run_kind,
};
pub use plan::Plan;
pub use results::PairResult;
pub use runner::Runner;
