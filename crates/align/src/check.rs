//! Checking that a permutation spec leaves a network's function unchanged, group by group, and
//! naming the axis that breaks it.
//!
//! Each group's units are permuted alone (random, seeded) and the logits on a batch compared
//! with the original's. For a group that changes them, two repairs are tried one axis at a
//! time: leaving one of its axes out (the spec moves a tensor it should not), and adding one
//! axis of the right size that no group claims (the spec misses a tensor). A repair that
//! restores the logits names the axis. Networks are rebuilt from values for every trial: a
//! clone of a burn module shares its batch-norm buffers with the original.

use burn::module::Module;
use burn::tensor::Tensor;
use nets::params::{TensorInfo, from_vec, map_tensors, tensor_infos};
use nets::{Classifier, Symmetry};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::permute::{Permutation, permute_values};
use crate::spec::{Axis, PermutationSpec};
use crate::{Error, Result};

/// The largest change of the logits, relative to how much they vary across the batch, that
/// counts as the same function, plus float noise: sums in another order move f32 logits by
/// about `NOISE` of their magnitude, which can be a larger share of a small spread.
const TOLERANCE: f32 = 1e-4;
const NOISE: f32 = 2e-5;

/// The least spread of the logits across the batch, relative to their magnitude, at which a
/// check can see a change: below it float noise is as large as any change a spec could cause
/// (a deep VGG at initialisation whose batch-norm statistics do not fit its activations
/// computes nearly the same logits for every image).
const SENSITIVITY: f32 = 1e-3;

/// What a broken group's repair found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Diagnosis {
    /// Leaving this axis out of the group restores the function: the spec moves it wrongly.
    Extra(Axis),
    /// Adding this axis (unclaimed, of the group's size) restores it: the spec misses it.
    Missing(Axis),
    /// No single axis left out or added restores it.
    Unknown,
}

/// One group permuted alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCheck {
    pub group: String,
    pub size: usize,
    /// Largest change of a logit relative to how much the logits vary across the batch.
    pub change: f32,
    /// `None` where the function is unchanged (or the group has one unit).
    pub diagnosis: Option<Diagnosis>,
}

/// The check of a whole spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermutationCheck {
    /// The largest relative change counted as none (its float noise included).
    pub tolerance: f32,
    pub groups: Vec<GroupCheck>,
    /// Every group permuted at once.
    pub all_groups_change: f32,
}

impl PermutationCheck {
    pub fn passed(&self) -> bool {
        self.all_groups_change <= self.tolerance && self.first_broken().is_none()
    }

    /// The first group, in the spec's order, whose permutation changes the function.
    pub fn first_broken(&self) -> Option<&GroupCheck> {
        self.groups.iter().find(|g| g.diagnosis.is_some())
    }
}

/// Checks `spec` on the network whose tensors hold `values` (in [`tensor_infos`] order):
/// `build` makes a fresh network of the same architecture (its values are replaced), `images`
/// is the batch the logits are compared on, `seed` draws the permutations.
pub fn check_permutation<M: Classifier>(
    build: impl Fn() -> M,
    values: &[(TensorInfo, Vec<f32>)],
    spec: &PermutationSpec,
    images: Tensor<4>,
    seed: u64,
) -> Result<PermutationCheck> {
    let infos: Vec<TensorInfo> = values.iter().map(|(info, _)| info.clone()).collect();
    spec.check(&infos)?;
    let logits = |values: &[(TensorInfo, Vec<f32>)]| -> Result<Tensor<2>> {
        Ok(load(build(), values)?.forward(images.clone()))
    };
    let original = logits(values)?;
    let spread = spread(&original);
    let magnitude = nets::readback::scalar(original.clone().abs().max());
    if !(magnitude.is_finite() && spread.is_finite()) {
        return Err(Error::Spec(
            "the network's logits are not finite on these images: check a network that \
             computes numbers"
                .into(),
        ));
    }
    if spread <= SENSITIVITY * magnitude {
        return Err(Error::Spec(format!(
            "the network's logits hardly depend on its input (they vary by {spread:.2e} across \
             the batch, at a magnitude of {magnitude:.2e}), so no permutation could be seen to \
             change them: check a trained network, or one whose batch-norm statistics fit its \
             activations"
        )));
    }
    let tolerance = TOLERANCE + NOISE * magnitude / spread;
    let change = |spec: &PermutationSpec, permutation: &Permutation| -> Result<f32> {
        let mut moved = values.to_vec();
        permute_values(spec, permutation, &mut moved)?;
        Ok(relative_change(&original, logits(&moved)?))
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut groups = Vec::with_capacity(spec.groups.len());
    for (g, group) in spec.groups.iter().enumerate() {
        let mut permutation = Permutation::identity(spec);
        permutation.groups[g] = derangement(group.size, &mut rng);
        let moved = change(spec, &permutation)?;
        // A change that is not a number is a change.
        let diagnosis = if moved.is_nan() || moved > tolerance {
            Some(diagnose(spec, g, &permutation, &infos, tolerance, &change)?)
        } else {
            None
        };
        groups.push(GroupCheck {
            group: group.name.clone(),
            size: group.size,
            change: moved,
            diagnosis,
        });
    }
    let all = Permutation::random(spec, seed);
    Ok(PermutationCheck {
        tolerance,
        groups,
        all_groups_change: change(spec, &all)?,
    })
}

/// Which single axis, left out of group `g` or added to it, makes `permutation` preserve the
/// function.
fn diagnose(
    spec: &PermutationSpec,
    g: usize,
    permutation: &Permutation,
    infos: &[TensorInfo],
    tolerance: f32,
    change: &impl Fn(&PermutationSpec, &Permutation) -> Result<f32>,
) -> Result<Diagnosis> {
    let group = &spec.groups[g];
    for leave_out in 0..group.axes.len() {
        let mut repaired = spec.clone();
        let axis = repaired.groups[g].axes.remove(leave_out);
        if change(&repaired, permutation)? <= tolerance {
            return Ok(Diagnosis::Extra(axis));
        }
    }
    let claimed: std::collections::HashSet<&Axis> =
        spec.groups.iter().flat_map(|g| &g.axes).collect();
    for info in infos {
        for (axis, &len) in info.shape.iter().enumerate() {
            let candidate = Axis {
                path: info.path.clone(),
                axis,
            };
            if len != group.size || claimed.contains(&candidate) {
                continue;
            }
            let mut repaired = spec.clone();
            repaired.groups[g].axes.push(candidate.clone());
            if change(&repaired, permutation)? <= tolerance {
                return Ok(Diagnosis::Missing(candidate));
            }
        }
    }
    Ok(Diagnosis::Unknown)
}

/// A random permutation of `n` units that moves every unit (when `n > 1`), so that a
/// permutation that happens to fix the unit a spec gets wrong cannot hide it.
fn derangement(n: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    if n < 2 {
        return p;
    }
    loop {
        p.shuffle(rng);
        if p.iter().enumerate().all(|(i, &j)| i != j) {
            return p;
        }
    }
}

/// `module` holding `values` (same architecture, tensors in [`tensor_infos`] order).
fn load<M: Classifier>(module: M, values: &[(TensorInfo, Vec<f32>)]) -> Result<M> {
    let infos = tensor_infos(&module);
    if infos.len() != values.len()
        || infos
            .iter()
            .zip(values)
            .any(|(a, (b, _))| a.path != b.path || a.shape != b.shape)
    {
        return Err(Error::Mismatch(
            "the network built for the check has other tensors than the one checked".into(),
        ));
    }
    let mut values = values.iter();
    Ok(map_tensors(module, |_, t| match values.next() {
        Some((_, v)) => from_vec(v.clone(), &t.device()),
        None => t,
    }))
}

/// How far a logit strays from its mean over the batch, at most.
fn spread(a: &Tensor<2>) -> f32 {
    nets::readback::scalar((a.clone() - a.clone().mean_dim(0)).abs().max())
}

/// The largest change of a logit, relative to how far the logits of `a` vary across the batch:
/// a change measured against their magnitude would look small on a network whose logits are
/// nearly the same for every image.
fn relative_change(a: &Tensor<2>, b: Tensor<2>) -> f32 {
    nets::readback::scalar((a.clone() - b).abs().max()) / spread(a).max(f32::MIN_POSITIVE)
}

/// `module` with every batch-norm statistic and affine parameter drawn at random (seeded):
/// fresh ones are all 0 or all 1 and permute to themselves, so a spec that forgot them would
/// pass. Running variances are drawn from [0.5, 1.5], or from [0.05, 0.15] for a chain of
/// convolutions (VGG), whose signal otherwise fades over its depth until every image gets
/// nearly the same logits.
pub fn vary_batch_norm<M: Module>(module: M, seed: u64, symmetry: &Symmetry) -> M {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let variance = match symmetry {
        Symmetry::ConvChain => (0.05, 0.15),
        _ => (0.5, 1.5),
    };
    map_tensors(module, |info, t| {
        let range = [
            ("running_mean", (-0.3, 0.3)),
            ("running_var", variance),
            ("gamma", (0.5, 1.5)),
            ("beta", (-0.15, 0.15)),
        ]
        .into_iter()
        .find_map(|(suffix, range)| info.path.ends_with(suffix).then_some(range));
        match range {
            Some((lo, hi)) => {
                let values = (0..info.numel())
                    .map(|_| rng.random_range(lo..hi))
                    .collect();
                from_vec(values, &t.device())
            }
            None => t,
        }
    })
}
