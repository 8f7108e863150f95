//! Losses: MSE, cross-entropy (logits, i64 labels), BCE (probabilities, and logits), VAE ELBO.
//!
//! Every loss follows PyTorch's default reduction; [`loss_backward`] returns exact derivatives
//! of what [`loss`] computes, except BCE's d/dp and d/dt, which are PyTorch's own formulas (see
//! `bce_term`).

use dlbench_core::{LossOp, Tensor};

fn f64s(t: &Tensor) -> &[f64] {
    t.as_f64().expect("reference tensors are f64")
}

fn tensor(shape: &[usize], data: Vec<f64>) -> Tensor {
    Tensor::f64(shape.to_vec(), data).expect("element count matches shape")
}

/// PyTorch's BCELoss floor on each log, so that `p = 0` or `p = 1` gives a finite loss.
const LOG_FLOOR: f64 = -100.0;

/// `ln v` clamped at [`LOG_FLOOR`]. NaN passes through rather than being clamped, so a
/// diverged input stays visible.
fn clamped_ln(v: f64) -> f64 {
    let ln = v.ln();
    if ln < LOG_FLOOR {
        LOG_FLOOR
    } else {
        ln
    }
}

/// PyTorch's floor on `p (1 - p)` in BCELoss's backward. ATen declares it a `float`
/// (`constexpr float EPSILON = 1e-12` in `Loss.cpp`), so in double arithmetic it is
/// 9.999999960041972e-13, not 1e-12: a saturated gradient differs by 4e-9 relative.
const BCE_GRAD_EPS: f64 = 1e-12_f32 as f64;

/// One element of BCE on a probability: the loss, d/dp and d/dt.
///
/// d/dp is PyTorch's own backward, `(p - t) / max(p (1 - p), 1e-12f)`, not the derivative of
/// the clamped loss: the two agree unless `p (1 - p) < 1e-12`, where a saturated sigmoid in
/// libtorch still gets a (large) gradient, and the oracle must say what PyTorch says.
/// d/dt is PyTorch's too, `-logit(p) = -ln(p / (1 - p))` with no clamp: it agrees with the
/// derivative of the clamped loss unless a log is below -100, and is infinite at p = 0 or 1.
fn bce_term(p: f64, t: f64) -> (f64, f64, f64) {
    let (lp, lq) = (clamped_ln(p), clamped_ln(1.0 - p));
    let loss = -(t * lp + (1.0 - t) * lq);
    let dp = (p - t) / (p * (1.0 - p)).max(BCE_GRAD_EPS);
    let dt = -(p / (1.0 - p)).ln();
    (loss, dp, dt)
}

/// PyTorch refuses probabilities outside [0, 1], NaN among them ("all elements of input should
/// be between 0 and 1").
fn check_probabilities(p: &[f64], what: &str) -> Result<(), String> {
    match p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        Some(e) => Err(format!("{what} {} at element {e} is outside [0, 1]", p[e])),
        None => Ok(()),
    }
}

/// The label of each row of `[N, C]` logits, checked to lie in `0..C`.
fn labels(logits: &Tensor, labels: &Tensor) -> Result<Vec<usize>, String> {
    let classes = logits.shape()[1];
    let raw = labels.as_i64().ok_or("labels must be i64")?;
    raw.iter()
        .enumerate()
        .map(|(row, &l)| {
            usize::try_from(l)
                .ok()
                .filter(|&l| l < classes)
                .ok_or_else(|| format!("label {l} at row {row} is outside 0..{classes}"))
        })
        .collect()
}

/// Per row of `[N, C]` logits: `logsumexp(row)` and `softmax(row)`, shifted by the max.
fn log_sum_exp(row: &[f64]) -> (f64, Vec<f64>) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    (max + sum.ln(), exps.iter().map(|e| e / sum).collect())
}

/// The loss and the gradient of the loss with respect to each input (`None` for labels).
fn evaluate(op: LossOp, inputs: &[&Tensor]) -> Result<(f64, Vec<Option<Tensor>>), String> {
    match op {
        LossOp::Mse => {
            let (p, t) = (f64s(inputs[0]), f64s(inputs[1]));
            let n = p.len() as f64;
            let loss = p.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / n;
            let dp: Vec<f64> = p.iter().zip(t).map(|(a, b)| 2.0 * (a - b) / n).collect();
            let dt = dp.iter().map(|g| -g).collect();
            Ok((
                loss,
                vec![
                    Some(tensor(inputs[0].shape(), dp)),
                    Some(tensor(inputs[1].shape(), dt)),
                ],
            ))
        }
        LossOp::CrossEntropy => {
            let labels = labels(inputs[0], inputs[1])?;
            let (rows, classes) = (inputs[0].shape()[0], inputs[0].shape()[1]);
            let z = f64s(inputs[0]);
            let n = rows as f64;
            let mut loss = 0.0;
            let mut dz = vec![0.0; z.len()];
            for (r, &label) in labels.iter().enumerate() {
                let row = &z[r * classes..(r + 1) * classes];
                let (lse, probs) = log_sum_exp(row);
                loss += lse - row[label];
                for c in 0..classes {
                    let onehot = if c == label { 1.0 } else { 0.0 };
                    dz[r * classes + c] = (probs[c] - onehot) / n;
                }
            }
            Ok((loss / n, vec![Some(tensor(inputs[0].shape(), dz)), None]))
        }
        LossOp::BinaryCrossEntropy => {
            let (p, t) = (f64s(inputs[0]), f64s(inputs[1]));
            check_probabilities(p, "probability")?;
            let n = p.len() as f64;
            let mut loss = 0.0;
            let (mut dp, mut dt) = (vec![0.0; p.len()], vec![0.0; t.len()]);
            for e in 0..p.len() {
                let (l, gp, gt) = bce_term(p[e], t[e]);
                loss += l;
                dp[e] = gp / n;
                dt[e] = gt / n;
            }
            Ok((
                loss / n,
                vec![
                    Some(tensor(inputs[0].shape(), dp)),
                    Some(tensor(inputs[1].shape(), dt)),
                ],
            ))
        }
        LossOp::BinaryCrossEntropyWithLogits => {
            let (z, t) = (f64s(inputs[0]), f64s(inputs[1]));
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
            Ok((
                loss / n,
                vec![
                    Some(tensor(inputs[0].shape(), dz)),
                    Some(tensor(inputs[1].shape(), dt)),
                ],
            ))
        }
        LossOp::VaeElbo => {
            let (recon, mu, logvar, x) = (
                f64s(inputs[0]),
                f64s(inputs[1]),
                f64s(inputs[2]),
                f64s(inputs[3]),
            );
            check_probabilities(recon, "reconstruction")?;
            let n = inputs[0].shape()[0] as f64;
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
                    Some(tensor(inputs[0].shape(), drecon)),
                    Some(tensor(inputs[1].shape(), dmu)),
                    Some(tensor(inputs[2].shape(), dlogvar)),
                    Some(tensor(inputs[3].shape(), dx)),
                ],
            ))
        }
    }
}

/// The scalar loss (shape `[]`). Errors only for bad data, e.g. a label out of range.
pub fn loss(op: LossOp, inputs: &[&Tensor]) -> Result<Tensor, String> {
    Ok(Tensor::scalar_f64(evaluate(op, inputs)?.0))
}

/// Gradients of `dloss * loss` with respect to each input (`None` for labels).
pub fn loss_backward(
    op: LossOp,
    inputs: &[&Tensor],
    dloss: f64,
) -> Result<Vec<Option<Tensor>>, String> {
    let (_, grads) = evaluate(op, inputs)?;
    Ok(grads
        .into_iter()
        .map(|g| {
            g.map(|g| {
                let scaled = f64s(&g).iter().map(|v| v * dloss).collect();
                tensor(g.shape(), scaled)
            })
        })
        .collect())
}
