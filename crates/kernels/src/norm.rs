//! Batch normalisation in training mode on NCHW `f32` slices, one channel per task: statistics
//! in `f64` in a fixed order, the output in one pass, the gradients in two.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// `N x C x S` (S: pixels per channel and image).
#[derive(Clone, Copy, Debug)]
pub struct NormShape {
    pub batch: usize,
    pub channels: usize,
    pub spatial: usize,
}

impl NormShape {
    fn per_channel(&self) -> f64 {
        (self.batch * self.spatial) as f64
    }

    /// The `batch` contiguous runs of channel `c`.
    fn runs<'a>(&self, x: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (s, cs) = (self.spatial, self.channels * self.spatial);
        (0..self.batch).map(move |n| &x[n * cs + c * s..][..s])
    }
}

/// Per channel: mean and biased variance of `x`.
fn statistics(shape: &NormShape, x: &[f32]) -> Vec<(f64, f64)> {
    (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = shape.runs(x, c).map(|r| lanes(r, |v| v as f64)).sum();
            let mean = sum / shape.per_channel();
            let squares: f64 = shape
                .runs(x, c)
                .map(|r| lanes(r, |v| (v as f64 - mean) * (v as f64 - mean)))
                .sum();
            (mean, squares / shape.per_channel())
        })
        .collect()
}

/// Training-mode batch normalisation: `y = (x - mean) / sqrt(var + eps) * gamma + beta` with the
/// batch's mean and (biased) variance, which are returned. Every element of `y` is written
/// (none is read).
pub fn forward_train(
    shape: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    y: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>) {
    normalise_with(apply, shape, x, gamma, beta, epsilon, y)
}

/// [`forward_train`] followed by ReLU in the same pass: `y = relu(bn(x))`, each element as
/// burn's `relu` of the batch norm's output (NaN kept, everything not above zero made 0).
pub fn forward_train_relu(
    shape: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    y: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>) {
    normalise_with(apply_relu, shape, x, gamma, beta, epsilon, y)
}

/// [`apply`] or [`apply_relu`].
type AffineWrite = fn(&NormShape, &[f32], &[(f32, f32)], &mut [MaybeUninit<f32>]);

/// The batch's statistics, and `write` ([`apply`] or [`apply_relu`]) of the affine map they
/// give into `y`: the mean and biased variance are returned.
fn normalise_with(
    write: AffineWrite,
    shape: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    y: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(
        x.len(),
        shape.batch * shape.channels * shape.spatial,
        "batch norm: input length"
    );
    assert_eq!(y.len(), x.len(), "batch norm: output length");
    assert_eq!(gamma.len(), shape.channels, "batch norm: gamma length");
    assert_eq!(beta.len(), shape.channels, "batch norm: beta length");
    let stats = statistics(shape, x);
    let affine: Vec<(f32, f32)> = stats
        .iter()
        .zip(gamma.iter().zip(beta))
        .map(|(&(mean, var), (&g, &b))| {
            let scale = g as f64 / (var + epsilon).sqrt();
            (scale as f32, (b as f64 - mean * scale) as f32)
        })
        .collect();
    write(shape, x, &affine, y);
    stats.iter().map(|&(m, v)| (m as f32, v as f32)).unzip()
}

/// burn's ReLU on flex: NaN propagates, everything not above zero becomes 0.
fn relu(v: f32) -> f32 {
    if v.is_nan() || v > 0.0 { v } else { 0.0 }
}

/// Whether ReLU passes the gradient at an output of `out` (as burn's `relu_backward`).
fn relu_passes(out: f32) -> bool {
    out.is_nan() || out > 0.0
}

/// `y = relu(x · scale_c + shift_c)`, as [`apply`]; every element of `y` is written.
pub fn apply_relu(shape: &NormShape, x: &[f32], affine: &[(f32, f32)], y: &mut [MaybeUninit<f32>]) {
    assert_eq!(y.len(), x.len(), "channel affine: output length");
    let s = shape.spatial.max(1);
    y.par_chunks_mut(s)
        .zip(x.par_chunks(s))
        .enumerate()
        .for_each(|(i, (y, x))| {
            let (scale, shift) = affine[i % shape.channels];
            for (y, x) in y.iter_mut().zip(x) {
                y.write(relu(*x * scale + shift));
            }
        });
}

/// `y = x · scale_c + shift_c`, parallel over images and channels; every element of `y` is
/// written (none is read).
pub fn apply(shape: &NormShape, x: &[f32], affine: &[(f32, f32)], y: &mut [MaybeUninit<f32>]) {
    assert_eq!(y.len(), x.len(), "channel affine: output length");
    let s = shape.spatial.max(1);
    y.par_chunks_mut(s)
        .zip(x.par_chunks(s))
        .enumerate()
        .for_each(|(i, (y, x))| {
            let (scale, shift) = affine[i % shape.channels];
            for (y, x) in y.iter_mut().zip(x) {
                y.write(*x * scale + shift);
            }
        });
}

/// The gradients of input, gamma and beta, given the forward's batch statistics. Every
/// element of `dx` is written (none is read).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    shape: &NormShape,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    dy: &[f32],
    dx: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(dy.len(), x.len(), "batch norm backward: gradient length");
    assert_eq!(
        dx.len(),
        x.len(),
        "batch norm backward: input gradient length"
    );
    let inv_std = inverse_std(var, epsilon);
    // Per channel: Σ dy and Σ dy·x̂.
    let sums: Vec<(f64, f64)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c] as f64;
            let (sum_dy, sum_dy_centred) = shape
                .runs(x, c)
                .zip(shape.runs(dy, c))
                .map(|(x, dy)| {
                    (
                        lanes(dy, |g| g as f64),
                        lanes_of_pairs(x, dy, |x, g| g as f64 * (x as f64 - m)),
                    )
                })
                .fold((0.0, 0.0), |(a, b), (da, db)| (a + da, b + db));
            (sum_dy, sum_dy_centred * inv_std[c])
        })
        .collect();
    // dx = gamma·inv_std·(dy - Σdy/M - x̂·Σdy·x̂/M) = dy·a + x·b + c per channel.
    let coefficients = gradient_coefficients(shape, gamma, mean, &inv_std, &sums);
    let s = shape.spatial.max(1);
    dx.par_chunks_mut(s)
        .zip(x.par_chunks(s).zip(dy.par_chunks(s)))
        .enumerate()
        .for_each(|(i, (dx, (x, dy)))| {
            let (a, b, c) = coefficients[i % shape.channels];
            for ((dx, x), dy) in dx.iter_mut().zip(x).zip(dy) {
                dx.write(*dy * a + *x * b + c);
            }
        });
    let dgamma = sums.iter().map(|&(_, s)| s as f32).collect();
    let dbeta = sums.iter().map(|&(s, _)| s as f32).collect();
    (dgamma, dbeta)
}

/// The gradients of [`forward_train_relu`] given its output `y`: ReLU's gradient (`dy` where
/// `y` passes, 0 elsewhere) taken inside both of [`backward`]'s passes instead of as a pass of
/// its own, with the same sums in the same order, so the same bits as ReLU's backward followed
/// by [`backward`].
#[allow(clippy::too_many_arguments)]
pub fn backward_relu(
    shape: &NormShape,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    y: &[f32],
    dy: &[f32],
    dx: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(dy.len(), x.len(), "batch norm backward: gradient length");
    assert_eq!(y.len(), x.len(), "batch norm backward: output length");
    assert_eq!(
        dx.len(),
        x.len(),
        "batch norm backward: input gradient length"
    );
    let gated = |y: f32, g: f32| if relu_passes(y) { g } else { 0.0 };
    let inv_std = inverse_std(var, epsilon);
    let sums: Vec<(f64, f64)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c] as f64;
            let (sum_dy, sum_dy_centred) = shape
                .runs(x, c)
                .zip(shape.runs(dy, c))
                .zip(shape.runs(y, c))
                .map(|((x, dy), y)| {
                    (
                        lanes_by(dy.len(), |i| gated(y[i], dy[i]) as f64),
                        lanes_by(dy.len(), |i| gated(y[i], dy[i]) as f64 * (x[i] as f64 - m)),
                    )
                })
                .fold((0.0, 0.0), |(a, b), (da, db)| (a + da, b + db));
            (sum_dy, sum_dy_centred * inv_std[c])
        })
        .collect();
    let coefficients = gradient_coefficients(shape, gamma, mean, &inv_std, &sums);
    let s = shape.spatial.max(1);
    dx.par_chunks_mut(s)
        .zip(x.par_chunks(s).zip(dy.par_chunks(s).zip(y.par_chunks(s))))
        .enumerate()
        .for_each(|(i, (dx, (x, (dy, y))))| {
            let (a, b, c) = coefficients[i % shape.channels];
            for (((dx, x), dy), y) in dx.iter_mut().zip(x).zip(dy).zip(y) {
                dx.write(gated(*y, *dy) * a + *x * b + c);
            }
        });
    let dgamma = sums.iter().map(|&(_, s)| s as f32).collect();
    let dbeta = sums.iter().map(|&(s, _)| s as f32).collect();
    (dgamma, dbeta)
}

/// Σ f(v) over `values` in `f64`, in 8 interleaved partial sums added at the end: a fixed
/// order (deterministic), and independent chains the compiler can vectorise, where one running
/// sum waits for each addition before the next.
fn lanes(values: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    acc.iter().sum::<f64>() + tail
}

/// `1 / sqrt(var + eps)` per channel.
fn inverse_std(var: &[f32], epsilon: f64) -> Vec<f64> {
    var.iter()
        .map(|&v| 1.0 / (v as f64 + epsilon).sqrt())
        .collect()
}

/// Per channel, `(a, b, c)` with `dx = dy·a + x·b + c`, from the sums Σ dy and Σ dy·x̂:
/// `dx = gamma·inv_std·(dy - Σdy/M - x̂·Σdy·x̂/M)`.
fn gradient_coefficients(
    shape: &NormShape,
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f64],
    sums: &[(f64, f64)],
) -> Vec<(f32, f32, f32)> {
    let m = shape.per_channel();
    (0..shape.channels)
        .map(|c| {
            let (sum_dy, sum_dy_xhat) = sums[c];
            let scale = gamma[c] as f64 * inv_std[c];
            let k = sum_dy_xhat / m * inv_std[c];
            let a = scale;
            let b = -scale * k;
            let shift = -scale * (sum_dy / m - k * mean[c] as f64);
            (a as f32, b as f32, shift as f32)
        })
        .collect()
}

/// Σ f(i) for i in 0..n, in the order [`lanes`] sums a slice of length n.
fn lanes_by(n: usize, f: impl Fn(usize) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let full = n / 8 * 8;
    for start in (0..full).step_by(8) {
        for (lane, a) in acc.iter_mut().enumerate() {
            *a += f(start + lane);
        }
    }
    let tail: f64 = (full..n).map(&f).sum();
    acc.iter().sum::<f64>() + tail
}

/// Σ f(a, b) over pairs of `a` and `b`, as [`lanes`] does.
fn lanes_of_pairs(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((acc, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *acc += f(x, y);
        }
    }
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x, y))
        .sum();
    acc.iter().sum::<f64>() + tail
}
