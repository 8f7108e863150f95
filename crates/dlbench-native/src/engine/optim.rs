//! PyTorch's optimizers on f32 parameters, updated in place: GD, SGD (momentum, dampening,
//! Nesterov, weight decay), Adam (L2 weight decay, AMSGrad). The formulas and their order are
//! those of [`crate::reference::optim`] (PyTorch's single-tensor code paths); scalars such as
//! Adam's bias corrections are computed in f64, as Python does, and applied in f32, as
//! PyTorch's float kernels do.

use dlbench_core::training::{Adam, Sgd};
use dlbench_core::{Optimizer, Result};

/// What an optimizer remembers about one parameter between steps.
#[derive(Debug, Clone, Default)]
struct Slot {
    /// Steps taken on this parameter (Adam's `t`, from 1 after the first step).
    steps: u64,
    /// SGD's momentum buffer, or Adam's first moment.
    first: Vec<f32>,
    /// Adam's second moment.
    second: Vec<f32>,
    /// Adam's running maximum of the second moment (AMSGrad).
    second_max: Vec<f32>,
}

/// An optimizer and its state, one slot per parameter (indexed like the session's
/// parameters). State is created on a parameter's first step, as in PyTorch: a parameter
/// that gets no gradient is left alone.
#[derive(Debug, Clone)]
pub struct OptimizerState {
    config: Optimizer,
    slots: Vec<Slot>,
}

impl OptimizerState {
    /// A fresh optimizer for `params` parameters; fails when the hyperparameters are invalid.
    pub fn new(config: &Optimizer, params: usize) -> Result<Self> {
        config.validate()?;
        Ok(OptimizerState {
            config: *config,
            slots: vec![Slot::default(); params],
        })
    }

    /// One update of parameter `index` in place with its gradient (same length).
    pub fn step(&mut self, index: usize, param: &mut [f32], grad: &[f32]) {
        let slot = &mut self.slots[index];
        slot.steps += 1;
        match &self.config {
            Optimizer::Gd(gd) => {
                let lr = gd.lr as f32;
                for (p, g) in param.iter_mut().zip(grad) {
                    *p += -lr * g;
                }
            }
            Optimizer::Sgd(sgd) => sgd_step(sgd, param, grad, slot),
            Optimizer::Adam(adam) => adam_step(adam, param, grad, slot),
        }
    }
}

/// `torch.optim.sgd._single_tensor_sgd`.
fn sgd_step(cfg: &Sgd, param: &mut [f32], grad: &[f32], slot: &mut Slot) {
    let (lr, momentum, dampening, decay) = (
        cfg.lr as f32,
        cfg.momentum as f32,
        cfg.dampening as f32,
        cfg.weight_decay as f32,
    );
    if cfg.momentum != 0.0 && slot.steps == 1 {
        slot.first = vec![0.0; grad.len()];
    }
    for (i, (p, &g)) in param.iter_mut().zip(grad).enumerate() {
        let mut g = g;
        // PyTorch skips the decay term when it is zero; adding `0 * p` would turn an infinite
        // parameter into NaN where PyTorch does not.
        if cfg.weight_decay != 0.0 {
            g += decay * *p;
        }
        if cfg.momentum != 0.0 {
            if slot.steps == 1 {
                slot.first[i] = g;
            } else {
                slot.first[i] = slot.first[i] * momentum + (1.0 - dampening) * g;
            }
            let b = slot.first[i];
            if cfg.nesterov {
                g += momentum * b;
            } else {
                g = b;
            }
        }
        *p += -lr * g;
    }
}

/// `torch.lerp(start, end, weight)` as PyTorch's CPU kernel computes it.
fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}

/// `torch.optim.adam._single_tensor_adam` (not AdamW: the decay goes into the gradient).
fn adam_step(cfg: &Adam, param: &mut [f32], grad: &[f32], slot: &mut Slot) {
    let n = param.len();
    if slot.steps == 1 {
        slot.first = vec![0.0; n];
        slot.second = vec![0.0; n];
        if cfg.amsgrad {
            slot.second_max = vec![0.0; n];
        }
    }
    let t = slot.steps as f64;
    let bias_correction1 = 1.0 - cfg.beta1.powf(t);
    let bias_correction2 = 1.0 - cfg.beta2.powf(t);
    let step_size = (cfg.lr / bias_correction1) as f32;
    let bc2_sqrt = bias_correction2.powf(0.5) as f32;
    let (beta2, one_minus_beta1, one_minus_beta2) = (
        cfg.beta2 as f32,
        (1.0 - cfg.beta1) as f32,
        (1.0 - cfg.beta2) as f32,
    );
    let (eps, decay) = (cfg.eps as f32, cfg.weight_decay as f32);
    for i in 0..n {
        let mut g = grad[i];
        if cfg.weight_decay != 0.0 {
            g += decay * param[i];
        }
        let m = lerp(slot.first[i], g, one_minus_beta1);
        let v = slot.second[i] * beta2 + one_minus_beta2 * g * g;
        slot.first[i] = m;
        slot.second[i] = v;
        let v = if cfg.amsgrad {
            // torch.maximum propagates NaN; f32::max would drop it.
            let vmax = if v.is_nan() || v > slot.second_max[i] {
                v
            } else {
                slot.second_max[i]
            };
            slot.second_max[i] = vmax;
            vmax
        } else {
            v
        };
        let denom = v.sqrt() / bc2_sqrt + eps;
        param[i] += -step_size * m / denom;
    }
}
