//! Finite-difference checks of every reference op in the linear, element-wise, activation,
//! layout and loss families (the cases are data, `gradcheck::cases::basic`), and exact forward
//! values that pin down each convention.

use std::slice;

use dlbench_core::{BinaryOp, LossOp, Mode, Node, Op, Tensor, UnaryOp};
use dlbench_reference::gradcheck::cases::{self, normal};
use dlbench_reference::ops;

fn node(op: Op, inputs: usize) -> Node {
    Node {
        name: format!("test_{}", op.name()),
        op,
        inputs: (0..inputs).map(|i| format!("in{i}")).collect(),
        outputs: vec!["out".to_string()],
    }
}

fn f64s(shape: &[usize], data: &[f64]) -> Tensor {
    Tensor::f64(shape.to_vec(), data.to_vec()).unwrap()
}

fn forward(op: Op, inputs: &[Tensor]) -> Tensor {
    let refs: Vec<&Tensor> = inputs.iter().collect();
    ops::forward(&node(op, inputs.len()), &refs, Mode::Training)
        .unwrap()
        .remove(0)
}

fn assert_close(actual: &Tensor, shape: &[usize], expected: &[f64]) {
    assert_eq!(actual.shape(), shape);
    let got = actual.as_f64().unwrap();
    for (e, (a, b)) in got.iter().zip(expected).enumerate() {
        assert!(
            (a - b).abs() <= 1e-8,
            "element {e}: {a} != {b} (got {got:?})"
        );
    }
}

// ---- finite differences ----

/// Every case of `gradcheck::cases::basic`: linear, element-wise, activations, layout, losses.
#[test]
fn every_basic_op_passes_its_gradient_check() {
    let cases = cases::basic();
    assert!(!cases.is_empty());
    for case in &cases {
        let report = case.run().unwrap();
        assert!(report.passed(), "{}: {report:?}", case.name);
    }
}

// ---- exact values ----

#[test]
fn dense_known_values() {
    let x = f64s(&[1, 3], &[1.0, 2.0, 3.0]);
    let w = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = f64s(&[2], &[10.0, 20.0]);
    assert_close(&forward(Op::Dense, &[x, w, b]), &[1, 2], &[24.0, 52.0]);
}

#[test]
fn matmul_known_values() {
    let a = f64s(&[1, 2], &[1.0, 2.0]);
    let b = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_close(&forward(Op::MatMul, &[a, b]), &[1, 3], &[9.0, 12.0, 15.0]);
}

#[test]
fn broadcast_known_values() {
    let a = f64s(&[2, 1], &[1.0, 2.0]);
    let b = f64s(&[3], &[10.0, 20.0, 30.0]);
    let y = forward(Op::Binary(BinaryOp::Sub), &[a, b]);
    assert_close(&y, &[2, 3], &[-9.0, -19.0, -29.0, -8.0, -18.0, -28.0]);
}

#[test]
fn softmax_known_values() {
    let x = f64s(&[1, 3], &[1.0, 2.0, 3.0]);
    let expected = [0.09003057317038046, 0.24472847105479764, 0.6652409557748219];
    assert_close(
        &forward(Op::Softmax { axis: -1 }, slice::from_ref(&x)),
        &[1, 3],
        &expected,
    );
    let logs: Vec<f64> = expected.iter().map(|p| p.ln()).collect();
    assert_close(&forward(Op::LogSoftmax { axis: 1 }, &[x]), &[1, 3], &logs);
    // Large logits would overflow exp without the max shift.
    let big = f64s(&[3], &[1001.0, 1002.0, 1003.0]);
    assert_close(&forward(Op::Softmax { axis: 0 }, &[big]), &[3], &expected);
}

#[test]
fn relu_zero_has_zero_gradient() {
    let x = f64s(&[3], &[-1.0, 0.0, 2.0]);
    let n = node(Op::Unary(UnaryOp::Relu), 1);
    let y = ops::forward(&n, &[&x], Mode::Training).unwrap();
    assert_close(&y[0], &[3], &[0.0, 0.0, 2.0]);
    let dy = f64s(&[3], &[1.0, 1.0, 1.0]);
    let dx = ops::backward(&n, &[&x], &[&y[0]], &[Some(&dy)]).unwrap();
    assert_close(dx[0].as_ref().unwrap(), &[3], &[0.0, 0.0, 1.0]);
}

#[test]
fn dropout_scales_in_training_only() {
    let x = f64s(&[4], &[1.0, 2.0, 3.0, 4.0]);
    let mask = f64s(&[4], &[1.0, 0.0, 1.0, 0.0]);
    let n = node(Op::Dropout { p: 0.5 }, 2);
    let train = ops::forward(&n, &[&x, &mask], Mode::Training).unwrap();
    assert_close(&train[0], &[4], &[2.0, 0.0, 6.0, 0.0]);
    let infer = ops::forward(&n, &[&x, &mask], Mode::Inference).unwrap();
    assert_close(&infer[0], &[4], &[1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn cross_entropy_known_value() {
    let logits = f64s(&[1, 3], &[1.0, 2.0, 3.0]);
    let labels = Tensor::i64(vec![1], vec![2]).unwrap();
    let loss = forward(Op::Loss(LossOp::CrossEntropy), &[logits, labels]);
    assert_close(&loss, &[], &[0.40760596444438035]);
}

#[test]
fn cross_entropy_rejects_label_out_of_range() {
    let logits = normal("z", &[4, 10], 1.0);
    let labels = Tensor::i64(vec![4], vec![0, 1, 2, 12]).unwrap();
    let n = node(Op::Loss(LossOp::CrossEntropy), 2);
    let err = ops::forward(&n, &[&logits, &labels], Mode::Training).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("label 12 at row 3 is outside 0..10"),
        "{message}"
    );
    let negative = Tensor::i64(vec![4], vec![0, -1, 2, 3]).unwrap();
    let err = ops::forward(&n, &[&logits, &negative], Mode::Training).unwrap_err();
    assert!(err.to_string().contains("label -1 at row 1"), "{err}");
}

#[test]
fn bce_clamps_logs_at_minus_100_and_keeps_pytorchs_saturated_gradient() {
    let n = node(Op::Loss(LossOp::BinaryCrossEntropy), 2);
    let p = f64s(&[2], &[0.0, 1.0]);
    let t = f64s(&[2], &[1.0, 0.0]);
    let loss = ops::forward(&n, &[&p, &t], Mode::Training)
        .unwrap()
        .remove(0);
    assert_close(&loss, &[], &[100.0]);
    let one = Tensor::scalar_f64(1.0);
    let grads = ops::backward(&n, &[&p, &t], &[&loss], &[Some(&one)]).unwrap();
    // PyTorch's backward: (p - t) / max(p (1 - p), 1e-12f) / n, huge but finite when
    // saturated; ATen's 1e-12 is a float, so it is not 1e-12 in double arithmetic.
    let eps = f64::from(1e-12_f32);
    let dp = grads[0].as_ref().unwrap().as_f64().unwrap();
    assert_eq!(dp, &[-1.0 / eps / 2.0, 1.0 / eps / 2.0]);
    // PyTorch's d/dt = -logit(p) / n, unclamped: infinite at p = 0 and p = 1.
    let dt = grads[1].as_ref().unwrap().as_f64().unwrap();
    assert_eq!(dt, &[f64::INFINITY, f64::NEG_INFINITY]);
}

#[test]
fn bce_rejects_probability_outside_unit_interval() {
    let p = f64s(&[2], &[0.5, 1.5]);
    let t = f64s(&[2], &[1.0, 0.0]);
    let n = node(Op::Loss(LossOp::BinaryCrossEntropy), 2);
    assert!(ops::forward(&n, &[&p, &t], Mode::Training).is_err());
}

#[test]
fn bce_with_logits_matches_bce_on_sigmoid() {
    let z = [-3.0, 0.5, 2.0];
    let t = [0.0, 1.0, 0.3];
    let direct: f64 = z
        .iter()
        .zip(&t)
        .map(|(z, t): (&f64, &f64)| {
            let p = 1.0 / (1.0 + (-z).exp());
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / 3.0;
    let loss = forward(
        Op::Loss(LossOp::BinaryCrossEntropyWithLogits),
        &[f64s(&[3], &z), f64s(&[3], &t)],
    );
    assert_close(&loss, &[], &[direct]);
    // A huge logit must not overflow: ln(1 + e^1000) = 1000.
    let loss = forward(
        Op::Loss(LossOp::BinaryCrossEntropyWithLogits),
        &[f64s(&[1], &[1000.0]), f64s(&[1], &[0.0])],
    );
    assert_close(&loss, &[], &[1000.0]);
}

#[test]
fn mse_known_value() {
    let p = f64s(&[3], &[1.0, 2.0, 3.0]);
    let t = f64s(&[3], &[1.0, 0.0, 5.0]);
    assert_close(&forward(Op::Loss(LossOp::Mse), &[p, t]), &[], &[8.0 / 3.0]);
}

#[test]
fn vae_elbo_known_value() {
    // Row 0: recon [0.5, 0.25] for x [1, 0]: BCE ln 2 + ln(4/3); mu 1, logvar 0: KL 0.5.
    // Row 1: recon [0.5, 0.5] for x [0, 1]: BCE 2 ln 2; mu 0, logvar ln 2: KL (1 - ln 2) / 2.
    // Summed over features, averaged over the 2 rows.
    let ln2 = 2f64.ln();
    let row0 = ln2 + (4.0f64 / 3.0).ln() + 0.5;
    let row1 = 2.0 * ln2 + (1.0 - ln2) / 2.0;
    let expected = (row0 + row1) / 2.0;
    assert!((expected - 1.510_275_011_925_822).abs() < 1e-12);
    let inputs = [
        f64s(&[2, 2], &[0.5, 0.25, 0.5, 0.5]),
        f64s(&[2, 1], &[1.0, 0.0]),
        f64s(&[2, 1], &[0.0, ln2]),
        f64s(&[2, 2], &[1.0, 0.0, 0.0, 1.0]),
    ];
    assert_close(
        &forward(Op::Loss(LossOp::VaeElbo), &inputs),
        &[],
        &[expected],
    );
}

#[test]
fn transpose_known_values() {
    let x = f64s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = forward(Op::Transpose { perm: vec![1, 0] }, &[x]);
    assert_close(&y, &[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    // Output dim i is input dim perm[i]: y[i, j, k] = x[j, k, i].
    let x = normal("x", &[2, 3, 4], 1.0);
    let y = forward(
        Op::Transpose {
            perm: vec![2, 0, 1],
        },
        slice::from_ref(&x),
    );
    assert_eq!(y.shape(), &[4, 2, 3]);
    let (xs, ys) = (x.as_f64().unwrap(), y.as_f64().unwrap());
    for i in 0..4 {
        for j in 0..2 {
            for k in 0..3 {
                assert_eq!(ys[(i * 2 + j) * 3 + k], xs[(j * 3 + k) * 4 + i]);
            }
        }
    }
}

#[test]
fn layout_known_shapes() {
    let x = normal("x", &[2, 3, 4], 1.0);
    let flat = forward(Op::Flatten { axis: 1 }, slice::from_ref(&x));
    assert_eq!(flat.shape(), &[2, 12]);
    assert_eq!(flat.as_f64(), x.as_f64());
    let reshaped = forward(
        Op::Reshape {
            shape: vec![0, -1, 2],
        },
        slice::from_ref(&x),
    );
    assert_eq!(reshaped.shape(), &[2, 6, 2]);
    assert_eq!(reshaped.as_f64(), x.as_f64());
    let a = f64s(&[1, 2], &[1.0, 2.0]);
    let b = f64s(&[1, 1], &[3.0]);
    let joined = forward(Op::Concat { axis: 1 }, &[a.clone(), b.clone()]);
    assert_close(&joined, &[1, 3], &[1.0, 2.0, 3.0]);
    let a = f64s(&[2, 1], &[1.0, 2.0]);
    let b = f64s(&[2, 2], &[3.0, 4.0, 5.0, 6.0]);
    let joined = forward(Op::Concat { axis: 1 }, &[a, b]);
    assert_close(&joined, &[2, 3], &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0]);
}
