//! The burn backend beyond the conformance suite: devices, version, intermediates, gradients,
//! the errors a user's batch or call order can cause, and each optimizer option against the
//! f64 reference over a few steps. Threads are tested in `tests/threads.rs`, in a process of
//! their own (rayon's global pool is sized once per process).

use dlbench_burn::BurnBackend;
use dlbench_core::init::Init;
use dlbench_core::training::{Adam, Gd, Sgd};
use dlbench_core::{
    Backend, Device, Error, GraphBuilder, Loss, Mode, Model, Op, Optimizer, PrepareOptions,
    Session, Tensor, TrainingConfig, UnaryOp, Values,
};
use dlbench_reference::ReferenceBackend;

/// x [batch, 3] -> dense 4 -> relu -> dense 2.
fn mlp() -> Model {
    let mut b = GraphBuilder::new("mlp");
    b.data_input("x", &[3]).unwrap();
    let h = b.dense(Some("hidden"), "x", 4, true).unwrap();
    let a = b.op(Some("act"), Op::Unary(UnaryOp::Relu), &[&h]).unwrap();
    let y = b.dense(Some("out"), &a, 2, true).unwrap();
    Model::initialized(b.finish(&[&y]).unwrap(), 3).unwrap()
}

fn batch() -> Values {
    let x = Tensor::f32(vec![2, 3], vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.75]).unwrap();
    Values::from([("x".to_string(), x)])
}

fn with_target() -> Values {
    let mut inputs = batch();
    inputs.insert(
        "target".into(),
        Tensor::f32(vec![2, 2], vec![1.0, 0.0, 0.0, 1.0]).unwrap(),
    );
    inputs
}

fn sgd(lr: f64) -> TrainingConfig {
    TrainingConfig {
        loss: Loss::Mse,
        optimizer: Optimizer::Sgd(Sgd {
            lr,
            ..Sgd::default()
        }),
    }
}

fn training(config: TrainingConfig) -> PrepareOptions {
    PrepareOptions {
        training: Some(config),
        ..PrepareOptions::default()
    }
}

/// Asserts `|a - r| <= atol + rtol |r|` element by element, for every name in `expected`.
fn assert_close(actual: &Values, expected: &Values, atol: f64, rtol: f64) {
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (name, value) in actual {
        assert_eq!(value.shape(), expected[name].shape(), "{name}");
        let (a, r) = (value.to_f64_vec(), expected[name].to_f64_vec());
        for (x, y) in a.iter().zip(&r) {
            assert!((x - y).abs() <= atol + rtol * y.abs(), "{name}: {x} vs {y}");
        }
    }
}

#[test]
fn an_unknown_device_is_unsupported() {
    let options = PrepareOptions {
        device: Device::Cuda(99),
        ..PrepareOptions::default()
    };
    match BurnBackend.prepare(&mlp(), &options) {
        Err(Error::Unsupported { backend, what }) => {
            assert_eq!(backend, "burn");
            assert!(what.contains("cuda:99"), "{what}");
        }
        Err(e) => panic!("expected unsupported, got {e}"),
        Ok(_) => panic!("cuda:99 was accepted"),
    }
}

#[test]
fn gpus_are_listed_only_when_burn_has_them() {
    let devices = BurnBackend.capabilities().devices;
    assert_eq!(devices[0], Device::Cpu);
    assert_eq!(&devices[1..], BurnBackend::gpu_devices().as_slice());
    if cfg!(not(any(feature = "cuda", feature = "wgpu"))) {
        assert_eq!(devices, vec![Device::Cpu]);
        let options = PrepareOptions {
            device: Device::Cuda(0),
            ..PrepareOptions::default()
        };
        let refused = BurnBackend.prepare(&mlp(), &options);
        assert!(matches!(refused, Err(Error::Unsupported { .. })));
    }
}

#[test]
fn the_version_names_burn_and_flex() {
    let version = BurnBackend.version();
    assert!(version.starts_with("burn 0.22.1 (flex"), "{version}");
    if cfg!(not(any(feature = "cuda", feature = "wgpu"))) {
        assert_eq!(version, "burn 0.22.1 (flex)");
    }
}

#[test]
fn intermediates_are_returned_and_agree_with_the_reference() {
    let model = mlp();
    let options = PrepareOptions::default();
    let mut burn = BurnBackend.prepare(&model, &options).unwrap();
    let mut reference = ReferenceBackend.prepare(&model, &options).unwrap();
    for session in [&mut burn, &mut reference] {
        session.load(&batch()).unwrap();
        session.forward(Mode::Inference).unwrap();
    }
    let values = burn.intermediates().unwrap();
    assert_close(&values, &reference.intermediates().unwrap(), 1e-5, 1e-4);
    assert_eq!(burn.outputs().unwrap()["out"].shape(), &[2, 2]);
}

#[test]
fn gradients_agree_with_the_reference() {
    let model = mlp();
    let options = training(sgd(0.1));
    let mut burn = BurnBackend.prepare(&model, &options).unwrap();
    let mut reference = ReferenceBackend.prepare(&model, &options).unwrap();
    for session in [&mut burn, &mut reference] {
        session.load(&with_target()).unwrap();
        session.backward().unwrap();
    }
    assert_close(
        &burn.gradients().unwrap(),
        &reference.gradients().unwrap(),
        1e-5,
        1e-4,
    );
    // A backward pass leaves the weights alone.
    assert_close(&burn.weights().unwrap(), &model.weights, 0.0, 0.0);
}

#[test]
fn a_parameter_the_loss_does_not_reach_has_a_zero_gradient() {
    let mut b = GraphBuilder::new("two_heads");
    b.data_input("x", &[3]).unwrap();
    let used = b.dense(Some("used"), "x", 2, true).unwrap();
    let unused = b.dense(Some("unused"), "x", 2, true).unwrap();
    let model = Model::initialized(b.finish(&[&used, &unused]).unwrap(), 5).unwrap();
    let mut session = BurnBackend.prepare(&model, &training(sgd(0.1))).unwrap();
    session.load(&with_target()).unwrap();
    session.train_step().unwrap();
    let grads = session.gradients().unwrap();
    let weights = session.weights().unwrap();
    for name in model.weights.keys().filter(|n| n.starts_with("unused")) {
        assert!(grads[name].to_f64_vec().iter().all(|&g| g == 0.0), "{name}");
        // PyTorch's optimizers skip a parameter without a gradient; so does this one.
        assert_eq!(weights[name], model.weights[name], "{name}");
    }
    assert!(grads
        .iter()
        .filter(|(n, _)| n.starts_with("used"))
        .all(|(_, g)| g.to_f64_vec().iter().any(|&v| v != 0.0)));
}

#[test]
fn a_bad_batch_is_refused_with_the_reason() {
    let mut session = BurnBackend
        .prepare(&mlp(), &PrepareOptions::default())
        .unwrap();
    let mut message = |inputs: &Values| match session.load(inputs) {
        Err(e) => e.to_string(),
        Ok(()) => panic!("the batch {inputs:?} was accepted"),
    };
    assert!(message(&Values::new()).contains("missing"));
    let wide = Tensor::f32(vec![2, 4], vec![0.0; 8]).unwrap();
    let text = message(&Values::from([("x".to_string(), wide)]));
    assert!(text.contains("expected shape [batch, 3]"), "{text}");
    let labels = Tensor::i64(vec![2, 3], vec![0; 6]).unwrap();
    let text = message(&Values::from([("x".to_string(), labels)]));
    assert!(text.contains("expected f32 or f64"), "{text}");
    let mut extra = batch();
    extra.insert("y".into(), Tensor::f32(vec![1], vec![0.0]).unwrap());
    assert!(message(&extra).contains("no input `y`"));
}

#[test]
fn a_label_out_of_range_is_refused() {
    let config = TrainingConfig {
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Gd(Gd { lr: 0.1 }),
    };
    let mut session = BurnBackend.prepare(&mlp(), &training(config)).unwrap();
    for bad in [2, -1] {
        let mut inputs = batch();
        inputs.insert("target".into(), Tensor::i64(vec![2], vec![0, bad]).unwrap());
        let error = session.load(&inputs).unwrap_err().to_string();
        assert!(error.contains("out of range for 2 classes"), "{error}");
    }
    let mut inputs = batch();
    inputs.insert("target".into(), Tensor::i64(vec![2], vec![0, 1]).unwrap());
    session.load(&inputs).unwrap();
    session.train_step().unwrap();
}

#[test]
fn calls_out_of_order_are_errors_not_panics() {
    let model = mlp();
    let mut inference = BurnBackend
        .prepare(&model, &PrepareOptions::default())
        .unwrap();
    assert!(inference.forward(Mode::Inference).is_err());
    assert!(inference.outputs().is_err());
    assert!(inference.intermediates().is_err());
    inference.load(&batch()).unwrap();
    assert!(inference.outputs().is_err());
    assert!(inference.backward().is_err());
    assert!(inference.train_step().is_err());
    assert!(inference.gradients().is_err());

    let mut session = BurnBackend.prepare(&model, &training(sgd(0.1))).unwrap();
    assert!(session.gradients().is_err());
    assert!(session.backward().is_err());
    session.load(&with_target()).unwrap();
    // A forward pass is no backward pass: still no gradients.
    session.forward(Mode::Training).unwrap();
    assert!(session.gradients().is_err());
}

#[test]
fn a_training_step_changes_the_weights_by_the_gradient() {
    let model = mlp();
    let mut session = BurnBackend.prepare(&model, &training(sgd(0.1))).unwrap();
    session.load(&with_target()).unwrap();
    session.train_step().unwrap();
    let grads = session.gradients().unwrap();
    let after = session.weights().unwrap();
    for (name, before) in &model.weights {
        let (w0, w1, g) = (
            before.to_f64_vec(),
            after[name].to_f64_vec(),
            grads[name].to_f64_vec(),
        );
        for ((a, b), g) in w0.iter().zip(&w1).zip(&g) {
            assert!(
                (b - (a - 0.1 * g)).abs() < 1e-6,
                "{name}: {a} -> {b}, grad {g}"
            );
        }
    }
}

/// `steps` training steps with `optimizer` on burn and on the f64 reference, from the same
/// weights on the same batch: losses and final weights must agree.
fn agrees_over_steps(optimizer: Optimizer, steps: usize) {
    let model = mlp();
    let options = training(TrainingConfig {
        loss: Loss::Mse,
        optimizer,
    });
    let mut burn = BurnBackend.prepare(&model, &options).unwrap();
    let mut reference = ReferenceBackend.prepare(&model, &options).unwrap();
    let run = |session: &mut Box<dyn Session>| -> Vec<Values> {
        session.load(&with_target()).unwrap();
        (0..steps)
            .map(|_| {
                session.train_step().unwrap();
                let loss = session.outputs().unwrap().remove("loss").unwrap();
                Values::from([("loss".to_string(), loss)])
            })
            .collect()
    };
    let (losses, expected) = (run(&mut burn), run(&mut reference));
    for (step, (a, r)) in losses.iter().zip(&expected).enumerate() {
        eprintln!("{optimizer:?} step {step}: {:?}", a["loss"].to_f64_vec());
        assert_close(a, r, 1e-6, 1e-4);
    }
    assert_close(
        &burn.weights().unwrap(),
        &reference.weights().unwrap(),
        1e-6,
        1e-4,
    );
}

#[test]
fn gd_agrees_with_the_reference() {
    agrees_over_steps(Optimizer::Gd(Gd { lr: 0.05 }), 5);
}

#[test]
fn sgd_momentum_agrees_with_the_reference() {
    agrees_over_steps(
        Optimizer::Sgd(Sgd {
            lr: 0.05,
            momentum: 0.9,
            ..Sgd::default()
        }),
        5,
    );
}

#[test]
fn sgd_dampening_agrees_with_the_reference() {
    agrees_over_steps(
        Optimizer::Sgd(Sgd {
            lr: 0.05,
            momentum: 0.9,
            dampening: 0.5,
            ..Sgd::default()
        }),
        5,
    );
}

#[test]
fn sgd_nesterov_agrees_with_the_reference() {
    agrees_over_steps(
        Optimizer::Sgd(Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            ..Sgd::default()
        }),
        5,
    );
}

#[test]
fn sgd_weight_decay_agrees_with_the_reference() {
    agrees_over_steps(
        Optimizer::Sgd(Sgd {
            lr: 0.05,
            weight_decay: 0.1,
            ..Sgd::default()
        }),
        5,
    );
}

#[test]
fn adam_defaults_agree_with_the_reference() {
    agrees_over_steps(
        Optimizer::Adam(Adam {
            lr: 0.01,
            ..Adam::default()
        }),
        5,
    );
}

#[test]
fn adam_betas_and_eps_agree_with_the_reference() {
    agrees_over_steps(
        Optimizer::Adam(Adam {
            lr: 0.01,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            ..Adam::default()
        }),
        5,
    );
}

#[test]
fn adam_weight_decay_is_l2_and_agrees_with_the_reference() {
    agrees_over_steps(
        Optimizer::Adam(Adam {
            lr: 0.01,
            weight_decay: 0.1,
            ..Adam::default()
        }),
        5,
    );
}

/// A fast second moment (beta2 0.5) and a larger step, so that the second moment falls
/// within a few steps and AMSGrad's running maximum matters.
#[test]
fn adam_amsgrad_agrees_with_the_reference() {
    agrees_over_steps(
        Optimizer::Adam(Adam {
            lr: 0.1,
            beta2: 0.5,
            amsgrad: true,
            ..Adam::default()
        }),
        12,
    );
}

#[test]
fn a_bad_optimizer_is_refused() {
    let bad = Optimizer::Sgd(Sgd {
        lr: 0.1,
        nesterov: true,
        ..Sgd::default()
    });
    let options = training(TrainingConfig {
        loss: Loss::Mse,
        optimizer: bad,
    });
    assert!(BurnBackend.prepare(&mlp(), &options).is_err());
}

/// What the session composes, the optimizer it steps with and its threads are named for the
/// results record.
#[test]
fn composed_parts_are_named_in_the_notes() {
    let training = PrepareOptions {
        training: Some(TrainingConfig {
            loss: Loss::BinaryCrossEntropyWithLogits,
            optimizer: Optimizer::Sgd(Sgd {
                lr: 0.1,
                ..Sgd::default()
            }),
        }),
        ..PrepareOptions::default()
    };
    let notes = BurnBackend
        .prepare(&mlp(), &training)
        .unwrap()
        .notes()
        .join("\n");
    for needle in ["bce_with_logits", "optimizer: burn-optim Sgd", "thread(s)"] {
        assert!(notes.contains(needle), "{needle}: {notes}");
    }
}

/// Trains `model` one SGD step on burn and on the reference from `inputs`, and compares the
/// outputs, gradients and updated weights (every one in the IR's layout).
fn agrees_after_a_step(model: &Model, inputs: &Values) {
    let options = training(sgd(0.1));
    let mut burn = BurnBackend.prepare(model, &options).unwrap();
    let mut reference = ReferenceBackend.prepare(model, &options).unwrap();
    assert_close(&burn.weights().unwrap(), &model.weights, 0.0, 0.0);
    for session in [&mut burn, &mut reference] {
        session.load(inputs).unwrap();
        session.train_step().unwrap();
    }
    assert_close(
        &burn.outputs().unwrap(),
        &reference.outputs().unwrap(),
        1e-5,
        1e-4,
    );
    assert_close(
        &burn.gradients().unwrap(),
        &reference.gradients().unwrap(),
        1e-5,
        1e-4,
    );
    assert_close(
        &burn.weights().unwrap(),
        &reference.weights().unwrap(),
        1e-6,
        1e-5,
    );
}

#[test]
fn dense_weights_held_in_burns_layout_read_back_in_the_irs() {
    // Non-square weights, so that a layout mix-up changes shapes, not only values.
    agrees_after_a_step(&mlp(), &with_target());
}

#[test]
fn a_dense_weight_shared_with_another_op_or_read_as_an_output_agrees() {
    // x [2, 3] -> dense(w [2, 3]) -> [2, 2] -> mat_mul(w) -> [2, 3]; w is also an output.
    let mut b = GraphBuilder::new("tied");
    b.data_input("x", &[3]).unwrap();
    let w = b.param("w", &[2, 3], Init::Uniform { bound: 0.5 }).unwrap();
    let h = b.op(Some("h"), Op::Dense, &["x", &w]).unwrap();
    let y = b.op(Some("y"), Op::MatMul, &[&h, &w]).unwrap();
    let model = Model::initialized(b.finish(&[&y, &w]).unwrap(), 7).unwrap();
    let mut inputs = batch();
    let target = Tensor::f32(vec![2, 3], vec![1.0, 0.0, -1.0, 0.5, 0.25, 0.0]).unwrap();
    inputs.insert("target".into(), target);
    agrees_after_a_step(&model, &inputs);
}
