//! Finite-difference checks of every reference op in the linear, element-wise, activation,
//! layout and loss families, and exact forward values that pin down each convention.

use std::slice;

use dlbench_core::rng::Stream;
use dlbench_core::{Mode, Node, Op, Tensor};
use dlbench_reference::gradcheck::GradCheck;
use dlbench_reference::ops;

fn node(op: Op, inputs: usize) -> Node {
    Node {
        name: format!("test_{}", op.name()),
        op,
        inputs: (0..inputs).map(|i| format!("in{i}")).collect(),
        outputs: vec!["out".to_string()],
    }
}

/// Uniform in `[lo, hi)`, seeded by `name`.
fn uniform(name: &str, shape: &[usize], lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    let data = Stream::new(7, name, 0)
        .uniform_vec(n)
        .iter()
        .map(|u| lo + (hi - lo) * u)
        .collect();
    Tensor::f64(shape.to_vec(), data).unwrap()
}

/// Standard normal times `scale`, seeded by `name`.
fn normal(name: &str, shape: &[usize], scale: f64) -> Tensor {
    let n = shape.iter().product();
    let data = Stream::new(7, name, 0)
        .normal_vec(n)
        .iter()
        .map(|v| v * scale)
        .collect();
    Tensor::f64(shape.to_vec(), data).unwrap()
}

fn f64s(shape: &[usize], data: &[f64]) -> Tensor {
    Tensor::f64(shape.to_vec(), data.to_vec()).unwrap()
}

/// Runs the finite-difference check on `op` and fails with the report if it disagrees.
fn gradcheck(op: Op, inputs: &[Tensor], differentiable: &[bool]) {
    let node = node(op, inputs.len());
    let report = GradCheck::default()
        .check(&node, inputs, differentiable, Mode::Training)
        .unwrap();
    assert!(report.passed(), "{}: {report:?}", node.name);
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

// ---- linear ----

#[test]
fn dense_with_bias() {
    let x = normal("x", &[4, 3], 1.0);
    let w = normal("w", &[5, 3], 1.0);
    let b = normal("b", &[5], 1.0);
    gradcheck(Op::Dense, &[x, w, b], &[true, true, true]);
}

#[test]
fn dense_without_bias() {
    let x = normal("x", &[4, 3], 1.0);
    let w = normal("w", &[2, 3], 1.0);
    gradcheck(Op::Dense, &[x, w], &[true, true]);
}

#[test]
fn dense_3d_input() {
    let x = normal("x", &[2, 3, 4], 1.0);
    let w = normal("w", &[5, 4], 1.0);
    let b = normal("b", &[5], 1.0);
    gradcheck(Op::Dense, &[x, w, b], &[true, true, true]);
}

#[test]
fn matmul_2d() {
    let a = normal("a", &[3, 4], 1.0);
    let b = normal("b", &[4, 2], 1.0);
    gradcheck(Op::MatMul, &[a, b], &[true, true]);
}

#[test]
fn matmul_batched_3d() {
    let a = normal("a", &[2, 3, 4], 1.0);
    let b = normal("b", &[2, 4, 5], 1.0);
    gradcheck(Op::MatMul, &[a, b], &[true, true]);
}

#[test]
fn matmul_3d_by_2d() {
    let a = normal("a", &[2, 3, 4], 1.0);
    let b = normal("b", &[4, 5], 1.0);
    gradcheck(Op::MatMul, &[a, b], &[true, true]);
}

// ---- element-wise ----

fn binary_cases(op: Op) {
    let big = normal("a", &[2, 3, 4], 1.0);
    for small in [&[3, 1][..], &[1], &[2, 3, 4], &[4], &[2, 1, 4]] {
        let other = normal("b", small, 1.0);
        gradcheck(op.clone(), &[big.clone(), other.clone()], &[true, true]);
        gradcheck(op.clone(), &[other, big.clone()], &[true, true]);
    }
    // Both operands broadcast: [3, 1] with [1, 4].
    let (a, b) = (normal("a", &[3, 1], 1.0), normal("b", &[1, 4], 1.0));
    gradcheck(op, &[a, b], &[true, true]);
}

#[test]
fn add_broadcasting() {
    binary_cases(Op::Add);
}

#[test]
fn sub_broadcasting() {
    binary_cases(Op::Sub);
}

#[test]
fn mul_broadcasting() {
    binary_cases(Op::Mul);
}

// ---- activations ----

#[test]
fn relu_away_from_zero() {
    let magnitude = uniform("mag", &[3, 4], 0.01, 2.0);
    let sign = uniform("sign", &[3, 4], 0.0, 1.0);
    let data: Vec<f64> = magnitude
        .as_f64()
        .unwrap()
        .iter()
        .zip(sign.as_f64().unwrap())
        .map(|(m, s)| if *s < 0.5 { -m } else { *m })
        .collect();
    assert!(data.iter().any(|v| *v < 0.0) && data.iter().any(|v| *v > 0.0));
    gradcheck(Op::Relu, &[f64s(&[3, 4], &data)], &[true]);
}

#[test]
fn smooth_activations() {
    for op in [Op::Sigmoid, Op::Tanh, Op::Exp, Op::Scale { factor: -2.5 }] {
        gradcheck(op, &[normal("x", &[3, 4], 1.5)], &[true]);
    }
}

#[test]
fn softmax_and_log_softmax_axes() {
    let x = normal("x", &[2, 3, 4], 2.0);
    for axis in [1, -1, 0, -2] {
        gradcheck(Op::Softmax { axis }, slice::from_ref(&x), &[true]);
        gradcheck(Op::LogSoftmax { axis }, slice::from_ref(&x), &[true]);
    }
}

#[test]
fn dropout_with_mask() {
    let x = normal("x", &[4, 5], 1.0);
    let mask_data = Stream::new(7, "mask", 0).keep_mask(20, 0.3);
    assert!(mask_data.contains(&0.0) && mask_data.contains(&1.0));
    let mask = f64s(&[4, 5], &mask_data);
    gradcheck(Op::Dropout { p: 0.3 }, &[x, mask], &[true, false]);
}

// ---- layout ----

#[test]
fn flatten_reshape_transpose() {
    let x = normal("x", &[2, 3, 4], 1.0);
    gradcheck(Op::Flatten { axis: 1 }, slice::from_ref(&x), &[true]);
    gradcheck(Op::Flatten { axis: 0 }, slice::from_ref(&x), &[true]);
    let shape = vec![0, -1, 2];
    gradcheck(Op::Reshape { shape }, slice::from_ref(&x), &[true]);
    let perm = vec![2, 0, 1];
    gradcheck(Op::Transpose { perm }, &[x], &[true]);
}

#[test]
fn concat_three_on_middle_axis() {
    let inputs = [
        normal("a", &[2, 1, 3], 1.0),
        normal("b", &[2, 4, 3], 1.0),
        normal("c", &[2, 2, 3], 1.0),
    ];
    gradcheck(Op::Concat { axis: 1 }, &inputs, &[true, true, true]);
}

// ---- losses ----

#[test]
fn mse_loss_gradients() {
    let p = normal("p", &[3, 4], 1.0);
    let t = normal("t", &[3, 4], 1.0);
    gradcheck(Op::MseLoss, &[p, t], &[true, true]);
}

#[test]
fn cross_entropy_gradients() {
    let logits = normal("z", &[4, 5], 2.0);
    let labels = Tensor::i64(vec![4], vec![0, 4, 2, 2]).unwrap();
    gradcheck(Op::CrossEntropyLoss, &[logits, labels], &[true, false]);
}

#[test]
fn bce_gradients() {
    let p = uniform("p", &[3, 4], 0.05, 0.95);
    let t = uniform("t", &[3, 4], 0.0, 1.0);
    gradcheck(Op::BceLoss, &[p, t], &[true, true]);
}

#[test]
fn bce_with_logits_gradients() {
    let z = normal("z", &[3, 4], 3.0);
    let t = uniform("t", &[3, 4], 0.0, 1.0);
    gradcheck(Op::BceWithLogitsLoss, &[z, t], &[true, true]);
}

#[test]
fn vae_elbo_gradients() {
    let recon = uniform("recon", &[3, 6], 0.05, 0.95);
    let mu = normal("mu", &[3, 2], 1.0);
    let logvar = normal("logvar", &[3, 2], 0.5);
    let x = uniform("x", &[3, 6], 0.0, 1.0);
    gradcheck(Op::VaeElboLoss, &[recon, mu, logvar, x], &[true; 4]);
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
    let y = forward(Op::Sub, &[a, b]);
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
    let n = node(Op::Relu, 1);
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
    let loss = forward(Op::CrossEntropyLoss, &[logits, labels]);
    assert_close(&loss, &[], &[0.40760596444438035]);
}

#[test]
fn cross_entropy_rejects_label_out_of_range() {
    let logits = normal("z", &[4, 10], 1.0);
    let labels = Tensor::i64(vec![4], vec![0, 1, 2, 12]).unwrap();
    let n = node(Op::CrossEntropyLoss, 2);
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
    let n = node(Op::BceLoss, 2);
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
    let n = node(Op::BceLoss, 2);
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
    let loss = forward(Op::BceWithLogitsLoss, &[f64s(&[3], &z), f64s(&[3], &t)]);
    assert_close(&loss, &[], &[direct]);
    // A huge logit must not overflow: ln(1 + e^1000) = 1000.
    let loss = forward(
        Op::BceWithLogitsLoss,
        &[f64s(&[1], &[1000.0]), f64s(&[1], &[0.0])],
    );
    assert_close(&loss, &[], &[1000.0]);
}

#[test]
fn mse_known_value() {
    let p = f64s(&[3], &[1.0, 2.0, 3.0]);
    let t = f64s(&[3], &[1.0, 0.0, 5.0]);
    assert_close(&forward(Op::MseLoss, &[p, t]), &[], &[8.0 / 3.0]);
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
    assert_close(&forward(Op::VaeElboLoss, &inputs), &[], &[expected]);
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
