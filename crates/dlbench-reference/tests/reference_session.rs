//! The reference session end to end on small models built with `GraphBuilder`: batch checks,
//! forward values, whole-graph gradients against finite differences of the session's own loss,
//! and training runs that must lower the loss.

use dlbench_core::rng::Stream;
use dlbench_core::training::{Adam, Sgd};
use dlbench_core::{
    Backend, BinaryOp, Device, Error, Graph, GraphBuilder, Loss, Mode, Model, Op, Optimizer,
    PrepareOptions, Session, Tensor, TrainingConfig, UnaryOp, Values,
};
use dlbench_reference::{ReferenceBackend, ReferenceSession};

const FEATURES: usize = 3;

/// x -> dense(6) -> relu -> dense(1) -> sigmoid.
fn mlp() -> Graph {
    let mut b = GraphBuilder::new("mlp");
    let x = b.data_input("x", &[FEATURES]).unwrap();
    let h = b.dense(None, &x, 6, true).unwrap();
    let h = b.op(None, Op::Unary(UnaryOp::Relu), &[&h]).unwrap();
    let y = b.dense(None, &h, 1, true).unwrap();
    let y = b.op(None, Op::Unary(UnaryOp::Sigmoid), &[&y]).unwrap();
    b.finish(&[&y]).unwrap()
}

/// A value read by two nodes (`h`) and one read twice by a node (`s * s`): gradients must sum.
fn shared_values() -> Graph {
    let mut b = GraphBuilder::new("shared");
    let x = b.data_input("x", &[FEATURES]).unwrap();
    let h = b.dense(None, &x, 4, true).unwrap();
    let r = b.op(None, Op::Unary(UnaryOp::Tanh), &[&h]).unwrap();
    let s = b.op(None, Op::Binary(BinaryOp::Add), &[&h, &r]).unwrap();
    let m = b.op(None, Op::Binary(BinaryOp::Mul), &[&s, &s]).unwrap();
    let y = b.dense(None, &m, 1, true).unwrap();
    let y = b.op(None, Op::Unary(UnaryOp::Sigmoid), &[&y]).unwrap();
    b.finish(&[&y]).unwrap()
}

fn bce(optimizer: Optimizer) -> TrainingConfig {
    TrainingConfig {
        loss: Loss::BinaryCrossEntropy,
        optimizer,
    }
}

fn sgd(lr: f64) -> TrainingConfig {
    bce(Optimizer::Sgd(Sgd {
        lr,
        ..Sgd::default()
    }))
}

/// A learnable problem: the label is which side of a fixed plane a point lies on.
fn batch(n: usize, seed: u64) -> Values {
    let x: Vec<f64> = Stream::new(seed, "x", 0)
        .uniform_vec(n * FEATURES)
        .iter()
        .map(|u| u * 2.0 - 1.0)
        .collect();
    let target = x
        .chunks(FEATURES)
        .map(|p| f32::from(p[0] + 0.5 * p[1] - p[2] > 0.0))
        .collect();
    let x = x.iter().map(|&v| v as f32).collect();
    Values::from([
        ("x".to_string(), Tensor::f32(vec![n, FEATURES], x).unwrap()),
        (
            "target".to_string(),
            Tensor::f32(vec![n, 1], target).unwrap(),
        ),
    ])
}

fn data_only(n: usize) -> Values {
    let mut values = batch(n, 1);
    values.remove("target");
    values
}

fn session(graph: Graph, training: Option<TrainingConfig>) -> ReferenceSession {
    let model = Model::initialized(graph, 7).unwrap();
    ReferenceSession::new(&model, training).unwrap()
}

fn message(result: Result<(), Error>) -> String {
    result.expect_err("should be refused").to_string()
}

#[test]
fn load_rejects_a_missing_input() {
    let mut s = session(mlp(), Some(sgd(0.1)));
    let err = message(s.load(&data_only(4)));
    assert!(err.contains("`target`") && err.contains("missing"), "{err}");
    let err = message(s.load(&Values::new()));
    assert!(err.contains("`x`"), "{err}");
}

#[test]
fn load_rejects_a_wrong_shape() {
    let mut s = session(mlp(), None);
    let x = Tensor::f32(vec![4, 5], vec![0.0; 20]).unwrap();
    let err = message(s.load(&Values::from([("x".to_string(), x)])));
    assert!(err.contains("`x`"), "{err}");
    assert!(
        err.contains("[batch, 3]") && err.contains("[4, 5]"),
        "{err}"
    );
    let x = Tensor::f32(vec![12], vec![0.0; 12]).unwrap();
    let err = message(s.load(&Values::from([("x".to_string(), x)])));
    assert!(err.contains("`x`") && err.contains("[12]"), "{err}");
}

#[test]
fn load_rejects_batches_of_different_sizes() {
    let mut s = session(mlp(), Some(sgd(0.1)));
    let mut values = batch(4, 1);
    values.insert(
        "target".into(),
        Tensor::f32(vec![5, 1], vec![0.0; 5]).unwrap(),
    );
    let err = message(s.load(&values));
    assert!(err.contains("`target`") && err.contains("[5, 1]"), "{err}");
    assert!(err.contains("batch 4 from input `x`"), "{err}");
}

#[test]
fn load_rejects_an_unknown_name_and_a_wrong_dtype() {
    let mut s = session(mlp(), None);
    let mut values = data_only(4);
    values.insert("y".into(), Tensor::f32(vec![4, 1], vec![0.0; 4]).unwrap());
    let err = message(s.load(&values));
    assert!(err.contains("`y`") && err.contains("\"x\""), "{err}");
    let x = Tensor::i64(vec![2, FEATURES], vec![0; 6]).unwrap();
    let err = message(s.load(&Values::from([("x".to_string(), x)])));
    assert!(err.contains("`x`") && err.contains("i64"), "{err}");
}

#[test]
fn a_refused_batch_keeps_the_previous_one() {
    let mut s = session(mlp(), None);
    s.load(&data_only(4)).unwrap();
    assert!(s.load(&Values::new()).is_err());
    s.forward(Mode::Inference).unwrap();
    assert_eq!(s.outputs().unwrap()["sigmoid_1"].shape(), &[4, 1]);
}

#[test]
fn forward_gives_outputs_and_every_intermediate() {
    let mut s = session(mlp(), None);
    s.load(&data_only(5)).unwrap();
    s.forward(Mode::Inference).unwrap();
    let outputs = s.outputs().unwrap();
    let y = &outputs["sigmoid_1"];
    assert_eq!(outputs.len(), 1);
    assert_eq!(y.shape(), &[5, 1]);
    assert!(y.as_f64().unwrap().iter().all(|p| (0.0..=1.0).contains(p)));
    let names: Vec<String> = s.intermediates().unwrap().into_keys().collect();
    assert_eq!(names, ["dense_1", "dense_2", "relu_1", "sigmoid_1"]);
    // f32 weights are widened exactly.
    let model = Model::initialized(mlp(), 7).unwrap();
    let w = &s.weights().unwrap()["dense_1.weight"];
    assert_eq!(
        w.as_f64().unwrap(),
        model.weights["dense_1.weight"].to_f64_vec()
    );
}

#[test]
fn a_training_graph_outputs_its_loss() {
    let mut s = session(mlp(), Some(sgd(0.1)));
    s.load(&batch(4, 1)).unwrap();
    s.forward(Mode::Training).unwrap();
    let outputs = s.outputs().unwrap();
    let loss = &outputs["loss"];
    assert_eq!(loss.shape(), &[] as &[usize]);
    assert_eq!(loss.as_f64().unwrap()[0], s.loss().unwrap());
    assert!(outputs.contains_key("sigmoid_1"));
}

#[test]
fn reading_before_running_is_an_error() {
    let mut s = session(mlp(), Some(sgd(0.1)));
    let err = s.forward(Mode::Inference).unwrap_err().to_string();
    assert!(err.contains("load"), "{err}");
    s.load(&batch(4, 1)).unwrap();
    assert!(s.outputs().unwrap_err().to_string().contains("forward"));
    assert!(s.intermediates().is_err());
    let err = s.gradients().unwrap_err().to_string();
    assert!(err.contains("backward"), "{err}");
    s.forward(Mode::Training).unwrap();
    assert!(s.gradients().is_err(), "a forward pass makes no gradients");
    s.backward().unwrap();
    assert_eq!(s.gradients().unwrap().len(), 4);
}

#[test]
fn training_calls_need_a_training_config() {
    let mut s = session(mlp(), None);
    s.load(&data_only(4)).unwrap();
    for err in [s.backward(), s.train_step(), s.gradients().map(drop)] {
        let err = message(err);
        assert!(err.contains("training config"), "{err}");
    }
}

#[test]
fn backward_leaves_the_weights_alone() {
    let mut s = session(mlp(), Some(sgd(0.1)));
    s.load(&batch(4, 1)).unwrap();
    let before = s.weights().unwrap();
    s.backward().unwrap();
    assert_eq!(s.weights().unwrap(), before);
    s.train_step().unwrap();
    assert_ne!(s.weights().unwrap(), before);
}

/// Central differences of the session's loss w.r.t. a few elements of every parameter.
fn gradcheck(graph: Graph) {
    let mut s = session(graph, Some(sgd(0.1)));
    s.load(&batch(8, 3)).unwrap();
    s.backward().unwrap();
    let grads = s.gradients().unwrap();
    let weights = s.weights().unwrap();
    assert_eq!(grads.len(), weights.len());
    let h = 1e-6;
    let mut checked = 0;
    for (name, w) in &weights {
        let base = w.as_f64().unwrap().to_vec();
        let analytic = grads[name].as_f64().unwrap();
        for i in [0, base.len() / 2, base.len() - 1] {
            let mut loss_at = |delta: f64| {
                let mut moved = base.clone();
                moved[i] += delta;
                let moved = Tensor::f64(w.shape().to_vec(), moved).unwrap();
                s.set_weights(&Values::from([(name.clone(), moved)]))
                    .unwrap();
                s.forward(Mode::Training).unwrap();
                s.loss().unwrap()
            };
            let numeric = (loss_at(h) - loss_at(-h)) / (2.0 * h);
            let err = (analytic[i] - numeric).abs();
            assert!(
                err <= 1e-8 + 1e-6 * numeric.abs(),
                "{name}[{i}]: backward {}, finite differences {numeric}",
                analytic[i]
            );
            checked += 1;
        }
        s.set_weights(&Values::from([(name.clone(), w.clone())]))
            .unwrap();
    }
    assert!(checked >= 12);
}

#[test]
fn mlp_gradients_match_finite_differences() {
    gradcheck(mlp());
}

#[test]
fn gradients_of_shared_values_are_summed() {
    gradcheck(shared_values());
}

/// Loss before each of `steps` training steps on one fixed batch.
fn train(config: TrainingConfig, steps: usize) -> Vec<f64> {
    let mut s = session(mlp(), Some(config));
    s.load(&batch(64, 11)).unwrap();
    (0..steps)
        .map(|_| {
            s.train_step().unwrap();
            s.loss().unwrap()
        })
        .collect()
}

fn assert_learns(losses: &[f64]) {
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(
        last < 0.7 * first,
        "loss went from {first} to {last}: {losses:?}"
    );
}

#[test]
fn sgd_lowers_the_loss() {
    assert_learns(&train(sgd(0.5), 50));
}

#[test]
fn sgd_with_momentum_lowers_the_loss() {
    let config = bce(Optimizer::Sgd(Sgd {
        lr: 0.1,
        momentum: 0.9,
        nesterov: true,
        ..Sgd::default()
    }));
    assert_learns(&train(config, 50));
}

#[test]
fn adam_lowers_the_loss() {
    let config = bce(Optimizer::Adam(Adam {
        lr: 0.02,
        ..Adam::default()
    }));
    assert_learns(&train(config, 50));
}

#[test]
fn invalid_optimizers_are_refused_at_prepare() {
    let model = Model::initialized(mlp(), 7).unwrap();
    let config = sgd(-1.0);
    let err = ReferenceSession::new(&model, Some(config))
        .unwrap_err()
        .to_string();
    assert!(err.contains("lr"), "{err}");
}

#[test]
fn the_backend_prepares_cpu_sessions_only() {
    let backend = ReferenceBackend;
    assert_eq!(backend.name(), "reference");
    assert!(backend.version().starts_with("f64 reference "));
    let caps = backend.capabilities();
    assert!(caps.inference && caps.training && caps.intermediates);
    assert_eq!(caps.devices, [Device::Cpu]);
    let model = Model::initialized(mlp(), 7).unwrap();
    let options = PrepareOptions {
        device: Device::Cuda(0),
        ..PrepareOptions::default()
    };
    let err = backend.prepare(&model, &options).err().expect("no CUDA");
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    let options = PrepareOptions {
        training: Some(sgd(0.1)),
        ..PrepareOptions::default()
    };
    let mut s = backend.prepare(&model, &options).unwrap();
    s.load(&batch(4, 1)).unwrap();
    s.train_step().unwrap();
    assert!(s.outputs().unwrap().contains_key("loss"));
}

#[test]
fn set_weights_checks_names_and_shapes() {
    let mut s = session(mlp(), None);
    let t = Tensor::f64(vec![2], vec![0.0; 2]).unwrap();
    let err = message(s.set_weights(&Values::from([("nope".to_string(), t.clone())])));
    assert!(err.contains("`nope`"), "{err}");
    let err = message(s.set_weights(&Values::from([("dense_2.bias".to_string(), t)])));
    assert!(err.contains("dense_2.bias") && err.contains("[1]"), "{err}");
}
