//! The vocabulary of a reproduction, without burn: what every other crate names and what
//! `results.json` holds.
//!
//! * [`RunId`], [`JobKind`], [`RunKind`], [`Branch`]: typed names of the runs of the store and
//!   of what each run is.
//! * [`Scale`], [`Figure`], [`DatasetName`], [`BnPolicy`], [`ReproduceConfig`]: what a
//!   reproduction asks for (serde, TOML); [`DatasetSpec`]: one table of what is known of each
//!   dataset (classes, shapes, sizes, normalisation, augmentation, files).
//! * [`ErrorCurve`], [`Instability`], [`L2Distance`], [`LayerDensity`]: measured values, as
//!   the `lmc` and `sparsity` crates produce them.
//! * [`MeanStd`], [`Difference`], [`PooledSpread`], [`Interval`]: the statistics of SPEC §7
//!   (sample std, 95% Student-t and Welch intervals, the n a spread needs).
//! * [`Results`]: everything the figures and the report are drawn from, so that `figures`
//!   renders a report from `results.json` without building burn.
//! * [`write_atomic`]: files appear whole or not at all; [`sha256_hex`]: their checksums.

mod curve;
mod datasets;
pub mod faults;
mod files;
mod ids;
mod levels;
mod names;
mod replicates;
mod schema;
mod stats;

pub use curve::{
    Alignment, BnPolicy, CurvePoint, ErrorCurve, Instability, L2Distance, LayerDensity,
};
pub use datasets::{Augmentation, DatasetName, DatasetRecord, DatasetSpec, OwnDataset};
pub use files::{sha256_hex, write_atomic};
pub use ids::{Branch, JobKind, RunId, RunKind};
pub use levels::{LevelLink, LevelLinkSummary};
pub use names::{Figure, KUnit, ReproduceConfig, Scale, parse_substitute};
pub use replicates::{Accuracy, AccuracyComparison, TestSet, distinct_dense_accuracies};
pub use schema::{
    AlignedAnalysis, AlignmentRecord, BaselineClaim, Design, ImpSeries, InitPairResult,
    InstabilitySummary, KSummary, LengthCheck, LevelResult, LevelSummary, ModelResults,
    NetworkInfo, PairRecord, PairResult, PaperReference, Results, Setup, SparseAnalysis, TimeShare,
};
pub use stats::{
    CONFIDENCE, Difference, Interval, MeanStd, N_SEARCH_LIMIT, PooledSpread, STABLE_PP, Side,
    about, n_needed, n_needed_welch, n_needed_words, t_quantile,
};

use std::path::PathBuf;

/// Errors of parsing names and of writing files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name given by the user (on the command line or in a config) is not one we know.
    #[error("unknown {what} `{value}`: use {expected}")]
    Unknown {
        what: &'static str,
        value: String,
        expected: String,
    },
    /// A dataset of one's own that cannot be registered or has changed.
    #[error("dataset `{id}`: {problem}")]
    Dataset { id: String, problem: String },
    /// A file could not be written (full disk, permissions, ...). Nothing was left behind.
    #[error(
        "could not write {path}: {source}. Nothing was left half-written; free disk space (or \
         fix permissions) and run the same command again"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
