//! Lowering one image to its column matrix (im2col) and back (col2im, its adjoint).

use super::ConvShape;

/// One output row of one patch entry: `col[col..col + OW]` holds the input values
/// `image[first + i·sw]` for `i` in `lo..hi` (zeros elsewhere), or only zeros when its input
/// row lies in the padding (`first` is `None`).
struct Segment {
    col: usize,
    first: Option<usize>,
    lo: usize,
    hi: usize,
}

/// Calls `f` on every segment of one image's column matrix, whose rows are `ld` apart, in
/// order: the index arithmetic that im2col and its adjoint col2im share (nested loops, not an
/// iterator: this is the hot path and must inline).
#[inline(always)]
fn for_each_segment(shape: &ConvShape, ld: usize, mut f: impl FnMut(Segment)) {
    let [kh, kw] = shape.kernel;
    let (oh, ow, hw) = (
        shape.out_height(),
        shape.out_width(),
        shape.height * shape.width,
    );
    let (sw, pw) = (shape.stride[1], shape.padding[1].0);
    for c in 0..shape.in_channels {
        for ki in 0..kh {
            for kj in 0..kw {
                let row = (c * kh + ki) * kw + kj;
                let (lo, hi) = shape.valid_columns(kj);
                for oy in 0..oh {
                    let first = shape
                        .input_row(oy, ki)
                        .map(|iy| c * hw + iy * shape.width + lo * sw + kj - pw);
                    f(Segment {
                        col: row * ld + oy * ow,
                        first,
                        lo,
                        hi,
                    });
                }
            }
        }
    }
}

/// The narrowest images whose patch entries are added back as whole shifted runs
/// ([`col2im_shifted`]): on narrower ones the runs are too short to pay for zeroing their
/// edges in the column matrix (measured with `examples/conv_profile` on VGG-16's 8x8 to 2x2
/// layers; im2col's shifted runs win at every width).
const COL2IM_MIN_WIDTH: usize = 16;

/// Whether `shape` lowers by shifted runs: stride 1, output rows as wide as the input's, and
/// images at least `min_width` wide.
fn shifted(shape: &ConvShape, min_width: usize) -> bool {
    shape.stride == [1, 1] && shape.out_width() == shape.width && shape.width >= min_width
}

/// Fills `col` (`K x P`, rows `ld` apart) with the patches of one image (`C x H x W`).
pub(super) fn im2col(shape: &ConvShape, image: &[f32], col: &mut [f32], ld: usize) {
    if shifted(shape, 1) {
        im2col_shifted(shape, image, col, ld);
    } else {
        im2col_rows(shape, image, col, ld);
    }
}

/// [`im2col`] one output row of one patch entry at a time: any shape.
fn im2col_rows(shape: &ConvShape, image: &[f32], col: &mut [f32], ld: usize) {
    let (ow, sw) = (shape.out_width(), shape.stride[1]);
    for_each_segment(
        shape,
        ld,
        |Segment {
             col: at,
             first,
             lo,
             hi,
         }| {
            let seg = &mut col[at..at + ow];
            let Some(first) = first else {
                seg.fill(0.0);
                return;
            };
            seg[..lo].fill(0.0);
            seg[hi..].fill(0.0);
            if sw == 1 {
                seg[lo..hi].copy_from_slice(&image[first..first + hi - lo]);
            } else {
                for (dst, src) in seg[lo..hi]
                    .iter_mut()
                    .zip(image[first..].iter().step_by(sw))
                {
                    *dst = *src;
                }
            }
        },
    );
}

/// The first and last output rows whose input row under kernel row `ki` lies inside the image
/// (with stride 1 the rows between them do too), if any.
fn valid_rows(shape: &ConvShape, ki: usize) -> Option<(usize, usize)> {
    let mut rows = (0..shape.out_height()).filter(|&oy| shape.input_row(oy, ki).is_some());
    let first = rows.next()?;
    Some((first, rows.next_back().unwrap_or(first)))
}

/// Where one patch entry's valid output rows lie on a shifted shape (see [`for_each_run`]):
/// output rows `first..=last` read inside the image, as one run of the column matrix whose
/// element `j` is the image's `from + j - lo` for `j` in `lo..hi` (outside the image elsewhere);
/// in each of the run's rows the first `left` and last `right` columns fall off the image's
/// edge.
struct Run {
    first: usize,
    last: usize,
    lo: usize,
    hi: usize,
    from: usize,
    left: usize,
    right: usize,
}

/// Calls `f` with the offset of every patch entry's row in a column matrix whose rows are `ld`
/// apart, in order, and its [`Run`] (`None` when every output row reads padding): the index
/// arithmetic [`im2col_shifted`] and [`col2im_shifted`] share.
#[inline(always)]
fn for_each_run(shape: &ConvShape, ld: usize, mut f: impl FnMut(usize, Option<Run>)) {
    let [kh, kw] = shape.kernel;
    let (w, hw, len) = (shape.width, shape.height * shape.width, shape.image_len());
    let pw = shape.padding[1].0;
    for c in 0..shape.in_channels {
        for ki in 0..kh {
            let rows = valid_rows(shape, ki);
            for kj in 0..kw {
                let row = ((c * kh + ki) * kw + kj) * ld;
                let run = rows.map(|(first, last)| {
                    let iy = shape.input_row(first, ki).unwrap_or(0);
                    let (start, run_len) = (
                        (c * hw + iy * w + kj) as isize - pw as isize,
                        (last + 1 - first) * w,
                    );
                    let lo = (-start).clamp(0, run_len as isize) as usize;
                    let hi = (len as isize - start).clamp(lo as isize, run_len as isize) as usize;
                    Run {
                        first,
                        last,
                        lo,
                        hi,
                        from: (start + lo as isize) as usize,
                        left: pw.saturating_sub(kj),
                        right: (kj + w).saturating_sub(w + pw),
                    }
                });
                f(row, run);
            }
        }
    }
}

/// Zeroes the first `left` and last `right` columns of every row (`w` wide) of `run`.
fn zero_edges(run: &mut [f32], w: usize, left: usize, right: usize) {
    if left + right > 0 {
        for out_row in run.chunks_exact_mut(w) {
            out_row[..left.min(w)].fill(0.0);
            out_row[w - right.min(w)..].fill(0.0);
        }
    }
}

/// [`im2col`] where the output rows are as wide as the input's (stride 1, padding `kw - 1`
/// across in all): a patch entry's valid output rows are then one shifted run of its channel's
/// plane, copied at once, with the columns that fall off the row's edge zeroed afterwards.
fn im2col_shifted(shape: &ConvShape, image: &[f32], col: &mut [f32], ld: usize) {
    let (w, oh) = (shape.width, shape.out_height());
    for_each_run(shape, ld, |row, run| {
        let row = &mut col[row..][..oh * w];
        let Some(r) = run else {
            row.fill(0.0);
            return;
        };
        row[..r.first * w].fill(0.0);
        row[(r.last + 1) * w..].fill(0.0);
        let run = &mut row[r.first * w..(r.last + 1) * w];
        run[..r.lo].fill(0.0);
        run[r.hi..].fill(0.0);
        run[r.lo..r.hi].copy_from_slice(&image[r.from..r.from + r.hi - r.lo]);
        zero_edges(run, w, r.left, r.right);
    });
}

/// Adds the columns of `col` (`K x P`, rows `ld` apart) back onto one image's gradient
/// (`C x H x W`), which the caller has zeroed.
pub(super) fn col2im(shape: &ConvShape, col: &mut [f32], ld: usize, image: &mut [f32]) {
    if shifted(shape, COL2IM_MIN_WIDTH) {
        col2im_shifted(shape, col, ld, image);
    } else {
        col2im_rows(shape, col, ld, image);
    }
}

/// [`col2im`] one output row of one patch entry at a time: any shape.
fn col2im_rows(shape: &ConvShape, col: &[f32], ld: usize, image: &mut [f32]) {
    let sw = shape.stride[1];
    for_each_segment(
        shape,
        ld,
        |Segment {
             col: at,
             first,
             lo,
             hi,
         }| {
            let Some(first) = first else { return };
            let seg = &col[at + lo..at + hi];
            if sw == 1 {
                for (d, s) in image[first..first + hi - lo].iter_mut().zip(seg) {
                    *d += *s;
                }
            } else {
                for (d, s) in image[first..].iter_mut().step_by(sw).zip(seg) {
                    *d += *s;
                }
            }
        },
    );
}

/// [`col2im`] on the shapes of [`im2col_shifted`]: each patch entry's valid rows are added
/// onto its channel's plane as one shifted run, after the columns that fell off a row's edge
/// are zeroed in `col` (which is why it is mutable). Every element receives its terms in the
/// same order as by rows.
fn col2im_shifted(shape: &ConvShape, col: &mut [f32], ld: usize, image: &mut [f32]) {
    let w = shape.width;
    for_each_run(shape, ld, |row, run| {
        let Some(r) = run else { return };
        let run = &mut col[row + r.first * w..row + (r.last + 1) * w];
        zero_edges(run, w, r.left, r.right);
        for (d, s) in image[r.from..r.from + r.hi - r.lo]
            .iter_mut()
            .zip(&run[r.lo..r.hi])
        {
            *d += *s;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::values;

    /// The column matrix by its definition, one entry at a time.
    fn naive_im2col(s: &ConvShape, image: &[f32]) -> Vec<f32> {
        let (oh, ow) = (s.out_height(), s.out_width());
        let mut col = Vec::with_capacity(s.patch() * oh * ow);
        for c in 0..s.in_channels {
            for ki in 0..s.kernel[0] {
                for kj in 0..s.kernel[1] {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let iy = (oy * s.stride[0] + ki) as isize - s.padding[0].0 as isize;
                            let ix = (ox * s.stride[1] + kj) as isize - s.padding[1].0 as isize;
                            let inside = (0..s.height as isize).contains(&iy)
                                && (0..s.width as isize).contains(&ix);
                            col.push(if inside {
                                image[(c * s.height + iy as usize) * s.width + ix as usize]
                            } else {
                                0.0
                            });
                        }
                    }
                }
            }
        }
        col
    }

    /// (kernel, stride, padding): the first four take the shifted paths, the rest the
    /// per-row ones (a vertical stride, or rows narrower than the input's).
    type Geometry = ([usize; 2], [usize; 2], [(usize, usize); 2]);
    const SHAPES: [Geometry; 7] = [
        ([3, 3], [1, 1], [(1, 1), (1, 1)]),
        ([3, 3], [1, 1], [(0, 2), (2, 0)]),
        ([1, 5], [1, 1], [(0, 0), (1, 3)]),
        ([5, 3], [1, 1], [(2, 2), (0, 2)]),
        ([3, 3], [2, 1], [(1, 1), (1, 1)]),
        ([3, 3], [1, 2], [(1, 1), (1, 1)]),
        ([3, 3], [1, 1], [(0, 0), (0, 0)]),
    ];

    fn shapes() -> impl Iterator<Item = ConvShape> {
        SHAPES
            .into_iter()
            .map(|(kernel, stride, padding)| ConvShape {
                batch: 1,
                in_channels: 3,
                height: 5,
                width: 4,
                out_channels: 1,
                kernel,
                stride,
                padding,
            })
    }

    #[test]
    fn im2col_is_its_definition_on_both_paths() {
        for s in shapes() {
            let image = values(s.image_len(), 9);
            let mut col = vec![f32::NAN; s.patch() * s.pixels()];
            im2col(&s, &image, &mut col, s.pixels());
            assert_eq!(col, naive_im2col(&s, &image), "{s:?}");
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col_and_its_shifted_path_adds_as_the_rows_do() {
        for s in shapes() {
            // <im2col(x), c> = <x, col2im(c)> for every x, c: the input gradient is exact.
            let x = values(s.image_len(), 4);
            let c = values(s.patch() * s.pixels(), 5);
            let mut col = vec![0.0; c.len()];
            im2col(&s, &x, &mut col, s.pixels());
            let mut back = vec![0.0; x.len()];
            col2im(&s, &mut c.clone(), s.pixels(), &mut back);
            let lhs: f64 = col.iter().zip(&c).map(|(a, b)| (a * b) as f64).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| (a * b) as f64).sum();
            assert!((lhs - rhs).abs() < 1e-4, "{s:?}: {lhs} vs {rhs}");
            let mut by_rows = vec![0.0; x.len()];
            col2im_rows(&s, &c, s.pixels(), &mut by_rows);
            assert_eq!(back, by_rows, "{s:?}");
            if shifted(&s, 1) {
                let mut by_runs = vec![0.0; x.len()];
                col2im_shifted(&s, &mut c.clone(), s.pixels(), &mut by_runs);
                assert_eq!(by_runs, by_rows, "{s:?}: shifted runs");
            }
        }
    }
}
