//! Element-wise activations (Relu, Sigmoid, Tanh, Exp, Scale), Softmax / LogSoftmax, Dropout.

use dlbench_core::ir::shape::normalize_axis;
use dlbench_core::{Mode, UnaryOp};

use super::{zip_map, Buf};
use crate::kernels::isa::with_simd;
use crate::kernels::math;
use crate::kernels::split::{split_mut, TRANSCENDENTAL};

/// `out[i] = f(a[i])`.
fn map(out: &mut [f32], a: &[f32], f: impl Fn(f32) -> f32) {
    with_simd(
        #[inline(always)]
        || {
            for (o, &a) in out.iter_mut().zip(a) {
                *o = f(a);
            }
        },
    )
}

/// The element-wise op into `y`, split over `threads` when large.
pub fn unary(op: UnaryOp, x: &[f32], y: &mut [f32], threads: usize) {
    let work = match op {
        UnaryOp::Relu | UnaryOp::Scale { .. } => 1,
        UnaryOp::Sigmoid | UnaryOp::Tanh | UnaryOp::Exp => TRANSCENDENTAL,
    };
    split_mut(threads, y, work, |start, y| {
        unary_part(op, &x[start..start + y.len()], y)
    });
}

fn unary_part(op: UnaryOp, x: &[f32], y: &mut [f32]) {
    match op {
        // NaN must come out as NaN, as in PyTorch.
        UnaryOp::Relu => map(y, x, |v| if v > 0.0 || v.is_nan() { v } else { 0.0 }),
        UnaryOp::Sigmoid => math::sigmoid(x, y),
        UnaryOp::Tanh => math::tanh(x, y),
        UnaryOp::Exp => math::exp(x, y),
        UnaryOp::Scale { factor } => {
            let factor = factor as f32;
            map(y, x, |v| factor * v);
        }
    }
}

/// Given x, y = unary(x) and dy, dx into `dx`, split over `threads` when large.
pub fn unary_backward(
    op: UnaryOp,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    threads: usize,
) {
    split_mut(threads, dx, 1, |start, dx| {
        let part = start..start + dx.len();
        unary_backward_part(op, &x[part.clone()], &y[part.clone()], &dy[part], dx)
    });
}

fn unary_backward_part(op: UnaryOp, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
    match op {
        // The subgradient at exactly 0 is 0, as in PyTorch.
        UnaryOp::Relu => zip_map(dx, x, dy, |x, g| if x > 0.0 { g } else { 0.0 }),
        UnaryOp::Sigmoid => zip_map(dx, y, dy, |y, g| g * y * (1.0 - y)),
        UnaryOp::Tanh => zip_map(dx, y, dy, |y, g| g * (1.0 - y * y)),
        UnaryOp::Exp => zip_map(dx, y, dy, |y, g| g * y),
        UnaryOp::Scale { factor } => {
            let factor = factor as f32;
            map(dx, dy, |g| g * factor);
        }
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

/// Softmax (or LogSoftmax if `log`) along `axis` (negative counts from the end) into `y`, in
/// three passes so that the exponentials run as one vectorised call over the whole buffer:
/// subtract each group's max (which keeps every exp in (0, 1]: no overflow), exp, then
/// normalise each group. `scratch` holds the per-group values (and LogSoftmax's exps).
pub fn softmax(axis: i64, x: &Buf, y: &mut [f32], log: bool, scratch: &mut Vec<f32>) {
    let (_, len, inner) = split_at_axis(axis, &x.shape);
    let block = len * inner;
    if block == 0 {
        return;
    }
    scratch.resize(inner + if log { y.len() } else { 0 }, 0.0);
    let (per_group, exps) = scratch.split_at_mut(inner);
    for (xb, yb) in x.data.chunks_exact(block).zip(y.chunks_exact_mut(block)) {
        group_max(xb, per_group);
        yb.copy_from_slice(xb);
        for_each_in_group(yb, per_group, |v, max| *v -= max);
    }
    if log {
        math::exp(y, exps);
        for (yb, eb) in y.chunks_exact_mut(block).zip(exps.chunks_exact(block)) {
            group_sum(eb, per_group);
            per_group.iter_mut().for_each(|s| *s = s.ln());
            for_each_in_group(yb, per_group, |v, ln_sum| *v -= ln_sum);
        }
    } else {
        math::exp_in_place(y);
        for yb in y.chunks_exact_mut(block) {
            group_sum(yb, per_group);
            per_group.iter_mut().for_each(|s| *s = 1.0 / *s);
            for_each_in_group(yb, per_group, |v, inv| *v *= inv);
        }
    }
}

// A softmax block is `len` rows of `inner` floats, one group per column: the axis runs down
// the rows. The helpers below take one value per group; `inner == 1` (the axis is the last
// one, the common case) is one group per block, walked as a plain slice.

/// `maxes[i]` = the largest element of group (column) `i` of `block`. NaNs are skipped, as
/// `f32::max` does; they come back through `x - max`.
fn group_max(block: &[f32], maxes: &mut [f32]) {
    if let [max] = maxes {
        *max = block.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        return;
    }
    maxes.fill(f32::NEG_INFINITY);
    for row in block.chunks_exact(maxes.len()) {
        maxes.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v));
    }
}

/// `sums[i]` = the sum of group (column) `i` of `block`.
fn group_sum(block: &[f32], sums: &mut [f32]) {
    if let [sum] = sums {
        *sum = block.iter().sum();
        return;
    }
    sums.fill(0.0);
    for row in block.chunks_exact(sums.len()) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
}

/// `f(v, per_group[i])` for every element `v` of group (column) `i` of `block`.
fn for_each_in_group(block: &mut [f32], per_group: &[f32], f: impl Fn(&mut f32, f32)) {
    if let [value] = per_group {
        block.iter_mut().for_each(|v| f(v, *value));
        return;
    }
    for row in block.chunks_exact_mut(per_group.len()) {
        row.iter_mut().zip(per_group).for_each(|(v, &g)| f(v, g));
    }
}

/// Given y = softmax(x) (or log_softmax) and dy, dx into `dx`; `scratch` holds the
/// per-group sums.
pub fn softmax_backward(
    axis: i64,
    y: &Buf,
    dy: &[f32],
    log: bool,
    dx: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let (_, len, inner) = split_at_axis(axis, &y.shape);
    let block = len * inner;
    if block == 0 {
        return;
    }
    scratch.resize(inner, 0.0);
    let per_group = &mut scratch[..inner];
    if log {
        // d log_softmax_j / d x_k = [j == k] - softmax_k: dx = dy - p sum(dy), p = e^y.
        math::exp(&y.data, dx);
        for (db, gb) in dx.chunks_exact_mut(block).zip(dy.chunks_exact(block)) {
            group_sum(gb, per_group);
            for_each_in_group(db, per_group, |p, total| *p *= -total);
            db.iter_mut().zip(gb).for_each(|(d, &g)| *d += g);
        }
    } else {
        // d softmax_j / d x_k = softmax_j ([j == k] - softmax_k): dx = p (dy - sum(dy p)).
        for ((db, gb), pb) in dx
            .chunks_exact_mut(block)
            .zip(dy.chunks_exact(block))
            .zip(y.data.chunks_exact(block))
        {
            db.iter_mut()
                .zip(gb)
                .zip(pb)
                .for_each(|((d, &g), &p)| *d = g * p);
            group_sum(db, per_group);
            db.iter_mut().zip(gb).for_each(|(d, &g)| *d = g);
            for_each_in_group(db, per_group, |d, dot| *d -= dot);
            db.iter_mut().zip(pb).for_each(|(d, &p)| *d *= p);
        }
    }
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
pub fn dropout(p: f64, x: &Buf, mask: &Buf, y: &mut [f32], mode: Mode) {
    match mode {
        Mode::Inference => y.copy_from_slice(&x.data),
        Mode::Training => {
            let scale = keep_scale(p);
            zip_map(y, &x.data, &mask.data, |v, m| v * m * scale);
        }
    }
}

/// The training-mode gradient with respect to x, into `dx`.
pub fn dropout_backward(p: f64, mask: &Buf, dy: &[f32], dx: &mut [f32]) {
    let scale = keep_scale(p);
    zip_map(dx, dy, &mask.data, |g, m| g * m * scale);
}

/// Softmax and log-softmax along every axis of a `[2, 3, 4]` tensor (the last axis is the
/// contiguous special case) against f64, forward and backward; and the element-wise ops
/// against f64 across slice lengths that leave vector tails.
#[cfg(test)]
mod tests {
    use dlbench_core::ir::UnaryKind;
    use dlbench_core::UnaryOp;
    use strum::IntoEnumIterator;

    use super::{softmax, softmax_backward, split_at_axis, unary, unary_backward, Buf};

    fn assert_close(what: &str, got: &[f32], want: &[f64]) {
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let ok = (f64::from(g) - w).abs() <= 1e-6 * w.abs() + 1e-7;
            assert!(ok, "{what}[{i}]: got {g:e}, want {w:e}");
        }
    }

    /// `f(group)` for each softmax group of `xs` along `axis`, written back in place.
    fn per_group(
        axis: i64,
        shape: &[usize],
        xs: &[f64],
        f: impl Fn(&[f64]) -> Vec<f64>,
    ) -> Vec<f64> {
        let (outer, len, inner) = split_at_axis(axis, shape);
        let mut out = xs.to_vec();
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| (o * len + j) * inner + i;
                let group: Vec<f64> = (0..len).map(|j| xs[at(j)]).collect();
                for (j, v) in f(&group).into_iter().enumerate() {
                    out[at(j)] = v;
                }
            }
        }
        out
    }

    #[test]
    fn softmax_matches_f64_along_every_axis() {
        let shape = vec![2, 3, 4];
        let xs: Vec<f32> = (0..24)
            .map(|i| ((i * 7 % 24) as f32 - 11.0) * 1.3)
            .collect();
        let dy: Vec<f32> = (0..24)
            .map(|i| ((i * 5 % 24) as f32 - 12.0) * 0.1)
            .collect();
        let x = Buf::new(shape.clone(), xs.clone());
        let wide = |v: &[f32]| -> Vec<f64> { v.iter().map(|&v| f64::from(v)).collect() };
        for axis in [0, 1, 2, -1] {
            let probs = per_group(axis, &shape, &wide(&xs), |g| {
                let max = g.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = g.iter().map(|v| (v - max).exp()).sum();
                g.iter().map(|v| (v - max).exp() / sum).collect()
            });
            let run = |log: bool| {
                let mut y = vec![f32::NAN; 24];
                softmax(axis, &x, &mut y, log, &mut Vec::new());
                Buf::new(shape.clone(), y)
            };
            let y = run(false);
            assert_close(&format!("softmax axis {axis}"), &y.data, &probs);
            let log_y = run(true);
            let logs: Vec<f64> = probs.iter().map(|p| p.ln()).collect();
            assert_close(&format!("log_softmax axis {axis}"), &log_y.data, &logs);

            // dx_j = p_j (dy_j - sum(dy p)) and dy_j - p_j sum(dy), per group.
            let dyw = wide(&dy);
            let (outer, len, inner) = split_at_axis(axis, &shape);
            let (mut dsoft, mut dlog) = (vec![0.0; 24], vec![0.0; 24]);
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| (o * len + j) * inner + i;
                    let dot: f64 = (0..len).map(|j| dyw[at(j)] * probs[at(j)]).sum();
                    let total: f64 = (0..len).map(|j| dyw[at(j)]).sum();
                    for j in 0..len {
                        dsoft[at(j)] = probs[at(j)] * (dyw[at(j)] - dot);
                        dlog[at(j)] = dyw[at(j)] - probs[at(j)] * total;
                    }
                }
            }
            let back = |y: &Buf, log: bool| {
                let mut dx = vec![f32::NAN; 24];
                softmax_backward(axis, y, &dy, log, &mut dx, &mut Vec::new());
                dx
            };
            let got = back(&y, false);
            assert_close(&format!("softmax backward axis {axis}"), &got, &dsoft);
            let got = back(&log_y, true);
            assert_close(&format!("log_softmax backward axis {axis}"), &got, &dlog);
        }
    }

    /// Split over threads, each element is computed by the same code as on one thread: the
    /// same bits, forward and backward.
    #[test]
    fn elementwise_ops_split_over_threads_give_the_same_bits() {
        let n = 5 * crate::kernels::split::MIN_PER_THREAD + 7;
        let xs: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 % 2001) as f32 - 1000.0) / 300.0)
            .collect();
        let dy: Vec<f32> = (0..n)
            .map(|i| ((i * 104_729 % 997) as f32 - 498.0) / 250.0)
            .collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for kind in UnaryKind::iter() {
            let op = match kind {
                UnaryKind::Sigmoid => UnaryOp::Sigmoid,
                UnaryKind::Tanh => UnaryOp::Tanh,
                UnaryKind::Exp => UnaryOp::Exp,
                UnaryKind::Relu => UnaryOp::Relu,
                UnaryKind::Scale => UnaryOp::Scale { factor: 0.5 },
            };
            let run = |threads| {
                let (mut y, mut dx) = (vec![f32::NAN; n], vec![f32::NAN; n]);
                unary(op, &xs, &mut y, threads);
                unary_backward(op, &xs, &y, &dy, &mut dx, threads);
                (bits(&y), bits(&dx))
            };
            let one = run(1);
            for threads in [2, 3] {
                assert!(run(threads) == one, "{op:?} on {threads} threads");
            }
        }
    }

    #[test]
    fn elementwise_ops_match_f64_with_pytorchs_edges() {
        let mut xs: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) * 0.7).collect();
        xs.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            100.0,
            -100.0,
        ]);
        let x = Buf::new(vec![xs.len()], xs.clone());
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        let relu = |v: f64| if v > 0.0 || v.is_nan() { v } else { 0.0 };
        // Every element-wise op, with its formula in f64.
        let cases = UnaryKind::iter().map(|kind| -> (UnaryOp, &dyn Fn(f64) -> f64) {
            match kind {
                UnaryKind::Sigmoid => (UnaryOp::Sigmoid, &sigmoid),
                UnaryKind::Tanh => (UnaryOp::Tanh, &f64::tanh),
                UnaryKind::Exp => (UnaryOp::Exp, &f64::exp),
                UnaryKind::Relu => (UnaryOp::Relu, &relu),
                UnaryKind::Scale => (UnaryOp::Scale { factor: -2.5 }, &|v| -2.5 * v),
            }
        });
        for (op, f) in cases {
            let mut y = vec![f32::NAN; xs.len()];
            unary(op, &x.data, &mut y, 1);
            for (&v, &g) in xs.iter().zip(&y) {
                let w = f(f64::from(v));
                let ok = if w.is_nan() {
                    g.is_nan()
                } else if w.is_infinite() || (w as f32).is_infinite() {
                    g == w as f32
                } else {
                    (f64::from(g) - w).abs() <= 1e-6 * w.abs() + 1e-38
                };
                assert!(ok, "{op:?}({v}): got {g:e}, want {w:e}");
            }
        }
    }
}
