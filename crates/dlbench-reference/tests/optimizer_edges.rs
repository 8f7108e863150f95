//! The reference's Adam where the golden trajectories cannot look: which of `torch.lerp`'s two
//! formulas the first moment takes, and the `eps` in the denominator. Found by mutation
//! testing (docs/mutation-testing.md): mutants of either survived `optimizers.rs`.
//!
//! Expected values are PyTorch 2.11's, float64, from
//! `torch.optim.Adam([p], lr=lr, betas=(beta1, 0.999), eps=1e-8, foreach=False)`.

use std::collections::BTreeMap;

use dlbench_core::training::Adam;
use dlbench_core::Optimizer;
use dlbench_reference::OptimizerState;

/// Adam from `p0` through `grads`, one scalar parameter; the parameter after each step.
fn adam(lr: f64, beta1: f64, p0: f64, grads: &[f64]) -> Vec<f64> {
    let config = Optimizer::Adam(Adam {
        lr,
        beta1,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        amsgrad: false,
    });
    let mut opt = OptimizerState::new(&config).expect("valid");
    let mut params = BTreeMap::from([("p".to_string(), vec![p0])]);
    grads
        .iter()
        .map(|&g| {
            let grad = BTreeMap::from([("p".to_string(), vec![g])]);
            opt.step(&mut params, &grad).expect("step");
            params["p"][0]
        })
        .collect()
}

/// Within 100 ulps: the reference follows PyTorch's operations one by one.
fn assert_ulps(what: &str, got: &[f64], want: &[f64]) {
    for (step, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 100.0 * f64::EPSILON * w.abs(),
            "{what} step {}: {g:e}, PyTorch {w:e}",
            step + 1
        );
    }
}

/// `torch.lerp(m, g, 1 - beta1)` on the CPU goes from the start (`m + w (g - m)`) for weights
/// below 0.5 and from the end (`g - (g - m) (1 - w)`) otherwise, 0.5 included. The other
/// formula would move each of these results by thousands of ulps: the inputs were searched
/// for the largest difference.
#[test]
fn adam_takes_pytorchs_lerp_formula_for_each_weight() {
    // Weight 0.1, from the start.
    assert_ulps(
        "beta1 0.9",
        &adam(
            1.0,
            0.9,
            -1.761_835_859_993_910_8,
            &[-0.026_398_741_131_617_776, -0.973_337_470_355_685_9],
        ),
        &[-0.761_836_238_799_709_5, 0.000_184_785_479_214_966_13],
    );
    // Weight exactly 0.5, from the end.
    assert_ulps(
        "beta1 0.5",
        &adam(
            1.0,
            0.5,
            0.900_694_937_600_784_2,
            &[2.978_783_149_499_472_3, -1.856_838_237_671_479_8],
        ),
        &[-0.099_305_059_042_140_26, -0.000_599_195_832_927_695_8],
    );
    // Weight 1, from the end: m is the new gradient exactly, 1e-17 (from the start it would
    // be 1 + (1e-17 - 1) = 0).
    assert_ulps(
        "beta1 0",
        &adam(1.0, 0.0, 1.0, &[1.0, 1e-17]),
        &[9.999_999_828_202_988e-9, 9.999_999_814_057_314e-9],
    );
}

/// With a gradient equal to eps, the bias-corrected moments are g and g², so each step is
/// lr g / (|g| + eps) = lr / 2 (by hand; PyTorch agrees: 0.95, then 0.9000000000000001).
#[test]
fn adam_adds_eps_to_the_denominator() {
    assert_ulps(
        "g = eps",
        &adam(0.1, 0.9, 1.0, &[1e-8, 1e-8]),
        &[0.95, 0.900_000_000_000_000_1],
    );
}
