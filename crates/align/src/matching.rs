//! Weight matching: coordinate descent over permutation groups, each step an exact linear
//! assignment.

use std::collections::HashMap;

use nets::params::TensorInfo;
use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::permute::{Permutation, permute_tensor};
use crate::spec::PermutationSpec;
use crate::{Error, Result};

/// Settings of [`weight_matching`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchingConfig {
    /// Seed of the order in which groups are visited in each round.
    pub seed: u64,
    /// Rounds over every group at most (it stops earlier at a round that changes nothing).
    pub max_rounds: usize,
}

impl Default for MatchingConfig {
    fn default() -> Self {
        MatchingConfig {
            seed: 0,
            max_rounds: 100,
        }
    }
}

/// What weight matching found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matching {
    /// Apply to `B` (with [`crate::permute`]) to align it to `A`.
    pub permutation: Permutation,
    /// Rounds run, the last of which changed nothing (unless `max_rounds` stopped it).
    pub rounds: usize,
    /// Sum over the spec's trained tensors of `<A, permuted B>` (weight matching maximises it).
    pub similarity: f64,
}

/// Finds the permutation of `b` whose weights are closest to `a`'s (Ainsworth et al. 2023,
/// Algorithm 1): for each group in turn, with every other group's permutation held fixed,
/// the permutation maximising `sum <A, P B>` over the tensors it moves is a linear
/// assignment problem, solved exactly; rounds repeat until none improves. BN running
/// statistics are moved by the permutation but do not steer it.
///
/// `a` and `b` are host tensors as `nets::params::tensor_values` returns them.
pub fn weight_matching(
    spec: &PermutationSpec,
    a: &[(TensorInfo, Vec<f32>)],
    b: &[(TensorInfo, Vec<f32>)],
    config: MatchingConfig,
) -> Result<Matching> {
    let b_by_path: HashMap<&str, &(TensorInfo, Vec<f32>)> =
        b.iter().map(|t| (t.0.path.as_str(), t)).collect();
    let mut pairs = HashMap::new();
    for (info, values) in a {
        let (other, b_values) = b_by_path
            .get(info.path.as_str())
            .ok_or_else(|| Error::Mismatch(format!("{} is missing from B", info.path)))?;
        if other.shape != info.shape {
            return Err(Error::Mismatch(format!(
                "{} has shape {:?} in A and {:?} in B",
                info.path, info.shape, other.shape
            )));
        }
        pairs.insert(
            info.path.as_str(),
            (info, values.as_slice(), b_values.as_slice()),
        );
    }
    spec.check(&a.iter().map(|t| t.0.clone()).collect::<Vec<_>>())?;
    let by_path = spec.axes_of();
    // Per group: the trained tensors it moves.
    let members: Vec<Vec<Member>> = spec
        .groups
        .iter()
        .map(|group| {
            group
                .axes
                .iter()
                .filter_map(|axis| {
                    let (info, wa, wb) = pairs.get(axis.path.as_str())?;
                    (!info.role.is_buffer()).then_some(Member {
                        a: wa,
                        b: wb,
                        shape: info.shape.as_slice(),
                        axis: axis.axis,
                        axes: by_path[axis.path.as_str()].as_slice(),
                    })
                })
                .collect()
        })
        .collect();

    let mut permutation = Permutation::identity(spec);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..spec.groups.len()).collect();
    let mut rounds = 0;
    while rounds < config.max_rounds {
        rounds += 1;
        order.shuffle(&mut rng);
        let mut progress = false;
        for &g in &order {
            let n = spec.groups[g].size;
            let mut similarity = vec![0.0f64; n * n];
            for m in &members[g] {
                let wb = permute_tensor(m.b, m.shape, m.axes, &permutation, Some(g));
                add_products(&mut similarity, m.a, &wb, m.shape, m.axis);
            }
            let old: f64 = (0..n)
                .map(|i| similarity[i * n + permutation.groups[g][i]])
                .sum();
            let assignment = assign(&similarity, n);
            let new: f64 = (0..n).map(|i| similarity[i * n + assignment[i]]).sum();
            if new > old + 1e-12 * old.abs().max(1.0) {
                permutation.groups[g] = assignment;
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    let similarity = members
        .iter()
        .enumerate()
        .flat_map(|(g, m)| m.iter().map(move |x| (g, x)))
        .map(|(g, m)| {
            // Each tensor once: by the first group that moves it.
            if m.axes.first().map(|x| x.1) != Some(g) {
                return 0.0;
            }
            let wb = permute_tensor(m.b, m.shape, m.axes, &permutation, None);
            m.a.iter()
                .zip(&wb)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum::<f64>()
        })
        .sum();
    Ok(Matching {
        permutation,
        rounds,
        similarity,
    })
}

/// One trained tensor a group moves: A's and B's values, its shape, the axis the group moves
/// and every group's axes in it.
struct Member<'a> {
    a: &'a [f32],
    b: &'a [f32],
    shape: &'a [usize],
    axis: usize,
    axes: &'a [(usize, usize)],
}

/// `similarity[i][j] += <A's slice i, B's slice j>` along `axis` of tensors of `shape`.
fn add_products(similarity: &mut [f64], wa: &[f32], wb: &[f32], shape: &[usize], axis: usize) {
    let n = shape[axis];
    let rows = |w: &[f32]| -> Vec<Vec<f32>> {
        let inner: usize = shape[axis + 1..].iter().product();
        let mut rows = vec![Vec::with_capacity(w.len() / n.max(1)); n];
        for block in w.chunks(n * inner) {
            for (i, row) in rows.iter_mut().enumerate() {
                row.extend_from_slice(&block[i * inner..(i + 1) * inner]);
            }
        }
        rows
    };
    let (ra, rb) = (rows(wa), rows(wb));
    similarity
        .par_chunks_mut(n)
        .zip(ra.par_iter())
        .for_each(|(out, a)| {
            for (o, b) in out.iter_mut().zip(&rb) {
                *o += a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| f64::from(*x) * f64::from(*y))
                    .sum::<f64>();
            }
        });
}

/// The assignment of rows to columns maximising the summed similarity, solved exactly on the
/// similarities scaled to integers (Kuhn-Munkres needs totally ordered weights; 2^40 steps
/// over the largest magnitude leave ties and rounding far below any real difference).
pub(crate) fn assign(similarity: &[f64], n: usize) -> Vec<usize> {
    let largest = similarity.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if n == 0 || largest == 0.0 || !largest.is_finite() {
        return (0..n).collect();
    }
    let scale = (1u64 << 40) as f64 / largest;
    let weights: Vec<i64> = similarity
        .iter()
        .map(|v| (v * scale).round() as i64)
        .collect();
    match Matrix::from_vec(n, n, weights) {
        Ok(matrix) => kuhn_munkres(&matrix).1,
        Err(_) => (0..n).collect(),
    }
}
