//! Element-wise activations (Relu, Sigmoid, Tanh, Exp, Scale), Softmax / LogSoftmax, Dropout.

use dlbench_core::ir::shape::normalize_axis;
use dlbench_core::{Mode, Tensor, UnaryOp};

fn f64s(t: &Tensor) -> &[f64] {
    t.as_f64().expect("reference tensors are f64")
}

fn tensor(shape: &[usize], data: Vec<f64>) -> Tensor {
    Tensor::f64(shape.to_vec(), data).expect("element count matches shape")
}

fn sigmoid(x: f64) -> f64 {
    // Split by sign so exp never overflows into inf/inf.
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

pub fn unary(op: UnaryOp, x: &Tensor) -> Tensor {
    let f = |v: f64| match op {
        // NaN must come out as NaN, as in PyTorch, so the oracle never hides a divergence.
        UnaryOp::Relu => {
            if v > 0.0 || v.is_nan() {
                v
            } else {
                0.0
            }
        }
        UnaryOp::Sigmoid => sigmoid(v),
        UnaryOp::Tanh => v.tanh(),
        UnaryOp::Exp => v.exp(),
        UnaryOp::Scale { factor } => factor * v,
    };
    tensor(x.shape(), f64s(x).iter().map(|&v| f(v)).collect())
}

/// Given x, y = unary(x) and dy.
pub fn unary_backward(op: UnaryOp, x: &Tensor, y: &Tensor, dy: &Tensor) -> Tensor {
    let (xs, ys, dys) = (f64s(x), f64s(y), f64s(dy));
    let dx = (0..xs.len())
        .map(|e| {
            let (x, y, g) = (xs[e], ys[e], dys[e]);
            match op {
                // The subgradient at exactly 0 is 0, as in PyTorch.
                UnaryOp::Relu => {
                    if x > 0.0 {
                        g
                    } else {
                        0.0
                    }
                }
                UnaryOp::Sigmoid => g * y * (1.0 - y),
                UnaryOp::Tanh => g * (1.0 - y * y),
                UnaryOp::Exp => g * y,
                UnaryOp::Scale { factor } => g * factor,
            }
        })
        .collect();
    tensor(x.shape(), dx)
}

/// The shape around `axis` as (outer, len, inner): element `(o, j, i)` is at
/// `(o * len + j) * inner + i`.
fn split_at_axis(axis: i64, shape: &[usize]) -> (usize, usize, usize) {
    let a = normalize_axis(axis, shape.len())
        .unwrap_or_else(|| panic!("axis {axis} is out of range for shape {shape:?}"));
    (
        shape[..a].iter().product(),
        shape[a],
        shape[a + 1..].iter().product(),
    )
}

/// Softmax (or LogSoftmax if `log`) along `axis` (negative counts from the end).
pub fn softmax(axis: i64, x: &Tensor, log: bool) -> Tensor {
    let (outer, len, inner) = split_at_axis(axis, x.shape());
    let xs = f64s(x);
    let mut y = vec![0.0; xs.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * len + j) * inner + i;
            // Subtracting the max keeps every exp in (0, 1]: no overflow.
            let max = (0..len)
                .map(|j| xs[at(j)])
                .fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..len).map(|j| (xs[at(j)] - max).exp()).sum();
            for j in 0..len {
                let shifted = xs[at(j)] - max;
                y[at(j)] = if log {
                    shifted - sum.ln()
                } else {
                    shifted.exp() / sum
                };
            }
        }
    }
    tensor(x.shape(), y)
}

/// Given y = softmax(x) (or log_softmax) and dy.
pub fn softmax_backward(axis: i64, y: &Tensor, dy: &Tensor, log: bool) -> Tensor {
    let (outer, len, inner) = split_at_axis(axis, y.shape());
    let (ys, dys) = (f64s(y), f64s(dy));
    let mut dx = vec![0.0; ys.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * len + j) * inner + i;
            if log {
                // d log_softmax_j / d x_k = [j == k] - softmax_k
                let total: f64 = (0..len).map(|j| dys[at(j)]).sum();
                for j in 0..len {
                    dx[at(j)] = dys[at(j)] - ys[at(j)].exp() * total;
                }
            } else {
                // d softmax_j / d x_k = softmax_j ([j == k] - softmax_k)
                let dot: f64 = (0..len).map(|j| dys[at(j)] * ys[at(j)]).sum();
                for j in 0..len {
                    dx[at(j)] = ys[at(j)] * (dys[at(j)] - dot);
                }
            }
        }
    }
    tensor(y.shape(), dx)
}

/// `1 / (1 - p)`, or 0 when every element is dropped (PyTorch returns zeros for p = 1,
/// where the formula would give 0/0).
fn keep_scale(p: f64) -> f64 {
    if p < 1.0 {
        1.0 / (1.0 - p)
    } else {
        0.0
    }
}

/// Training: `x * mask / (1 - p)`; inference: `x`.
pub fn dropout(p: f64, x: &Tensor, mask: &Tensor, mode: Mode) -> Tensor {
    match mode {
        Mode::Inference => x.clone(),
        Mode::Training => {
            let scale = keep_scale(p);
            let y = f64s(x)
                .iter()
                .zip(f64s(mask))
                .map(|(v, m)| v * m * scale)
                .collect();
            tensor(x.shape(), y)
        }
    }
}

/// The training-mode gradient with respect to x.
pub fn dropout_backward(p: f64, mask: &Tensor, dy: &Tensor) -> Tensor {
    let scale = keep_scale(p);
    let dx = f64s(dy)
        .iter()
        .zip(f64s(mask))
        .map(|(g, m)| g * m * scale)
        .collect();
    tensor(dy.shape(), dx)
}
