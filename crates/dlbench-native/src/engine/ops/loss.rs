//! Losses: MSE, cross-entropy (logits, i64 labels), BCE (probabilities, and logits), VAE ELBO.
//!
//! PyTorch's default reductions and backward formulas, as in the reference. Each element is
//! computed in f32 from f32 inputs, but the sums over the batch are accumulated in f64: a
//! long f32 sum would drift from the reference by more than the agreement tolerance.

use dlbench_core::Op;

use super::{Buf, Grads};

/// PyTorch's BCELoss floor on each log, so that `p = 0` or `p = 1` gives a finite loss.
const LOG_FLOOR: f64 = -100.0;

/// PyTorch's floor on `p (1 - p)` in BCELoss's backward (a `float` in ATen's `Loss.cpp`).
const BCE_GRAD_EPS: f64 = 1e-12_f32 as f64;

/// `ln v` clamped at [`LOG_FLOOR`]; NaN passes through so a diverged input stays visible.
fn clamped_ln(v: f64) -> f64 {
    let ln = v.ln();
    if ln < LOG_FLOOR {
        LOG_FLOOR
    } else {
        ln
    }
}

/// One element of BCE on a probability: the loss, d/dp and d/dt (PyTorch's formulas; see
/// the reference's `bce_term`).
fn bce_term(p: f64, t: f64) -> (f64, f64, f64) {
    let (lp, lq) = (clamped_ln(p), clamped_ln(1.0 - p));
    let loss = -(t * lp + (1.0 - t) * lq);
    let dp = (p - t) / (p * (1.0 - p)).max(BCE_GRAD_EPS);
    let dt = -(p / (1.0 - p)).ln();
    (loss, dp, dt)
}

/// PyTorch refuses probabilities outside [0, 1]; NaN is let through to show up in the loss.
fn check_probabilities(p: &[f32], what: &str) -> Result<(), String> {
    match p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        Some(e) => Err(format!("{what} {} at element {e} is outside [0, 1]", p[e])),
        None => Ok(()),
    }
}

/// The label of each row of `[N, C]` logits, checked to lie in `0..C`.
fn labels(logits: &Buf, labels: &Buf) -> Result<Vec<usize>, String> {
    let classes = logits.shape[1];
    labels
        .labels
        .iter()
        .enumerate()
        .map(|(row, &l)| {
            usize::try_from(l)
                .ok()
                .filter(|&l| l < classes)
                .ok_or_else(|| format!("label {l} at row {row} is outside 0..{classes}"))
        })
        .collect()
}

/// Scaled f64 gradients, narrowed to f32.
fn narrow(g: Vec<f64>) -> Vec<f32> {
    g.into_iter().map(|v| v as f32).collect()
}

/// The loss and the gradient of the loss with respect to each input (`None` for labels);
/// gradients are only computed when `grads` is set.
fn evaluate(op: &Op, inputs: &[&Buf], grads: bool) -> Result<(f64, Grads), String> {
    let wide = |b: &Buf| -> Vec<f64> { b.data.iter().map(|&v| f64::from(v)).collect() };
    match op {
        Op::MseLoss => {
            let (p, t) = (&inputs[0].data, &inputs[1].data);
            let n = p.len() as f64;
            let loss = p
                .iter()
                .zip(t)
                .map(|(&a, &b)| {
                    let d = f64::from(a) - f64::from(b);
                    d * d
                })
                .sum::<f64>()
                / n;
            if !grads {
                return Ok((loss, Vec::new()));
            }
            let scale = (2.0 / n) as f32;
            let dp: Vec<f32> = p.iter().zip(t).map(|(a, b)| scale * (a - b)).collect();
            let dt = dp.iter().map(|g| -g).collect();
            Ok((loss, vec![Some(dp), Some(dt)]))
        }
        Op::CrossEntropyLoss => {
            let labels = labels(inputs[0], inputs[1])?;
            let classes = inputs[0].shape[1];
            let z = &inputs[0].data;
            let n = labels.len() as f64;
            let mut loss = 0.0;
            let mut dz = vec![0.0f32; if grads { z.len() } else { 0 }];
            for (r, &label) in labels.iter().enumerate() {
                let row = &z[r * classes..(r + 1) * classes];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
                let lse = f64::from(max) + sum.ln();
                loss += lse - f64::from(row[label]);
                if grads {
                    for c in 0..classes {
                        let prob = f64::from(row[c] - max).exp() / sum;
                        let onehot = if c == label { 1.0 } else { 0.0 };
                        dz[r * classes + c] = ((prob - onehot) / n) as f32;
                    }
                }
            }
            Ok((loss / n, vec![Some(dz), None]))
        }
        Op::BceLoss => {
            check_probabilities(&inputs[0].data, "probability")?;
            let (p, t) = (wide(inputs[0]), wide(inputs[1]));
            let n = p.len() as f64;
            let mut loss = 0.0;
            let (mut dp, mut dt) = (vec![0.0; p.len()], vec![0.0; t.len()]);
            for e in 0..p.len() {
                let (l, gp, gt) = bce_term(p[e], t[e]);
                loss += l;
                dp[e] = gp / n;
                dt[e] = gt / n;
            }
            Ok((loss / n, vec![Some(narrow(dp)), Some(narrow(dt))]))
        }
        Op::BceWithLogitsLoss => {
            let (z, t) = (wide(inputs[0]), wide(inputs[1]));
            let n = z.len() as f64;
            let mut loss = 0.0;
            let (mut dz, mut dt) = (vec![0.0; z.len()], vec![0.0; t.len()]);
            for e in 0..z.len() {
                let (z, t) = (z[e], t[e]);
                // max(z, 0) + ln(1 + e^-|z|) is ln(1 + e^z) without overflow for large |z|.
                loss += z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
                let sigmoid = if z >= 0.0 {
                    1.0 / (1.0 + (-z).exp())
                } else {
                    z.exp() / (1.0 + z.exp())
                };
                dz[e] = (sigmoid - t) / n;
                dt[e] = -z / n;
            }
            Ok((loss / n, vec![Some(narrow(dz)), Some(narrow(dt))]))
        }
        Op::VaeElboLoss => {
            check_probabilities(&inputs[0].data, "reconstruction")?;
            let (recon, mu, logvar, x) = (
                wide(inputs[0]),
                wide(inputs[1]),
                wide(inputs[2]),
                wide(inputs[3]),
            );
            let n = inputs[0].shape[0] as f64;
            let mut total = 0.0;
            let (mut drecon, mut dx) = (vec![0.0; recon.len()], vec![0.0; x.len()]);
            for e in 0..recon.len() {
                let (l, gp, gt) = bce_term(recon[e], x[e]);
                total += l;
                drecon[e] = gp / n;
                dx[e] = gt / n;
            }
            let (mut dmu, mut dlogvar) = (vec![0.0; mu.len()], vec![0.0; logvar.len()]);
            for e in 0..mu.len() {
                let (m, lv) = (mu[e], logvar[e]);
                total += -0.5 * (1.0 + lv - m * m - lv.exp());
                dmu[e] = m / n;
                dlogvar[e] = 0.5 * (lv.exp() - 1.0) / n;
            }
            Ok((
                total / n,
                vec![
                    Some(narrow(drecon)),
                    Some(narrow(dmu)),
                    Some(narrow(dlogvar)),
                    Some(narrow(dx)),
                ],
            ))
        }
        other => Err(format!("{} is not a loss", other.name())),
    }
}

/// The scalar loss (shape `[]`). Errors only for bad data, e.g. a label out of range.
pub fn loss(op: &Op, inputs: &[&Buf]) -> Result<Buf, String> {
    let (value, _) = evaluate(op, inputs, false)?;
    Ok(Buf::new(Vec::new(), vec![value as f32]))
}

/// Gradients of `dloss * loss` with respect to each input (`None` for labels).
pub fn loss_backward(op: &Op, inputs: &[&Buf], dloss: f32) -> Result<Grads, String> {
    let (_, grads) = evaluate(op, inputs, true)?;
    Ok(grads
        .into_iter()
        .map(|g| {
            g.map(|mut g| {
                if dloss != 1.0 {
                    g.iter_mut().for_each(|v| *v *= dloss);
                }
                g
            })
        })
        .collect())
}
