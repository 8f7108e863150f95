//! The tch backend beyond the conformance suite: devices, threads, intermediates, and the
//! errors a user's batch or call order can cause.

use dlbench_core::training::Sgd;
use dlbench_core::{
    Backend, Device, Error, GraphBuilder, Loss, Mode, Model, Op, Optimizer, PrepareOptions, Tensor,
    TrainingConfig, UnaryOp, Values,
};
use dlbench_reference::ReferenceBackend;
use dlbench_tch::TchBackend;

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

fn training() -> TrainingConfig {
    TrainingConfig {
        loss: Loss::Mse,
        optimizer: Optimizer::Sgd(Sgd {
            lr: 0.1,
            ..Sgd::default()
        }),
    }
}

#[test]
fn an_unknown_device_is_unsupported() {
    let options = PrepareOptions {
        device: Device::Cuda(99),
        ..PrepareOptions::default()
    };
    match TchBackend.prepare(&mlp(), &options) {
        Err(Error::Unsupported { backend, what }) => {
            assert_eq!(backend, "tch");
            assert!(what.contains("cuda:99"), "{what}");
        }
        Err(e) => panic!("expected unsupported, got {e}"),
        Ok(_) => panic!("cuda:99 was accepted"),
    }
}

#[test]
fn cuda_devices_are_listed_only_when_libtorch_has_them() {
    let devices = TchBackend.capabilities().devices;
    assert_eq!(devices[0], Device::Cpu);
    let count = usize::try_from(tch::Cuda::device_count()).unwrap();
    let cuda: Vec<Device> = (0..count).map(Device::Cuda).collect();
    assert_eq!(&devices[1..], cuda.as_slice());
    if !tch::Cuda::is_available() {
        assert_eq!(devices, vec![Device::Cpu]);
    }
}

#[test]
fn the_version_names_tch_and_libtorch() {
    let version = TchBackend.version();
    assert!(
        version.starts_with("tch 0.22.0 / libtorch 2.11.0"),
        "{version}"
    );
}

#[test]
fn threads_are_applied() {
    for n in [2, 1] {
        let options = PrepareOptions {
            threads: n,
            ..PrepareOptions::default()
        };
        TchBackend.prepare(&mlp(), &options).unwrap();
        assert_eq!(dlbench_tch::threads(), n);
    }
    assert_eq!(tch::get_num_interop_threads(), 1);
    let zero = PrepareOptions {
        threads: 0,
        ..PrepareOptions::default()
    };
    assert!(TchBackend.prepare(&mlp(), &zero).is_err());
}

#[test]
fn intermediates_are_returned_and_agree_with_the_reference() {
    let model = mlp();
    let options = PrepareOptions::default();
    let mut tch = TchBackend.prepare(&model, &options).unwrap();
    let mut reference = ReferenceBackend.prepare(&model, &options).unwrap();
    for session in [&mut tch, &mut reference] {
        session.load(&batch()).unwrap();
        session.forward(Mode::Inference).unwrap();
    }
    let values = tch.intermediates().unwrap();
    let expected = reference.intermediates().unwrap();
    let names: Vec<&String> = values.keys().collect();
    assert_eq!(names, expected.keys().collect::<Vec<_>>());
    for (name, value) in &values {
        assert_eq!(value.shape(), expected[name].shape(), "{name}");
        let (a, r) = (value.to_f64_vec(), expected[name].to_f64_vec());
        for (x, y) in a.iter().zip(&r) {
            assert!((x - y).abs() <= 1e-5 + 1e-4 * y.abs(), "{name}: {x} vs {y}");
        }
    }
    assert_eq!(tch.outputs().unwrap()["out"].shape(), &[2, 2]);
}

#[test]
fn a_bad_batch_is_refused_with_the_reason() {
    let mut session = TchBackend
        .prepare(&mlp(), &PrepareOptions::default())
        .unwrap();
    let mut message = |inputs: &Values| session_error(&mut session, inputs);
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

fn session_error(session: &mut Box<dyn dlbench_core::Session>, inputs: &Values) -> String {
    match session.load(inputs) {
        Err(e) => e.to_string(),
        Ok(()) => panic!("the batch {inputs:?} was accepted"),
    }
}

#[test]
fn calls_out_of_order_are_errors_not_panics() {
    let model = mlp();
    let mut inference = TchBackend
        .prepare(&model, &PrepareOptions::default())
        .unwrap();
    assert!(inference.forward(Mode::Inference).is_err());
    assert!(inference.outputs().is_err());
    inference.load(&batch()).unwrap();
    assert!(inference.backward().is_err());
    assert!(inference.gradients().is_err());

    let options = PrepareOptions {
        training: Some(training()),
        ..PrepareOptions::default()
    };
    let mut session = TchBackend.prepare(&model, &options).unwrap();
    assert!(session.gradients().is_err());
}

#[test]
fn a_training_step_changes_the_weights_by_the_gradient() {
    let model = mlp();
    let options = PrepareOptions {
        training: Some(training()),
        ..PrepareOptions::default()
    };
    let mut session = TchBackend.prepare(&model, &options).unwrap();
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
        for ((a, b), g) in w0.iter().zip(&w1).zip(&g) {
            assert!(
                (b - (a - 0.1 * g)).abs() < 1e-6,
                "{name}: {a} -> {b}, grad {g}"
            );
        }
    }
}
