//! Applying a permutation to tensors, modules and masks.

use std::collections::HashMap;

use burn::module::{Module, ModuleDisplay};
use nets::params::{TensorInfo, from_vec, map_tensors, to_vec};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use sparsity::{MaskSet, Sparse};

use crate::spec::PermutationSpec;
use crate::{Error, Result};

/// One permutation per group of a [`PermutationSpec`]: unit `i` of the permuted network is
/// unit `groups[g][i]` of the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permutation {
    pub groups: Vec<Vec<usize>>,
}

impl Permutation {
    pub fn identity(spec: &PermutationSpec) -> Permutation {
        Permutation {
            groups: spec.groups.iter().map(|g| (0..g.size).collect()).collect(),
        }
    }

    /// A uniformly random permutation of every group.
    pub fn random(spec: &PermutationSpec, seed: u64) -> Permutation {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut p = Permutation::identity(spec);
        for g in &mut p.groups {
            g.shuffle(&mut rng);
        }
        p
    }

    pub fn is_identity(&self) -> bool {
        self.groups
            .iter()
            .all(|g| g.iter().enumerate().all(|(i, &j)| i == j))
    }

    /// The permutation that undoes this one.
    pub fn inverse(&self) -> Permutation {
        Permutation {
            groups: self
                .groups
                .iter()
                .map(|g| {
                    let mut inv = vec![0; g.len()];
                    for (i, &j) in g.iter().enumerate() {
                        inv[j] = i;
                    }
                    inv
                })
                .collect(),
        }
    }

    fn check(&self, spec: &PermutationSpec) -> Result<()> {
        let fits = self.groups.len() == spec.groups.len()
            && self.groups.iter().zip(&spec.groups).all(|(p, g)| {
                let mut seen = vec![false; g.size];
                p.len() == g.size
                    && p.iter()
                        .all(|&j| j < g.size && !std::mem::replace(&mut seen[j], true))
            });
        if fits {
            Ok(())
        } else {
            Err(Error::Spec(
                "the permutation does not match the spec's groups".into(),
            ))
        }
    }
}

/// `values` (a tensor of `shape`, flattened) with `axis` permuted: index `i` along it takes
/// the entries at index `perm[i]`.
pub(crate) fn permute_axis(
    values: &[f32],
    shape: &[usize],
    axis: usize,
    perm: &[usize],
) -> Vec<f32> {
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let mut out = Vec::with_capacity(values.len());
    for block in values.chunks(n * inner) {
        for &j in perm {
            out.extend_from_slice(&block[j * inner..(j + 1) * inner]);
        }
    }
    out
}

/// One tensor moved by every group that has an axis in it (`skip`: a group left alone).
pub(crate) fn permute_tensor(
    values: &[f32],
    shape: &[usize],
    axes: &[(usize, usize)],
    permutation: &Permutation,
    skip: Option<usize>,
) -> Vec<f32> {
    let mut out = values.to_vec();
    for &(axis, g) in axes {
        if Some(g) != skip {
            out = permute_axis(&out, shape, axis, &permutation.groups[g]);
        }
    }
    out
}

/// Permutes host tensors (as `nets::params::tensor_values` returns them) in place.
pub fn permute_values(
    spec: &PermutationSpec,
    permutation: &Permutation,
    tensors: &mut [(TensorInfo, Vec<f32>)],
) -> Result<()> {
    permutation.check(spec)?;
    let by_path = spec.axes_of();
    for (info, values) in tensors.iter_mut() {
        if let Some(axes) = by_path.get(info.path.as_str()) {
            *values = permute_tensor(values, &info.shape, axes, permutation, None);
        }
    }
    Ok(())
}

/// `module` with `permutation` applied to every parameter and buffer the spec names.
pub fn permute<M: Module>(
    module: M,
    spec: &PermutationSpec,
    permutation: &Permutation,
) -> Result<M> {
    permutation.check(spec)?;
    let by_path = spec.axes_of();
    Ok(map_tensors(module, |info, t| {
        match by_path.get(info.path.as_str()) {
            Some(axes) => {
                let device = t.device();
                from_vec(
                    permute_tensor(&to_vec(t), &info.shape, axes, permutation, None),
                    &device,
                )
            }
            None => t,
        }
    }))
}

/// A sparse network with its weights *and* masks permuted: the same subnetwork, its units
/// renumbered.
pub fn permute_sparse<M: Module + ModuleDisplay>(
    sparse: Sparse<M>,
    spec: &PermutationSpec,
    permutation: &Permutation,
) -> Result<Sparse<M>> {
    let Sparse { model, mask } = sparse;
    let shapes: HashMap<String, Vec<usize>> = nets::params::tensor_infos(&model)
        .into_iter()
        .map(|i| (i.path, i.shape))
        .collect();
    let model = permute(model, spec, permutation)?;
    let by_path = spec.axes_of();
    let device = model.devices().into_iter().next().unwrap_or_default();
    let (paths, values): (Vec<String>, Vec<Vec<f32>>) = mask
        .to_host()
        .into_iter()
        .map(|(path, m)| {
            let m = match (by_path.get(path.as_str()), shapes.get(&path)) {
                (Some(axes), Some(shape)) => permute_tensor(&m, shape, axes, permutation, None),
                _ => m,
            };
            (path, m)
        })
        .unzip();
    Ok(Sparse::with_mask(
        model,
        MaskSet::from_host(paths, values, &device),
    )?)
}
