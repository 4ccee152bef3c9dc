//! Random ±1 projections ("sketches") of a network's tensors, computed the same way here and in
//! `bench/parity.py`, so that a step's change to every tensor can be compared element by
//! element with PyTorch's without storing the tensors.
//!
//! Projection `j` of tensor `t` is `Σ_i s_ij x_i` with `s_ij = +1` when bit `j` of
//! `splitmix64((t << 32) | i)` is set and `-1` otherwise. For any vector `d`,
//! `E[(Σ_i s_ij d_i)²] = ‖d‖²`, so `‖S a − S b‖ / √m` estimates `‖a − b‖` (relative spread
//! `1/√(2m)`, 18% for `m` = 16): a sketch sees where the elements of two updates differ, which
//! a comparison of their norms cannot.

/// Projections per tensor of a step's change (the fixture stores them as float32).
pub const UPDATE_PROJECTIONS: usize = 16;
/// Projections per tensor of a state (float64): enough to see that two states differ.
pub const STATE_PROJECTIONS: usize = 4;

/// The hash both sides use (Steele et al.'s SplitMix64 finaliser).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One tensor's projections and its exact L2 norm.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSketch {
    pub norm: f64,
    pub projections: Vec<f64>,
}

impl TensorSketch {
    /// Estimated `‖a − b‖` of the two vectors these sketch (same tensor, same projections).
    pub fn distance(&self, other: &[f64]) -> f64 {
        let m = self.projections.len().min(other.len()).max(1);
        let sum: f64 = self
            .projections
            .iter()
            .zip(other)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        (sum / m as f64).sqrt()
    }
}

/// The sign hashes of every element of every tensor of one network, computed once.
pub struct Sketcher {
    hashes: Vec<Vec<u64>>,
}

impl Sketcher {
    /// For tensors of these element counts, in state order.
    pub fn new(sizes: &[usize]) -> Sketcher {
        let hashes = sizes
            .iter()
            .enumerate()
            .map(|(t, &n)| {
                (0..n as u64)
                    .map(|i| splitmix64(((t as u64) << 32) | i))
                    .collect()
            })
            .collect();
        Sketcher { hashes }
    }

    /// `m` projections of tensor `t`, whose values are `values(i)` (in float64).
    fn project(&self, t: usize, m: usize, values: impl Iterator<Item = f64>) -> TensorSketch {
        let mut acc = vec![0.0f64; m];
        let mut squares = 0.0f64;
        for (&h, v) in self.hashes[t].iter().zip(values) {
            squares += v * v;
            for (j, a) in acc.iter_mut().enumerate() {
                if (h >> j) & 1 == 1 {
                    *a += v;
                } else {
                    *a -= v;
                }
            }
        }
        TensorSketch {
            norm: squares.sqrt(),
            projections: acc,
        }
    }

    /// Sketches of a state's tensors.
    pub fn states(&self, tensors: &[&[f32]]) -> Vec<TensorSketch> {
        tensors
            .iter()
            .enumerate()
            .map(|(t, v)| self.project(t, STATE_PROJECTIONS, v.iter().map(|&x| f64::from(x))))
            .collect()
    }

    /// Sketches of the change from `before` to `after`, tensor by tensor (exact in float64).
    pub fn updates(&self, before: &[&[f32]], after: &[&[f32]]) -> Vec<TensorSketch> {
        before
            .iter()
            .zip(after)
            .enumerate()
            .map(|(t, (b, a))| {
                let diff = b
                    .iter()
                    .zip(a.iter())
                    .map(|(&x, &y)| f64::from(y) - f64::from(x));
                self.project(t, UPDATE_PROJECTIONS, diff)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference values `bench/parity.py` reproduces (its `splitmix64` on numpy uint64).
    #[test]
    fn splitmix64_reference_values() {
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(1), 0x910A_2DEC_8902_5CC1);
    }

    /// The sketch distance estimates the true distance, and sees a change that keeps the norm.
    #[test]
    fn distance_estimates_the_difference_norm() {
        let n = 4000;
        let a: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let mut b = a.clone();
        b.swap(3, 2000); // same norm, different elements
        b.reverse();
        let zero = vec![0.0f32; n];
        let sketcher = Sketcher::new(&[n]);
        let sa = &sketcher.updates(&[&zero], &[&a])[0];
        let sb = &sketcher.updates(&[&zero], &[&b])[0];
        let exact = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(x - y).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((sa.norm - sb.norm).abs() < 1e-9 * sa.norm);
        let estimate = sa.distance(&sb.projections);
        assert!(
            (estimate / exact - 1.0).abs() < 0.6,
            "estimate {estimate} vs {exact}"
        );
        assert_eq!(sa.distance(&sa.projections), 0.0);
    }
}
