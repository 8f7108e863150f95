//! Checks an op's backward against central finite differences: the oracle's own oracle.
//!
//! For a node with outputs `y_k`, draw fixed random weights `g_k` and take the scalar
//! `L = sum_k sum(g_k * y_k)`. The analytic gradient is `backward` fed with `g_k`; the numeric
//! one perturbs each element of each differentiable input by `±h`. [`cases`] lists the checks
//! of every op.

pub mod cases;

use dlbench_core::rng::Stream;
use dlbench_core::{Mode, Node, Result, Tensor};

use super::ops;

/// The worst disagreement found, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheckReport {
    /// Largest `|analytic - numeric|` over every checked element.
    pub max_abs_error: f64,
    /// The input index and flat element index of that element.
    pub worst: Option<(usize, usize)>,
    /// Largest `|analytic - numeric| / (atol + rtol * |numeric|)`; at most 1 passes.
    pub worst_ratio: f64,
    /// How many elements were compared.
    pub checked: usize,
}

impl GradCheckReport {
    /// True when something was compared and every element is within tolerance.
    pub fn passed(&self) -> bool {
        self.checked > 0 && self.worst_ratio <= 1.0
    }
}

/// Step and tolerances of a check; the defaults suit f64 and smooth ops.
#[derive(Debug, Clone, Copy)]
pub struct GradCheck {
    /// Finite-difference step `h` of the central difference `(L(x + h) - L(x - h)) / 2h`.
    pub step: f64,
    /// Relative tolerance, on `|numeric|` (as in `torch.autograd.gradcheck`).
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Seed of the random output weights `g_k`.
    pub seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            step: 1e-6,
            rtol: 1e-5,
            atol: 1e-7,
            seed: 0,
        }
    }
}

fn weighted_sum(outputs: &[Tensor], weights: &[Tensor]) -> f64 {
    outputs
        .iter()
        .zip(weights)
        .map(|(y, g)| {
            let (y, g) = (y.as_f64().expect("f64 output"), g.as_f64().expect("f64"));
            y.iter().zip(g).map(|(a, b)| a * b).sum::<f64>()
        })
        .sum()
}

impl GradCheck {
    /// Compares `backward` with finite differences for every input whose `differentiable` flag
    /// is set. Inputs must be f64 (labels i64, never differentiable); the node runs in `mode`.
    pub fn check(
        &self,
        node: &Node,
        inputs: &[Tensor],
        differentiable: &[bool],
        mode: Mode,
    ) -> Result<GradCheckReport> {
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let outputs = ops::forward(node, &refs, mode)?;
        let mut stream = Stream::new(self.seed, "gradcheck", 0);
        let weights: Vec<Tensor> = outputs
            .iter()
            .map(|y| {
                let g = stream
                    .uniform_vec(y.len())
                    .iter()
                    .map(|u| u * 2.0 - 1.0)
                    .collect();
                Tensor::f64(y.shape().to_vec(), g).expect("same shape")
            })
            .collect();
        let out_refs: Vec<&Tensor> = outputs.iter().collect();
        let grad_refs: Vec<Option<&Tensor>> = weights.iter().map(Some).collect();
        let analytic = ops::backward(node, &refs, &out_refs, &grad_refs)?;

        let mut report = GradCheckReport {
            max_abs_error: 0.0,
            worst: None,
            worst_ratio: 0.0,
            checked: 0,
        };
        for (i, input) in inputs.iter().enumerate() {
            if !differentiable.get(i).copied().unwrap_or(false) {
                continue;
            }
            let grad = analytic[i]
                .as_ref()
                .and_then(|g| g.as_f64().map(<[f64]>::to_vec))
                .unwrap_or_else(|| vec![0.0; input.len()]);
            let base = input
                .as_f64()
                .expect("differentiable inputs are f64")
                .to_vec();
            for e in 0..base.len() {
                let probe = |delta: f64| -> Result<f64> {
                    let mut moved = base.clone();
                    moved[e] += delta;
                    let moved = Tensor::f64(input.shape().to_vec(), moved)?;
                    let mut args = refs.clone();
                    args[i] = &moved;
                    Ok(weighted_sum(&ops::forward(node, &args, mode)?, &weights))
                };
                let numeric = (probe(self.step)? - probe(-self.step)?) / (2.0 * self.step);
                let err = (grad[e] - numeric).abs();
                let ratio = err / (self.atol + self.rtol * numeric.abs());
                report.checked += 1;
                if ratio > report.worst_ratio {
                    report.worst_ratio = ratio;
                    report.worst = Some((i, e));
                }
                report.max_abs_error = report.max_abs_error.max(err);
            }
        }
        Ok(report)
    }
}
