//! A bounds-checked, safe front to the `gemm` crate's f32 matrix multiply (the same kernels
//! burn's flex backend uses, AVX-512 where the CPU has it).

/// A strided view of a matrix stored in a slice: element `(i, j)` is at
/// `i * row_stride + j * col_stride`.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl Layout {
    /// A row-major `rows x cols` matrix.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Layout {
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of this view (no data moves).
    pub fn t(self) -> Self {
        Layout {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// One past the largest offset the view touches (0 for an empty matrix).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` with `accumulate`), single-threaded: callers
/// parallelise over independent products, which keeps results independent of the thread count.
///
/// # Panics
/// If the shapes do not agree or a view reaches past its slice.
pub fn matmul(
    dst: &mut [f32],
    dst_layout: Layout,
    lhs: &[f32],
    lhs_layout: Layout,
    rhs: &[f32],
    rhs_layout: Layout,
    accumulate: bool,
) {
    let (m, k, n) = (lhs_layout.rows, lhs_layout.cols, rhs_layout.cols);
    assert_eq!(rhs_layout.rows, k, "matmul: inner dimensions differ");
    assert_eq!(
        (dst_layout.rows, dst_layout.cols),
        (m, n),
        "matmul: output shape differs"
    );
    assert!(
        dst_layout.extent() <= dst.len(),
        "matmul: output view past its slice"
    );
    assert!(
        lhs_layout.extent() <= lhs.len(),
        "matmul: lhs view past its slice"
    );
    assert!(
        rhs_layout.extent() <= rhs.len(),
        "matmul: rhs view past its slice"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * dst_layout.row_stride + j * dst_layout.col_stride] = 0.0;
                }
            }
        }
        return;
    }
    // SAFETY: every offset gemm reads or writes is `i * row_stride + j * col_stride` with
    // i < rows and j < cols of the view it belongs to, which the asserts above bound by the
    // length of that view's slice; `dst` is borrowed mutably, so it aliases neither input.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_layout.col_stride as isize,
            dst_layout.row_stride as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_layout.col_stride as isize,
            lhs_layout.row_stride as isize,
            rhs.as_ptr(),
            rhs_layout.col_stride as isize,
            rhs_layout.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn products_and_transposed_views_match_a_hand_loop() {
        let (m, n, k) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k).map(|v| v as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|v| (v as f32).sin()).collect();
        let expected = naive(m, n, k, &a, &b);

        let mut c = vec![f32::NAN; m * n];
        matmul(
            &mut c,
            Layout::row_major(m, n),
            &a,
            Layout::row_major(m, k),
            &b,
            Layout::row_major(k, n),
            false,
        );
        for (x, y) in c.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }

        // c^T = b^T a^T, written through transposed views, then accumulated once more.
        let mut ct = vec![0.0; m * n];
        let dst = Layout::row_major(m, n);
        for accumulate in [false, true] {
            matmul(
                &mut ct,
                dst.t(),
                &b,
                Layout::row_major(k, n).t(),
                &a,
                Layout::row_major(m, k).t(),
                accumulate,
            );
        }
        for (x, y) in ct.iter().zip(&expected) {
            assert!((x - 2.0 * y).abs() < 1e-4, "{x} vs 2 x {y}");
        }
    }

    #[test]
    #[should_panic(expected = "past its slice")]
    fn a_view_past_its_slice_is_refused() {
        let mut c = vec![0.0; 4];
        matmul(
            &mut c,
            Layout::row_major(2, 2),
            &[1.0; 3],
            Layout::row_major(2, 2),
            &[1.0; 4],
            Layout::row_major(2, 2),
            false,
        );
    }
}
