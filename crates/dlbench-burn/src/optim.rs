//! The optimizers: burn-optim's own `Sgd` and `Adam`, driven one parameter at a time through
//! burn's `Optimizer::step(lr, tensor, grad, state)` (the per-tensor step that burn's
//! `ModuleOptimizer` calls for each `ParamId` of a `Module`). This backend's parameters are
//! named tensors, not a `Module`, so the state is kept here by parameter name, one flat
//! (rank-1) state per parameter: every update is element-wise, so the flat view changes
//! nothing.
//!
//! Every option is set explicitly from the spec, because burn's defaults are not PyTorch's:
//! Adam's epsilon (burn 1e-5, PyTorch 1e-8) and SGD momentum's dampening (burn 0.1, PyTorch 0).
//! burn's weight decay adds `penalty * param` to the gradient before momentum (PyTorch's L2
//! decay of `SGD` and `Adam`, not AdamW's decoupled one), and its Adam has AMSGrad. burn keeps
//! Adam's betas, epsilon and the decay penalty as f32.

use std::collections::BTreeMap;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{Adam as BurnAdam, AdamConfig, Optimizer as BurnOptimizer, Sgd as BurnSgd};
use burn::optim::{AdamState, SgdConfig, SgdState};
use burn::tensor::Tensor;
use dlbench_core::training::{Adam, Gd, Sgd};
use dlbench_core::{Optimizer, Result};

/// A burn optimizer, its learning rate and each parameter's state by name.
pub(crate) enum Updater {
    /// burn's SGD (also plain gradient descent: no momentum, no decay).
    Sgd {
        /// The configured optimizer.
        optim: BurnSgd,
        /// Learning rate.
        lr: f64,
        /// Per-parameter state (the momentum buffer).
        states: BTreeMap<String, SgdState<1>>,
    },
    /// burn's Adam.
    Adam {
        /// The configured optimizer.
        optim: BurnAdam,
        /// Learning rate.
        lr: f64,
        /// Per-parameter state (the moments and step count).
        states: BTreeMap<String, AdamState<1>>,
    },
}

/// L2 weight decay as burn configures it; none for a zero penalty (what PyTorch adds then).
fn decay(weight_decay: f64) -> Option<WeightDecayConfig> {
    (weight_decay != 0.0).then(|| WeightDecayConfig::new(weight_decay as f32))
}

impl Updater {
    /// burn's optimizer for `config`, every option set from it.
    pub(crate) fn new(config: &Optimizer) -> Result<Updater> {
        config.validate()?;
        Ok(match *config {
            Optimizer::Gd(Gd { lr }) => Updater::Sgd {
                optim: SgdConfig::new().build(),
                lr,
                states: BTreeMap::new(),
            },
            Optimizer::Sgd(Sgd {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            }) => {
                // PyTorch keeps no momentum buffer when momentum is 0; neither does burn
                // without a momentum config.
                let momentum = (momentum != 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(dampening)
                        .with_nesterov(nesterov)
                });
                let optim = SgdConfig::new()
                    .with_momentum(momentum)
                    .with_weight_decay(decay(weight_decay))
                    .build();
                Updater::Sgd {
                    optim,
                    lr,
                    states: BTreeMap::new(),
                }
            }
            Optimizer::Adam(Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                amsgrad,
            }) => {
                let optim = AdamConfig::new()
                    .with_beta_1(beta1 as f32)
                    .with_beta_2(beta2 as f32)
                    .with_epsilon(eps as f32)
                    .with_amsgrad(amsgrad)
                    .with_weight_decay(decay(weight_decay))
                    .build();
                Updater::Adam {
                    optim,
                    lr,
                    states: BTreeMap::new(),
                }
            }
        })
    }

    /// One update of the parameter `name` (a flat tensor without autodiff) from its gradient;
    /// returns the new value.
    pub(crate) fn step(&mut self, name: &str, param: Tensor<1>, grad: Tensor<1>) -> Tensor<1> {
        match self {
            Updater::Sgd { optim, lr, states } => step(optim, *lr, states, name, param, grad),
            Updater::Adam { optim, lr, states } => step(optim, *lr, states, name, param, grad),
        }
    }
}

fn step<O: BurnOptimizer>(
    optim: &O,
    lr: f64,
    states: &mut BTreeMap<String, O::State<1>>,
    name: &str,
    param: Tensor<1>,
    grad: Tensor<1>,
) -> Tensor<1> {
    let state = states.remove(name);
    let (param, state) = optim.step(lr, param, grad, state);
    if let Some(state) = state {
        states.insert(name.to_string(), state);
    }
    param
}
