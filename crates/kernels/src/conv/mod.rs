//! 2-D convolution on NCHW `f32` slices: forward, and the gradients of input, weight and bias.
//!
//! Each image is lowered to a `K x P` column matrix (`K = C·kh·kw` patch entries, `P` output
//! pixels; [`lower`]), and one matrix multiply writes straight into the output. Images smaller
//! than [`MIN_COLUMNS`] pixels are lowered in groups into one wider matrix, whose product is
//! scattered back to NCHW. The input gradient is `Wᵀ·dY` per group followed by a
//! column-to-image scatter; the weight gradient sums `dY·colᵀ` into column-major partial sums
//! over fixed chunks of the batch. Work is split over groups and chunks whose boundaries depend
//! only on the shapes, so results do not depend on the number of threads: same inputs,
//! bit-identical outputs.

use std::cell::RefCell;

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::matmul::{Layout, matmul};

mod lower;
pub mod sliding;

use lower::{col2im, im2col};

/// The fewest columns of a column matrix when images are small: images are lowered together
/// until a product is at least this wide.
const MIN_COLUMNS: usize = 256;

/// The shape of one convolution (dilation 1, one group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero padding (before, after) of height and width.
    pub padding: [(usize, usize); 2],
}

impl ConvShape {
    /// The shape of `conv(x, weight)` from the dims of `x` (`N x C x H x W`) and of the weight
    /// (`O x C x kh x kw`).
    pub fn new(
        x: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
    ) -> Self {
        let [batch, in_channels, height, width] = x;
        let [out_channels, _, kh, kw] = weight;
        ConvShape {
            batch,
            in_channels,
            height,
            width,
            out_channels,
            kernel: [kh, kw],
            stride,
            padding,
        }
    }

    pub fn out_height(&self) -> usize {
        (self.height + self.padding[0].0 + self.padding[0].1 - self.kernel[0]) / self.stride[0] + 1
    }
    pub fn out_width(&self) -> usize {
        (self.width + self.padding[1].0 + self.padding[1].1 - self.kernel[1]) / self.stride[1] + 1
    }
    /// Entries of one patch: `C·kh·kw`.
    pub fn patch(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }
    /// Output pixels per image.
    pub fn pixels(&self) -> usize {
        self.out_height() * self.out_width()
    }
    pub(crate) fn image_len(&self) -> usize {
        self.in_channels * self.height * self.width
    }
    fn out_image_len(&self) -> usize {
        self.out_channels * self.pixels()
    }
    /// A 1x1, stride 1, unpadded convolution: the image already is its column matrix.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [(0, 0), (0, 0)]
    }
    /// Images lowered into one column matrix: enough that it has at least [`MIN_COLUMNS`]
    /// columns (a small image lowers to a narrow matrix, on which gemm is slow). A function of
    /// the shape alone, so the products, and the results, never depend on the thread count.
    pub fn group(&self) -> usize {
        MIN_COLUMNS
            .div_ceil(self.pixels().max(1))
            .clamp(1, self.batch.max(1))
    }
    /// Whether the image itself is the column matrix (pointwise, one image per product).
    fn direct(&self) -> bool {
        self.is_pointwise() && self.group() == 1
    }
    /// The scratch one group needs: its column matrix (`K x G·P`, none when [`Self::direct`])
    /// and, when a group has more than one image, its `O x G·P` output or output gradient.
    fn group_scratch(&self) -> (usize, usize) {
        let columns = self.group() * self.pixels();
        let col = if self.direct() {
            0
        } else {
            self.patch() * columns
        };
        let out = if self.group() > 1 {
            self.out_channels * columns
        } else {
            0
        };
        (col, out)
    }

    /// Whether the shape describes a convolution at all (kernel fits the padded input).
    pub fn is_valid(&self) -> bool {
        self.kernel[0] >= 1
            && self.kernel[1] >= 1
            && self.stride[0] >= 1
            && self.stride[1] >= 1
            && self.height + self.padding[0].0 + self.padding[0].1 >= self.kernel[0]
            && self.width + self.padding[1].0 + self.padding[1].1 >= self.kernel[1]
    }

    /// The range of output columns `ox` whose input column `ox·s + kj - p` lies inside the image.
    pub(crate) fn valid_columns(&self, kj: usize) -> (usize, usize) {
        let (s, p, w, ow) = (
            self.stride[1],
            self.padding[1].0,
            self.width,
            self.out_width(),
        );
        let lo = if kj >= p { 0 } else { (p - kj).div_ceil(s) };
        let hi = if w + p > kj {
            ((w + p - kj - 1) / s + 1).min(ow)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// The input row of output row `oy` under kernel row `ki`, if inside the image.
    pub(crate) fn input_row(&self, oy: usize, ki: usize) -> Option<usize> {
        (oy * self.stride[0] + ki)
            .checked_sub(self.padding[0].0)
            .filter(|&iy| iy < self.height)
    }
}

thread_local! {
    /// Each thread's column matrix and grouped output, kept from call to call: fresh buffers of
    /// megabytes per image cost page faults and zeroing.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` on this thread's scratch for one group of `shape` ([`ConvShape::group_scratch`]).
/// The buffers hold whatever their last user left: every kernel writes what it reads.
fn with_scratch<R>(shape: &ConvShape, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    let (col_len, out_len) = shape.group_scratch();
    with_scratch_of(col_len, out_len, f)
}

/// Runs `f` on this thread's two scratch buffers, cut to `col_len` and `out_len`.
fn with_scratch_of<R>(
    col_len: usize,
    out_len: usize,
    f: impl FnOnce(&mut [f32], &mut [f32]) -> R,
) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            let (col, out) = &mut *scratch;
            if col.len() < col_len {
                col.resize(col_len, 0.0);
            }
            if out.len() < out_len {
                out.resize(out_len, 0.0);
            }
            f(&mut col[..col_len], &mut out[..out_len])
        }
        // Only if a kernel ran inside another on this thread.
        Err(_) => f(&mut vec![0.0; col_len], &mut vec![0.0; out_len]),
    })
}

/// Lowers the images of one group (`x`: `g` images) into `col` (`K x g·P`: image `i`'s
/// columns at `i·P`); nothing for a [`ConvShape::direct`] shape, whose image is its columns.
fn lower_group(shape: &ConvShape, x: &[f32], col: &mut [f32]) {
    let (p, len) = (shape.pixels(), shape.image_len());
    let ld = x.len() / len.max(1) * p;
    for (i, image) in x.chunks_exact(len.max(1)).enumerate() {
        im2col(shape, image, &mut col[i * p..], ld);
    }
}

/// `y = conv(x, w) + b`: `x` is `N x C x H x W`, `w` is `O x C x kh x kw`, `y` is
/// `N x O x OH x OW`, all contiguous.
pub fn forward(shape: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    // SAFETY: `forward_into` writes only floats into its output.
    #[allow(unsafe_code)]
    let y = unsafe { crate::out::as_uninit(y) };
    forward_into(shape, x, weight, bias, y);
}

/// [`forward`] into a buffer it writes every element of (none is read).
pub(crate) fn forward_into(
    shape: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) {
    let (k, p, o) = (shape.patch(), shape.pixels(), shape.out_channels);
    assert_eq!(
        x.len(),
        shape.batch * shape.image_len(),
        "conv2d: input length"
    );
    assert_eq!(weight.len(), o * k, "conv2d: weight length");
    assert_eq!(
        y.len(),
        shape.batch * shape.out_image_len(),
        "conv2d: output length"
    );
    if sliding::applies(shape) {
        return sliding::forward(shape, x, weight, bias, y);
    }
    let y = crate::out::zeroed(y);
    let group = shape.group();
    let w = Layout::row_major(o, k);
    y.par_chunks_mut((group * shape.out_image_len()).max(1))
        .zip(x.par_chunks((group * shape.image_len()).max(1)))
        .for_each(|(y, x)| {
            with_scratch(shape, |col, grouped| {
                let columns = x.len() / shape.image_len().max(1) * p;
                let col: &[f32] = if shape.direct() {
                    x
                } else {
                    lower_group(shape, x, col);
                    col
                };
                let out: &mut [f32] = if columns == p {
                    y
                } else {
                    &mut grouped[..o * columns]
                };
                if let Some(bias) = bias {
                    for (row, b) in out.chunks_exact_mut(columns).zip(bias) {
                        row.fill(*b);
                    }
                }
                let (out_layout, cols) =
                    (Layout::row_major(o, columns), Layout::row_major(k, columns));
                matmul(out, out_layout, weight, w, col, cols, bias.is_some());
                if columns != p {
                    scatter(&grouped[..o * columns], y, o, p);
                }
            })
        });
}

/// Copies an `O x g·P` matrix (image `i`'s columns at `i·P`) into `g` images of `O x P`.
fn scatter(grouped: &[f32], images: &mut [f32], o: usize, p: usize) {
    let columns = grouped.len() / o.max(1);
    for (i, image) in images.chunks_exact_mut((o * p).max(1)).enumerate() {
        for (c, row) in image.chunks_exact_mut(p.max(1)).enumerate() {
            row.copy_from_slice(&grouped[c * columns + i * p..][..p]);
        }
    }
}

/// Copies `g` images of `O x P` into one `O x g·P` matrix (image `i`'s columns at `i·P`).
fn gather(images: &[f32], grouped: &mut [f32], o: usize, p: usize) {
    let columns = grouped.len() / o.max(1);
    for (i, image) in images.chunks_exact((o * p).max(1)).enumerate() {
        for (c, row) in image.chunks_exact(p.max(1)).enumerate() {
            grouped[c * columns + i * p..][..p].copy_from_slice(row);
        }
    }
}

/// The gradient of the input: `dx = col2im(Wᵀ · dy)`, per group of images.
pub fn backward_input(shape: &ConvShape, weight: &[f32], dy: &[f32], dx: &mut [f32]) {
    // SAFETY: `backward_input_into` writes only floats into its output.
    #[allow(unsafe_code)]
    let dx = unsafe { crate::out::as_uninit(dx) };
    backward_input_into(shape, weight, dy, dx);
}

/// [`backward_input`] into a buffer it writes every element of (none is read).
pub(crate) fn backward_input_into(
    shape: &ConvShape,
    weight: &[f32],
    dy: &[f32],
    dx: &mut [MaybeUninit<f32>],
) {
    let (k, p, o) = (shape.patch(), shape.pixels(), shape.out_channels);
    assert_eq!(
        dy.len(),
        shape.batch * shape.out_image_len(),
        "conv2d backward: grad length"
    );
    assert_eq!(
        dx.len(),
        shape.batch * shape.image_len(),
        "conv2d backward: input length"
    );
    if sliding::applies(shape) {
        return sliding::backward_input(shape, weight, dy, dx);
    }
    let dx = crate::out::zeroed(dx);
    let group = shape.group();
    let wt = Layout::row_major(o, k).t();
    dx.par_chunks_mut((group * shape.image_len()).max(1))
        .zip(dy.par_chunks((group * shape.out_image_len()).max(1)))
        .for_each(|(dx, dy)| {
            with_scratch(shape, |col, grouped| {
                let columns = dx.len() / shape.image_len().max(1) * p;
                let (grads, cols) = (Layout::row_major(o, columns), Layout::row_major(k, columns));
                let dy: &[f32] = if columns == p {
                    dy
                } else {
                    gather(dy, &mut grouped[..o * columns], o, p);
                    &grouped[..o * columns]
                };
                if shape.direct() {
                    matmul(dx, cols, weight, wt, dy, grads, false);
                    return;
                }
                let col = &mut col[..k * columns];
                matmul(col, cols, weight, wt, dy, grads, false);
                dx.fill(0.0);
                for (i, image) in dx.chunks_exact_mut(shape.image_len().max(1)).enumerate() {
                    col2im(shape, &mut col[i * p..], columns, image);
                }
            })
        });
}

/// Number of partial sums the weight gradient is split into: a function of the shape only (so
/// the summation order, and the result, never depends on the thread count), at most 16, and at
/// most about 64 MiB of partial sums.
fn weight_chunks(shape: &ConvShape) -> usize {
    let per_chunk = shape.out_channels * shape.patch() * 4;
    (64 << 20) / per_chunk.max(1)
}

/// The gradient of the weight: `dw = Σ_n dy_n · col_nᵀ`, in fixed chunks of the batch (each a
/// whole number of groups), one product per group.
pub fn backward_weight(shape: &ConvShape, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (k, p, o, n) = (
        shape.patch(),
        shape.pixels(),
        shape.out_channels,
        shape.batch,
    );
    assert_eq!(
        x.len(),
        n * shape.image_len(),
        "conv2d backward: input length"
    );
    assert_eq!(
        dy.len(),
        n * shape.out_image_len(),
        "conv2d backward: grad length"
    );
    assert_eq!(dw.len(), o * k, "conv2d backward: weight length");
    if sliding::applies(shape) {
        return sliding::backward_weight(shape, x, dy, dw);
    }
    let group = shape.group();
    let groups = n.div_ceil(group).max(1);
    let chunks = weight_chunks(shape).clamp(1, 16).min(groups);
    let per_chunk = groups.div_ceil(chunks) * group;
    // Each partial sum is column-major (`dw[o, k]` at `k·O + o`): with the `O x K` product in
    // that layout, gemm streams the column matrix unpacked (it packs only the small `dy`).
    let dw_layout = Layout::row_major(k, o).t();
    let (x_len, dy_len) = (shape.image_len(), shape.out_image_len());
    let partials: Vec<Vec<f32>> = (0..n.div_ceil(per_chunk).max(1))
        .into_par_iter()
        .map(|chunk| {
            let mut acc = vec![0.0f32; o * k];
            let images = (chunk * per_chunk)..((chunk + 1) * per_chunk).min(n);
            with_scratch(shape, |col, grouped| {
                for (i, first) in images.clone().step_by(group).enumerate() {
                    let last = (first + group).min(images.end);
                    let columns = (last - first) * p;
                    let x = &x[first * x_len..last * x_len];
                    let dy = &dy[first * dy_len..last * dy_len];
                    let col: &[f32] = if shape.direct() {
                        x
                    } else {
                        lower_group(shape, x, col);
                        col
                    };
                    let dy: &[f32] = if columns == p {
                        dy
                    } else {
                        gather(dy, &mut grouped[..o * columns], o, p);
                        &grouped[..o * columns]
                    };
                    let (grads, cols_t) = (
                        Layout::row_major(o, columns),
                        Layout::row_major(k, columns).t(),
                    );
                    matmul(&mut acc, dw_layout, dy, grads, col, cols_t, i > 0);
                }
            });
            acc
        })
        .collect();
    sum_in_order(&partials, dw, o, k);
}

/// `out = Σ parts` (`out`: `rows x cols` row-major, every part column-major), added in the
/// order given, parallel over rows.
fn sum_in_order(parts: &[Vec<f32>], out: &mut [f32], rows: usize, cols: usize) {
    out.par_chunks_mut(cols.max(1))
        .enumerate()
        .for_each(|(r, out)| {
            out.fill(0.0);
            for part in parts {
                for (c, o) in out.iter_mut().enumerate() {
                    *o += part[c * rows + r];
                }
            }
        });
}

/// The gradient of the bias: `db_o = Σ_n Σ_pixels dy[n, o]`.
pub fn backward_bias(shape: &ConvShape, dy: &[f32], db: &mut [f32]) {
    let (p, o) = (shape.pixels(), shape.out_channels);
    assert_eq!(db.len(), o, "conv2d backward: bias length");
    db.par_iter_mut().enumerate().for_each(|(c, db)| {
        *db = (0..shape.batch)
            .map(|n| sum(&dy[(n * o + c) * p..][..p]))
            .fold(0.0, |a, b| a + b);
    });
}

/// A sum with eight independent accumulators (vectorises; a fixed order, so deterministic).
pub(crate) fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(chunk) {
            *l += *v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The definition, one multiply-add at a time.
    pub(crate) fn naive_forward(
        s: &ConvShape,
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
    ) -> Vec<f32> {
        let (oh, ow) = (s.out_height(), s.out_width());
        let mut y = vec![0.0; s.batch * s.out_channels * oh * ow];
        for n in 0..s.batch {
            for o in 0..s.out_channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = b.map_or(0.0, |b| b[o]) as f64;
                        for c in 0..s.in_channels {
                            for ki in 0..s.kernel[0] {
                                for kj in 0..s.kernel[1] {
                                    let iy =
                                        (oy * s.stride[0] + ki) as isize - s.padding[0].0 as isize;
                                    let ix =
                                        (ox * s.stride[1] + kj) as isize - s.padding[1].0 as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= s.height as isize
                                        || ix >= s.width as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((n * s.in_channels + c) * s.height + iy as usize)
                                        * s.width
                                        + ix as usize];
                                    let wv = w[((o * s.in_channels + c) * s.kernel[0] + ki)
                                        * s.kernel[1]
                                        + kj];
                                    acc += (xv * wv) as f64;
                                }
                            }
                        }
                        y[((n * s.out_channels + o) * oh + oy) * ow + ox] = acc as f32;
                    }
                }
            }
        }
        y
    }

    pub(crate) fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn forward_matches_the_definition_on_odd_shapes() {
        for (kernel, stride, padding) in [
            ([3, 3], [1, 1], [(1, 1), (1, 1)]),
            ([3, 3], [2, 2], [(1, 1), (1, 1)]),
            ([1, 1], [1, 1], [(0, 0), (0, 0)]),
            ([1, 1], [2, 2], [(0, 0), (0, 0)]),
            ([3, 2], [2, 1], [(0, 0), (1, 1)]),
            ([3, 3], [2, 2], [(0, 1), (2, 0)]),
        ] {
            let s = ConvShape {
                batch: 3,
                in_channels: 5,
                height: 7,
                width: 6,
                out_channels: 4,
                kernel,
                stride,
                padding,
            };
            let x = values(s.batch * s.image_len(), 1);
            let w = values(s.out_channels * s.patch(), 2);
            let b = values(s.out_channels, 3);
            let mut y = vec![f32::NAN; s.batch * s.out_image_len()];
            forward(&s, &x, &w, Some(&b), &mut y);
            let expected = naive_forward(&s, &x, &w, Some(&b));
            for (a, e) in y.iter().zip(&expected) {
                assert!((a - e).abs() < 1e-4, "{s:?}: {a} vs {e}");
            }
        }
    }
}
