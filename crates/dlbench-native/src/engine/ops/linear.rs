//! Dense (`x W^T + b`) and MatMul, each product one `sgemm` call; the backward products use
//! transposed views, never transposed copies.

use super::layout::transpose_matrix;
use super::Buf;
use crate::kernels::gemm::{sgemm, sgemm_bias, MatRef};
use crate::kernels::isa::with_simd;
use crate::kernels::split::{self, Disjoint};

/// Column sums of a row-major `rows x cols` matrix into `sums`, accumulated in f64: a bias
/// gradient sums over the whole batch, where f32 accumulation would drift from the reference.
/// Split by bands of columns over `threads` when large (a batch-32 gradient of a 1000-wide
/// layer is 32 K floats).
pub(super) fn column_sums(data: &[f32], cols: usize, sums: &mut [f32], threads: usize) {
    if cols == 0 {
        return;
    }
    let rows = data.len() / cols;
    let bands = Disjoint::new(&mut sums[..cols]);
    split::for_ranges(threads, cols, BAND, rows, &|band| {
        // SAFETY: `for_ranges` hands each task its own columns, disjoint from the others'.
        let out = unsafe { bands.range(band.clone()) };
        with_simd(
            #[inline(always)]
            || band_sums(data, cols, band.start, out),
        );
    });
}

/// Columns summed at once: 32 f64 accumulators, four AVX-512 registers (eight AVX2 ones),
/// a fixed-size array that the compiler keeps in registers across the rows.
const BAND: usize = 32;

/// The sums of columns `first..first + out.len()` of the row-major `data` (`cols` wide).
/// Plain index loops: iterator adapters (`chunks_exact`, `step_by`) inlined into
/// [`with_simd`]'s AVX-512 function stayed scalar, 7x slower than these.
#[inline(always)]
fn band_sums(data: &[f32], cols: usize, first: usize, out: &mut [f32]) {
    let rows = data.len() / cols;
    for c0 in (0..out.len()).step_by(BAND) {
        let width = BAND.min(out.len() - c0);
        let mut acc = [0.0f64; BAND];
        if width == BAND {
            for r in 0..rows {
                let row = &data[r * cols + first + c0..r * cols + first + c0 + BAND];
                for i in 0..BAND {
                    acc[i] += f64::from(row[i]);
                }
            }
        } else {
            for r in 0..rows {
                let row = &data[r * cols + first + c0..r * cols + first + c0 + width];
                for i in 0..width {
                    acc[i] += f64::from(row[i]);
                }
            }
        }
        for i in 0..width {
            out[c0 + i] = acc[i] as f32;
        }
    }
}

/// The number of rows of `[.., last]`: every dim but the last, multiplied.
fn leading(shape: &[usize]) -> usize {
    shape[..shape.len() - 1].iter().product()
}

/// `x [.., in]`, `w [out, in]`, `b [out]` -> `y [.., out]`.
pub fn dense(x: &Buf, w: &Buf, b: Option<&Buf>, y: &mut [f32], threads: usize) {
    let (out_f, in_f) = (w.shape[0], w.shape[1]);
    let rows = leading(&x.shape);
    let x_m = MatRef::row_major(&x.data, rows, in_f);
    let w_t = MatRef::row_major(&w.data, out_f, in_f).t();
    product_with_bias(x_m, w_t, b, y, out_f, threads);
}

/// `y = x_m w_m + b` (row-major `y`, `width` wide), the bias added as `sgemm_bias` sees fit.
fn product_with_bias(
    x_m: MatRef,
    w_m: MatRef,
    b: Option<&Buf>,
    y: &mut [f32],
    width: usize,
    threads: usize,
) {
    match b {
        Some(b) => sgemm_bias(1.0, x_m, w_m, &b.data, y, width, threads),
        None => sgemm(1.0, x_m, w_m, 0.0, y, width, threads),
    }
}

/// Whether [`dense_laid_out`] beats [`dense`] on this product. Measured (seed workloads,
/// inference): with one row `sgemm` computes `x Wᵀ` as dot products of W's rows, which beats
/// reading `Wᵀ` (vae batch 1: 36.9 against 40.1 us), and below one 64-column tile the packing
/// saved is small and reading `Wᵀ` in place loses (mlp batch 32: 2.4 against 3.7 us); with
/// 32 rows and wide layers `Wᵀ` read in place wins (vae batch 32: 470 against 385 us).
pub fn lay_out_pays(x: &Buf, w: &Buf) -> bool {
    leading(&x.shape) > 1 && w.shape[0] >= 64
}

/// As [`dense`], for a weight that never changes: `Wᵀ` is laid out once (into `w_t`, on the
/// first call) so that `sgemm` reads it in place, instead of packing `W` transposed on every
/// call. (A training session cannot: its weights change every step.)
pub fn dense_laid_out(
    x: &Buf,
    w: &Buf,
    b: Option<&Buf>,
    y: &mut [f32],
    w_t: &mut Vec<f32>,
    threads: usize,
) {
    let (out_f, in_f) = (w.shape[0], w.shape[1]);
    if w_t.len() != w.data.len() {
        w_t.resize(w.data.len(), 0.0);
        transpose_matrix(&w.data, out_f, in_f, w_t);
    }
    let rows = leading(&x.shape);
    let x_m = MatRef::row_major(&x.data, rows, in_f);
    product_with_bias(
        x_m,
        MatRef::row_major(w_t, in_f, out_f),
        b,
        y,
        out_f,
        threads,
    );
}

/// Writes dx, dw and db where wanted.
pub fn dense_backward(
    x: &Buf,
    w: &Buf,
    dy: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
    threads: usize,
) {
    let (out_f, in_f) = (w.shape[0], w.shape[1]);
    let rows = leading(&x.shape);
    let dy_m = MatRef::row_major(dy, rows, out_f);
    if let Some(dx) = dx {
        // dx = dy W: [rows, out] x [out, in].
        let w_m = MatRef::row_major(&w.data, out_f, in_f);
        sgemm(1.0, dy_m, w_m, 0.0, dx, in_f, threads);
    }
    if let Some(dw) = dw {
        // dW = dy^T x: [out, rows] x [rows, in].
        let x_m = MatRef::row_major(&x.data, rows, in_f);
        sgemm(1.0, dy_m.t(), x_m, 0.0, dw, in_f, threads);
    }
    if let Some(db) = db {
        column_sums(dy, out_f, db, threads);
    }
}

/// The sizes of a product: (batch, m, k, n, whether b has the batch dims).
fn matmul_dims(a: &Buf, b: &Buf) -> (usize, usize, usize, usize, bool) {
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
    let batch = a.shape[..ra - 2].iter().product();
    (batch, m, k, n, rb > 2)
}

/// `a [.., m, k]` by `b [k, n]` or `[.., k, n]` (same leading dims) into `y [.., m, n]`. A
/// shared 2-D `b` makes the whole batch one `[batch * m, k] x [k, n]` product.
pub fn matmul(a: &Buf, b: &Buf, y: &mut [f32], threads: usize) {
    let (batch, m, k, n, b_batched) = matmul_dims(a, b);
    if b_batched {
        for t in 0..batch {
            sgemm(
                1.0,
                MatRef::row_major(&a.data[t * m * k..(t + 1) * m * k], m, k),
                MatRef::row_major(&b.data[t * k * n..(t + 1) * k * n], k, n),
                0.0,
                &mut y[t * m * n..(t + 1) * m * n],
                n,
                threads,
            );
        }
    } else {
        sgemm(
            1.0,
            MatRef::row_major(&a.data, batch * m, k),
            MatRef::row_major(&b.data, k, n),
            0.0,
            y,
            n,
            threads,
        );
    }
}

/// Writes da and db where wanted; a shared 2-D `b` collects the gradient of every batch
/// entry.
pub fn matmul_backward(
    a: &Buf,
    b: &Buf,
    dy: &[f32],
    mut da: Option<&mut [f32]>,
    mut db: Option<&mut [f32]>,
    threads: usize,
) {
    let (batch, m, k, n, b_batched) = matmul_dims(a, b);
    if b_batched {
        for t in 0..batch {
            let a_t = MatRef::row_major(&a.data[t * m * k..(t + 1) * m * k], m, k);
            let b_t = MatRef::row_major(&b.data[t * k * n..(t + 1) * k * n], k, n);
            let dy_t = MatRef::row_major(&dy[t * m * n..(t + 1) * m * n], m, n);
            if let Some(da) = da.as_deref_mut() {
                let c = &mut da[t * m * k..(t + 1) * m * k];
                sgemm(1.0, dy_t, b_t.t(), 0.0, c, k, threads);
            }
            if let Some(db) = db.as_deref_mut() {
                let c = &mut db[t * k * n..(t + 1) * k * n];
                sgemm(1.0, a_t.t(), dy_t, 0.0, c, n, threads);
            }
        }
    } else {
        let a_m = MatRef::row_major(&a.data, batch * m, k);
        let b_m = MatRef::row_major(&b.data, k, n);
        let dy_m = MatRef::row_major(dy, batch * m, n);
        if let Some(da) = da {
            sgemm(1.0, dy_m, b_m.t(), 0.0, da, k, threads);
        }
        if let Some(db) = db {
            sgemm(1.0, a_m.t(), dy_m, 0.0, db, n, threads);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::column_sums;

    /// Bias gradients: every column's sum, in f64 then rounded once, whole bands and a ragged
    /// last one alike; the same bits on 1, 2 and 3 threads (the 40 x 1000 case is large enough
    /// to split).
    #[test]
    fn column_sums_are_f64_sums_on_any_thread_count() {
        for (rows, cols) in [(3, 5), (40, 1000), (7, 33)] {
            let data: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 7919) % 1013) as f32 * 0.37 - 180.0)
                .collect();
            let want: Vec<f32> = (0..cols)
                .map(|c| {
                    (0..rows)
                        .map(|r| f64::from(data[r * cols + c]))
                        .sum::<f64>() as f32
                })
                .collect();
            for threads in [1, 2, 3] {
                let mut sums = vec![f32::NAN; cols];
                column_sums(&data, cols, &mut sums, threads);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&sums),
                    bits(&want),
                    "{rows} x {cols} on {threads} threads"
                );
            }
        }
    }
}
