//! A whole model trained by the reference session against the same model trained by real
//! PyTorch in float64: Linear(4, 8) -> ReLU -> Linear(8, 1) -> Sigmoid, BCE, 5 full-batch steps.
//! `tests/golden/mlp_training.py` produced `tests/golden/mlp_training.json` (initial weights,
//! batch, per-step losses and final weights); its header says how to regenerate it.

use dlbench_core::{
    Graph, GraphBuilder, Model, Op, Session, Tensor, TrainingConfig, UnaryOp, Values,
};
use dlbench_reference::ReferenceSession;
use serde_json::Value;

const TOLERANCE: f64 = 1e-10;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/mlp_training.json")).expect("golden JSON parses")
}

fn graph() -> Graph {
    let mut b = GraphBuilder::new("golden_mlp");
    let x = b.data_input("x", &[4]).unwrap();
    let h = b.dense(None, &x, 8, true).unwrap();
    let h = b.op(None, Op::Unary(UnaryOp::Relu), &[&h]).unwrap();
    let y = b.dense(None, &h, 1, true).unwrap();
    let y = b.op(None, Op::Unary(UnaryOp::Sigmoid), &[&y]).unwrap();
    b.finish(&[&y]).unwrap()
}

fn shape_and_data(value: &Value) -> (Vec<usize>, Vec<f64>) {
    let shape = serde_json::from_value(value["shape"].clone()).expect("shape");
    let data = serde_json::from_value(value["data"].clone()).expect("data");
    (shape, data)
}

/// The script rounds every input and initial weight to f32, so narrowing loses nothing.
/// (serde_json without its `float_roundtrip` feature may parse a decimal 1 ulp off the f64
/// Python wrote; rounding to f32 takes that back out, so the check allows it.)
fn f32_tensors(map: &Value) -> Values {
    map.as_object()
        .expect("a map of tensors")
        .iter()
        .map(|(name, value)| {
            let (shape, data) = shape_and_data(value);
            let narrow: Vec<f32> = data.iter().map(|&v| v as f32).collect();
            assert!(
                narrow
                    .iter()
                    .zip(&data)
                    .all(|(&n, &v)| (f64::from(n) - v).abs() <= 4.0 * f64::EPSILON * v.abs()),
                "`{name}` is not f32-exact"
            );
            (name.clone(), Tensor::f32(shape, narrow).unwrap())
        })
        .collect()
}

fn max_diff(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

#[test]
fn training_matches_pytorch() {
    let golden = golden();
    let model =
        Model::new(graph(), f32_tensors(&golden["weights"])).expect("weights fit the graph");
    let batch = f32_tensors(&golden["batch"]);
    let cases = golden["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let training: TrainingConfig =
            serde_json::from_value(case["training"].clone()).expect("a dlbench training config");
        let mut session = ReferenceSession::new(&model, Some(training)).unwrap();
        session.load(&batch).unwrap();
        let want: Vec<f64> = serde_json::from_value(case["losses"].clone()).expect("losses");
        let got: Vec<f64> = want
            .iter()
            .map(|_| {
                session.train_step().unwrap();
                session.loss().unwrap()
            })
            .collect();
        let diff = max_diff(&got, &want);
        assert!(
            diff <= TOLERANCE,
            "{name}: losses {got:?}, PyTorch {want:?}"
        );
        let weights = session.weights().unwrap();
        for (param, value) in case["final_weights"].as_object().expect("final weights") {
            let (shape, want) = shape_and_data(value);
            let got = &weights[param];
            assert_eq!(got.shape(), shape.as_slice(), "{name}: `{param}`");
            let diff = max_diff(got.as_f64().unwrap(), &want);
            assert!(diff <= TOLERANCE, "{name}: `{param}` differs by {diff:e}");
        }
        eprintln!("{name:<28} max loss |diff| {diff:e}");
    }
}
