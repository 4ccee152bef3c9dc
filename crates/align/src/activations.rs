//! Activation matching (Ainsworth, Hayase & Srinivasa 2023, §3.1): units of `B` are matched
//! to units of `A` by the correlation of their activations on the same inputs, one exact
//! assignment per permutation group. Unlike weight matching it needs data, and it does not
//! look at the weights at all, so it is not drawn towards the identity when two networks share
//! their initialisation.

use std::collections::HashMap;

use burn::tensor::Tensor;
use nets::activations::Tap;

use crate::matching::{Matching, assign};
use crate::permute::Permutation;
use crate::spec::PermutationSpec;
use crate::{Error, Result};

/// Running sums of one group's activations in both networks.
#[derive(Debug, Clone, Default)]
struct GroupSums {
    samples: f64,
    a: Vec<f64>,
    b: Vec<f64>,
    aa: Vec<f64>,
    bb: Vec<f64>,
    /// `ab[i * n + j]`: the sum of `a_i * b_j`.
    ab: Vec<f64>,
}

/// The correlation statistics of two networks' units, gathered batch by batch.
pub struct ActivationStats {
    groups: Vec<GroupSums>,
    index: HashMap<String, usize>,
    sizes: Vec<usize>,
}

fn host(t: Tensor<1>) -> Vec<f64> {
    nets::params::to_vec(t).into_iter().map(f64::from).collect()
}

fn add(into: &mut Vec<f64>, values: Vec<f64>) {
    if into.is_empty() {
        *into = values;
    } else {
        into.iter_mut().zip(values).for_each(|(s, v)| *s += v);
    }
}

impl ActivationStats {
    pub fn new(spec: &PermutationSpec) -> ActivationStats {
        ActivationStats {
            groups: vec![GroupSums::default(); spec.groups.len()],
            index: spec
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| (g.name.clone(), i))
                .collect(),
            sizes: spec.groups.iter().map(|g| g.size).collect(),
        }
    }

    /// Adds both networks' activations on one batch of the same images.
    pub fn add(&mut self, a: Vec<Tap>, b: Vec<Tap>) -> Result<()> {
        if a.len() != b.len() {
            return Err(Error::Mismatch(format!(
                "{} activation sites in A, {} in B",
                a.len(),
                b.len()
            )));
        }
        for (ta, tb) in a.into_iter().zip(b) {
            let g = *self.index.get(&ta.group).ok_or_else(|| {
                Error::Spec(format!("activations of {}, which no group has", ta.group))
            })?;
            let [samples, units] = ta.values.dims();
            if ta.group != tb.group
                || tb.values.dims() != [samples, units]
                || units != self.sizes[g]
            {
                return Err(Error::Mismatch(format!(
                    "the activations of {} do not line up ({:?} in A, {} {:?} in B, {} units in \
                     the group)",
                    ta.group,
                    [samples, units],
                    tb.group,
                    tb.values.dims(),
                    self.sizes[g]
                )));
            }
            let sums = &mut self.groups[g];
            sums.samples += samples as f64;
            let column_sums = |x: Tensor<2>| x.sum_dim(0).reshape([units]);
            add(&mut sums.a, host(column_sums(ta.values.clone())));
            add(&mut sums.b, host(column_sums(tb.values.clone())));
            add(
                &mut sums.aa,
                host(column_sums(ta.values.clone().powi_scalar(2))),
            );
            add(
                &mut sums.bb,
                host(column_sums(tb.values.clone().powi_scalar(2))),
            );
            let products = ta.values.transpose().matmul(tb.values);
            add(&mut sums.ab, host(products.reshape([units * units])));
        }
        Ok(())
    }

    /// Pearson correlation of A's unit `i` with B's unit `j`, `[i * n + j]`, for group `g`;
    /// a unit that never varies correlates 0 with everything.
    fn correlation(&self, g: usize) -> Vec<f64> {
        let s = &self.groups[g];
        let n = self.sizes[g];
        let count = s.samples.max(1.0);
        let std = |sum: &[f64], squares: &[f64], i: usize| {
            let mean = sum[i] / count;
            (squares[i] / count - mean * mean).max(0.0).sqrt()
        };
        let mut out = vec![0.0; n * n];
        for i in 0..n {
            let sa = std(&s.a, &s.aa, i);
            for j in 0..n {
                let sb = std(&s.b, &s.bb, j);
                let cov = s.ab[i * n + j] / count - (s.a[i] / count) * (s.b[j] / count);
                if sa > 0.0 && sb > 0.0 {
                    out[i * n + j] = cov / (sa * sb);
                }
            }
        }
        out
    }

    /// The permutation of B maximising the summed correlation of matched units, group by
    /// group. Ties are broken towards leaving a unit in place: units that never vary on the
    /// images (dead ReLUs) correlate with nothing, and those dead in both networks stay where
    /// they are.
    pub fn matching(&self) -> Result<Matching> {
        let mut groups = Vec::with_capacity(self.sizes.len());
        let mut similarity = 0.0;
        for (g, &n) in self.sizes.iter().enumerate() {
            if self.groups[g].samples == 0.0 {
                let name = self
                    .index
                    .iter()
                    .find(|(_, i)| **i == g)
                    .map_or("?", |(k, _)| k.as_str());
                return Err(Error::Spec(format!(
                    "no activations were seen for group {name}"
                )));
            }
            let mut corr = self.correlation(g);
            for i in 0..n {
                corr[i * n + i] += 1e-9;
            }
            let assignment = assign(&corr, n);
            similarity += (0..n).map(|i| corr[i * n + assignment[i]]).sum::<f64>();
            groups.push(assignment);
        }
        Ok(Matching {
            permutation: Permutation { groups },
            rounds: 1,
            similarity,
        })
    }
}

/// Activation matching of `b` to `a` over `batches` of images (`a` and `b` in evaluation
/// mode, e.g. `valid()` copies): the permutation of `b` whose units correlate best with
/// `a`'s (apply it with [`crate::permute`]). `taps` observes a network's activations, one
/// [`Tap`] per permutation group of `spec` (the paper's networks:
/// `paper_networks::Network::activations`).
pub fn activation_matching<M>(
    spec: &PermutationSpec,
    a: &M,
    b: &M,
    batches: impl IntoIterator<Item = Tensor<4>>,
    taps: impl Fn(&M, Tensor<4>) -> nets::Result<Vec<Tap>>,
) -> Result<Matching> {
    let mut stats = ActivationStats::new(spec);
    for images in batches {
        let observe = |n: &M| taps(n, images.clone()).map_err(Error::Activations);
        stats.add(observe(a)?, observe(b)?)?;
    }
    stats.matching()
}
