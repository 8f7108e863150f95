//! Losses: MSE, cross-entropy (logits, i64 labels), BCE (probabilities, and logits), VAE ELBO.
//!
//! PyTorch's default reductions and backward formulas, as in the reference. Each element is
//! computed in f32 from f32 inputs, its logs and exps by the vectorised [`math`] kernels
//! (within a few f32 ULPs, far inside the agreement tolerance), in chunks that stay in L1;
//! but the sums over the batch are accumulated in f64: a long f32 sum would drift from the
//! reference by more than the agreement tolerance.

use dlbench_core::LossOp;

use super::{wanted, zip_map, Args, Buf};
use crate::kernels::isa::with_simd;
use crate::kernels::math;
use crate::kernels::split::{self, Disjoint};

/// PyTorch's BCELoss floor on each log, so that `p = 0` or `p = 1` gives a finite loss.
const LOG_FLOOR: f32 = -100.0;

/// PyTorch's floor on `p (1 - p)` in BCELoss's backward (a `float` in ATen's `Loss.cpp`).
const BCE_GRAD_EPS: f32 = 1e-12;

/// Elements per chunk of the per-element passes: a few 1 KiB scratch arrays, in L1.
const CHUNK: usize = 256;

/// `ln` clamped at [`LOG_FLOOR`]; NaN passes through so a diverged input stays visible.
#[inline]
fn clamp_ln(ln: f32) -> f32 {
    if ln < LOG_FLOOR {
        LOG_FLOOR
    } else {
        ln
    }
}

/// The sum of `xs` in f64, in 8 independent lanes so that it vectorises.
#[inline]
fn wide_sum(xs: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = xs.chunks_exact(lanes.len());
    let rest: f64 = chunks.remainder().iter().map(|&v| f64::from(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(v);
        }
    }
    lanes.iter().sum::<f64>() + rest
}

/// Where the per-element gradients of a sum of terms go, scaled by `scale` (the reduction's
/// `1 / n` times the incoming gradient).
struct ElementGrads<'a> {
    scale: f32,
    /// d/d the first operand (the probabilities, or the logits), if wanted.
    first: Option<&'a mut [f32]>,
    /// d/d the target, if anyone wants it (a data input usually does not).
    target: Option<&'a mut [f32]>,
}

/// `terms(a, t, sum, grads)` (`bce_sum`, `bce_with_logits_sum`: a sum of per-element terms
/// with their gradients) over ranges of whole chunks, one per thread when the batch is large:
/// each range writes its own part of the gradients, and the partial sums are added in range
/// order (the same result for a thread count, within f64 rounding of one thread's). Each range
/// runs compiled for the chosen instruction set (`terms` is inlined into [`with_simd`]).
fn split_terms(
    terms: impl Fn(&[f32], &[f32], bool, Option<ElementGrads>) -> f64 + Sync,
    a: &[f32],
    t: &[f32],
    sum: bool,
    grads: Option<ElementGrads>,
    threads: usize,
) -> f64 {
    let want = grads.is_some();
    let (scale, first, target) = match grads {
        Some(g) => (g.scale, g.first, g.target),
        None => (0.0, None, None),
    };
    let (first, target) = (first.map(Disjoint::new), target.map(Disjoint::new));
    split::sum_ranges(threads, a.len(), CHUNK, split::TRANSCENDENTAL, &|range| {
        // SAFETY: `sum_ranges` hands each task its own range, disjoint from the others'.
        let (first, target) = unsafe {
            (
                first.as_ref().map(|d| d.range(range.clone())),
                target.as_ref().map(|d| d.range(range.clone())),
            )
        };
        let grads = want.then_some(ElementGrads {
            scale,
            first,
            target,
        });
        let (a, t) = (&a[range.clone()], &t[range]);
        with_simd(
            #[inline(always)]
            || terms(a, t, sum, grads),
        )
    })
}

/// The sum over elements of BCE on probabilities `p` against targets `t` (if `sum`, else 0),
/// and with `grads`, each element's d/dp and d/dt (PyTorch's formulas; see the reference's
/// `bce_term`). d/dp needs no logs: a backward pass that does not want d/dt takes none.
#[inline(always)]
fn bce_sum(p: &[f32], t: &[f32], sum: bool, mut grads: Option<ElementGrads>) -> f64 {
    let want_dt = grads.as_ref().is_some_and(|g| g.target.is_some());
    let (mut ln_p, mut ln_q, mut terms) = ([0.0f32; CHUNK], [0.0f32; CHUNK], [0.0f32; CHUNK]);
    let mut total = 0.0;
    for (c, (p, t)) in p.chunks(CHUNK).zip(t.chunks(CHUNK)).enumerate() {
        let k = p.len();
        let (ln_p, ln_q, terms) = (&mut ln_p[..k], &mut ln_q[..k], &mut terms[..k]);
        if sum || want_dt {
            math::ln(p, ln_p);
            ln_q.iter_mut().zip(p).for_each(|(q, &p)| *q = 1.0 - p);
            math::ln_in_place(ln_q);
        }
        if sum {
            for (((term, &lp), &lq), &t) in terms.iter_mut().zip(&*ln_p).zip(&*ln_q).zip(t) {
                *term = -(t * clamp_ln(lp) + (1.0 - t) * clamp_ln(lq));
            }
            total += wide_sum(terms);
        }
        let Some(g) = grads.as_mut() else { continue };
        let scale = g.scale;
        let range = c * CHUNK..c * CHUNK + k;
        if let Some(first) = g.first.as_mut() {
            for ((dp, &p), &t) in first[range.clone()].iter_mut().zip(p).zip(t) {
                *dp = scale * ((p - t) / (p * (1.0 - p)).max(BCE_GRAD_EPS));
            }
        }
        if let Some(target) = g.target.as_mut() {
            // -ln(p / (1 - p)), from the logs in hand; unclamped, so infinite at p = 0 or 1.
            for ((dt, &lp), &lq) in target[range].iter_mut().zip(&*ln_p).zip(&*ln_q) {
                *dt = scale * (lq - lp);
            }
        }
    }
    total
}

/// The sum over elements of BCE on logits `z` against targets `t` (if `sum`, else 0), and
/// with `grads`, each element's d/dz and d/dt.
#[inline(always)]
fn bce_with_logits_sum(z: &[f32], t: &[f32], sum: bool, mut grads: Option<ElementGrads>) -> f64 {
    let (mut e, mut ln_u, mut terms) = ([0.0f32; CHUNK], [0.0f32; CHUNK], [0.0f32; CHUNK]);
    let mut total = 0.0;
    for (c, (z, t)) in z.chunks(CHUNK).zip(t.chunks(CHUNK)).enumerate() {
        let k = z.len();
        let (e, ln_u, terms) = (&mut e[..k], &mut ln_u[..k], &mut terms[..k]);
        e.iter_mut().zip(z).for_each(|(e, &z)| *e = -z.abs());
        math::exp_in_place(e);
        if sum {
            // max(z, 0) - z t + ln(1 + e^-|z|) is ln(1 + e^z) - z t without overflow.
            ln_u.iter_mut().zip(&*e).for_each(|(u, &e)| *u = 1.0 + e);
            math::ln_in_place(ln_u);
            let per_element = terms.iter_mut().zip(z).zip(t).zip(e.iter().zip(&*ln_u));
            for (((term, &z), &t), (&e, &ln_u)) in per_element {
                // ln(1 + e) without losing a small e to the rounding of u = 1 + e:
                // ln(u) e / (u - 1) (Goldberg), or e itself where u rounded to 1.
                let u = 1.0 + e;
                let ln_1p = if u == 1.0 { e } else { ln_u * (e / (u - 1.0)) };
                *term = z.max(0.0) - z * t + ln_1p;
            }
            total += wide_sum(terms);
        }
        let Some(g) = grads.as_mut() else { continue };
        let scale = g.scale;
        let range = c * CHUNK..c * CHUNK + k;
        if let Some(first) = g.first.as_mut() {
            for (((dz, &z), &t), &e) in first[range.clone()].iter_mut().zip(z).zip(t).zip(&*e) {
                // The sigmoid from the same e = e^-|z| <= 1 (never inf / inf).
                let sigmoid = if z >= 0.0 { 1.0 } else { e } / (1.0 + e);
                *dz = scale * (sigmoid - t);
            }
        }
        if let Some(target) = g.target.as_mut() {
            for (dt, &z) in target[range].iter_mut().zip(z) {
                *dt = -scale * z;
            }
        }
    }
    total
}

/// PyTorch refuses probabilities outside [0, 1], NaN among them ("all elements of input should
/// be between 0 and 1").
fn check_probabilities(p: &[f32], what: &str) -> Result<(), String> {
    // Branch-free per chunk, so that the common all-valid case vectorises; only a failing
    // chunk is searched.
    let outside = |v: &f32| !(0.0..=1.0).contains(v);
    for (c, chunk) in p.chunks(CHUNK).enumerate() {
        let bad = with_simd(
            #[inline(always)]
            || chunk.iter().fold(false, |bad, v| bad | outside(v)),
        );
        if bad {
            let e = c * CHUNK + chunk.iter().position(outside).unwrap_or(0);
            return Err(format!("{what} {} at element {e} is outside [0, 1]", p[e]));
        }
    }
    Ok(())
}

/// The label of row `row` of `[N, C]` logits, checked to lie in `0..C`.
fn label(labels: &Buf, row: usize, classes: usize) -> Result<usize, String> {
    let l = labels.labels[row];
    usize::try_from(l)
        .ok()
        .filter(|&l| l < classes)
        .ok_or_else(|| format!("label {l} at row {row} is outside 0..{classes}"))
}

/// What [`evaluate`] computes.
enum Want<'a> {
    /// The loss.
    Loss,
    /// The gradients of `dloss * loss` into the buffers of the inputs that want one (sized
    /// to the input; empty for the others, see [`wanted`]); the loss itself is not computed.
    Grads {
        dloss: f32,
        grads: &'a mut [Vec<f32>],
    },
}

/// The loss (under `Want::Loss`; 0 otherwise) and the gradients (under `Want::Grads`).
/// `scratch` holds per-element intermediates (exponentials, variances).
fn evaluate(
    op: LossOp,
    inputs: Args,
    want: Want,
    scratch: &mut Vec<f32>,
    threads: usize,
) -> Result<f64, String> {
    let (sum, dloss, grads) = match want {
        Want::Loss => (true, 0.0, &mut [][..]),
        Want::Grads { dloss, grads } => (false, dloss, grads),
    };
    let mut grad = grads.iter_mut().map(|g| wanted(g));
    let mut next = || grad.next().flatten();
    match op {
        LossOp::Mse => {
            let (p, t) = (&inputs[0].data, &inputs[1].data);
            let n = p.len() as f64;
            if sum {
                let squares = p.iter().zip(t).map(|(&a, &b)| {
                    let d = f64::from(a) - f64::from(b);
                    d * d
                });
                return Ok(squares.sum::<f64>() / n);
            }
            let scale = (2.0 / n) as f32 * dloss;
            let (dp, dt) = (next(), next());
            if let Some(dp) = dp {
                zip_map(dp, p, t, |a, b| scale * (a - b));
            }
            if let Some(dt) = dt {
                zip_map(dt, p, t, |a, b| -(scale * (a - b)));
            }
            Ok(0.0)
        }
        LossOp::CrossEntropy => {
            let (logits, labels) = (&inputs[0], &inputs[1]);
            let classes = logits.shape[1];
            let z = &logits.data;
            let rows = labels.labels.len();
            let n = rows as f64;
            // Labels first: with no classes every label is out of range, an error as in the
            // reference and PyTorch; only an empty batch has the mean of nothing, NaN.
            for row in 0..rows {
                label(labels, row, classes)?;
            }
            if rows == 0 {
                return Ok(f64::NAN);
            }
            // Shift each row by its max (every exp in (0, 1]), then one vectorised exp.
            scratch.resize(z.len() + rows, 0.0);
            let (exps, maxes) = scratch.split_at_mut(z.len());
            for ((row, max), out) in z
                .chunks_exact(classes)
                .zip(maxes.iter_mut())
                .zip(exps.chunks_exact_mut(classes))
            {
                *max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                out.iter_mut().zip(row).for_each(|(e, &v)| *e = v - *max);
            }
            math::exp_in_place(exps);
            let mut loss = 0.0;
            let mut dz = next();
            // Labels are not differentiable: a wanted gradient of them is zero. (Every other
            // wanted gradient is written in full by its formula.)
            if let Some(dlabels) = next() {
                dlabels.fill(0.0);
            }
            for (r, row) in exps.chunks_exact(classes).enumerate() {
                let label = label(labels, r, classes)?;
                let exp_sum = wide_sum(row);
                if sum {
                    let lse = f64::from(maxes[r]) + exp_sum.ln();
                    loss += lse - f64::from(z[r * classes + label]);
                } else if let Some(dz) = dz.as_deref_mut() {
                    // (softmax - onehot) / n
                    let scale = (1.0 / (exp_sum * n)) as f32 * dloss;
                    let out = &mut dz[r * classes..(r + 1) * classes];
                    out.iter_mut().zip(row).for_each(|(d, &e)| *d = scale * e);
                    out[label] -= (1.0 / n) as f32 * dloss;
                }
            }
            Ok(loss / n)
        }
        LossOp::BinaryCrossEntropy => {
            let (p, t) = (&inputs[0].data, &inputs[1].data);
            check_probabilities(p, "probability")?;
            let n = p.len() as f64;
            let to = (!sum).then(|| ElementGrads {
                scale: dloss / n as f32,
                first: next(),
                target: next(),
            });
            Ok(split_terms(bce_sum, p, t, sum, to, threads) / n)
        }
        LossOp::BinaryCrossEntropyWithLogits => {
            let (z, t) = (&inputs[0].data, &inputs[1].data);
            let n = z.len() as f64;
            let to = (!sum).then(|| ElementGrads {
                scale: dloss / n as f32,
                first: next(),
                target: next(),
            });
            Ok(split_terms(bce_with_logits_sum, z, t, sum, to, threads) / n)
        }
        LossOp::VaeElbo => {
            let [recon, mu, logvar, x] = [0, 1, 2, 3].map(|i| &inputs[i].data);
            check_probabilities(recon, "reconstruction")?;
            let n = inputs[0].shape[0] as f64;
            let scale = dloss / n as f32;
            let (drecon, dmu, dlogvar, dx) = (next(), next(), next(), next());
            let to = (!sum).then_some(ElementGrads {
                scale,
                first: drecon,
                target: dx,
            });
            let bce = split_terms(bce_sum, recon, x, sum, to, threads);
            // KL(N(mu, e^logvar) || N(0, 1)) = -1/2 sum(1 + logvar - mu^2 - e^logvar).
            scratch.resize(logvar.len(), 0.0);
            let var = &mut scratch[..logvar.len()];
            math::exp(logvar, var);
            if sum {
                for ((v, &m), &lv) in var.iter_mut().zip(mu).zip(logvar) {
                    *v = -0.5 * (1.0 + lv - m * m - *v);
                }
                return Ok((bce + wide_sum(var)) / n);
            }
            if let Some(dmu) = dmu {
                dmu.iter_mut().zip(mu).for_each(|(d, &m)| *d = scale * m);
            }
            if let Some(dlogvar) = dlogvar {
                let per_element = dlogvar.iter_mut().zip(&*var);
                per_element.for_each(|(d, &v)| *d = scale * (0.5 * (v - 1.0)));
            }
            Ok(0.0)
        }
    }
}

/// The scalar loss. Errors only for bad data, e.g. a label out of range.
pub fn loss(
    op: LossOp,
    inputs: Args,
    scratch: &mut Vec<f32>,
    threads: usize,
) -> Result<f32, String> {
    Ok(evaluate(op, inputs, Want::Loss, scratch, threads)? as f32)
}

/// Gradients of `dloss * loss` into `grads`, one buffer per input: sized to the input where
/// wanted, empty otherwise (labels get zeros if asked for).
pub fn loss_backward(
    op: LossOp,
    inputs: Args,
    dloss: f32,
    grads: &mut [Vec<f32>],
    scratch: &mut Vec<f32>,
    threads: usize,
) -> Result<(), String> {
    evaluate(op, inputs, Want::Grads { dloss, grads }, scratch, threads).map(|_| ())
}

/// The f32 losses against PyTorch's formulas in f64 (written out here, independent of the
/// reference), on the edges where f32 could go wrong: probabilities of exactly 0 and 1 (the
/// log floor, infinite d/dt), saturated logits, and slices long enough to cross chunks.
#[cfg(test)]
mod tests;
