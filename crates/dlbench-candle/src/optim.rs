//! The optimizers, with PyTorch's update rules. candle-nn has two: `SGD` without momentum and
//! `AdamW`. Where they compute what PyTorch does they are used as they are:
//!
//! - plain SGD (GD, or SGD without momentum and weight decay): candle-nn's `SGD`;
//! - Adam without weight decay or AMSGrad: candle-nn's `AdamW` with its decay set to 0, which
//!   is then Adam (its bias corrections fold into `m_hat` and `v_hat`; PyTorch divides
//!   `sqrt(v)` by `sqrt(1 - beta2^t)` instead, the same up to rounding).
//!
//! The rest is composed from candle tensor ops here, following `torch.optim.SGD` and
//! `torch.optim.Adam` (`foreach=False`) line by line:
//!
//! - SGD with momentum, dampening, Nesterov or (L2) weight decay;
//! - Adam with (L2, not decoupled) weight decay or AMSGrad.
//!
//! As in PyTorch after `zero_grad()` (gradients set to `None`), a parameter the loss does not
//! reach has no gradient and is skipped: no decay, no momentum, and its Adam step count stays.

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer as _, ParamsAdamW, SGD};
use dlbench_core::training::{Adam, Gd, Sgd};
use dlbench_core::{Optimizer, Result};

use crate::convert::candle_error;

/// Which implementation runs a training config's optimizer.
pub(crate) enum Stepper {
    /// candle-nn's `SGD`.
    CandleSgd(SGD),
    /// candle-nn's `AdamW`, with weight decay 0.
    CandleAdamW(AdamW),
    /// `torch.optim.SGD`, composed.
    Sgd(ComposedSgd),
    /// `torch.optim.Adam`, composed.
    Adam(ComposedAdam),
}

impl std::fmt::Debug for Stepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl Stepper {
    /// The optimizer for `config` over `params` (by name, in the graph's order).
    pub(crate) fn new(config: &Optimizer, params: &[(String, Var)]) -> Result<Stepper> {
        config.validate()?;
        let vars: Vec<Var> = params.iter().map(|(_, v)| v.clone()).collect();
        let what = "building the optimizer";
        Ok(match *config {
            Optimizer::Gd(Gd { lr }) => {
                Stepper::CandleSgd(SGD::new(vars, lr).map_err(candle_error(what))?)
            }
            Optimizer::Sgd(s) if s.momentum == 0.0 && s.weight_decay == 0.0 => {
                Stepper::CandleSgd(SGD::new(vars, s.lr).map_err(candle_error(what))?)
            }
            Optimizer::Sgd(s) => Stepper::Sgd(ComposedSgd {
                config: s,
                momentum: BTreeMap::new(),
                params: params.to_vec(),
            }),
            Optimizer::Adam(a) if a.weight_decay == 0.0 && !a.amsgrad => {
                let params = ParamsAdamW {
                    lr: a.lr,
                    beta1: a.beta1,
                    beta2: a.beta2,
                    eps: a.eps,
                    weight_decay: 0.0,
                };
                Stepper::CandleAdamW(AdamW::new(vars, params).map_err(candle_error(what))?)
            }
            Optimizer::Adam(a) => Stepper::Adam(ComposedAdam {
                config: a,
                state: BTreeMap::new(),
                params: params.to_vec(),
            }),
        })
    }

    /// Which implementation this is, for messages and the docs' table.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Stepper::CandleSgd(_) => "candle-nn SGD",
            Stepper::CandleAdamW(_) => "candle-nn AdamW (weight decay 0)",
            Stepper::Sgd(_) => "torch.optim.SGD composed from candle ops",
            Stepper::Adam(_) => "torch.optim.Adam composed from candle ops",
        }
    }

    /// One update from `grads`.
    pub(crate) fn step(&mut self, grads: &GradStore) -> Result<()> {
        let what = "optimizer step";
        match self {
            Stepper::CandleSgd(o) => o.step(grads).map_err(candle_error(what)),
            Stepper::CandleAdamW(o) => o.step(grads).map_err(candle_error(what)),
            Stepper::Sgd(o) => o.step(grads).map_err(candle_error(what)),
            Stepper::Adam(o) => o.step(grads).map_err(candle_error(what)),
        }
    }
}

/// `torch.optim.SGD`:
///
/// ```text
/// g = grad + weight_decay * p
/// if momentum != 0:
///     b = g                                      (first step)
///     b = momentum * b + (1 - dampening) * g     (later steps)
///     g = g + momentum * b if nesterov else b
/// p = p - lr * g
/// ```
pub(crate) struct ComposedSgd {
    config: Sgd,
    /// The momentum buffer of each parameter that has had a gradient.
    momentum: BTreeMap<String, Tensor>,
    params: Vec<(String, Var)>,
}

impl ComposedSgd {
    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        let Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        } = self.config;
        for (name, var) in &self.params {
            let Some((p, mut g)) = decayed_gradient(var, grads, weight_decay)? else {
                continue;
            };
            if momentum != 0.0 {
                let buf = match self.momentum.get(name) {
                    None => g.copy()?,
                    Some(b) => (b.affine(momentum, 0.0)? + g.affine(1.0 - dampening, 0.0)?)?,
                };
                g = if nesterov {
                    (g + buf.affine(momentum, 0.0)?)?
                } else {
                    buf.clone()
                };
                self.momentum.insert(name.clone(), buf);
            }
            var.set(&(p - g.affine(lr, 0.0)?)?)?;
        }
        Ok(())
    }
}

/// The parameter `var` and its gradient with PyTorch's L2 weight decay added
/// (`grad + weight_decay * p`), both detached; `None` for a parameter the loss did not reach,
/// which both optimizers skip, as PyTorch does after `zero_grad()`.
fn decayed_gradient(
    var: &Var,
    grads: &GradStore,
    weight_decay: f64,
) -> candle_core::Result<Option<(Tensor, Tensor)>> {
    let Some(grad) = grads.get(var.as_tensor()) else {
        return Ok(None);
    };
    let p = var.as_tensor().detach();
    let mut g = grad.detach();
    if weight_decay != 0.0 {
        g = (g + p.affine(weight_decay, 0.0)?)?;
    }
    Ok(Some((p, g)))
}

/// One parameter's Adam state.
struct AdamState {
    step: i32,
    m: Tensor,
    v: Tensor,
    /// AMSGrad's running maximum of `v`.
    v_max: Option<Tensor>,
}

/// `torch.optim.Adam`:
///
/// ```text
/// t = t + 1
/// g = grad + weight_decay * p
/// m = beta1 * m + (1 - beta1) * g
/// v = beta2 * v + (1 - beta2) * g^2
/// v_max = max(v_max, v)                           (AMSGrad; then v_max below instead of v)
/// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
pub(crate) struct ComposedAdam {
    config: Adam,
    state: BTreeMap<String, AdamState>,
    params: Vec<(String, Var)>,
}

impl ComposedAdam {
    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        let Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
        } = self.config;
        for (name, var) in &self.params {
            let Some((p, g)) = decayed_gradient(var, grads, weight_decay)? else {
                continue;
            };
            let state = match self.state.remove(name) {
                Some(s) => s,
                None => AdamState {
                    step: 0,
                    m: p.zeros_like()?,
                    v: p.zeros_like()?,
                    v_max: amsgrad.then(|| p.zeros_like()).transpose()?,
                },
            };
            let step = state.step + 1;
            let m = (state.m.affine(beta1, 0.0)? + g.affine(1.0 - beta1, 0.0)?)?;
            let v = (state.v.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?;
            let v_max = match state.v_max {
                Some(old) => Some(old.maximum(&v)?),
                None => None,
            };
            let bias1 = 1.0 - beta1.powi(step);
            let bias2 = 1.0 - beta2.powi(step);
            let second = v_max.as_ref().unwrap_or(&v);
            let denom = second.sqrt()?.affine(1.0 / bias2.sqrt(), eps)?;
            let update = m.div(&denom)?.affine(lr / bias1, 0.0)?;
            var.set(&(p - update)?)?;
            self.state
                .insert(name.clone(), AdamState { step, m, v, v_max });
        }
        Ok(())
    }
}
