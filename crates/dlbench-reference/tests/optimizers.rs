//! The reference optimizers against golden trajectories from real PyTorch (float64): the same
//! gradients fed step by step must give the same parameters after every step.
//! `tests/golden/optimizers.py` produced `tests/golden/optimizers.json`; its header says how
//! to regenerate it.

use std::collections::BTreeMap;

use dlbench_core::training::Gd;
use dlbench_core::Optimizer;
use dlbench_reference::OptimizerState;
use serde_json::Value;

const TOLERANCE: f64 = 1e-12;

type Params = BTreeMap<String, Vec<f64>>;

fn golden() -> Value {
    let text = include_str!("golden/optimizers.json");
    serde_json::from_str(text).expect("golden JSON parses")
}

fn params(value: &Value) -> Params {
    serde_json::from_value(value.clone()).expect("a map of parameter vectors")
}

fn case<'a>(golden: &'a Value, name: &str) -> &'a Value {
    golden["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no golden case `{name}`"))
}

/// Replays a case's gradients through `optimizer`; returns the worst deviation from PyTorch.
fn replay(case: &Value, optimizer: &Optimizer) -> f64 {
    let mut opt = OptimizerState::new(optimizer).expect("valid optimizer");
    let mut current = params(&case["initial"]);
    let grads = case["grads"].as_array().expect("grads");
    let expected = case["params"].as_array().expect("params");
    assert_eq!(grads.len(), expected.len());
    let mut worst = 0.0f64;
    for (step, (grad, want)) in grads.iter().zip(expected).enumerate() {
        opt.step(&mut current, &params(grad)).expect("step");
        for (name, want) in params(want) {
            for (i, (got, want)) in current[&name].iter().zip(&want).enumerate() {
                let err = (got - want).abs();
                assert!(
                    err <= TOLERANCE,
                    "case `{}` step {}: {name}[{i}] is {got}, PyTorch {want} (|diff| {err:e})",
                    case["name"],
                    step + 1
                );
                worst = worst.max(err);
            }
        }
    }
    worst
}

#[test]
fn every_golden_case_matches_pytorch() {
    let golden = golden();
    let cases = golden["cases"].as_array().expect("cases");
    assert!(cases.len() >= 8, "the golden file lost its cases");
    for case in cases {
        let optimizer: Optimizer =
            serde_json::from_value(case["optimizer"].clone()).expect("a dlbench optimizer config");
        let worst = replay(case, &optimizer);
        eprintln!(
            "{:<28} worst |diff| {worst:e}",
            case["name"].as_str().unwrap_or("?")
        );
    }
}

#[test]
fn golden_covers_every_option() {
    let golden = golden();
    for name in [
        "sgd_plain",
        "sgd_momentum",
        "sgd_momentum_dampening",
        "sgd_nesterov",
        "sgd_weight_decay",
        "adam_defaults",
        "adam_weight_decay",
        "adam_amsgrad",
    ] {
        case(&golden, name);
    }
}

#[test]
fn gd_is_plain_sgd() {
    let golden = golden();
    let plain = case(&golden, "sgd_plain");
    let lr = plain["optimizer"]["sgd"]["lr"].as_f64().expect("lr");
    replay(plain, &Optimizer::Gd(Gd { lr }));
}

#[test]
fn amsgrad_changes_the_trajectory() {
    // Guards the golden data itself: if the gradients never let the second moment shrink,
    // the AMSGrad case would pass with AMSGrad ignored.
    let golden = golden();
    let ams = case(&golden, "adam_amsgrad");
    let mut optimizer: Optimizer =
        serde_json::from_value(ams["optimizer"].clone()).expect("config");
    if let Optimizer::Adam(adam) = &mut optimizer {
        adam.amsgrad = false;
    }
    let mut opt = OptimizerState::new(&optimizer).expect("valid");
    let mut current = params(&ams["initial"]);
    for grad in ams["grads"].as_array().expect("grads") {
        opt.step(&mut current, &params(grad)).expect("step");
    }
    let last = params(
        ams["params"]
            .as_array()
            .expect("params")
            .last()
            .expect("a step"),
    );
    let moved = (current["w"][0] - last["w"][0]).abs();
    assert!(moved > 1e-3, "AMSGrad made no difference ({moved:e})");
}
