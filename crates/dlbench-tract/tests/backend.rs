//! The tract backend beyond the conformance suite: what it refuses (training, gradients,
//! intermediates, other devices), batches of several sizes through one session (a plan per
//! size), and its notes.

use dlbench_core::{
    Backend, Device, Error, GraphBuilder, Loss, Mode, Model, Op, Optimizer, PrepareOptions, Tensor,
    TrainingConfig, UnaryOp, Values,
};
use dlbench_reference::ReferenceBackend;
use dlbench_tract::TractBackend;

/// x [batch, 3] -> dense 4 -> tanh.
fn model() -> Model {
    let mut b = GraphBuilder::new("small");
    b.data_input("x", &[3]).unwrap();
    let h = b.dense(Some("hidden"), "x", 4, true).unwrap();
    let y = b.op(Some("act"), Op::Unary(UnaryOp::Tanh), &[&h]).unwrap();
    Model::initialized(b.finish(&[&y]).unwrap(), 3).unwrap()
}

fn batch(n: usize) -> Values {
    let data = (0..n * 3).map(|i| i as f32 / 7.0 - 1.0).collect();
    Values::from([("x".to_string(), Tensor::f32(vec![n, 3], data).unwrap())])
}

#[test]
fn one_session_runs_batches_of_several_sizes_as_the_reference_does() {
    let model = model();
    let options = PrepareOptions::default();
    let mut tract = TractBackend.prepare(&model, &options).unwrap();
    let mut reference = ReferenceBackend.prepare(&model, &options).unwrap();
    for n in [1, 5, 1, 2] {
        for session in [&mut tract, &mut reference] {
            session.load(&batch(n)).unwrap();
            session.forward(Mode::Inference).unwrap();
        }
        let (a, r) = (tract.outputs().unwrap(), reference.outputs().unwrap());
        let y = &model.graph.outputs[0];
        let (a, r) = (&a[y], &r[y]);
        assert_eq!(a.shape(), [n, 4]);
        for (x, y) in a.to_f64_vec().iter().zip(r.to_f64_vec()) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }
    assert_eq!(tract.weights().unwrap(), model.weights);
}

fn prepare_error(model: &Model, options: &PrepareOptions) -> Error {
    match TractBackend.prepare(model, options) {
        Ok(_) => panic!("prepared"),
        Err(e) => e,
    }
}

#[test]
fn training_gradients_intermediates_and_gpus_are_unsupported_with_the_reason() {
    let model = model();
    let training = PrepareOptions {
        training: Some(TrainingConfig {
            loss: Loss::Mse,
            optimizer: Optimizer::Gd(dlbench_core::training::Gd { lr: 0.1 }),
        }),
        ..PrepareOptions::default()
    };
    let unsupported = |e: Error, word: &str| match e {
        Error::Unsupported { backend, what } => {
            assert_eq!(backend, "tract");
            assert!(what.contains(word), "{what}");
        }
        other => panic!("expected unsupported, got {other}"),
    };
    unsupported(prepare_error(&model, &training), "inference engine");
    let gpu = PrepareOptions {
        device: Device::Cuda(0),
        ..PrepareOptions::default()
    };
    unsupported(prepare_error(&model, &gpu), "CPU only");
    let mut session = TractBackend
        .prepare(&model, &PrepareOptions::default())
        .unwrap();
    session.load(&batch(2)).unwrap();
    unsupported(
        session.forward(Mode::Training).unwrap_err(),
        "training-mode",
    );
    session.forward(Mode::Inference).unwrap();
    unsupported(session.intermediates().unwrap_err(), "fuses");
    unsupported(session.gradients().unwrap_err(), "inference engine");
    unsupported(session.train_step().unwrap_err(), "inference engine");
    // No output before a forward pass after a new load.
    session.load(&batch(2)).unwrap();
    assert!(session.outputs().is_err());
}

#[test]
fn the_notes_say_how_it_ran_and_on_how_many_threads() {
    for threads in [1, 2] {
        let options = PrepareOptions {
            threads,
            ..PrepareOptions::default()
        };
        let session = TractBackend.prepare(&model(), &options).unwrap();
        let notes = session.notes().join("\n");
        assert!(notes.contains("ONNX export (opset 17)"), "{notes}");
        assert!(notes.contains(&format!("{threads} thread")), "{notes}");
    }
}
