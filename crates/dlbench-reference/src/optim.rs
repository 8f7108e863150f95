//! PyTorch's optimizers in f64: GD, SGD (momentum, dampening, Nesterov, weight decay), Adam
//! (L2 weight decay, AMSGrad). Each follows the single-tensor code path of `torch.optim`
//! operation by operation, including the order of floating-point operations, so that a
//! trajectory agrees with PyTorch's float64 one to the last few ulps.

use std::collections::BTreeMap;

use dlbench_core::training::{Adam, Sgd};
use dlbench_core::{Error, Optimizer, Result};

/// What an optimizer remembers about one parameter between steps.
#[derive(Debug, Clone, PartialEq, Default)]
struct Slot {
    /// Steps taken on this parameter (Adam's `t`, from 1 after the first step).
    steps: u64,
    /// SGD's momentum buffer, or Adam's first moment.
    first: Vec<f64>,
    /// Adam's second moment.
    second: Vec<f64>,
    /// Adam's running maximum of the second moment (AMSGrad).
    second_max: Vec<f64>,
}

/// An optimizer and its state, keyed by parameter name.
///
/// State is created lazily on a parameter's first step, as in PyTorch: a parameter that gets no
/// gradient in a step is left alone, its state (and Adam's step count) untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState {
    config: Optimizer,
    slots: BTreeMap<String, Slot>,
}

impl OptimizerState {
    /// A fresh optimizer; fails when the hyperparameters are invalid.
    pub fn new(config: &Optimizer) -> Result<Self> {
        config.validate()?;
        Ok(OptimizerState {
            config: *config,
            slots: BTreeMap::new(),
        })
    }

    /// The hyperparameters this optimizer runs with.
    pub fn config(&self) -> &Optimizer {
        &self.config
    }

    /// How many steps the parameter `name` has taken.
    pub fn steps(&self, name: &str) -> u64 {
        self.slots.get(name).map_or(0, |s| s.steps)
    }

    /// One update, in place, of every parameter that has a gradient in `grads`.
    ///
    /// A gradient for an unknown parameter, or one whose length differs from its parameter's,
    /// is an error and nothing is updated.
    pub fn step(
        &mut self,
        params: &mut BTreeMap<String, Vec<f64>>,
        grads: &BTreeMap<String, Vec<f64>>,
    ) -> Result<()> {
        for (name, grad) in grads {
            let param = params.get(name).ok_or_else(|| {
                Error::invalid(format!(
                    "optimizer: gradient for unknown parameter `{name}`"
                ))
            })?;
            if param.len() != grad.len() {
                return Err(Error::invalid(format!(
                    "optimizer: parameter `{name}` has {} elements, its gradient {}",
                    param.len(),
                    grad.len()
                )));
            }
        }
        for (name, grad) in grads {
            let param = params.get_mut(name).expect("checked above");
            let slot = self.slots.entry(name.clone()).or_default();
            slot.steps += 1;
            match &self.config {
                Optimizer::Gd(gd) => {
                    for (p, g) in param.iter_mut().zip(grad) {
                        *p += -gd.lr * g;
                    }
                }
                Optimizer::Sgd(sgd) => sgd_step(sgd, param, grad, slot),
                Optimizer::Adam(adam) => adam_step(adam, param, grad, slot),
            }
        }
        Ok(())
    }
}

/// `torch.optim.sgd._single_tensor_sgd`.
fn sgd_step(cfg: &Sgd, param: &mut [f64], grad: &[f64], slot: &mut Slot) {
    let mut g = grad.to_vec();
    // PyTorch skips the decay term when it is zero; adding `0 * p` would turn an infinite
    // parameter into NaN where PyTorch does not.
    if cfg.weight_decay != 0.0 {
        for (g, p) in g.iter_mut().zip(param.iter()) {
            *g += cfg.weight_decay * p;
        }
    }
    if cfg.momentum != 0.0 {
        if slot.steps == 1 {
            slot.first = g.clone();
        } else {
            for (b, g) in slot.first.iter_mut().zip(&g) {
                *b = *b * cfg.momentum + (1.0 - cfg.dampening) * g;
            }
        }
        if cfg.nesterov {
            for (g, b) in g.iter_mut().zip(&slot.first) {
                *g += cfg.momentum * b;
            }
        } else {
            g.clone_from(&slot.first);
        }
    }
    for (p, g) in param.iter_mut().zip(&g) {
        *p += -cfg.lr * g;
    }
}

/// `torch.lerp(start, end, weight)` as PyTorch's CPU kernel computes it: the two formulas keep
/// the result exact at either end.
fn lerp(start: f64, end: f64, weight: f64) -> f64 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}

/// `torch.optim.adam._single_tensor_adam` (not AdamW: the decay goes into the gradient).
fn adam_step(cfg: &Adam, param: &mut [f64], grad: &[f64], slot: &mut Slot) {
    let n = param.len();
    if slot.steps == 1 {
        slot.first = vec![0.0; n];
        slot.second = vec![0.0; n];
        if cfg.amsgrad {
            slot.second_max = vec![0.0; n];
        }
    }
    // Python evaluates `beta ** step` and `bc2 ** 0.5` with C's pow; so does powf.
    let t = slot.steps as f64;
    let bias_correction1 = 1.0 - cfg.beta1.powf(t);
    let bias_correction2 = 1.0 - cfg.beta2.powf(t);
    let step_size = cfg.lr / bias_correction1;
    let bias_correction2_sqrt = bias_correction2.powf(0.5);
    for i in 0..n {
        let mut g = grad[i];
        if cfg.weight_decay != 0.0 {
            g += cfg.weight_decay * param[i];
        }
        let m = lerp(slot.first[i], g, 1.0 - cfg.beta1);
        let v = slot.second[i] * cfg.beta2 + (1.0 - cfg.beta2) * g * g;
        slot.first[i] = m;
        slot.second[i] = v;
        let v = if cfg.amsgrad {
            // torch.maximum propagates NaN; f64::max would drop it.
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
        let denom = v.sqrt() / bias_correction2_sqrt + cfg.eps;
        param[i] += -step_size * m / denom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlbench_core::training::Gd;

    fn one(name: &str, v: Vec<f64>) -> BTreeMap<String, Vec<f64>> {
        BTreeMap::from([(name.to_string(), v)])
    }

    #[test]
    fn gd_moves_against_the_gradient() {
        let mut opt = OptimizerState::new(&Optimizer::Gd(Gd { lr: 0.5 })).unwrap();
        let mut params = one("w", vec![1.0, -2.0]);
        opt.step(&mut params, &one("w", vec![2.0, -4.0])).unwrap();
        assert_eq!(params["w"], vec![0.0, 0.0]);
        assert_eq!(opt.steps("w"), 1);
    }

    #[test]
    fn rejects_unknown_or_mismatched_gradients() {
        let mut opt = OptimizerState::new(&Optimizer::Sgd(Sgd::default())).unwrap();
        let mut params = one("w", vec![1.0]);
        let err = opt.step(&mut params, &one("v", vec![1.0])).unwrap_err();
        assert!(err.to_string().contains("`v`"), "{err}");
        let err = opt
            .step(&mut params, &one("w", vec![1.0, 2.0]))
            .unwrap_err();
        assert!(err.to_string().contains("2"), "{err}");
        assert_eq!(params["w"], vec![1.0]);
    }

    #[test]
    fn rejects_invalid_hyperparameters() {
        let bad = Optimizer::Adam(Adam {
            beta1: 1.0,
            ..Adam::default()
        });
        assert!(OptimizerState::new(&bad).is_err());
    }

    #[test]
    fn parameters_without_gradient_keep_their_state() {
        let mut opt = OptimizerState::new(&Optimizer::Adam(Adam::default())).unwrap();
        let mut params =
            BTreeMap::from([("a".to_string(), vec![1.0]), ("b".to_string(), vec![1.0])]);
        opt.step(&mut params, &one("a", vec![1.0])).unwrap();
        assert_eq!(params["b"], vec![1.0]);
        assert_eq!((opt.steps("a"), opt.steps("b")), (1, 0));
        // Adam's first step moves every element by about lr, whatever the gradient's scale.
        assert!((params["a"][0] - (1.0 - 1e-3)).abs() < 1e-9);
    }
}
