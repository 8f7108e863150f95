//! PyTorch's optimizers on f32 parameters, updated in place: GD, SGD (momentum, dampening,
//! Nesterov, weight decay), Adam (L2 weight decay, AMSGrad). The formulas and their order are
//! those of `dlbench_reference::optim` (PyTorch's single-tensor code paths); scalars such as
//! Adam's bias corrections are computed in f64, as Python does, and applied in f32, as
//! PyTorch's float kernels do.

use dlbench_core::training::{Adam, Sgd};
use dlbench_core::{Optimizer, Result};

use crate::kernels::isa::with_simd;
use crate::kernels::split::{self, Disjoint};

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

impl Slot {
    /// Creates the buffers `config` keeps for a parameter of `len` values (on its first step,
    /// as PyTorch does); the ones it does not use stay empty.
    fn create(&mut self, config: &Optimizer, len: usize) {
        match config {
            Optimizer::Gd(_) => {}
            Optimizer::Sgd(sgd) => {
                if sgd.momentum != 0.0 {
                    self.first = vec![0.0; len];
                }
            }
            Optimizer::Adam(adam) => {
                self.first = vec![0.0; len];
                self.second = vec![0.0; len];
                if adam.amsgrad {
                    self.second_max = vec![0.0; len];
                }
            }
        }
    }
}

/// One range of a parameter, its gradient and its state (state buffers the optimizer does not
/// keep are empty).
struct Part<'a> {
    param: &'a mut [f32],
    grad: &'a [f32],
    first: &'a mut [f32],
    second: &'a mut [f32],
    second_max: &'a mut [f32],
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

    /// One update of parameter `index` in place with its gradient (same length), split over
    /// `threads` when large: every element's update depends on that element alone.
    pub fn step(&mut self, index: usize, param: &mut [f32], grad: &[f32], threads: usize) {
        let config = self.config;
        let slot = &mut self.slots[index];
        slot.steps += 1;
        if slot.steps == 1 {
            slot.create(&config, param.len());
        }
        let steps = slot.steps;
        let len = param.len();
        let param = Disjoint::new(param);
        // Floats streamed per element: the parameter read and written, the gradient, and each
        // state buffer kept, read and written.
        let state_buffers = [&slot.first, &slot.second, &slot.second_max]
            .iter()
            .filter(|buffer| !buffer.is_empty())
            .count();
        let streamed = 3 + 2 * state_buffers;
        let state = [&mut slot.first, &mut slot.second, &mut slot.second_max]
            .map(|buffer| Disjoint::new(buffer.as_mut_slice()));
        split::for_ranges(threads, len, 16, streamed, &|range| {
            // SAFETY: `for_ranges` hands each task its own range, disjoint from the others';
            // an empty state buffer (one this optimizer does not keep) yields an empty part.
            let [first, second, second_max] = state.each_ref().map(|buffer| unsafe {
                if buffer.is_empty() {
                    buffer.range(0..0)
                } else {
                    buffer.range(range.clone())
                }
            });
            let part = Part {
                param: unsafe { param.range(range.clone()) },
                grad: &grad[range],
                first,
                second,
                second_max,
            };
            with_simd(
                #[inline(always)]
                || match &config {
                    Optimizer::Gd(gd) => {
                        let lr = gd.lr as f32;
                        for (p, g) in part.param.iter_mut().zip(part.grad) {
                            *p += -lr * g;
                        }
                    }
                    Optimizer::Sgd(sgd) => sgd_step(sgd, steps, part),
                    Optimizer::Adam(adam) => adam_step(adam, steps, part),
                },
            )
        });
    }
}

/// `torch.optim.sgd._single_tensor_sgd`, on one range (`steps` counts this one).
#[inline(always)]
fn sgd_step(cfg: &Sgd, steps: u64, part: Part) {
    let (lr, momentum, dampening, decay) = (
        cfg.lr as f32,
        cfg.momentum as f32,
        cfg.dampening as f32,
        cfg.weight_decay as f32,
    );
    for (i, (p, &g)) in part.param.iter_mut().zip(part.grad).enumerate() {
        let mut g = g;
        // PyTorch skips the decay term when it is zero; adding `0 * p` would turn an infinite
        // parameter into NaN where PyTorch does not.
        if cfg.weight_decay != 0.0 {
            g += decay * *p;
        }
        if cfg.momentum != 0.0 {
            if steps == 1 {
                part.first[i] = g;
            } else {
                part.first[i] = part.first[i] * momentum + (1.0 - dampening) * g;
            }
            let b = part.first[i];
            if cfg.nesterov {
                g += momentum * b;
            } else {
                g = b;
            }
        }
        *p += -lr * g;
    }
}

/// `torch.optim.adam._single_tensor_adam` (not AdamW: the decay goes into the gradient), on
/// one range (`steps` counts this one).
#[inline(always)]
fn adam_step(cfg: &Adam, steps: u64, part: Part) {
    let t = steps as f64;
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
    // `m = torch.lerp(m, g, 1 - beta1)` as PyTorch's CPU kernel computes it: from the start
    // for weights below 0.5, else from the end. The choice depends only on the weight, so it
    // is made once and the loop has no data-dependent branch (it vectorises).
    let lerp_from_start = one_minus_beta1.abs() < 0.5;
    let update = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32, v_max: Option<&mut f32>| {
        let g = if cfg.weight_decay != 0.0 {
            g + decay * *p
        } else {
            g
        };
        *m = if lerp_from_start {
            *m + one_minus_beta1 * (g - *m)
        } else {
            g - (g - *m) * (1.0 - one_minus_beta1)
        };
        *v = *v * beta2 + one_minus_beta2 * g * g;
        let v = match v_max {
            Some(v_max) => {
                // torch.maximum propagates NaN; f32::max would drop it.
                if v.is_nan() || *v > *v_max {
                    *v_max = *v;
                }
                *v_max
            }
            None => *v,
        };
        let denom = v.sqrt() / bc2_sqrt + eps;
        *p += -step_size * *m / denom;
    };
    let moments = part
        .param
        .iter_mut()
        .zip(part.grad)
        .zip(part.first.iter_mut())
        .zip(part.second.iter_mut());
    if cfg.amsgrad {
        for ((((p, &g), m), v), v_max) in moments.zip(part.second_max.iter_mut()) {
            update(p, g, m, v, Some(v_max));
        }
    } else {
        for (((p, &g), m), v) in moments {
            update(p, g, m, v, None);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The engine's optimizers against the same PyTorch (float64) trajectories the reference
    //! is checked on, within f32's precision: every option of SGD and Adam.

    use std::collections::BTreeMap;

    use dlbench_core::Optimizer;
    use serde_json::Value;

    use super::OptimizerState;

    type Params = BTreeMap<String, Vec<f64>>;

    fn params(value: &Value) -> Params {
        serde_json::from_value(value.clone()).expect("a map of parameter vectors")
    }

    #[test]
    fn every_golden_case_matches_pytorch_in_f32() {
        let golden: Value = serde_json::from_str(include_str!(
            "../../../dlbench-reference/tests/golden/optimizers.json"
        ))
        .unwrap();
        let cases = golden["cases"].as_array().expect("cases");
        assert!(cases.len() >= 8, "the golden file lost its cases");
        for case in cases {
            let case_name = case["name"].as_str().unwrap_or("?");
            let config: Optimizer = serde_json::from_value(case["optimizer"].clone()).unwrap();
            let initial = params(&case["initial"]);
            let names: Vec<&String> = initial.keys().collect();
            let mut state = OptimizerState::new(&config, names.len()).unwrap();
            let mut current: Vec<Vec<f32>> = names
                .iter()
                .map(|n| initial[*n].iter().map(|&v| v as f32).collect())
                .collect();
            let steps = case["grads"].as_array().unwrap().iter();
            for (step, (grad, want)) in steps.zip(case["params"].as_array().unwrap()).enumerate() {
                let (grad, want) = (params(grad), params(want));
                for (k, name) in names.iter().enumerate() {
                    let g: Vec<f32> = grad[*name].iter().map(|&v| v as f32).collect();
                    state.step(k, &mut current[k], &g, 1);
                    for (i, (&got, &want)) in current[k].iter().zip(&want[*name]).enumerate() {
                        let err = (f64::from(got) - want).abs();
                        assert!(
                            err <= 1e-6 + 1e-5 * want.abs(),
                            "case `{case_name}` step {}: {name}[{i}] = {got}, PyTorch {want}",
                            step + 1
                        );
                    }
                }
            }
        }
    }

    /// The golden PyTorch case `name`.
    fn golden_case(name: &str) -> Value {
        let golden: Value = serde_json::from_str(include_str!(
            "../../../dlbench-reference/tests/golden/optimizers.json"
        ))
        .unwrap();
        let cases = golden["cases"].as_array().expect("cases");
        let case = cases.iter().find(|c| c["name"] == name);
        case.unwrap_or_else(|| panic!("no golden case `{name}`"))
            .clone()
    }

    /// Replays a golden case through `config` (its own or another), comparing every step
    /// with PyTorch's within f32's precision.
    fn replay_golden_in_f32(case: &Value, config: &Optimizer) {
        let name = case["name"].as_str().unwrap_or("?");
        let initial = params(&case["initial"]);
        let names: Vec<&String> = initial.keys().collect();
        let mut state = OptimizerState::new(config, names.len()).unwrap();
        let mut current: Vec<Vec<f32>> = names
            .iter()
            .map(|n| initial[*n].iter().map(|&v| v as f32).collect())
            .collect();
        let steps = case["grads"].as_array().unwrap();
        assert!(steps.len() >= 2, "`{name}` needs several steps");
        for (step, (grad, want)) in steps
            .iter()
            .zip(case["params"].as_array().unwrap())
            .enumerate()
        {
            let (grad, want) = (params(grad), params(want));
            for (k, param) in names.iter().enumerate() {
                let g: Vec<f32> = grad[*param].iter().map(|&v| v as f32).collect();
                state.step(k, &mut current[k], &g, 1);
                for (i, (&got, &want)) in current[k].iter().zip(&want[*param]).enumerate() {
                    let err = (f64::from(got) - want).abs();
                    assert!(
                        err <= 1e-6 + 1e-5 * want.abs(),
                        "{config:?} on `{name}` step {}: {param}[{i}] = {got}, PyTorch {want}",
                        step + 1
                    );
                }
            }
        }
    }

    /// Plain gradient descent is PyTorch's SGD without momentum, dampening or decay: it must
    /// follow the golden `sgd_plain` trajectory step for step.
    #[test]
    fn gd_follows_pytorchs_plain_sgd_trajectory() {
        use dlbench_core::training::Gd;
        let case = golden_case("sgd_plain");
        let lr = case["optimizer"]["sgd"]["lr"].as_f64().expect("lr");
        replay_golden_in_f32(&case, &Optimizer::Gd(Gd { lr }));
    }

    /// GD by hand: p - lr g, exactly representable, on two parameters and two steps.
    #[test]
    fn gd_subtracts_lr_times_the_gradient() {
        use dlbench_core::training::Gd;
        let mut state = OptimizerState::new(&Optimizer::Gd(Gd { lr: 0.5 }), 2).unwrap();
        let (mut a, mut b) = (vec![1.0f32, -2.0, 0.0], vec![3.0f32]);
        state.step(0, &mut a, &[2.0, -4.0, 1.0], 1);
        assert_eq!(a, [0.0, 0.0, -0.5]);
        state.step(1, &mut b, &[-1.0], 1);
        assert_eq!(b, [3.5]);
        state.step(0, &mut a, &[0.25, 0.0, -3.0], 1);
        assert_eq!(a, [-0.125, 0.0, 1.0]);
    }

    /// Adam's first moment is `torch.lerp(m, g, 1 - beta1)`, which PyTorch computes from the
    /// start below weight 0.5 and from the end above; the two differ by an ulp of m, which
    /// a cancellation `p - lr m / denom ~ 0` makes visible. Expected values: PyTorch 2.11,
    /// float32, `torch.optim.Adam([p], lr=1, betas=(beta1, 0.999), eps=1e-8, foreach=False)`
    /// from p = 1.
    #[test]
    fn adam_lerps_the_first_moment_from_the_end_pytorch_uses() {
        use dlbench_core::training::Adam;
        let cases: [(f64, &[f32], &[f64]); 2] = [
            // weight 0.1, from the start: m = 0.1f exactly, 10 m = 1 and p = 1 - 1 / denom.
            (0.9, &[1.0], &[1.192_092_895_507_812_5e-7]),
            // weight 1, from the end: m = g exactly on the second step, not 1 + (1e-8 - 1) = 0.
            (
                0.0,
                &[1.0, 1e-8],
                &[1.192_092_895_507_812_5e-7, 1.050_636_129_207_305_2e-7],
            ),
        ];
        for (beta1, grads, want) in cases {
            let config = Optimizer::Adam(Adam {
                lr: 1.0,
                beta1,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
                amsgrad: false,
            });
            let mut state = OptimizerState::new(&config, 1).unwrap();
            let mut p = [1.0f32];
            for (step, (&g, &want)) in grads.iter().zip(want).enumerate() {
                state.step(0, &mut p, &[g], 1);
                let got = f64::from(p[0]);
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs(),
                    "beta1 {beta1} step {}: p = {got:e}, PyTorch {want:e}",
                    step + 1
                );
            }
        }
    }

    /// With a gradient equal to eps, the bias-corrected moments are g and g², so each step is
    /// lr g / (|g| + eps) = lr / 2 (by hand; PyTorch's float32 gives 0.95, then 0.9).
    #[test]
    fn adam_adds_eps_to_the_denominator() {
        use dlbench_core::training::Adam;
        let config = Optimizer::Adam(Adam {
            lr: 0.1,
            ..Adam::default()
        });
        let mut state = OptimizerState::new(&config, 1).unwrap();
        let mut p = [1.0f32];
        for want in [0.95, 0.9] {
            state.step(0, &mut p, &[1e-8], 1);
            assert!((p[0] - want).abs() <= 1e-6, "p = {}, want {want}", p[0]);
        }
    }

    /// Split over threads, every element's update is the same code on the same values: the
    /// same bits as on one thread, for every optimizer and its state over several steps.
    #[test]
    fn an_update_split_over_threads_gives_the_same_bits() {
        use dlbench_core::training::{Adam, Gd, Sgd};
        let n = 3 * crate::kernels::split::MIN_PER_THREAD + 5;
        let configs = [
            Optimizer::Gd(Gd { lr: 0.1 }),
            Optimizer::Sgd(Sgd {
                lr: 0.1,
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 0.01,
            }),
            Optimizer::Adam(Adam {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
                amsgrad: true,
            }),
        ];
        for config in configs {
            let run = |threads| {
                let mut state = OptimizerState::new(&config, 1).unwrap();
                let mut p: Vec<f32> = (0..n).map(|i| (i % 101) as f32 / 50.0 - 1.0).collect();
                for step in 0..3 {
                    let g: Vec<f32> = (0..n)
                        .map(|i| ((i * 31 + step * 7) % 89) as f32 / 44.0 - 1.0)
                        .collect();
                    state.step(0, &mut p, &g, threads);
                }
                p.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let one = run(1);
            assert!(run(2) == one && run(3) == one, "{config:?}");
        }
    }
}
