//! The IR end to end: building the seed-like graphs, shape errors that name the node, training
//! graphs, PyTorch-style initialisation and the native file format.

use dlbench_core::ir::{format_shape, Conv2d, Direction, Lstm, Pool2d};
use dlbench_core::{DType, Dim, Error, GraphBuilder, InputRole, Loss, Model, Op, Tensor, UnaryOp};

fn cnn() -> dlbench_core::Graph {
    let mut b = GraphBuilder::new("cnn");
    let x = b.data_input("x", &[1, 32, 32]).unwrap();
    let c1 = b
        .conv2d(None, &x, 32, [3, 3], Conv2d::default(), true)
        .unwrap();
    let r1 = b.op(None, Op::Unary(UnaryOp::Relu), &[&c1]).unwrap();
    let p1 = b
        .op(None, Op::MaxPool2d(Pool2d::square(2)), &[&r1])
        .unwrap();
    let c2 = b
        .conv2d(None, &p1, 64, [3, 3], Conv2d::default(), true)
        .unwrap();
    let r2 = b.op(None, Op::Unary(UnaryOp::Relu), &[&c2]).unwrap();
    let p2 = b
        .op(None, Op::MaxPool2d(Pool2d::square(2)), &[&r2])
        .unwrap();
    let f = b.op(None, Op::Flatten { axis: 1 }, &[&p2]).unwrap();
    let d1 = b.dense(None, &f, 100, true).unwrap();
    let r3 = b.op(None, Op::Unary(UnaryOp::Relu), &[&d1]).unwrap();
    let d2 = b.dense(None, &r3, 10, true).unwrap();
    b.finish(&[&d2]).unwrap()
}

#[test]
fn cnn_has_the_seed_parameter_count_and_shapes() {
    let g = cnn();
    assert_eq!(g.parameter_count(), 250_326);
    let values = g.infer().unwrap();
    assert_eq!(format_shape(&values["max_pool2d_2"].shape), "batchx64x6x6");
    assert_eq!(format_shape(&values["flatten_1"].shape), "batchx2304");
    assert_eq!(format_shape(&values["dense_2"].shape), "batchx10");
}

#[test]
fn lstm_has_two_biases_and_pytorch_output_shapes() {
    let mut b = GraphBuilder::new("rnn");
    let x = b.data_input("x", &[10, 1]).unwrap();
    let attrs = Lstm {
        hidden: 50,
        direction: Direction::Forward,
        batch_first: true,
    };
    let [y, y_h, _] = b.lstm(None, &x, attrs).unwrap();
    let last = b
        .op(
            None,
            Op::Reshape {
                shape: vec![-1, 50],
            },
            &[&y_h],
        )
        .unwrap();
    let d = b.dense(None, &last, 1, true).unwrap();
    let g = b.finish(&[&d, &y]).unwrap();
    assert_eq!(g.parameter_count(), 10_651);
    let values = g.infer().unwrap();
    assert_eq!(
        values[&y].shape,
        vec![Dim::Batch, Dim::Known(10), Dim::Known(50)]
    );
    assert_eq!(values[&last].shape, vec![Dim::Batch, Dim::Known(50)]);
}

#[test]
fn a_shape_mismatch_names_the_node_the_op_and_the_shapes() {
    let mut b = GraphBuilder::new("bad");
    let x = b.data_input("x", &[1, 8, 8]).unwrap();
    let c = b
        .conv2d(Some("conv"), &x, 4, [3, 3], Conv2d::default(), true)
        .unwrap();
    let w = b
        .param("w", &[10, 144], dlbench_core::init::Init::Zeros)
        .unwrap();
    let err = b.op(Some("head"), Op::Dense, &[&c, &w]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Node { .. }), "{msg}");
    assert!(msg.contains("node `head` (dense)"), "{msg}");
    assert!(
        msg.contains("batchx4x6x6") && msg.contains("10x144"),
        "{msg}"
    );
}

#[test]
fn an_unknown_input_and_a_duplicate_name_are_errors() {
    let mut b = GraphBuilder::new("bad");
    let x = b.data_input("x", &[3]).unwrap();
    let err = b
        .op(Some("r"), Op::Unary(UnaryOp::Relu), &["nope"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`nope`") && err.contains("node `r`"), "{err}");
    b.op(Some("r"), Op::Unary(UnaryOp::Relu), &[&x]).unwrap();
    assert!(b.op(Some("r"), Op::Unary(UnaryOp::Relu), &[&x]).is_err());
}

#[test]
fn pooling_follows_pytorch_floor_and_ceil_rules() {
    let floor = Pool2d::square(2);
    let ceil = Pool2d {
        ceil_mode: true,
        ..floor
    };
    assert_eq!(floor.output_len(5, 0), Some(2));
    assert_eq!(ceil.output_len(5, 0), Some(3));
    // PyTorch drops a last window that would start in the right padding.
    let padded = Pool2d {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [1, 1],
        ceil_mode: true,
        count_include_pad: true,
    };
    assert_eq!(padded.output_len(4, 0), Some(3));
    assert_eq!(floor.output_len(1, 0), None);
}

#[test]
fn reshape_and_flatten_keep_the_batch_symbolic() {
    let mut b = GraphBuilder::new("r");
    let x = b.data_input("x", &[2, 3, 4]).unwrap();
    let r = b
        .op(None, Op::Reshape { shape: vec![0, -1] }, &[&x])
        .unwrap();
    let merged = b.op(None, Op::Reshape { shape: vec![-1, 4] }, &[&x]);
    let t = b
        .op(
            None,
            Op::Reshape {
                shape: vec![-1, 6, 4],
            },
            &[&x],
        )
        .unwrap();
    assert_eq!(b.info(&r).unwrap().shape, vec![Dim::Batch, Dim::Known(24)]);
    let err = merged.unwrap_err().to_string();
    assert!(err.contains("batch dimension must stay"), "{err}");
    assert_eq!(
        b.info(&t).unwrap().shape,
        vec![Dim::Batch, Dim::Known(6), Dim::Known(4)]
    );
    let err = b
        .op(None, Op::Flatten { axis: 0 }, &[&x])
        .unwrap_err()
        .to_string();
    assert!(err.contains("batch"), "{err}");
}

#[test]
fn broadcasting_follows_numpy() {
    use dlbench_core::ir::shape::broadcast;
    let (b, k) = (Dim::Batch, Dim::Known);
    assert_eq!(broadcast(&[b, k(3)], &[k(3)]), Some(vec![b, k(3)]));
    assert_eq!(broadcast(&[b, k(1)], &[k(4)]), Some(vec![b, k(4)]));
    assert_eq!(broadcast(&[b, k(3)], &[k(4)]), None);
}

#[test]
fn with_loss_adds_a_target_and_a_scalar_loss() {
    let g = cnn().with_loss(Loss::CrossEntropy).unwrap();
    let target = g.input("target").unwrap();
    assert_eq!(target.role, InputRole::Target);
    assert_eq!(target.value.dtype, DType::I64);
    assert_eq!(target.value.shape, vec![Dim::Batch]);
    let values = g.infer().unwrap();
    assert!(values["loss"].shape.is_empty());
    assert_eq!(g.outputs.last().map(String::as_str), Some("loss"));
}

#[test]
fn initialisation_is_pytorch_uniform_seeded_and_per_name() {
    let g = cnn();
    let a = Model::initialized(g.clone(), 1).unwrap();
    let b = Model::initialized(g.clone(), 1).unwrap();
    let c = Model::initialized(g, 2).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.weights["dense_1.weight"], c.weights["dense_1.weight"]);
    // Linear(2304 -> 100): U(-1/48, 1/48), std = bound / sqrt(3).
    let w = a.weights["dense_1.weight"].as_f32().unwrap();
    let bound = 1.0 / 48.0;
    assert!(w.iter().all(|v| v.abs() <= bound));
    let var = w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64;
    let expected = (bound as f64).powi(2) / 3.0;
    assert!(
        (var / expected - 1.0).abs() < 0.02,
        "variance {var} vs {expected}"
    );
}

#[test]
fn graphs_round_trip_through_json() {
    let g = cnn();
    let json = serde_json::to_string(&g).unwrap();
    assert!(json.contains("\"type\":\"conv2d\""));
    let back: dlbench_core::Graph = serde_json::from_str(&json).unwrap();
    assert_eq!(back, g);
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dlbench-core-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_native_format_round_trips_and_rejects_bad_files() {
    let dir = temp_dir("format");
    let model = Model::initialized(cnn(), 3).unwrap();
    let path = dir.join("cnn.safetensors");
    model.save(&path).unwrap();
    assert_eq!(Model::load(&path).unwrap(), model);
    assert!(!dir.join(".cnn.safetensors.tmp").exists());

    let plain = dir.join("plain.safetensors");
    let bytes = dlbench_core::format::to_safetensors(&model.weights, None).unwrap();
    std::fs::write(&plain, bytes).unwrap();
    let err = Model::load(&plain).unwrap_err().to_string();
    assert!(
        err.contains("plain.safetensors") && err.contains("dlbench.graph"),
        "{err}"
    );

    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not at all").unwrap();
    assert!(Model::load(&junk)
        .unwrap_err()
        .to_string()
        .contains("junk.safetensors"));

    let missing = dir.join("no/such/dir/m.safetensors");
    assert!(model.save(&missing).is_err());
    assert!(!missing.exists());
}

#[test]
fn a_model_rejects_weights_that_do_not_fit() {
    let g = cnn();
    let mut weights = Model::initialized(g.clone(), 0).unwrap().weights;
    weights.insert("dense_2.bias".into(), Tensor::zeros(DType::F32, vec![11]));
    let err = Model::new(g.clone(), weights).unwrap_err().to_string();
    assert!(
        err.contains("dense_2.bias") && err.contains("[11]"),
        "{err}"
    );
    let mut weights = Model::initialized(g.clone(), 0).unwrap().weights;
    weights.remove("conv2d_1.weight");
    assert!(Model::new(g, weights)
        .unwrap_err()
        .to_string()
        .contains("conv2d_1.weight"));
}

/// A crafted padding of 2^62 once wrapped into an output of 9223372036854775814 x ...; the
/// sizes now overflow into an error naming the node.
#[test]
fn conv_sizes_that_overflow_are_refused_not_wrapped() {
    let mut b = GraphBuilder::new("huge");
    let x = b.data_input("x", &[1, 8, 8]).unwrap();
    let attrs = Conv2d {
        padding: [1 << 62, 1 << 62],
        ..Conv2d::default()
    };
    let err = b
        .conv2d(Some("conv"), &x, 4, [3, 3], attrs, true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("node `conv`") && err.contains("addressed"),
        "{err}"
    );
}

#[test]
fn parameters_that_cannot_be_addressed_are_refused() {
    let mut b = GraphBuilder::new("huge");
    let x = b.data_input("x", &[784]).unwrap();
    let err = b
        .dense(Some("wide"), &x, usize::MAX, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`wide.weight`"), "{err}");
}

/// Found by the fuzzer: a kernel of 2^40 overflowed the fan-in product before the weight's
/// size was checked.
#[test]
fn a_kernel_whose_fan_in_overflows_is_refused_by_its_weight() {
    let mut b = GraphBuilder::new("huge");
    let x = b.data_input("x", &[2, 8, 8]).unwrap();
    let err = b
        .conv2d(
            Some("conv"),
            &x,
            2,
            [1 << 40, 1 << 40],
            Conv2d::default(),
            true,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("`conv.weight`"), "{err}");
}

#[test]
fn an_lstm_whose_gates_overflow_is_refused() {
    let mut b = GraphBuilder::new("huge");
    let x = b.data_input("x", &[5, 3]).unwrap();
    let attrs = Lstm {
        hidden: usize::MAX / 2,
        direction: Direction::Forward,
        batch_first: true,
    };
    let err = b.lstm(Some("rnn"), &x, attrs).unwrap_err().to_string();
    assert!(
        err.contains("node `rnn`") && err.contains("too large"),
        "{err}"
    );
}

#[test]
fn init_refuses_a_shape_it_cannot_address() {
    let err = dlbench_core::init::Init::Zeros
        .sample("w", vec![1 << 40, 1 << 40], 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`w`") && err.contains("too large"), "{err}");
}
