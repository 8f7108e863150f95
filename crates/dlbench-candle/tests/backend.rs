//! The candle backend beyond the conformance suite: devices, version, intermediates, the
//! errors a user's batch or call order can cause, gradients of unreached parameters, which
//! optimizer runs, and the places where candle's own op is not PyTorch's and the lowering
//! composes instead (each shown on candle itself, then on the backend against the reference).
//!
//! The thread count is process-wide, so its test is a file of its own (tests/threads.rs); every
//! test here prepares with the default, one thread.

use candle_core::{Device as CDevice, Tensor as CTensor, Var};
use dlbench_candle::{CandleBackend, CandleSession};
use dlbench_core::init::Init;
use dlbench_core::ir::Pool2d;
use dlbench_core::training::{Adam, Gd, Sgd};
use dlbench_core::{
    Backend, BinaryOp, Device, Error, GraphBuilder, Loss, Mode, Model, Op, Optimizer,
    PrepareOptions, Tensor, TrainingConfig, UnaryOp, Values,
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

/// `a` and `b` agree within f32 rounding of f64 values of moderate size.
fn assert_close(what: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    for (x, y) in a.to_f64_vec().iter().zip(&b.to_f64_vec()) {
        assert!(
            (x - y).abs() <= 1e-5 + 1e-4 * y.abs(),
            "{what}: {x} vs {y} (reference)"
        );
    }
}

#[test]
fn an_unknown_device_is_unsupported() {
    let options = PrepareOptions {
        device: Device::Cuda(99),
        ..PrepareOptions::default()
    };
    match CandleBackend.prepare(&mlp(), &options) {
        Err(Error::Unsupported { backend, what }) => {
            assert_eq!(backend, "candle");
            assert!(what.contains("cuda:99"), "{what}");
        }
        Err(e) => panic!("expected unsupported, got {e}"),
        Ok(_) => panic!("cuda:99 was accepted"),
    }
}

/// Without the `cuda` feature there is no CUDA device, and cuda:0 says how to get one.
#[cfg(not(feature = "cuda"))]
#[test]
fn without_the_cuda_feature_only_the_cpu_is_listed() {
    assert_eq!(CandleBackend.capabilities().devices, vec![Device::Cpu]);
    assert!(CandleBackend::cuda_devices().is_empty());
    let options = PrepareOptions {
        device: Device::Cuda(0),
        ..PrepareOptions::default()
    };
    match CandleBackend.prepare(&mlp(), &options) {
        Err(Error::Unsupported { what, .. }) => {
            assert!(what.contains("`cuda` feature"), "{what}")
        }
        Err(e) => panic!("expected unsupported, got {e}"),
        Ok(_) => panic!("cuda:0 was accepted without the cuda feature"),
    }
}

/// With the `cuda` feature the CPU comes first, then each device candle opens.
#[cfg(feature = "cuda")]
#[test]
fn with_the_cuda_feature_cuda_devices_follow_the_cpu() {
    let devices = CandleBackend.capabilities().devices;
    assert_eq!(devices[0], Device::Cpu);
    let cuda = CandleBackend::cuda_devices();
    assert_eq!(&devices[1..], cuda.as_slice());
    for device in cuda {
        let options = PrepareOptions {
            device,
            ..PrepareOptions::default()
        };
        let mut session = CandleBackend.prepare(&mlp(), &options).unwrap();
        session.load(&batch()).unwrap();
        session.forward(Mode::Inference).unwrap();
        assert_eq!(session.outputs().unwrap()["out"].shape(), &[2, 2]);
    }
}

/// The version names the candle-core that Cargo.lock resolved, which the `=` pin fixes.
#[test]
fn the_version_names_the_candle_in_the_lockfile() {
    let version = CandleBackend.version();
    assert_eq!(version, "candle 0.11.1");
    assert_eq!(CandleBackend.name(), "candle");
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
        .expect("the workspace's Cargo.lock");
    let entry = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"candle-core\""))
        .expect("candle-core in Cargo.lock");
    assert!(
        entry.contains(&format!("version = \"{}\"", dlbench_candle::CANDLE_VERSION)),
        "{entry}"
    );
}

#[test]
fn intermediates_are_returned_and_agree_with_the_reference() {
    let model = mlp();
    let options = PrepareOptions::default();
    let mut candle = CandleBackend.prepare(&model, &options).unwrap();
    let mut reference = ReferenceBackend.prepare(&model, &options).unwrap();
    for session in [&mut candle, &mut reference] {
        session.load(&batch()).unwrap();
        session.forward(Mode::Inference).unwrap();
    }
    let values = candle.intermediates().unwrap();
    let expected = reference.intermediates().unwrap();
    let names: Vec<&String> = values.keys().collect();
    assert_eq!(names, expected.keys().collect::<Vec<_>>());
    for (name, value) in &values {
        assert_close(name, value, &expected[name]);
    }
    assert_eq!(candle.outputs().unwrap()["out"].shape(), &[2, 2]);
}

#[test]
fn a_bad_batch_is_refused_with_the_reason() {
    let mut session = CandleBackend
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
fn calls_out_of_order_are_errors_not_panics() {
    let model = mlp();
    let mut inference = CandleBackend
        .prepare(&model, &PrepareOptions::default())
        .unwrap();
    assert!(inference.forward(Mode::Inference).is_err());
    assert!(inference.outputs().is_err());
    assert!(inference.intermediates().is_err());
    inference.load(&batch()).unwrap();
    assert!(inference.backward().is_err());
    assert!(inference.train_step().is_err());
    assert!(inference.gradients().is_err());

    let mut session = CandleBackend.prepare(&model, &training(sgd(0.1))).unwrap();
    assert!(session.gradients().is_err());
    assert!(session.backward().is_err(), "no batch loaded");
}

#[test]
fn a_training_step_changes_the_weights_by_the_gradient() {
    let model = mlp();
    let mut session = CandleBackend.prepare(&model, &training(sgd(0.1))).unwrap();
    let mut inputs = batch();
    inputs.insert(
        "target".into(),
        Tensor::f32(vec![2, 2], vec![1.0, 0.0, 0.0, 1.0]).unwrap(),
    );
    session.load(&inputs).unwrap();
    session.train_step().unwrap();
    let grads = session.gradients().unwrap();
    let after = session.weights().unwrap();
    for (name, before) in &model.weights {
        let (w0, w1, g) = (
            before.to_f64_vec(),
            after[name].to_f64_vec(),
            grads[name].to_f64_vec(),
        );
        assert!(g.iter().any(|&g| g != 0.0), "{name} has no gradient");
        for ((a, b), g) in w0.iter().zip(&w1).zip(&g) {
            assert!(
                (b - (a - 0.1 * g)).abs() < 1e-6,
                "{name}: {a} -> {b}, grad {g}"
            );
        }
    }
    // backward alone leaves the weights where they are.
    session.backward().unwrap();
    assert_eq!(session.weights().unwrap(), after);
}

/// x -> dense `used` (the loss's prediction) and x -> dense `unused` (a second output the loss
/// does not read).
fn two_heads() -> Model {
    let mut b = GraphBuilder::new("two_heads");
    b.data_input("x", &[3]).unwrap();
    let y = b.dense(Some("used"), "x", 2, true).unwrap();
    let z = b.dense(Some("unused"), "x", 2, true).unwrap();
    Model::initialized(b.finish(&[&y, &z]).unwrap(), 5).unwrap()
}

/// A parameter the loss does not reach reads as zeros and no optimizer moves it (weight decay
/// and momentum included: PyTorch skips a parameter without a gradient).
#[test]
fn an_unreached_parameter_has_zero_gradient_and_stays() {
    let model = two_heads();
    let optimizers = [
        Optimizer::Gd(Gd { lr: 0.1 }),
        Optimizer::Sgd(Sgd {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.5,
            ..Sgd::default()
        }),
        Optimizer::Adam(Adam::default()),
        Optimizer::Adam(Adam {
            weight_decay: 0.5,
            amsgrad: true,
            ..Adam::default()
        }),
    ];
    let mut inputs = batch();
    inputs.insert(
        "target".into(),
        Tensor::f32(vec![2, 2], vec![1.0; 4]).unwrap(),
    );
    for optimizer in optimizers {
        let config = TrainingConfig {
            loss: Loss::Mse,
            optimizer,
        };
        let mut session = CandleBackend.prepare(&model, &training(config)).unwrap();
        session.load(&inputs).unwrap();
        for _ in 0..2 {
            session.train_step().unwrap();
        }
        let grads = session.gradients().unwrap();
        let weights = session.weights().unwrap();
        for name in ["unused.weight", "unused.bias"] {
            assert!(grads[name].to_f64_vec().iter().all(|&g| g == 0.0), "{name}");
            assert_eq!(
                weights[name], model.weights[name],
                "{optimizer:?} moved {name}"
            );
        }
        assert_ne!(weights["used.weight"], model.weights["used.weight"]);
    }
}

/// candle-nn's own optimizers run where they are PyTorch's rule; the rest are composed.
#[test]
fn candle_optimizers_are_used_where_they_match_pytorch() {
    let model = mlp();
    let cases = [
        (Optimizer::Gd(Gd { lr: 0.1 }), "candle-nn SGD"),
        (
            Optimizer::Sgd(Sgd {
                lr: 0.1,
                ..Sgd::default()
            }),
            "candle-nn SGD",
        ),
        (
            Optimizer::Sgd(Sgd {
                lr: 0.1,
                momentum: 0.9,
                ..Sgd::default()
            }),
            "torch.optim.SGD composed from candle ops",
        ),
        (
            Optimizer::Sgd(Sgd {
                lr: 0.1,
                weight_decay: 0.1,
                ..Sgd::default()
            }),
            "torch.optim.SGD composed from candle ops",
        ),
        (
            Optimizer::Adam(Adam::default()),
            "candle-nn AdamW (weight decay 0)",
        ),
        (
            Optimizer::Adam(Adam {
                weight_decay: 0.1,
                ..Adam::default()
            }),
            "torch.optim.Adam composed from candle ops",
        ),
        (
            Optimizer::Adam(Adam {
                amsgrad: true,
                ..Adam::default()
            }),
            "torch.optim.Adam composed from candle ops",
        ),
    ];
    for (optimizer, expected) in cases {
        let config = TrainingConfig {
            loss: Loss::Mse,
            optimizer,
        };
        let session = CandleSession::new(&model, CDevice::Cpu, Some(config)).unwrap();
        assert_eq!(session.optimizer(), Some(expected), "{optimizer:?}");
    }
    let inference = CandleSession::new(&model, CDevice::Cpu, None).unwrap();
    assert_eq!(inference.optimizer(), None);
}

/// Runs `model` on `inputs` with a training step's forward and backward, on candle and on the
/// reference, and checks that the loss and every gradient agree.
fn assert_gradients_match_the_reference(model: &Model, config: TrainingConfig, inputs: &Values) {
    let options = training(config);
    let mut candle = CandleBackend.prepare(model, &options).unwrap();
    let mut reference = ReferenceBackend.prepare(model, &options).unwrap();
    for session in [&mut candle, &mut reference] {
        session.load(inputs).unwrap();
        session.backward().unwrap();
    }
    let (outputs, expected) = (candle.outputs().unwrap(), reference.outputs().unwrap());
    assert_close("loss", &outputs["loss"], &expected["loss"]);
    let (grads, expected) = (candle.gradients().unwrap(), reference.gradients().unwrap());
    for (name, grad) in &grads {
        assert_close(name, grad, &expected[name]);
    }
}

/// candle-nn's `binary_cross_entropy_with_logit` is `log(sigmoid(x))`: NaN once a logit is
/// large. The backend's stable composition agrees with the reference there.
#[test]
fn bce_with_logits_is_stable_where_candles_own_is_not() {
    let logits = CTensor::new(&[[40f32, -40.0, 0.5]], &CDevice::Cpu).unwrap();
    let target = CTensor::new(&[[1f32, 0.0, 1.0]], &CDevice::Cpu).unwrap();
    let own = candle_nn::loss::binary_cross_entropy_with_logit(&logits, &target)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        !own.is_finite(),
        "candle-nn's BCE with logits is {own} at ±40"
    );

    let mut b = GraphBuilder::new("bce_logits");
    b.data_input("x", &[3]).unwrap();
    let p = b.param("shift", &[3], Init::fan_in(3)).unwrap();
    let y = b.op(None, Op::Binary(BinaryOp::Add), &["x", &p]).unwrap();
    let model = Model::initialized(b.finish(&[&y]).unwrap(), 1).unwrap();
    let inputs = Values::from([
        (
            "x".to_string(),
            Tensor::f32(vec![2, 3], vec![40.0, -40.0, 0.5, -60.0, 60.0, 0.0]).unwrap(),
        ),
        (
            "target".to_string(),
            Tensor::f32(vec![2, 3], vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0]).unwrap(),
        ),
    ]);
    let config = TrainingConfig {
        loss: Loss::BinaryCrossEntropyWithLogits,
        optimizer: Optimizer::Gd(Gd { lr: 0.1 }),
    };
    assert_gradients_match_the_reference(&model, config, &inputs);
}

/// x [batch, 1, 4, 4] + shift [4] -> a pool: the shift's gradient shows which cells the pool
/// routes its gradient to.
fn pooled(op: Op, shift: [f32; 4]) -> Model {
    let mut b = GraphBuilder::new("pooled");
    b.data_input("x", &[1, 4, 4]).unwrap();
    let p = b.param("shift", &[4], Init::fan_in(4)).unwrap();
    let h = b.op(None, Op::Binary(BinaryOp::Add), &["x", &p]).unwrap();
    let y = b.op(None, op, &[&h]).unwrap();
    let mut model = Model::initialized(b.finish(&[&y]).unwrap(), 2).unwrap();
    let shift = Tensor::f32(vec![4], shift.to_vec()).unwrap();
    model.weights.insert("shift".to_string(), shift);
    model
}

fn pool_inputs(x: Vec<f32>, outputs: usize) -> Values {
    Values::from([
        ("x".to_string(), Tensor::f32(vec![1, 1, 4, 4], x).unwrap()),
        (
            "target".to_string(),
            Tensor::f32(vec![1, 1, outputs, outputs], vec![0.0; outputs * outputs]).unwrap(),
        ),
    ])
}

/// candle's max-pool backward gives a window's unique maximum `1 / (kh * kw)` of its gradient
/// (and has none where the kernel differs from the stride); the backend's gathered windows
/// give it all of it, and ties to the window's first cell, as PyTorch and the reference do.
#[test]
fn max_pool_gradients_are_pytorchs_where_candles_are_not() {
    let x = Var::new(&[[[[1f32, 2.0], [3.0, 4.0]]]], &CDevice::Cpu).unwrap();
    let grads = x
        .max_pool2d(2)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let own = grads
        .get(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(own, [0.0, 0.0, 0.0, 0.25], "candle's own max-pool gradient");

    let gd = TrainingConfig {
        loss: Loss::Mse,
        optimizer: Optimizer::Gd(Gd { lr: 0.1 }),
    };
    let distinct: Vec<f32> = (0..16).map(|i| ((i * 7) % 16) as f32 * 0.25).collect();
    let overlapping = Pool2d {
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    };
    for (op, outputs) in [
        (Op::MaxPool2d(Pool2d::square(2)), 2),
        (Op::MaxPool2d(overlapping), 4),
    ] {
        let model = pooled(op.clone(), [0.5, -0.25, 0.125, 1.0]);
        assert_gradients_match_the_reference(&model, gd, &pool_inputs(distinct.clone(), outputs));
        // Every cell equal: each window's first cell takes the gradient.
        let ties = pooled(op, [0.0; 4]);
        assert_gradients_match_the_reference(&ties, gd, &pool_inputs(vec![1.0; 16], outputs));
    }
}

/// candle's average-pool backward upsamples the gradient to the input's size, so rows and
/// columns past the last window (floor mode) get gradient they should not; the backend cuts
/// them off first.
#[test]
fn avg_pool_gradients_skip_what_floor_mode_drops() {
    let x = Var::new(
        &[[[[1f32, 2.0, 5.0], [3.0, 4.0, 6.0], [7.0, 8.0, 9.0]]]],
        &CDevice::Cpu,
    )
    .unwrap();
    let grads = x
        .avg_pool2d(2)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let own = grads
        .get(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(
        own[8], 0.25,
        "candle's own: the dropped corner gets gradient"
    );

    let gd = TrainingConfig {
        loss: Loss::Mse,
        optimizer: Optimizer::Gd(Gd { lr: 0.1 }),
    };
    let x: Vec<f32> = (0..16).map(|i| i as f32 * 0.1).collect();
    let three = Pool2d {
        kernel: [3, 3],
        stride: [3, 3],
        padding: [0, 0],
        ceil_mode: false,
        count_include_pad: true,
    };
    let model = pooled(Op::AvgPool2d(three), [0.5, -0.25, 0.125, 1.0]);
    assert_gradients_match_the_reference(&model, gd, &pool_inputs(x, 1));
}

/// What only the data can break comes back as the backend's error, naming the node.
#[test]
fn bad_labels_and_probabilities_are_errors_naming_the_node() {
    let mut b = GraphBuilder::new("classes");
    b.data_input("x", &[3]).unwrap();
    let p = b.param("shift", &[3], Init::fan_in(3)).unwrap();
    let y = b.op(None, Op::Binary(BinaryOp::Add), &["x", &p]).unwrap();
    let model = Model::initialized(b.finish(&[&y]).unwrap(), 1).unwrap();
    let config = TrainingConfig {
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Gd(Gd { lr: 0.1 }),
    };
    let mut session = CandleBackend.prepare(&model, &training(config)).unwrap();
    let mut inputs = batch();
    inputs.insert("target".into(), Tensor::i64(vec![2], vec![1, 3]).unwrap());
    session.load(&inputs).unwrap();
    let text = session.train_step().unwrap_err().to_string();
    assert!(
        text.contains("node `loss`") && text.contains("label 3"),
        "{text}"
    );

    let config = TrainingConfig {
        loss: Loss::BinaryCrossEntropy,
        optimizer: Optimizer::Gd(Gd { lr: 0.1 }),
    };
    let mut session = CandleBackend.prepare(&model, &training(config)).unwrap();
    let mut inputs = batch();
    inputs.insert(
        "target".into(),
        Tensor::f32(vec![2, 3], vec![0.5; 6]).unwrap(),
    );
    session.load(&inputs).unwrap();
    let text = session.backward().unwrap_err().to_string();
    assert!(
        text.contains("node `loss`") && text.contains("[0, 1]"),
        "{text}"
    );
}

/// Dropout multiplies by the fed mask and rescales in training, and is the identity in
/// inference.
#[test]
fn dropout_uses_the_fed_mask_in_training_only() {
    let mut b = GraphBuilder::new("dropout");
    b.data_input("x", &[3]).unwrap();
    let y = b.dropout(Some("drop"), "x", 0.5).unwrap();
    let model = Model::initialized(b.finish(&[&y]).unwrap(), 1).unwrap();
    let mut session = CandleBackend
        .prepare(&model, &PrepareOptions::default())
        .unwrap();
    let mut inputs = batch();
    let mask = Tensor::f32(vec![2, 3], vec![1.0, 0.0, 1.0, 0.0, 1.0, 1.0]).unwrap();
    inputs.insert("drop.mask".into(), mask);
    session.load(&inputs).unwrap();
    session.forward(Mode::Training).unwrap();
    let trained = session.outputs().unwrap()["drop"].to_f64_vec();
    assert_eq!(trained, [1.0, 0.0, 4.0, 0.0, 0.5, -1.5]);
    session.forward(Mode::Inference).unwrap();
    assert_eq!(session.outputs().unwrap()["drop"], batch()["x"]);
}

/// Permuted values (strided views in candle) feed every op that multiplies matrices: dense,
/// mat_mul, conv2d and the LSTM, forward and backward, as the reference computes them.
/// candle-nn's `Linear` on a transposed input is silently wrong in candle 0.11.1 (its CPU
/// matmul folds a batch-broadcast product into one gemm that assumes adjacent lhs rows); the
/// backend makes such inputs contiguous first.
#[test]
fn permuted_inputs_feed_matrix_ops() {
    use candle_core::Module;
    use dlbench_core::ir::{Conv2d, Direction, Lstm};
    let strided = CTensor::arange(0f32, 24.0, &CDevice::Cpu)
        .unwrap()
        .reshape((2, 3, 4))
        .unwrap()
        .permute((0, 2, 1))
        .unwrap();
    let weight = CTensor::arange(0f32, 15.0, &CDevice::Cpu)
        .unwrap()
        .reshape((5, 3))
        .unwrap();
    let linear = candle_nn::Linear::new(weight, None);
    let on_strided = linear.forward(&strided).unwrap();
    let on_contiguous = linear.forward(&strided.contiguous().unwrap()).unwrap();
    let gap = (on_strided - on_contiguous)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        gap > 1.0,
        "candle-nn's Linear on a strided input is now right ({gap})"
    );

    let mut b = GraphBuilder::new("permuted");
    b.data_input("x", &[3, 4]).unwrap();
    let perm = |b: &mut GraphBuilder, name: &str, x: &str, perm: Vec<usize>| {
        b.op(Some(name), Op::Transpose { perm }, &[x]).unwrap()
    };
    let t = perm(&mut b, "t", "x", vec![0, 2, 1]); // [batch, 4, 3]
    let d = b.dense(Some("d"), &t, 5, true).unwrap(); // [batch, 4, 5]
    let w = b.param("w", &[3, 2], Init::fan_in(3)).unwrap();
    let m = b.op(Some("m"), Op::MatMul, &[&t, &w]).unwrap(); // [batch, 4, 2]
    let seq = perm(&mut b, "seq", &t, vec![1, 0, 2]); // [4, batch, 3]
    let attrs = Lstm {
        hidden: 2,
        direction: Direction::Bidirectional,
        batch_first: false,
    };
    let [y, _, _] = b.lstm(Some("rnn"), &seq, attrs).unwrap(); // [4, batch, 4]
    let img = perm(&mut b, "img", &d, vec![0, 2, 1]); // [batch, 5, 4]
    let img = b
        .op(
            Some("img4"),
            Op::Reshape {
                shape: vec![0, 1, 5, 4],
            },
            &[&img],
        )
        .unwrap();
    let c = b
        .conv2d(Some("c"), &img, 2, [2, 2], Conv2d::default(), true)
        .unwrap(); // [batch, 2, 4, 3]
    let flat = |b: &mut GraphBuilder, x: &str| b.op(None, Op::Flatten { axis: 1 }, &[x]).unwrap();
    // y is [4, batch, 4]: the batch goes first before it is flattened with the others.
    let yb = perm(&mut b, "yb", &y, vec![1, 0, 2]);
    let (fm, fy, fc) = (flat(&mut b, &m), flat(&mut b, &yb), flat(&mut b, &c));
    let out = b
        .op(Some("out"), Op::Concat { axis: 1 }, &[&fm, &fy, &fc])
        .unwrap();
    let model = Model::initialized(b.finish(&[&out]).unwrap(), 9).unwrap();
    let x: Vec<f32> = (0..24).map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5).collect();
    let width = 4 * 2 + 4 * 4 + 2 * 4 * 3;
    let inputs = Values::from([
        ("x".to_string(), Tensor::f32(vec![2, 3, 4], x).unwrap()),
        (
            "target".to_string(),
            Tensor::f32(vec![2, width], vec![0.25; 2 * width]).unwrap(),
        ),
    ]);
    let config = TrainingConfig {
        loss: Loss::Mse,
        optimizer: Optimizer::Gd(Gd { lr: 0.1 }),
    };
    assert_gradients_match_the_reference(&model, config, &inputs);
}

/// Dense on an input of rank 5 (beyond what `Linear` takes) works on the last axis.
#[test]
fn dense_takes_any_rank() {
    let mut b = GraphBuilder::new("dense5");
    b.data_input("x", &[2, 1, 3, 4]).unwrap();
    let y = b.dense(Some("d"), "x", 3, true).unwrap();
    let model = Model::initialized(b.finish(&[&y]).unwrap(), 4).unwrap();
    let x: Vec<f32> = (0..48).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
    let inputs = Values::from([
        (
            "x".to_string(),
            Tensor::f32(vec![2, 2, 1, 3, 4], x).unwrap(),
        ),
        (
            "target".to_string(),
            Tensor::f32(vec![2, 2, 1, 3, 3], vec![0.5; 36]).unwrap(),
        ),
    ]);
    let config = TrainingConfig {
        loss: Loss::Mse,
        optimizer: Optimizer::Gd(Gd { lr: 0.1 }),
    };
    assert_gradients_match_the_reference(&model, config, &inputs);
}

/// What the session composes is named for the results record: the training max pool, the
/// composed losses, the optimizer when it is PyTorch's rule rather than candle-nn's.
#[test]
fn composed_parts_are_named_in_the_notes() {
    let mut b = GraphBuilder::new("pooled");
    let x = b.data_input("x", &[1, 4, 4]).unwrap();
    let pool = Pool2d {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
        ceil_mode: false,
        count_include_pad: true,
    };
    let p = b.op(Some("pool"), Op::MaxPool2d(pool), &[&x]).unwrap();
    let f = b.op(Some("flat"), Op::Flatten { axis: 1 }, &[&p]).unwrap();
    let y = b.dense(Some("out"), &f, 1, true).unwrap();
    let model = Model::initialized(b.finish(&[&y]).unwrap(), 1).unwrap();
    let inference = CandleBackend
        .prepare(&model, &PrepareOptions::default())
        .unwrap();
    let quiet = inference.notes();
    assert!(
        quiet.len() == 1 && quiet[0].contains("thread(s)"),
        "{quiet:?}"
    );
    let training = PrepareOptions {
        training: Some(TrainingConfig {
            loss: Loss::BinaryCrossEntropyWithLogits,
            optimizer: Optimizer::Sgd(Sgd {
                lr: 0.1,
                momentum: 0.9,
                ..Sgd::default()
            }),
        }),
        ..PrepareOptions::default()
    };
    let notes = CandleBackend.prepare(&model, &training).unwrap().notes();
    let all = notes.join("\n");
    for needle in [
        "`pool` (max_pool2d): training forward composed",
        "bce_with_logits",
        "optimizer: torch.optim.SGD composed",
    ] {
        assert!(all.contains(needle), "{needle}: {all}");
    }
}
