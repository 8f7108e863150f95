//! Dense (`x W^T + b`) and MatMul.

use dlbench_core::Tensor;

fn f64s(t: &Tensor) -> &[f64] {
    t.as_f64().expect("reference tensors are f64")
}

fn tensor(shape: Vec<usize>, data: Vec<f64>) -> Tensor {
    Tensor::f64(shape, data).expect("element count matches shape")
}

/// `x [.., in]`, `w [out, in]`, `b [out]` -> `[.., out]`.
pub fn dense(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
    let rows = x.len() / in_f;
    let (xs, ws) = (f64s(x), f64s(w));
    let mut y = vec![0.0; rows * out_f];
    for r in 0..rows {
        for o in 0..out_f {
            let mut acc = b.map_or(0.0, |b| f64s(b)[o]);
            for i in 0..in_f {
                acc += xs[r * in_f + i] * ws[o * in_f + i];
            }
            y[r * out_f + o] = acc;
        }
    }
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("x has at least one dim") = out_f;
    tensor(shape, y)
}

/// Returns (dx, dw, db if has_bias).
pub fn dense_backward(
    x: &Tensor,
    w: &Tensor,
    has_bias: bool,
    dy: &Tensor,
) -> (Tensor, Tensor, Option<Tensor>) {
    let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
    let rows = x.len() / in_f;
    let (xs, ws, dys) = (f64s(x), f64s(w), f64s(dy));
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; out_f];
    for r in 0..rows {
        for o in 0..out_f {
            let g = dys[r * out_f + o];
            db[o] += g;
            for i in 0..in_f {
                dx[r * in_f + i] += g * ws[o * in_f + i];
                dw[o * in_f + i] += g * xs[r * in_f + i];
            }
        }
    }
    (
        tensor(x.shape().to_vec(), dx),
        tensor(w.shape().to_vec(), dw),
        has_bias.then(|| tensor(vec![out_f], db)),
    )
}

/// The sizes of a product: (batch, m, k, n, whether b has the batch dims).
fn matmul_dims(a: &Tensor, b: &Tensor) -> (usize, usize, usize, usize, bool) {
    let (ra, rb) = (a.shape().len(), b.shape().len());
    let (m, k, n) = (a.shape()[ra - 2], a.shape()[ra - 1], b.shape()[rb - 1]);
    let batch = a.shape()[..ra - 2].iter().product();
    (batch, m, k, n, rb > 2)
}

/// `a [.., m, k]` by `b [k, n]` or `[.., k, n]` (same leading dims).
pub fn matmul(a: &Tensor, b: &Tensor) -> Tensor {
    let (batch, m, k, n, b_batched) = matmul_dims(a, b);
    let (xa, xb) = (f64s(a), f64s(b));
    let mut y = vec![0.0; batch * m * n];
    for t in 0..batch {
        let a_off = t * m * k;
        let b_off = if b_batched { t * k * n } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for p in 0..k {
                    acc += xa[a_off + i * k + p] * xb[b_off + p * n + j];
                }
                y[t * m * n + i * n + j] = acc;
            }
        }
    }
    let ra = a.shape().len();
    let mut shape = a.shape()[..ra - 2].to_vec();
    shape.extend([m, n]);
    tensor(shape, y)
}

/// Returns (da, db); a shared 2-D `b` collects the gradient of every batch entry.
pub fn matmul_backward(a: &Tensor, b: &Tensor, dy: &Tensor) -> (Tensor, Tensor) {
    let (batch, m, k, n, b_batched) = matmul_dims(a, b);
    let (xa, xb, dys) = (f64s(a), f64s(b), f64s(dy));
    let mut da = vec![0.0; a.len()];
    let mut db = vec![0.0; b.len()];
    for t in 0..batch {
        let a_off = t * m * k;
        let b_off = if b_batched { t * k * n } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let g = dys[t * m * n + i * n + j];
                for p in 0..k {
                    da[a_off + i * k + p] += g * xb[b_off + p * n + j];
                    db[b_off + p * n + j] += g * xa[a_off + i * k + p];
                }
            }
        }
    }
    (
        tensor(a.shape().to_vec(), da),
        tensor(b.shape().to_vec(), db),
    )
}
