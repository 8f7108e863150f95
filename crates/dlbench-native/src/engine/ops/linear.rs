//! Dense (`x W^T + b`) and MatMul, each product one `sgemm` call; the backward products use
//! transposed views, never transposed copies.

use super::Buf;
use crate::kernels::gemm::{sgemm, MatRef};

/// Column sums of a row-major `rows x cols` matrix, accumulated in f64: a bias gradient sums
/// over the whole batch, where f32 accumulation would drift from the reference.
pub(super) fn column_sums(data: &[f32], cols: usize) -> Vec<f32> {
    let mut sums = vec![0.0f64; cols];
    if cols > 0 {
        for row in data.chunks_exact(cols) {
            for (s, v) in sums.iter_mut().zip(row) {
                *s += f64::from(*v);
            }
        }
    }
    sums.into_iter().map(|s| s as f32).collect()
}

/// The number of rows of `[.., last]`: every dim but the last, multiplied.
fn leading(shape: &[usize]) -> usize {
    shape[..shape.len() - 1].iter().product()
}

/// `x [.., in]`, `w [out, in]`, `b [out]` -> `[.., out]`.
pub fn dense(x: &Buf, w: &Buf, b: Option<&Buf>, threads: usize) -> Buf {
    let (out_f, in_f) = (w.shape[0], w.shape[1]);
    let rows = leading(&x.shape);
    let mut y = vec![0.0; rows * out_f];
    // The bias goes into C first, so one sgemm with beta = 1 finishes the sum.
    let beta = match b {
        Some(b) if out_f > 0 => {
            for row in y.chunks_exact_mut(out_f) {
                row.copy_from_slice(&b.data);
            }
            1.0
        }
        _ => 0.0,
    };
    sgemm(
        1.0,
        MatRef::row_major(&x.data, rows, in_f),
        MatRef::row_major(&w.data, out_f, in_f).t(),
        beta,
        &mut y,
        out_f,
        threads,
    );
    let mut shape = x.shape.clone();
    *shape.last_mut().expect("x has at least one dim") = out_f;
    Buf::new(shape, y)
}

/// Returns (dx if `need_dx`, dw, db if `has_bias`).
pub fn dense_backward(
    x: &Buf,
    w: &Buf,
    has_bias: bool,
    dy: &[f32],
    need_dx: bool,
    threads: usize,
) -> (Option<Vec<f32>>, Vec<f32>, Option<Vec<f32>>) {
    let (out_f, in_f) = (w.shape[0], w.shape[1]);
    let rows = leading(&x.shape);
    let dy_m = MatRef::row_major(dy, rows, out_f);
    let dx = need_dx.then(|| {
        // dx = dy W: [rows, out] x [out, in].
        let mut dx = vec![0.0; rows * in_f];
        let w_m = MatRef::row_major(&w.data, out_f, in_f);
        sgemm(1.0, dy_m, w_m, 0.0, &mut dx, in_f, threads);
        dx
    });
    // dW = dy^T x: [out, rows] x [rows, in].
    let mut dw = vec![0.0; out_f * in_f];
    let x_m = MatRef::row_major(&x.data, rows, in_f);
    sgemm(1.0, dy_m.t(), x_m, 0.0, &mut dw, in_f, threads);
    let db = has_bias.then(|| column_sums(dy, out_f));
    (dx, dw, db)
}

/// The sizes of a product: (batch, m, k, n, whether b has the batch dims).
fn matmul_dims(a: &Buf, b: &Buf) -> (usize, usize, usize, usize, bool) {
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
    let batch = a.shape[..ra - 2].iter().product();
    (batch, m, k, n, rb > 2)
}

/// `a [.., m, k]` by `b [k, n]` or `[.., k, n]` (same leading dims). A shared 2-D `b` makes
/// the whole batch one `[batch * m, k] x [k, n]` product.
pub fn matmul(a: &Buf, b: &Buf, threads: usize) -> Buf {
    let (batch, m, k, n, b_batched) = matmul_dims(a, b);
    let mut y = vec![0.0; batch * m * n];
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
            &mut y,
            n,
            threads,
        );
    }
    let ra = a.shape.len();
    let mut shape = a.shape[..ra - 2].to_vec();
    shape.extend([m, n]);
    Buf::new(shape, y)
}

/// Returns (da if `need_da`, db); a shared 2-D `b` collects the gradient of every batch entry.
pub fn matmul_backward(
    a: &Buf,
    b: &Buf,
    dy: &[f32],
    need_da: bool,
    threads: usize,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let (batch, m, k, n, b_batched) = matmul_dims(a, b);
    let mut da = need_da.then(|| vec![0.0; a.data.len()]);
    let mut db = vec![0.0; b.data.len()];
    if b_batched {
        for t in 0..batch {
            let a_t = MatRef::row_major(&a.data[t * m * k..(t + 1) * m * k], m, k);
            let b_t = MatRef::row_major(&b.data[t * k * n..(t + 1) * k * n], k, n);
            let dy_t = MatRef::row_major(&dy[t * m * n..(t + 1) * m * n], m, n);
            if let Some(da) = &mut da {
                let c = &mut da[t * m * k..(t + 1) * m * k];
                sgemm(1.0, dy_t, b_t.t(), 0.0, c, k, threads);
            }
            let c = &mut db[t * k * n..(t + 1) * k * n];
            sgemm(1.0, a_t.t(), dy_t, 0.0, c, n, threads);
        }
    } else {
        let a_m = MatRef::row_major(&a.data, batch * m, k);
        let b_m = MatRef::row_major(&b.data, k, n);
        let dy_m = MatRef::row_major(dy, batch * m, n);
        if let Some(da) = &mut da {
            sgemm(1.0, dy_m, b_m.t(), 0.0, da, k, threads);
        }
        sgemm(1.0, a_m.t(), dy_m, 0.0, &mut db, n, threads);
    }
    (da, db)
}
