//! The native session directly: batch checks, intermediates, and one SGD step checked against
//! the update rule by hand.

use dlbench_core::training::Sgd;
use dlbench_core::{
    Backend, Device, GraphBuilder, Loss, Mode, Model, Op, Optimizer, PrepareOptions, Session,
    Tensor, TrainingConfig, UnaryOp, Values,
};
use dlbench_native::engine::NativeBackend;

/// x [batch, 3] -> dense(2) -> relu.
fn model() -> Model {
    let mut b = GraphBuilder::new("tiny");
    let x = b.data_input("x", &[3]).unwrap();
    let h = b.dense(None, &x, 2, true).unwrap();
    let y = b.op(None, Op::Unary(UnaryOp::Relu), &[&h]).unwrap();
    Model::initialized(b.finish(&[&y]).unwrap(), 3).unwrap()
}

fn batch(rows: usize) -> Values {
    let data = (0..rows * 3).map(|i| i as f32 * 0.25 - 1.0).collect();
    Values::from([("x".to_string(), Tensor::f32(vec![rows, 3], data).unwrap())])
}

fn prepare(training: Option<TrainingConfig>) -> Box<dyn Session> {
    let options = PrepareOptions {
        training,
        ..PrepareOptions::default()
    };
    NativeBackend.prepare(&model(), &options).unwrap()
}

#[test]
fn refuses_bad_batches_with_errors() {
    let mut s = prepare(None);
    let wrong_width = Values::from([(
        "x".to_string(),
        Tensor::zeros(dlbench_core::DType::F32, vec![2, 4]),
    )]);
    assert!(s
        .load(&wrong_width)
        .unwrap_err()
        .to_string()
        .contains("`x`"));
    let unknown = Values::from([(
        "y".to_string(),
        Tensor::zeros(dlbench_core::DType::F32, vec![2, 3]),
    )]);
    assert!(s.load(&unknown).is_err());
    assert!(s.load(&Values::new()).is_err());
    // Nothing was loaded, so there is nothing to run.
    assert!(s.forward(Mode::Inference).is_err());
    assert!(s.outputs().is_err());
    // Inference sessions cannot train.
    s.load(&batch(2)).unwrap();
    assert!(s.backward().is_err());
}

#[test]
fn refuses_other_devices() {
    let options = PrepareOptions {
        device: Device::Cuda(0),
        ..PrepareOptions::default()
    };
    assert!(NativeBackend.prepare(&model(), &options).is_err());
}

#[test]
fn returns_every_intermediate() {
    let mut s = prepare(None);
    s.load(&batch(4)).unwrap();
    s.forward(Mode::Inference).unwrap();
    let values = s.intermediates().unwrap();
    let graph = &model().graph;
    for node in &graph.nodes {
        for out in &node.outputs {
            assert_eq!(values[out].shape(), [4, 2], "{out}");
        }
    }
    let outputs = s.outputs().unwrap();
    assert_eq!(outputs[&graph.outputs[0]], values[&graph.outputs[0]]);
}

#[test]
fn a_training_step_is_sgd() {
    let lr = 0.1;
    let config = TrainingConfig {
        loss: Loss::Mse,
        optimizer: Optimizer::Sgd(Sgd {
            lr,
            ..Sgd::default()
        }),
    };
    let mut s = prepare(Some(config));
    let mut inputs = batch(4);
    let target = Tensor::f32(vec![4, 2], vec![0.5; 8]).unwrap();
    inputs.insert(dlbench_core::training::TARGET.to_string(), target);
    s.load(&inputs).unwrap();
    let before = s.weights().unwrap();
    s.backward().unwrap();
    let grads = s.gradients().unwrap();
    assert_eq!(
        s.weights().unwrap(),
        before,
        "backward must not move the weights"
    );
    s.train_step().unwrap();
    let after = s.weights().unwrap();
    let mut moved = false;
    for (name, w) in &before {
        let (w0, g, w1) = (
            w.as_f32().unwrap(),
            grads[name].as_f32().unwrap(),
            after[name].as_f32().unwrap(),
        );
        for i in 0..w0.len() {
            let expected = w0[i] - lr as f32 * g[i];
            assert!((w1[i] - expected).abs() <= 1e-6, "{name}[{i}]");
            moved |= g[i] != 0.0;
        }
    }
    assert!(moved, "some gradient is non-zero");
}
