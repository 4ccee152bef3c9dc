//! Permutation symmetries of the networks, and weight matching (Ainsworth, Hayase &
//! Srinivasa, "Git Re-Basin", ICLR 2023, Algorithm 1).
//!
//! Permuting the hidden units of a layer (its output rows, bias and BN entries, and the input
//! columns of the layers that read it) leaves the function a network computes unchanged. Two
//! networks trained from different seeds or data orders may sit in one basin *modulo* such a
//! permutation: weight matching finds the permutation of `B` whose weights are closest to
//! `A`'s, so that `A` and `permute(B)` can be interpolated instead of `A` and `B`.
//!
//! * [`PermutationSpec`]: which tensor axes each permutation group moves, derived from a
//!   network's tensor paths (Lenet, VGG, the CIFAR and ImageNet Resnets); a new network needs
//!   its spec, not a new algorithm.
//! * [`weight_matching`]: coordinate descent over the groups, each step a linear assignment
//!   problem solved exactly (Kuhn-Munkres from the `pathfinding` crate).
//! * [`activation_matching`]: each group's units matched by the correlation of their
//!   activations on training batches (the same exact assignment; Lenet, VGG, CIFAR Resnets).
//! * [`permute`], [`permute_sparse`]: apply a [`Permutation`] to a module's parameters *and*
//!   BN buffers, and to the masks of a sparse network, so that an IMP ticket stays the same
//!   subnetwork.
//! * [`check_permutation`]: whether a spec really leaves a network's function unchanged, group
//!   by group, naming the axis that breaks it (one moved wrongly, or one missing).

mod activations;
mod check;
mod matching;
mod permute;
mod spec;

pub use activations::{ActivationStats, activation_matching};
pub use check::{Diagnosis, GroupCheck, PermutationCheck, check_permutation, vary_batch_norm};
pub use matching::{Matching, MatchingConfig, weight_matching};
pub use permute::{Permutation, permute, permute_sparse, permute_values};
pub use spec::{Axis, Group, PermutationSpec};

/// Errors of alignment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no permutation spec for a network whose tensors start with `{0}`: its architecture states no symmetry (weight matching knows Lenet, VGG and the CIFAR and ImageNet Resnets; a network of your own gives its spec through its model factory)"
    )]
    Unsupported(String),
    #[error("the permutation spec does not fit the network: {0}")]
    Spec(String),
    #[error("the two networks differ: {0}")]
    Mismatch(String),
    #[error("cannot observe the activations for activation matching: {0}")]
    Activations(nets::Error),
    #[error(transparent)]
    Sparsity(#[from] sparsity::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
