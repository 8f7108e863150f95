//! The reference's losses at edges its finite-difference checks do not reach, found by
//! mutation testing (docs/mutation-testing.md): a label equal to the class count, and the
//! gradient of BCE with logits where e^|z| overflows.

use dlbench_core::{LossOp, Mode, Node, Op, Tensor};
use dlbench_reference::ops;

fn node(op: Op, inputs: usize) -> Node {
    Node {
        name: format!("test_{}", op.name()),
        op,
        inputs: (0..inputs).map(|i| format!("in{i}")).collect(),
        outputs: vec!["out".to_string()],
    }
}

fn f64s(data: &[f64]) -> Tensor {
    Tensor::f64(vec![data.len()], data.to_vec()).unwrap()
}

/// Labels index `0..C`: C itself is out of range (PyTorch: "Target 3 is out of bounds"), in
/// the forward and the backward pass, and C - 1 is in range.
#[test]
fn cross_entropy_refuses_a_label_equal_to_the_class_count() {
    let n = node(Op::Loss(LossOp::CrossEntropy), 2);
    let logits = Tensor::f64(vec![2, 3], vec![0.5, -1.0, 2.0, 0.0, 1.0, -2.0]).unwrap();
    let labels = Tensor::i64(vec![2], vec![2, 3]).unwrap();
    let err = ops::forward(&n, &[&logits, &labels], Mode::Training).unwrap_err();
    assert!(
        err.to_string().contains("label 3 at row 1 is outside 0..3"),
        "{err}"
    );
    let loss = Tensor::scalar_f64(1.0);
    let one = Tensor::scalar_f64(1.0);
    let err = ops::backward(&n, &[&logits, &labels], &[&loss], &[Some(&one)]).unwrap_err();
    assert!(err.to_string().contains("label 3 at row 1"), "{err}");

    let last = Tensor::i64(vec![2], vec![2, 2]).unwrap();
    let loss = ops::forward(&n, &[&logits, &last], Mode::Training).unwrap();
    // Row 0: lse(0.5, -1, 2) - 2; row 1: lse(0, 1, -2) + 2.
    let lse = |r: [f64; 3]| r.iter().map(|v| v.exp()).sum::<f64>().ln();
    let want = (lse([0.5, -1.0, 2.0]) - 2.0 + lse([0.0, 1.0, -2.0]) + 2.0) / 2.0;
    let got = loss[0].as_f64().unwrap()[0];
    assert!((got - want).abs() <= 1e-12, "{got} != {want}");
}

/// d/dz of BCE with logits is sigmoid(z) - t, which for |z| = 1000 (e^1000 overflows) is
/// exactly 1 - t or -t: by hand, and PyTorch's too.
#[test]
fn bce_with_logits_gradient_survives_huge_logits() {
    let n = node(Op::Loss(LossOp::BinaryCrossEntropyWithLogits), 2);
    let (z, t) = (f64s(&[1000.0, -1000.0, 0.0]), f64s(&[0.25, 0.75, 0.5]));
    let loss = ops::forward(&n, &[&z, &t], Mode::Training)
        .unwrap()
        .remove(0);
    let one = Tensor::scalar_f64(1.0);
    let grads = ops::backward(&n, &[&z, &t], &[&loss], &[Some(&one)]).unwrap();
    let dz = grads[0].as_ref().unwrap().as_f64().unwrap();
    assert_eq!(dz, &[0.75 / 3.0, -0.75 / 3.0, 0.0]);
    let dt = grads[1].as_ref().unwrap().as_f64().unwrap();
    assert_eq!(dt, &[-1000.0 / 3.0, 1000.0 / 3.0, 0.0]);
}
