//! The cases of training itself: one per loss, and one per optimizer and per option set away
//! from its default, on models of element-wise ops only.

use dlbench_core::training::{Adam, Gd, Sgd};
use dlbench_core::{BinaryOp, DType, Dim, InputRole, Loss, Op, Optimizer, UnaryOp};

use super::{param, shifted, with_optimizer, X};
use crate::Case;

/// Losses train with SGD and momentum, so that optimizer runs too.
pub(super) fn loss_cases() -> Vec<Case> {
    let sgd = Optimizer::Sgd(Sgd {
        lr: 0.05,
        momentum: 0.9,
        ..Sgd::default()
    });
    let loss = |name: &str, about: &str, loss: Loss, width: usize, sigmoid: bool| {
        with_optimizer(name, about, loss, sgd, &[width], move |b| {
            let h = shifted(b, width)?;
            Ok(vec![match sigmoid {
                true => b.op(None, Op::Unary(UnaryOp::Sigmoid), &[&h])?,
                false => h,
            }])
        })
    };
    vec![
        loss("loss_mse", "mean squared error", Loss::Mse, 4, false),
        loss(
            "loss_cross_entropy",
            "softmax cross-entropy on 5 classes",
            Loss::CrossEntropy,
            5,
            false,
        ),
        loss(
            "loss_bce",
            "binary cross-entropy on probabilities",
            Loss::BinaryCrossEntropy,
            3,
            true,
        ),
        loss(
            "loss_bce_with_logits",
            "binary cross-entropy on logits",
            Loss::BinaryCrossEntropyWithLogits,
            3,
            false,
        ),
        with_optimizer(
            "loss_vae_elbo",
            "the VAE's ELBO with a fed epsilon; element-wise encoder and decoder",
            Loss::VaeElbo,
            sgd,
            &[6],
            |b| {
                let eps = b.input(
                    "eps",
                    DType::F32,
                    vec![Dim::Batch, Dim::Known(6)],
                    InputRole::Normal,
                )?;
                let p_mu = param(b, "p_mu", &[6])?;
                let p_lv = param(b, "p_logvar", &[6])?;
                let p_dec = param(b, "p_dec", &[6])?;
                let mu = b.op(Some("mu"), Op::Binary(BinaryOp::Add), &[X, &p_mu])?;
                let logvar = b.op(Some("logvar"), Op::Binary(BinaryOp::Mul), &[X, &p_lv])?;
                let half = b.op(
                    Some("half"),
                    Op::Unary(UnaryOp::Scale { factor: 0.5 }),
                    &[&logvar],
                )?;
                let std = b.op(Some("std"), Op::Unary(UnaryOp::Exp), &[&half])?;
                let noise = b.op(Some("noise"), Op::Binary(BinaryOp::Mul), &[&std, &eps])?;
                let z = b.op(Some("z"), Op::Binary(BinaryOp::Add), &[&mu, &noise])?;
                let dec = b.op(Some("dec"), Op::Binary(BinaryOp::Mul), &[&z, &p_dec])?;
                let recon = b.op(Some("recon"), Op::Unary(UnaryOp::Sigmoid), &[&dec])?;
                Ok(vec![recon, mu, logvar])
            },
        ),
    ]
}

/// One case per optimizer option (and plain GD), each the only non-default setting besides the
/// learning rate: `(x + p) * q` under MSE, so that no op beyond add and mul is involved.
pub(super) fn optimizer_cases() -> Vec<Case> {
    let optim = |name: &str, about: &str, optimizer: Optimizer| {
        with_optimizer(name, about, Loss::Mse, optimizer, &[4], |b| {
            let h = shifted(b, 4)?;
            let q = param(b, "scale", &[4])?;
            Ok(vec![b.op(None, Op::Binary(BinaryOp::Mul), &[&h, &q])?])
        })
    };
    let sgd = |s: Sgd| Optimizer::Sgd(Sgd { lr: 0.05, ..s });
    let adam = |a: Adam| Optimizer::Adam(Adam { lr: 0.01, ..a });
    let momentum = Sgd {
        momentum: 0.9,
        ..Sgd::default()
    };
    vec![
        optim(
            "optim_gd",
            "plain gradient descent, lr 0.05",
            Optimizer::Gd(Gd { lr: 0.05 }),
        ),
        optim(
            "optim_sgd_dampening",
            "SGD, momentum 0.9, dampening 0.5",
            sgd(Sgd {
                dampening: 0.5,
                ..momentum
            }),
        ),
        optim(
            "optim_sgd_nesterov",
            "SGD, Nesterov momentum 0.9",
            sgd(Sgd {
                nesterov: true,
                ..momentum
            }),
        ),
        optim(
            "optim_sgd_weight_decay",
            "SGD, weight decay 0.1",
            sgd(Sgd {
                weight_decay: 0.1,
                ..Sgd::default()
            }),
        ),
        optim(
            "optim_adam_betas_eps",
            "Adam, betas (0.8, 0.99), eps 1e-6",
            adam(Adam {
                beta1: 0.8,
                beta2: 0.99,
                eps: 1e-6,
                ..Adam::default()
            }),
        ),
        optim(
            "optim_adam_weight_decay",
            "Adam, weight decay 0.1",
            adam(Adam {
                weight_decay: 0.1,
                ..Adam::default()
            }),
        ),
        optim(
            "optim_adam_amsgrad",
            "Adam, AMSGrad",
            adam(Adam {
                amsgrad: true,
                ..Adam::default()
            }),
        ),
    ]
}
