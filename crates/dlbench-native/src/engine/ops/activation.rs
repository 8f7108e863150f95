//! Element-wise activations (Relu, Sigmoid, Tanh, Exp, Scale), Softmax / LogSoftmax, Dropout.

use dlbench_core::ir::shape::normalize_axis;
use dlbench_core::{Mode, Op};

use super::Buf;

/// Split by sign so exp never overflows into inf/inf.
pub(super) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Applies `f` to every element; one closure per op keeps the match out of the loop.
fn map(x: &Buf, f: impl Fn(f32) -> f32) -> Buf {
    Buf::new(x.shape.clone(), x.data.iter().map(|&v| f(v)).collect())
}

/// The element-wise ops; any other op passes `x` through unchanged (the dispatcher never
/// sends one).
pub fn unary(op: &Op, x: &Buf) -> Buf {
    match op {
        // NaN must come out as NaN, as in PyTorch.
        Op::Relu => map(x, |v| if v > 0.0 || v.is_nan() { v } else { 0.0 }),
        Op::Sigmoid => map(x, sigmoid),
        Op::Tanh => map(x, f32::tanh),
        Op::Exp => map(x, f32::exp),
        Op::Scale { factor } => {
            let factor = *factor as f32;
            map(x, |v| factor * v)
        }
        _ => x.clone(),
    }
}

/// Given x, y = unary(x) and dy.
pub fn unary_backward(op: &Op, x: &Buf, y: &Buf, dy: &[f32]) -> Vec<f32> {
    let zip = |f: &dyn Fn(f32, f32, f32) -> f32| -> Vec<f32> {
        x.data
            .iter()
            .zip(&y.data)
            .zip(dy)
            .map(|((&x, &y), &g)| f(x, y, g))
            .collect()
    };
    match op {
        // The subgradient at exactly 0 is 0, as in PyTorch.
        Op::Relu => zip(&|x, _, g| if x > 0.0 { g } else { 0.0 }),
        Op::Sigmoid => zip(&|_, y, g| g * y * (1.0 - y)),
        Op::Tanh => zip(&|_, y, g| g * (1.0 - y * y)),
        Op::Exp => zip(&|_, y, g| g * y),
        Op::Scale { factor } => {
            let factor = *factor as f32;
            dy.iter().map(|g| g * factor).collect()
        }
        _ => dy.to_vec(),
    }
}

/// The shape around `axis` as (outer, len, inner): element `(o, j, i)` is at
/// `(o * len + j) * inner + i`. Shape inference checked the axis.
fn split_at_axis(axis: i64, shape: &[usize]) -> (usize, usize, usize) {
    let a = normalize_axis(axis, shape.len()).unwrap_or(shape.len().saturating_sub(1));
    (
        shape[..a].iter().product(),
        shape[a],
        shape[a + 1..].iter().product(),
    )
}

/// Softmax (or LogSoftmax if `log`) along `axis` (negative counts from the end).
pub fn softmax(axis: i64, x: &Buf, log: bool) -> Buf {
    let (outer, len, inner) = split_at_axis(axis, &x.shape);
    let xs = &x.data;
    let mut y = vec![0.0; xs.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * len + j) * inner + i;
            // Subtracting the max keeps every exp in (0, 1]: no overflow.
            let max = (0..len)
                .map(|j| xs[at(j)])
                .fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for j in 0..len {
                let e = (xs[at(j)] - max).exp();
                y[at(j)] = e;
                sum += e;
            }
            if log {
                let ln_sum = sum.ln();
                for j in 0..len {
                    y[at(j)] = xs[at(j)] - max - ln_sum;
                }
            } else {
                let inv = 1.0 / sum;
                for j in 0..len {
                    y[at(j)] *= inv;
                }
            }
        }
    }
    Buf::new(x.shape.clone(), y)
}

/// Given y = softmax(x) (or log_softmax) and dy.
pub fn softmax_backward(axis: i64, y: &Buf, dy: &[f32], log: bool) -> Vec<f32> {
    let (outer, len, inner) = split_at_axis(axis, &y.shape);
    let ys = &y.data;
    let mut dx = vec![0.0; ys.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * len + j) * inner + i;
            if log {
                // d log_softmax_j / d x_k = [j == k] - softmax_k
                let total: f32 = (0..len).map(|j| dy[at(j)]).sum();
                for j in 0..len {
                    dx[at(j)] = dy[at(j)] - ys[at(j)].exp() * total;
                }
            } else {
                // d softmax_j / d x_k = softmax_j ([j == k] - softmax_k)
                let dot: f32 = (0..len).map(|j| dy[at(j)] * ys[at(j)]).sum();
                for j in 0..len {
                    dx[at(j)] = ys[at(j)] * (dy[at(j)] - dot);
                }
            }
        }
    }
    dx
}

/// `1 / (1 - p)`, or 0 when every element is dropped (PyTorch returns zeros for p = 1,
/// where the formula would give 0/0).
fn keep_scale(p: f64) -> f32 {
    if p < 1.0 {
        (1.0 / (1.0 - p)) as f32
    } else {
        0.0
    }
}

/// Training: `x * mask / (1 - p)`; inference: `x`.
pub fn dropout(p: f64, x: &Buf, mask: &Buf, mode: Mode) -> Buf {
    match mode {
        Mode::Inference => x.clone(),
        Mode::Training => {
            let scale = keep_scale(p);
            let y = x
                .data
                .iter()
                .zip(&mask.data)
                .map(|(v, m)| v * m * scale)
                .collect();
            Buf::new(x.shape.clone(), y)
        }
    }
}

/// The training-mode gradient with respect to x.
pub fn dropout_backward(p: f64, mask: &Buf, dy: &[f32]) -> Vec<f32> {
    let scale = keep_scale(p);
    dy.iter()
        .zip(&mask.data)
        .map(|(g, m)| g * m * scale)
        .collect()
}
