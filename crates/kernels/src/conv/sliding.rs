//! Direct 3x3 convolution (stride 1, padding 1) for narrow layers, forward and both gradients,
//! without lowering to a column matrix.
//!
//! Each image is zero-padded once into planes of `(H + 2) x (W + 2)`, flattened. Output pixel
//! `(y, x)` sits at position `q = y·(W + 2) + x` of an output row as wide as a padded one, and
//! reads the nine padded values at `q + ki·(W + 2) + kj`: for every output position the same
//! nine offsets, so whole vectors of positions are multiplied and added at once, with no
//! lowering, no index arithmetic per pixel and no edge cases. The two positions of each row
//! that fall past the image's width are computed and thrown away.
//!
//! With few channels the column matrix of im2col is mostly copies of the input (K = 9·C is 36
//! at four channels) and the product around it is too thin for gemm to run well; here each
//! input vector is loaded once per block of output channels and used for all of them.
//!
//! Sums run in a fixed order (input channel, kernel row, kernel column; for the weight
//! gradient, vector lanes, then positions, then images in fixed chunks of the batch), so results
//! do not depend on the number of threads. They depend on the SIMD width the CPU offers, as
//! gemm's do.

use pulp::{Arch, Simd, WithSimd};
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{ConvShape, with_scratch_of};

/// The most channels (in or out) a layer may have to take this path. Measured with
/// `examples/conv_profile` (BENCHMARKS.md): at 16 channels the direct kernels are faster than
/// im2col + gemm in all three passes, at 32 not all.
pub const MAX_CHANNELS: usize = 16;

/// Output channels computed together: each loaded input vector serves this many.
const OUT_BLOCK: usize = 4;
/// Vectors of output positions computed together where the CPU has 32 vector registers
/// (AVX-512: 4 x 4 accumulators); elsewhere 2 (AVX2 and NEON: 4 x 2 of 16 registers).
const WIDE_VECTORS: usize = 4;
/// Rows of positions are padded to a multiple of this: one vector of the widest SIMD.
const SPAN_ALIGN: usize = 16;

/// Whether this path computes `shape`: a 3x3 kernel, stride 1, padding 1 on every side, and at
/// most [`MAX_CHANNELS`] channels in and out.
pub fn applies(shape: &ConvShape) -> bool {
    shape.kernel == [3, 3]
        && shape.stride == [1, 1]
        && shape.padding == [(1, 1), (1, 1)]
        && (1..=MAX_CHANNELS).contains(&shape.in_channels)
        && (1..=MAX_CHANNELS).contains(&shape.out_channels)
        && shape.height > 0
        && shape.width > 0
}

/// Where a padded image and a row of output positions lie.
#[derive(Clone, Copy, Debug)]
struct Layout {
    height: usize,
    width: usize,
    /// Width of a padded row: `W + 2`.
    wp: usize,
    /// Length of one padded channel: `(H + 2)·(W + 2)`.
    plane: usize,
    /// Output positions per channel, rounded up to [`SPAN_ALIGN`]: `H·(W + 2)` and up.
    span: usize,
}

impl Layout {
    fn new(shape: &ConvShape) -> Self {
        let (height, width) = (shape.height, shape.width);
        let wp = width + 2;
        Layout {
            height,
            width,
            wp,
            plane: (height + 2) * wp,
            span: (height * wp).next_multiple_of(SPAN_ALIGN),
        }
    }

    /// Length of a padded image of `channels` channels: room to read a whole block of
    /// positions at the last channel's largest offset.
    fn padded_len(&self, channels: usize) -> usize {
        channels * self.plane + self.span
    }

    /// Writes `image` (`channels x H x W`) zero-padded into `padded`.
    fn pad(&self, image: &[f32], padded: &mut [f32]) {
        padded.fill(0.0);
        let hw = self.height * self.width;
        for (c, channel) in image.chunks_exact(hw).enumerate() {
            for (y, row) in channel.chunks_exact(self.width).enumerate() {
                padded[c * self.plane + (y + 1) * self.wp + 1..][..self.width].copy_from_slice(row);
            }
        }
    }

    /// Writes `image` (`channels x H x W`) at output positions (`channels x span`), zeros
    /// elsewhere.
    fn spread(&self, image: &[f32], positions: &mut [f32]) {
        positions.fill(0.0);
        let hw = self.height * self.width;
        for (c, channel) in image.chunks_exact(hw).enumerate() {
            for (y, row) in channel.chunks_exact(self.width).enumerate() {
                positions[c * self.span + y * self.wp..][..self.width].copy_from_slice(row);
            }
        }
    }

    /// Reads the image (`channels x H x W`) back from output positions, writing every element.
    fn gather(&self, positions: &[f32], image: &mut [MaybeUninit<f32>]) {
        let hw = self.height * self.width;
        for (c, channel) in image.chunks_exact_mut(hw).enumerate() {
            for (y, row) in channel.chunks_exact_mut(self.width).enumerate() {
                let from = &positions[c * self.span + y * self.wp..][..self.width];
                for (to, &v) in row.iter_mut().zip(from) {
                    to.write(v);
                }
            }
        }
    }
}

/// `y = conv(x, w) + b` for a shape that [`applies`], every element of `y` written.
pub fn forward(
    shape: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) {
    let layout = Layout::new(shape);
    let (c, o) = (shape.in_channels, shape.out_channels);
    let (x_len, y_len) = (
        c * shape.height * shape.width,
        o * shape.height * shape.width,
    );
    let arch = Arch::new();
    y.par_chunks_mut(y_len)
        .zip(x.par_chunks(x_len))
        .for_each(|(y, x)| {
            let (padded_len, out_len) = (layout.padded_len(c), o * layout.span);
            with_scratch_of(padded_len, out_len, |padded, out| {
                layout.pad(x, padded);
                arch.dispatch(Forward {
                    layout,
                    c,
                    o,
                    padded,
                    weight,
                    bias,
                    out,
                });
                layout.gather(out, y);
            });
        });
}

/// The gradient of the input for a shape that [`applies`]: the forward convolution of `dy`
/// with the kernel transposed (in and out channels swapped) and turned by 180 degrees.
pub fn backward_input(shape: &ConvShape, weight: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>]) {
    let (c, o) = (shape.in_channels, shape.out_channels);
    let mut turned = vec![0.0; weight.len()];
    for oc in 0..o {
        for ic in 0..c {
            for k in 0..9 {
                turned[(ic * o + oc) * 9 + 8 - k] = weight[(oc * c + ic) * 9 + k];
            }
        }
    }
    let transposed = ConvShape {
        in_channels: o,
        out_channels: c,
        ..*shape
    };
    forward(&transposed, dy, &turned, None, dx);
}

/// The gradient of the weight for a shape that [`applies`]: per image, `dw[o, c, ki, kj] =
/// Σ_q dy[o, q] · x[c, q + ki·(W + 2) + kj]` over output positions (zero past the image's
/// width), summed over fixed chunks of the batch, then the chunks in order.
pub fn backward_weight(shape: &ConvShape, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let layout = Layout::new(shape);
    let (c, o, n) = (shape.in_channels, shape.out_channels, shape.batch);
    let (x_len, dy_len) = (
        c * shape.height * shape.width,
        o * shape.height * shape.width,
    );
    let chunks = n.clamp(1, 16);
    let per_chunk = n.div_ceil(chunks).max(1);
    let arch = Arch::new();
    let partials: Vec<Vec<f32>> = x
        .par_chunks(per_chunk * x_len)
        .zip(dy.par_chunks(per_chunk * dy_len))
        .map(|(x, dy)| {
            let mut acc = vec![0.0f32; dw.len()];
            with_scratch_of(
                layout.padded_len(c),
                o * layout.span,
                |padded, positions| {
                    for (x, dy) in x.chunks_exact(x_len).zip(dy.chunks_exact(dy_len)) {
                        layout.pad(x, padded);
                        layout.spread(dy, positions);
                        arch.dispatch(WeightGradient {
                            layout,
                            c,
                            o,
                            padded,
                            positions,
                            acc: &mut acc,
                        });
                    }
                },
            );
            acc
        })
        .collect();
    dw.fill(0.0);
    for part in &partials {
        for (d, p) in dw.iter_mut().zip(part) {
            *d += *p;
        }
    }
}

/// One image's forward pass into `out` (`o x span` output positions).
struct Forward<'a> {
    layout: Layout,
    c: usize,
    o: usize,
    padded: &'a [f32],
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    out: &'a mut [f32],
}

impl WithSimd for Forward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Forward {
            layout,
            c,
            o,
            padded,
            weight,
            bias,
            out,
        } = self;
        assert!(padded.len() >= layout.padded_len(c) && out.len() >= o * layout.span);
        assert!(weight.len() >= o * c * 9 && bias.is_none_or(|b| b.len() >= o));
        for (first, out) in (0..o)
            .step_by(OUT_BLOCK)
            .zip(out.chunks_mut(OUT_BLOCK * layout.span))
        {
            let block = OutputBlock::new(layout, c, first, o, weight, bias);
            if o - first >= OUT_BLOCK {
                forward_positions::<S, OUT_BLOCK>(simd, &block, padded, out);
            } else {
                forward_positions::<S, 1>(simd, &block, padded, out);
            }
        }
    }
}

/// Up to [`OUT_BLOCK`] output channels' kernels, packed in the order the forward loop reads
/// them (a full block: input channel, kernel entry, output channel; a partial one: channel after
/// channel), their biases, and the nine offsets of a position's inputs.
struct OutputBlock {
    layout: Layout,
    c: usize,
    len: usize,
    packed: [f32; MAX_CHANNELS * 9 * OUT_BLOCK],
    bias: [f32; OUT_BLOCK],
    offsets: [usize; 9],
}

impl OutputBlock {
    fn new(
        layout: Layout,
        c: usize,
        first: usize,
        o: usize,
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Self {
        let len = (o - first).min(OUT_BLOCK);
        let mut packed = [0.0; MAX_CHANNELS * 9 * OUT_BLOCK];
        let mut block_bias = [0.0; OUT_BLOCK];
        for b in 0..len {
            for k in 0..c * 9 {
                let at = if len == OUT_BLOCK {
                    k * OUT_BLOCK + b
                } else {
                    b * c * 9 + k
                };
                packed[at] = weight[(first + b) * c * 9 + k];
            }
            block_bias[b] = bias.map_or(0.0, |bias| bias[first + b]);
        }
        OutputBlock {
            layout,
            c,
            len,
            packed,
            bias: block_bias,
            offsets: std::array::from_fn(|k| k / 3 * layout.wp + k % 3),
        }
    }
}

/// `B` output channels into `out` (`B x span`): [`WIDE_VECTORS`] vectors of positions at a time
/// where the CPU has the registers, then one at a time for the rest. `B == 1` computes each of
/// the block's channels in turn.
#[inline(always)]
fn forward_positions<S: Simd, const B: usize>(
    simd: S,
    block: &OutputBlock,
    padded: &[f32],
    out: &mut [f32],
) {
    let lanes = S::F32_LANES;
    let span = block.layout.span;
    for b in (0..block.len).step_by(B) {
        let out = &mut out[b * span..];
        let wide = if lanes >= 16 {
            let wide = span / (lanes * WIDE_VECTORS) * lanes * WIDE_VECTORS;
            forward_run::<S, B, WIDE_VECTORS>(simd, block, b, padded, out, 0..wide);
            wide
        } else {
            let wide = span / (lanes * 2) * lanes * 2;
            forward_run::<S, B, 2>(simd, block, b, padded, out, 0..wide);
            wide
        };
        forward_run::<S, B, 1>(simd, block, b, padded, out, wide..span);
    }
}

/// Positions `range` (a multiple of `V` vectors long) of `B` output channels from channel `b`
/// of the block on.
#[inline(always)]
fn forward_run<S: Simd, const B: usize, const V: usize>(
    simd: S,
    block: &OutputBlock,
    b: usize,
    padded: &[f32],
    out: &mut [f32],
    range: std::ops::Range<usize>,
) {
    let lanes = S::F32_LANES;
    let Layout { plane, span, .. } = block.layout;
    // A full block interleaves its channels' kernels; a partial one runs them one at a time.
    let (weights, stride) = if B == OUT_BLOCK {
        (&block.packed[..], OUT_BLOCK)
    } else {
        (&block.packed[b * block.c * 9..], 1)
    };
    let bias = &block.bias[b..];
    for q in range.step_by(lanes * V) {
        let mut acc: [[S::f32s; V]; B] = std::array::from_fn(|j| [simd.splat_f32s(bias[j]); V]);
        for ic in 0..block.c {
            for (k, offset) in block.offsets.iter().enumerate() {
                let at = ic * plane + offset + q;
                let (xs, _) = S::as_simd_f32s(&padded[at..at + lanes * V]);
                let xs: [S::f32s; V] = std::array::from_fn(|v| xs[v]);
                let w = &weights[(ic * 9 + k) * stride..][..B];
                // Constant trip counts, so the accumulators stay in registers.
                for j in 0..B {
                    let w = simd.splat_f32s(w[j]);
                    for v in 0..V {
                        acc[j][v] = simd.mul_add_e_f32s(w, xs[v], acc[j][v]);
                    }
                }
            }
        }
        for (row, acc) in out.chunks_mut(span).zip(&acc) {
            let (dst, _) = S::as_mut_simd_f32s(&mut row[q..q + lanes * V]);
            dst.copy_from_slice(acc);
        }
    }
}

/// One image's contribution to the weight gradient, added to `acc` (`o x c x 3 x 3`).
struct WeightGradient<'a> {
    layout: Layout,
    c: usize,
    o: usize,
    padded: &'a [f32],
    positions: &'a [f32],
    acc: &'a mut [f32],
}

impl WithSimd for WeightGradient<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(mut self, simd: S) {
        let (c, o, layout) = (self.c, self.o, self.layout);
        assert!(self.padded.len() >= layout.padded_len(c));
        assert!(self.positions.len() >= o * layout.span && self.acc.len() >= o * c * 9);
        let mut first = 0;
        while first + OUT_BLOCK <= o {
            weight_block::<S, OUT_BLOCK>(simd, &mut self, first);
            first += OUT_BLOCK;
        }
        while first < o {
            weight_block::<S, 1>(simd, &mut self, first);
            first += 1;
        }
    }
}

/// Output channels `first..first + B` of [`WeightGradient`]: for each input channel and kernel
/// row, the three kernel columns' dot products at once.
#[inline(always)]
fn weight_block<S: Simd, const B: usize>(simd: S, g: &mut WeightGradient<'_>, first: usize) {
    let Layout {
        wp, plane, span, ..
    } = g.layout;
    let lanes = S::F32_LANES;
    let dys: [&[f32]; B] = std::array::from_fn(|b| &g.positions[(first + b) * span..][..span]);
    for ic in 0..g.c {
        for ki in 0..3 {
            let row = &g.padded[ic * plane + ki * wp..][..span + 2];
            let mut sums = [[simd.splat_f32s(0.0); 3]; B];
            for q in (0..span).step_by(lanes) {
                let x: [S::f32s; 3] =
                    std::array::from_fn(|kj| S::as_simd_f32s(&row[q + kj..q + kj + lanes]).0[0]);
                for (sums, dy) in sums.iter_mut().zip(&dys) {
                    let d = S::as_simd_f32s(&dy[q..q + lanes]).0[0];
                    for (s, x) in sums.iter_mut().zip(&x) {
                        *s = simd.mul_add_e_f32s(d, *x, *s);
                    }
                }
            }
            for (b, sums) in sums.iter().enumerate() {
                let at = ((first + b) * g.c + ic) * 9 + ki * 3;
                for (kj, s) in sums.iter().enumerate() {
                    g.acc[at + kj] += simd.reduce_sum_f32s(*s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::{naive_forward, values};

    /// One image's forward pass and weight gradient on the SIMD level `simd`.
    fn one_image<S: Simd>(
        simd: S,
        shape: &ConvShape,
        x: &[f32],
        w: &[f32],
        b: &[f32],
        dy: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let (c, o) = (shape.in_channels, shape.out_channels);
        let layout = Layout::new(shape);
        let mut padded = vec![f32::NAN; layout.padded_len(c)];
        let mut out = vec![f32::NAN; o * layout.span];
        layout.pad(x, &mut padded);
        simd.vectorize(Forward {
            layout,
            c,
            o,
            padded: &padded,
            weight: w,
            bias: Some(b),
            out: &mut out,
        });
        let mut y = vec![f32::NAN; dy.len()];
        // SAFETY: `gather` writes only floats.
        #[allow(unsafe_code)]
        layout.gather(&out, unsafe { crate::out::as_uninit(&mut y) });
        let mut positions = vec![f32::NAN; o * layout.span];
        layout.spread(dy, &mut positions);
        let mut dw = vec![0.0; w.len()];
        simd.vectorize(WeightGradient {
            layout,
            c,
            o,
            padded: &padded,
            positions: &positions,
            acc: &mut dw,
        });
        (y, dw)
    }

    /// `dw[o, c, ki, kj] = Σ dy[o, y, x] · x[c, y + ki - 1, x + kj - 1]`, one term at a time.
    fn naive_weight_gradient(s: &ConvShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let (h, w) = (s.height as isize, s.width as isize);
        let mut dw = vec![0.0f64; s.out_channels * s.in_channels * 9];
        for o in 0..s.out_channels {
            for c in 0..s.in_channels {
                for k in 0..9 {
                    let (ki, kj) = (k as isize / 3 - 1, k as isize % 3 - 1);
                    for oy in 0..h {
                        for ox in 0..w {
                            let (iy, ix) = (oy + ki, ox + kj);
                            if (0..h).contains(&iy) && (0..w).contains(&ix) {
                                let d = dy[((o as isize * h + oy) * w + ox) as usize];
                                let v = x[((c as isize * h + iy) * w + ix) as usize];
                                dw[(o * s.in_channels + c) * 9 + k] += (d * v) as f64;
                            }
                        }
                    }
                }
            }
        }
        dw.into_iter().map(|v| v as f32).collect()
    }

    fn check<S: Simd>(simd: S, level: &str) {
        for (c, o, height, width) in [(3, 4, 5, 7), (5, 7, 1, 1), (16, 16, 6, 17), (2, 9, 11, 3)] {
            let shape = ConvShape::new([1, c, height, width], [o, c, 3, 3], [1, 1], [(1, 1); 2]);
            assert!(applies(&shape));
            let x = values(c * height * width, 1);
            let w = values(o * c * 9, 2);
            let b = values(o, 3);
            let dy = values(o * height * width, 4);
            let (y, dw) = one_image(simd, &shape, &x, &w, &b, &dy);
            let expected = (
                naive_forward(&shape, &x, &w, Some(&b)),
                naive_weight_gradient(&shape, &x, &dy),
            );
            for (name, got, want) in [
                ("forward", &y, &expected.0),
                ("weight gradient", &dw, &expected.1),
            ] {
                for (g, e) in got.iter().zip(want) {
                    assert!(
                        (g - e).abs() < 1e-4,
                        "{level}, {shape:?}: {name} {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_simd_level_computes_the_definition() {
        check(pulp::Scalar, "scalar");
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(simd) = pulp::x86::V3::try_new() {
                check(simd, "AVX2");
            }
            if let Some(simd) = pulp::x86::V4::try_new() {
                check(simd, "AVX-512");
            }
        }
    }

    #[test]
    fn only_narrow_3x3_same_convolutions_take_this_path() {
        let shape = |c, o, k, s, p| ConvShape::new([2, c, 8, 8], [o, c, k, k], [s, s], [(p, p); 2]);
        assert!(applies(&shape(16, 16, 3, 1, 1)));
        assert!(applies(&shape(3, 1, 3, 1, 1)));
        assert!(!applies(&shape(17, 16, 3, 1, 1)), "too many input channels");
        assert!(
            !applies(&shape(16, 32, 3, 1, 1)),
            "too many output channels"
        );
        assert!(!applies(&shape(8, 8, 3, 2, 1)), "stride 2");
        assert!(!applies(&shape(8, 8, 3, 1, 0)), "no padding");
        assert!(!applies(&shape(8, 8, 1, 1, 0)), "1x1");
    }
}
