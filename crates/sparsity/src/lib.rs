//! Sparse networks for the lottery-ticket experiments of Frankle et al. (2020), section 2
//! (Algorithm 2), usable with any burn module:
//!
//! * [`Sparse`]: a model wrapped with its [`MaskSet`] — one binary mask per prunable weight
//!   tensor, itself a burn module, so masks are saved and loaded with the model's record.
//! * [`PruneRule`]: which tensors are prunable (conv and linear weights, minus a configurable
//!   list of layers such as the output layer; never biases or BN).
//! * Global magnitude pruning of a fraction of the *remaining* weights, one-shot pruning to a
//!   density, random masks with the same per-layer densities, random reinitialisation.
//! * [`MaskHook`]: re-applies the mask after every optimiser step, so pruned weights stay
//!   exactly zero under Adam, momentum and weight decay.
//!
//! Iterative magnitude pruning as an experiment (levels, rewinding, baselines) lives in the
//! `experiments` crate.

mod mask;

pub use mask::{Density, LayerDensity, LayerRate, MaskHook, MaskSet, PruneRule, Sparse};

/// Errors of pruning and IMP.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Train(#[from] train::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
