//! The losses. MSE and cross-entropy are burn-nn's own `MseLoss` and `CrossEntropyLoss`.
//! burn-nn's `BinaryCrossEntropyLoss` takes integer targets only, while the IR's targets are
//! floats (soft labels allowed), so both binary cross-entropies are composed from burn tensor
//! ops with the formulas burn-nn uses inside that loss: on probabilities
//! `-(t log p + (1 - t) log(1 - p))` with each log clamped at -100 (PyTorch's `BCELoss`), on
//! logits `(1 - t) x - log_sigmoid(x)` (burn's stable `log_sigmoid`). The VAE's ELBO is
//! composed the same way: that BCE summed plus the KL term, over the batch size.

use burn::nn::loss::{CrossEntropyLossConfig, MseLoss, Reduction};
use burn::tensor::activation::log_sigmoid;
use burn::tensor::Tensor;
use dlbench_core::{Error, LossOp, Result};

use crate::convert::{dims_of, Value};
use crate::ops::arg;

/// The scalar loss `op` computes from its inputs.
pub(crate) fn loss(op: LossOp, inputs: &[&Value]) -> Result<Value> {
    let x = arg(inputs, 0)?;
    let scalar = match op {
        LossOp::Mse => {
            let target = arg(inputs, 1)?.flat()?.clone();
            MseLoss::new().forward(x.flat()?.clone(), target, Reduction::Mean)
        }
        LossOp::CrossEntropy => {
            let logits = x.view::<2>()?;
            let labels = arg(inputs, 1)?;
            dims_of::<1>(labels.shape())?;
            // No padding label, no weights, no smoothing: PyTorch's `CrossEntropyLoss()`.
            CrossEntropyLossConfig::new()
                .init(&logits.device())
                .forward(logits, labels.flat_int()?.clone())
        }
        LossOp::BinaryCrossEntropy => {
            bce_probabilities(x.flat()?.clone(), arg(inputs, 1)?.flat()?.clone()).mean()
        }
        LossOp::BinaryCrossEntropyWithLogits => {
            let (logits, target) = (x.flat()?.clone(), arg(inputs, 1)?.flat()?.clone());
            target
                .neg()
                .add_scalar(1.0)
                .mul(logits.clone())
                .sub(log_sigmoid(logits))
                .mean()
        }
        LossOp::VaeElbo => vae_elbo(inputs)?,
    };
    Ok(Value::with_shape(scalar, Vec::new()))
}

/// Element-wise BCE on probabilities, each log clamped at -100 as PyTorch's `BCELoss` and
/// burn-nn's BCE do: `(t - 1) * max(log(1 - p), -100) - t * max(log p, -100)`.
fn bce_probabilities(p: Tensor<1>, t: Tensor<1>) -> Tensor<1> {
    let log_not = p.clone().neg().log1p().clamp_min(-100.0);
    let log_p = p.log().clamp_min(-100.0);
    t.clone().sub_scalar(1.0).mul(log_not).sub(t.mul(log_p))
}

/// The VAE's negative ELBO per sample: `(BCE(recon, x, sum) - 0.5 * sum(1 + logvar - mu^2 -
/// exp(logvar))) / N`, PyTorch's VAE example.
fn vae_elbo(inputs: &[&Value]) -> Result<Tensor<1>> {
    let (recon, mu, logvar, x) = (
        arg(inputs, 0)?,
        arg(inputs, 1)?.flat()?.clone(),
        arg(inputs, 2)?.flat()?.clone(),
        arg(inputs, 3)?.flat()?.clone(),
    );
    let n = recon
        .shape()
        .first()
        .copied()
        .ok_or_else(|| Error::invalid("vae_elbo: recon has no batch dim"))?
        .max(1);
    let bce = bce_probabilities(recon.flat()?.clone(), x).sum();
    let kl = logvar
        .clone()
        .sub(mu.square())
        .sub(logvar.exp())
        .add_scalar(1.0)
        .sum()
        .mul_scalar(-0.5);
    Ok(bce.add(kl).div_scalar(n as f64))
}
