//! Losses: MSE, cross-entropy (logits, i64 labels), BCE (probabilities, and logits), VAE ELBO.
//!
//! PyTorch's default reductions and backward formulas, as in the reference. Each element is
//! computed in f32 from f32 inputs, its logs and exps by the vectorised [`math`] kernels
//! (within a few f32 ULPs, far inside the agreement tolerance), in chunks that stay in L1;
//! but the sums over the batch are accumulated in f64: a long f32 sum would drift from the
//! reference by more than the agreement tolerance.

use dlbench_core::LossOp;

use super::{wanted, zip_map, Args, Buf};
use crate::kernels::math;

/// PyTorch's BCELoss floor on each log, so that `p = 0` or `p = 1` gives a finite loss.
const LOG_FLOOR: f32 = -100.0;

/// PyTorch's floor on `p (1 - p)` in BCELoss's backward (a `float` in ATen's `Loss.cpp`).
const BCE_GRAD_EPS: f32 = 1e-12;

/// Elements per chunk of the per-element passes: a few 1 KiB scratch arrays, in L1.
const CHUNK: usize = 256;

/// `ln` clamped at [`LOG_FLOOR`]; NaN passes through so a diverged input stays visible.
fn clamp_ln(ln: f32) -> f32 {
    if ln < LOG_FLOOR {
        LOG_FLOOR
    } else {
        ln
    }
}

/// The sum of `xs` in f64, in 8 independent lanes so that it vectorises.
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

/// The sum over elements of BCE on probabilities `p` against targets `t` (if `sum`, else 0),
/// and with `grads`, each element's d/dp and d/dt (PyTorch's formulas; see the reference's
/// `bce_term`). d/dp needs no logs: a backward pass that does not want d/dt takes none.
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
        if chunk.iter().fold(false, |bad, v| bad | outside(v)) {
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
fn evaluate(op: LossOp, inputs: Args, want: Want, scratch: &mut Vec<f32>) -> Result<f64, String> {
    let (sum, dloss, grads) = match want {
        Want::Loss => (true, 0.0, &mut [][..]),
        Want::Grads { dloss, grads } => (false, dloss, grads),
    };
    // Every wanted gradient that the formulas below do not write (the labels') is zero.
    grads.iter_mut().for_each(|g| g.fill(0.0));
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
            Ok(bce_sum(p, t, sum, to) / n)
        }
        LossOp::BinaryCrossEntropyWithLogits => {
            let (z, t) = (&inputs[0].data, &inputs[1].data);
            let n = z.len() as f64;
            let to = (!sum).then(|| ElementGrads {
                scale: dloss / n as f32,
                first: next(),
                target: next(),
            });
            Ok(bce_with_logits_sum(z, t, sum, to) / n)
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
            let bce = bce_sum(recon, x, sum, to);
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
pub fn loss(op: LossOp, inputs: Args, scratch: &mut Vec<f32>) -> Result<f32, String> {
    Ok(evaluate(op, inputs, Want::Loss, scratch)? as f32)
}

/// Gradients of `dloss * loss` into `grads`, one buffer per input: sized to the input where
/// wanted, empty otherwise (labels get zeros if asked for).
pub fn loss_backward(
    op: LossOp,
    inputs: Args,
    dloss: f32,
    grads: &mut [Vec<f32>],
    scratch: &mut Vec<f32>,
) -> Result<(), String> {
    evaluate(op, inputs, Want::Grads { dloss, grads }, scratch).map(|_| ())
}

/// The f32 losses against PyTorch's formulas in f64 (written out here, independent of the
/// reference), on the edges where f32 could go wrong: probabilities of exactly 0 and 1 (the
/// log floor, infinite d/dt), saturated logits, and slices long enough to cross chunks.
#[cfg(test)]
mod tests {
    use super::{evaluate, Args, Buf, LossOp, Want};

    /// Agreement to f32 accuracy: infinities exactly, NaN with NaN. The absolute term allows
    /// for cancellation in f32 (`sigmoid(z) - t`, `ln(1 - p) - ln(p)` near p = 1/2), which
    /// PyTorch's f32 kernels share; the relative term is 100 times tighter than the
    /// conformance suite's.
    fn close(got: f64, want: f64) -> bool {
        if want.is_nan() || want.is_infinite() {
            return got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
        }
        (got - want).abs() <= 1e-5 * want.abs() + 1e-7
    }

    fn buf(data: &[f32]) -> Buf {
        Buf::new(vec![data.len()], data.to_vec())
    }

    /// The loss of `op` on `inputs`, in f64 as computed before the cast to f32.
    fn loss_of(op: LossOp, inputs: &[Buf]) -> f64 {
        evaluate(op, Args::all(inputs), Want::Loss, &mut Vec::new()).unwrap()
    }

    /// The gradients of `dloss * loss` for the inputs `need` marks (NaN-filled first, so an
    /// element left unwritten shows; empty for the others).
    fn grads_of(op: LossOp, inputs: &[Buf], dloss: f32, need: &[bool]) -> Vec<Vec<f32>> {
        let mut grads: Vec<Vec<f32>> = inputs
            .iter()
            .zip(need)
            .map(|(b, &n)| vec![f32::NAN; if n { b.data.len() } else { 0 }])
            .collect();
        let want = Want::Grads {
            dloss,
            grads: &mut grads,
        };
        evaluate(op, Args::all(inputs), want, &mut Vec::new()).unwrap();
        grads
    }

    /// The loss and the gradients (with d/d the target) of `op` on `inputs`.
    fn run(op: LossOp, inputs: &[Buf]) -> (f64, Vec<Vec<f32>>) {
        let need = vec![true; inputs.len()];
        (loss_of(op, inputs), grads_of(op, inputs, 1.0, &need))
    }

    fn assert_all_close(what: &str, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(close(f64::from(g), w), "{what}[{i}]: got {g:e}, want {w:e}");
        }
    }

    /// BCE on one probability: the loss, d/dp, d/dt (PyTorch's formulas).
    fn bce64(p: f64, t: f64) -> (f64, f64, f64) {
        let ln = |v: f64| v.ln().max(-100.0);
        let loss = -(t * ln(p) + (1.0 - t) * ln(1.0 - p));
        let dp = (p - t) / (p * (1.0 - p)).max(f64::from(1e-12f32));
        (loss, dp, -(p / (1.0 - p)).ln())
    }

    #[test]
    fn bce_matches_f64_at_the_edges_of_0_and_1() {
        let ps = [0.0, 1e-30, 1e-40, 1e-7, 0.3, 0.5, 0.999_999_9, 1.0];
        for p in ps {
            for t in [0.0, 0.25, 1.0] {
                let (loss, g) = run(LossOp::BinaryCrossEntropy, &[buf(&[p]), buf(&[t])]);
                let (l, dp, dt) = bce64(f64::from(p), f64::from(t));
                assert!(close(loss, l), "p {p:e}, t {t}: loss {loss:e}, want {l:e}");
                assert_all_close(&format!("p {p:e} t {t} dp"), &g[0], &[dp]);
                assert_all_close(&format!("p {p:e} t {t} dt"), &g[1], &[dt]);
            }
        }
    }

    #[test]
    fn bce_with_logits_matches_f64_when_saturated() {
        for z in [
            -200.0, -90.0, -20.0, -1e-3, 0.0, 1e-8, 3.0, 20.0, 90.0, 200.0,
        ] {
            for t in [0.0, 0.5, 1.0] {
                let (loss, g) = run(
                    LossOp::BinaryCrossEntropyWithLogits,
                    &[buf(&[z]), buf(&[t])],
                );
                let (z, t) = (f64::from(z), f64::from(t));
                // Where t = 1 and z is large, the loss is ln(1 + e^-z) alone: ~2e-9 at z = 20.
                let l = z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
                let sigmoid = 1.0 / (1.0 + (-z).exp());
                // Relative down to f32's normal range: the loss is a sum of terms >= 0, tiny
                // when saturated.
                let error = (loss - l).abs();
                assert!(
                    error <= 1e-5 * l + f64::from(f32::MIN_POSITIVE),
                    "z {z}, t {t}: loss {loss:e}, want {l:e}"
                );
                assert_all_close(&format!("z {z} t {t} dz"), &g[0], &[sigmoid - t]);
                assert_all_close(&format!("z {z} t {t} dt"), &g[1], &[-z]);
            }
        }
    }

    /// Deterministic values in (0, 1), every `every`-th one exactly 0 or 1.
    fn unit_values(len: usize, seed: u64, every: usize) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|i| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                match i % every {
                    0 => (i / every % 2) as f32,
                    _ => ((s >> 40) as f32 + 0.5) / (1u64 << 24) as f32,
                }
            })
            .collect()
    }

    #[test]
    fn vae_elbo_matches_f64_across_chunks_and_skips_unwanted_target_gradients() {
        let (rows, cols, latent) = (3, 301, 7);
        let recon = Buf::new(vec![rows, cols], unit_values(rows * cols, 1, 97));
        let x = Buf::new(vec![rows, cols], unit_values(rows * cols, 2, 1000));
        let mu: Vec<f32> = unit_values(rows * latent, 3, 1000)
            .iter()
            .map(|v| 4.0 * v - 2.0)
            .collect();
        let lv: Vec<f32> = unit_values(rows * latent, 4, 1000)
            .iter()
            .map(|v| 6.0 * v - 3.0)
            .collect();
        let (mu, lv) = (
            Buf::new(vec![rows, latent], mu),
            Buf::new(vec![rows, latent], lv),
        );
        let inputs = [recon, mu, lv, x];
        let (loss, g) = run(LossOp::VaeElbo, &inputs);

        let n = rows as f64;
        let wide = |b: &Buf| -> Vec<f64> { b.data.iter().map(|&v| f64::from(v)).collect() };
        let [recon, mu, lv, x] = [0, 1, 2, 3].map(|i| wide(&inputs[i]));
        let terms: Vec<(f64, f64, f64)> =
            recon.iter().zip(&x).map(|(&p, &t)| bce64(p, t)).collect();
        let kl: f64 = mu
            .iter()
            .zip(&lv)
            .map(|(m, v)| -0.5 * (1.0 + v - m * m - v.exp()))
            .sum();
        let want = (terms.iter().map(|t| t.0).sum::<f64>() + kl) / n;
        assert!(close(loss, want), "loss {loss}, want {want}");
        let scaled = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|g| g / n).collect() };
        assert_all_close(
            "drecon",
            &g[0],
            &scaled(terms.iter().map(|t| t.1).collect()),
        );
        assert_all_close("dmu", &g[1], &scaled(mu.clone()));
        assert_all_close(
            "dlogvar",
            &g[2],
            &scaled(lv.iter().map(|v| 0.5 * (v.exp() - 1.0)).collect()),
        );
        assert_all_close("dx", &g[3], &scaled(terms.iter().map(|t| t.2).collect()));

        let g2 = grads_of(LossOp::VaeElbo, &inputs, 2.0, &[true, true, true, false]);
        assert!(g2[3].is_empty(), "d/dx computed though not needed");
        let doubled: Vec<f32> = g[0].iter().map(|v| 2.0 * v).collect();
        assert_eq!(g2[0], doubled, "dloss scales the gradients");
    }

    #[test]
    fn cross_entropy_matches_f64_on_spread_logits() {
        let z = [1000.0, 0.0, -1000.0, 2.5, -3.0, 0.5, 88.0, 89.0, 90.0];
        let labels = [2i64, 0, 1];
        let inputs = [
            Buf::new(vec![3, 3], z.to_vec()),
            Buf::labels(vec![3], labels.to_vec()),
        ];
        let loss = loss_of(LossOp::CrossEntropy, &inputs);
        let g = grads_of(LossOp::CrossEntropy, &inputs, 1.0, &[true, false]);
        let (mut want, mut dz) = (0.0, Vec::new());
        for (row, &label) in z.chunks(3).zip(&labels) {
            let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
            want += max + sum.ln() - row[label as usize];
            for (c, v) in row.iter().enumerate() {
                let onehot = if c == label as usize { 1.0 } else { 0.0 };
                dz.push(((v - max).exp() / sum - onehot) / 3.0);
            }
        }
        assert!(close(loss, want / 3.0), "loss {loss}, want {}", want / 3.0);
        assert_all_close("dz", &g[0], &dz);
        assert!(g[1].is_empty());
    }

    /// MSE by hand: p = [1, 2, -1, 0.5] against t = [0, 4, 1, 0.5] is (1 + 4 + 4 + 0) / 4;
    /// with dloss = 3, d/dp = 3 * 2 (p - t) / 4 and d/dt its negation, each also when it is
    /// the only gradient wanted. Every value is exact in f32.
    #[test]
    fn mse_and_both_its_gradients_match_hand_computed_values() {
        let inputs = [buf(&[1.0, 2.0, -1.0, 0.5]), buf(&[0.0, 4.0, 1.0, 0.5])];
        assert_eq!(loss_of(LossOp::Mse, &inputs), 2.25);
        let g = grads_of(LossOp::Mse, &inputs, 3.0, &[true, true]);
        assert_eq!(g[0], [1.5, -3.0, -3.0, 0.0], "d/dp");
        assert_eq!(g[1], [-1.5, 3.0, 3.0, 0.0], "d/dt");
        let only_target = grads_of(LossOp::Mse, &inputs, 3.0, &[false, true]);
        assert!(only_target[0].is_empty(), "d/dp computed though not needed");
        assert_eq!(only_target[1], g[1], "d/dt alone");
        let only_prediction = grads_of(LossOp::Mse, &inputs, 3.0, &[true, false]);
        assert_eq!(only_prediction[0], g[0], "d/dp alone");
        assert!(
            only_prediction[1].is_empty(),
            "d/dt computed though not needed"
        );
    }

    /// PyTorch's BCELoss, and the ELBO on its reconstruction, refuse a probability outside
    /// [0, 1], NaN included (`torch.nn.functional.binary_cross_entropy` raises "all elements
    /// of input should be between 0 and 1" for NaN too), in the forward and the backward
    /// pass; the error names the first offending element, wherever it sits among the chunks,
    /// also where a chunk holds two. 0 and 1 themselves pass.
    #[test]
    fn probabilities_outside_the_unit_interval_are_refused_with_their_index() {
        let len = 600;
        let valid = unit_values(len, 5, 50);
        let bce_inputs = |p: &[f32]| [buf(p), buf(&valid)];
        let vae_inputs = |p: &[f32]| {
            [
                Buf::new(vec![2, len / 2], p.to_vec()),
                buf(&[0.5, -0.5]),
                buf(&[0.1, 0.2]),
                Buf::new(vec![2, len / 2], valid.clone()),
            ]
        };
        let cases: [(&[usize], f32); 6] = [
            (&[0], -0.5),
            (&[300], f32::NAN),
            (&[7], 1.5),
            (&[300, 301], 1.0 + f32::EPSILON),
            (&[256, 511], -f32::MIN_POSITIVE),
            (&[599], f32::INFINITY),
        ];
        for (at, bad) in cases {
            let mut p = valid.clone();
            at.iter().for_each(|&i| p[i] = bad);
            let want = format!("{bad} at element {} is outside [0, 1]", at[0]);
            for (op, inputs, what) in [
                (
                    LossOp::BinaryCrossEntropy,
                    bce_inputs(&p).to_vec(),
                    "probability",
                ),
                (LossOp::VaeElbo, vae_inputs(&p).to_vec(), "reconstruction"),
            ] {
                let mut grads: Vec<Vec<f32>> =
                    inputs.iter().map(|b| vec![0.0; b.data.len()]).collect();
                let backward = Want::Grads {
                    dloss: 1.0,
                    grads: &mut grads,
                };
                for (pass, result) in [
                    (
                        "loss",
                        evaluate(op, Args::all(&inputs), Want::Loss, &mut Vec::new()),
                    ),
                    (
                        "backward",
                        evaluate(op, Args::all(&inputs), backward, &mut Vec::new()),
                    ),
                ] {
                    let err = result.expect_err(&format!("{op:?} {pass} took {bad} at {at:?}"));
                    assert_eq!(err, format!("{what} {want}"), "{op:?} {pass}");
                }
            }
        }
        // 0 and 1 themselves are valid (`valid` holds both).
        assert!(loss_of(LossOp::BinaryCrossEntropy, &bce_inputs(&valid)).is_finite());
        assert!(loss_of(LossOp::VaeElbo, &vae_inputs(&valid)).is_finite());
    }

    /// Labels index `0..C`: a label equal to C is refused (PyTorch: "Target 3 is out of
    /// bounds"), in the forward and the backward pass, even on a row whose neighbour would
    /// give it an element to read; C - 1 is in range.
    #[test]
    fn cross_entropy_refuses_a_label_equal_to_the_class_count() {
        let z = vec![0.5, -1.0, 2.0, 0.0, 1.0, -2.0];
        for (labels, bad_row) in [([3i64, 0], 0), ([2, 3], 1), ([-1, 1], 0)] {
            let inputs = [
                Buf::new(vec![2, 3], z.clone()),
                Buf::labels(vec![2], labels.to_vec()),
            ];
            let want = format!("label {} at row {bad_row} is outside 0..3", labels[bad_row]);
            let loss = evaluate(
                LossOp::CrossEntropy,
                Args::all(&inputs),
                Want::Loss,
                &mut Vec::new(),
            );
            assert_eq!(loss, Err(want.clone()), "loss, labels {labels:?}");
            let mut grads = vec![vec![0.0; 6], Vec::new()];
            let backward = Want::Grads {
                dloss: 1.0,
                grads: &mut grads,
            };
            let backward = evaluate(
                LossOp::CrossEntropy,
                Args::all(&inputs),
                backward,
                &mut Vec::new(),
            );
            assert_eq!(backward, Err(want), "backward, labels {labels:?}");
        }
        // No classes at all: every label is out of range, as in the reference and PyTorch
        // (the engine answered NaN before mutation testing found it).
        let no_classes = [
            Buf::new(vec![2, 0], Vec::new()),
            Buf::labels(vec![2], vec![0, 0]),
        ];
        let loss = evaluate(
            LossOp::CrossEntropy,
            Args::all(&no_classes),
            Want::Loss,
            &mut Vec::new(),
        );
        assert_eq!(loss, Err("label 0 at row 0 is outside 0..0".to_string()));
        let inputs = [Buf::new(vec![2, 3], z), Buf::labels(vec![2], vec![2, 2])];
        // Row 0: lse(0.5, -1, 2) - 2; row 1: lse(0, 1, -2) + 2.
        let lse = |r: [f64; 3]| r.iter().map(|v| v.exp()).sum::<f64>().ln();
        let want = (lse([0.5, -1.0, 2.0]) - 2.0 + lse([0.0, 1.0, -2.0]) + 2.0) / 2.0;
        let got = loss_of(LossOp::CrossEntropy, &inputs);
        assert!(close(got, want), "{got} != {want}");
    }

    /// BCE with logits against its f64 formula over 600 elements (three chunks) whose
    /// logits sweep |z| from 0 to 24, through the range where e^-|z| is below f32's epsilon
    /// but not negligible next to the loss (the `ln(1 + e)` correction); targets of 0 and 1
    /// there make the loss that correction alone. With dloss = 2, every gradient element.
    #[test]
    fn bce_with_logits_matches_f64_across_chunks_and_small_exponentials() {
        let len = 600;
        let z: Vec<f32> = (0..len)
            .map(|i| {
                let magnitude = 24.0 * (i / 2) as f32 / (len / 2) as f32;
                if i % 2 == 0 {
                    magnitude
                } else {
                    -magnitude
                }
            })
            .collect();
        // t = 1 for z > 0 and 0 for z < 0 (the loss is ln(1 + e^-|z|)), except every third.
        let t: Vec<f32> = z
            .iter()
            .enumerate()
            .map(|(i, &z)| match (i % 3, z > 0.0) {
                (0, _) => 0.25,
                (_, true) => 1.0,
                _ => 0.0,
            })
            .collect();
        let inputs = [buf(&z), buf(&t)];
        let loss = loss_of(LossOp::BinaryCrossEntropyWithLogits, &inputs);
        let g = grads_of(
            LossOp::BinaryCrossEntropyWithLogits,
            &inputs,
            2.0,
            &[true, true],
        );
        let n = len as f64;
        let (mut want, mut dz, mut dt) = (0.0, Vec::new(), Vec::new());
        for (&z, &t) in z.iter().zip(&t) {
            let (z, t) = (f64::from(z), f64::from(t));
            let term = z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
            // Each term to f32's relative precision, however small.
            let one = loss_of(
                LossOp::BinaryCrossEntropyWithLogits,
                &[buf(&[z as f32]), buf(&[t as f32])],
            );
            assert!(
                (one - term).abs() <= 1e-5 * term,
                "z {z}, t {t}: {one:e}, want {term:e}"
            );
            want += term;
            dz.push(2.0 * (1.0 / (1.0 + (-z).exp()) - t) / n);
            dt.push(2.0 * -z / n);
        }
        assert!(close(loss, want / n), "loss {loss}, want {}", want / n);
        assert_all_close("dz", &g[0], &dz);
        assert_all_close("dt", &g[1], &dt);
    }

    /// Cross-entropy on a single row, by hand: logits [1, 2, 3] and label 2 give
    /// ln(e + e^2 + e^3) - 3; with dloss = 2, d/dz = 2 (softmax - onehot).
    #[test]
    fn cross_entropy_on_one_row_with_dloss_matches_hand_values() {
        let inputs = [
            Buf::new(vec![1, 3], vec![1.0, 2.0, 3.0]),
            Buf::labels(vec![1], vec![2]),
        ];
        let sum: f64 = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).sum();
        let loss = loss_of(LossOp::CrossEntropy, &inputs);
        assert!(close(loss, sum.ln() - 3.0), "loss {loss}");
        let g = grads_of(LossOp::CrossEntropy, &inputs, 2.0, &[true, false]);
        let softmax = [1.0f64, 2.0, 3.0].map(|v| v.exp() / sum);
        let want = [2.0 * softmax[0], 2.0 * softmax[1], 2.0 * (softmax[2] - 1.0)];
        assert_all_close("dz", &g[0], &want);
    }
}
