//! ONNX files dlbench writes, run by real onnxruntime (`tests/golden/onnx_run.py`, after
//! `onnx.checker` with full shape inference): every op of the IR in the forms the export
//! treats differently, and the four seed models, each at two batch sizes through the symbolic
//! batch dim, must give the f64 reference's outputs. Needs the project's Python with onnx and
//! onnxruntime ($DLBENCH_PYTHON or .venv/bin/python, `scripts/setup-torch.sh`); skipped,
//! saying so, without.

mod support;

use std::path::Path;
use std::process::Command;

use dlbench_core::init::Init;
use dlbench_core::ir::{Conv2d, Direction, Lstm, Pool2d};
use dlbench_core::{
    Backend, BinaryOp, DType, Dim, GraphBuilder, Mode, Model, Op, PrepareOptions, UnaryOp, Values,
};
use dlbench_formats::onnx::export::exported_inputs;
use dlbench_formats::onnx::export_onnx;
use dlbench_reference::ReferenceBackend;
use dlbench_spec::Spec;
use dlbench_testkit::python::torch_python;
use serde_json::{json, Value};
use support::{batch, repo_root, temp_dir};

fn reference_outputs(model: &Model, inputs: &Values) -> Values {
    let mut session = ReferenceBackend
        .prepare(model, &PrepareOptions::default())
        .unwrap();
    session.load(inputs).unwrap();
    session.forward(Mode::Inference).unwrap();
    session.outputs().unwrap()
}

/// onnxruntime's outputs for the inputs the exported graph has (data and noise).
fn onnxruntime(python: &Path, path: &Path, model: &Model, inputs: &Values) -> Value {
    let fed = exported_inputs(&model.graph)
        .map(|i| {
            let t = &inputs[&i.value.name];
            let dtype = match t.dtype() {
                DType::I64 => "int64",
                DType::F32 | DType::F64 => "float32",
            };
            let v = json!({"shape": t.shape(), "dtype": dtype, "data": t.to_f64_vec()});
            (i.value.name.clone(), v)
        })
        .collect::<serde_json::Map<_, _>>();
    let json_path = path.with_extension("inputs.json");
    std::fs::write(&json_path, Value::Object(fed).to_string()).unwrap();
    let out = Command::new(python)
        .arg(repo_root().join("tests/golden/onnx_run.py"))
        .arg(path)
        .arg(&json_path)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "onnx_run.py {} failed:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Exports `model`, runs it at batch 1 and 3 and compares every output with the reference.
fn assert_onnxruntime_agrees(python: &Path, model: &Model) {
    let dir = temp_dir(&format!("onnxruntime-{}", model.graph.name));
    let path = dir.join(format!("{}.onnx", model.graph.name));
    export_onnx(model, &path).unwrap();
    for n in [1, 3] {
        let inputs = batch(model, n);
        let expected = reference_outputs(model, &inputs);
        let got = onnxruntime(python, &path, model, &inputs);
        assert_eq!(got["opset"], 17);
        for name in &model.graph.outputs {
            let reference = &expected[name];
            let actual = &got["outputs"][name];
            let shape: Vec<usize> = serde_json::from_value(actual["shape"].clone()).unwrap();
            assert_eq!(
                shape,
                reference.shape(),
                "{}: `{name}` at batch {n}",
                model.graph.name
            );
            let data: Vec<f64> = serde_json::from_value(actual["data"].clone()).unwrap();
            for (i, (a, r)) in data.iter().zip(reference.to_f64_vec()).enumerate() {
                assert!(
                    (a - r).abs() <= 1e-5 + 1e-4 * r.abs(),
                    "{}: `{name}`[{i}] at batch {n}: onnxruntime {a}, reference {r}",
                    model.graph.name
                );
            }
        }
    }
}

fn one_op(
    name: &str,
    sample: &[usize],
    build: impl FnOnce(&mut GraphBuilder) -> Vec<String>,
) -> Model {
    let mut b = GraphBuilder::new(name);
    b.data_input("x", sample).unwrap();
    let outputs = build(&mut b);
    let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    Model::initialized(b.finish(&refs).unwrap(), 11).unwrap()
}

fn op(b: &mut GraphBuilder, op: Op, inputs: &[&str]) -> String {
    b.op(None, op, inputs).unwrap()
}

fn pool(kernel: usize, stride: usize, padding: usize, ceil_mode: bool, include: bool) -> Pool2d {
    Pool2d {
        kernel: [kernel, kernel],
        stride: [stride, stride],
        padding: [padding, padding],
        ceil_mode,
        count_include_pad: include,
    }
}

/// Every op, in each form the export writes differently.
fn op_models() -> Vec<Model> {
    let conv = Conv2d {
        stride: [2, 1],
        padding: [1, 2],
        dilation: [1, 2],
        groups: 2,
    };
    let lstm = |direction, batch_first| Lstm {
        hidden: 3,
        direction,
        batch_first,
    };
    vec![
        one_op("dense_rank2", &[5], |b| {
            vec![b.dense(None, "x", 3, true).unwrap()]
        }),
        one_op("dense_rank3_no_bias", &[2, 5], |b| {
            vec![b.dense(None, "x", 3, false).unwrap()]
        }),
        one_op("dense_rank3_bias", &[2, 5], |b| {
            vec![b.dense(None, "x", 3, true).unwrap()]
        }),
        one_op("matmul", &[2, 4], |b| {
            let w = b.param("w", &[4, 3], Init::Uniform { bound: 0.5 }).unwrap();
            vec![op(b, Op::MatMul, &["x", &w])]
        }),
        one_op("conv_strided_padded_dilated_grouped", &[4, 7, 8], |b| {
            vec![b.conv2d(None, "x", 6, [3, 2], conv, true).unwrap()]
        }),
        one_op("pools", &[2, 7, 7], |b| {
            vec![
                op(b, Op::MaxPool2d(pool(3, 2, 1, true, true)), &["x"]),
                op(b, Op::MaxPool2d(Pool2d::square(2)), &["x"]),
                op(b, Op::AvgPool2d(pool(3, 2, 1, false, true)), &["x"]),
                op(b, Op::AvgPool2d(pool(3, 2, 1, false, false)), &["x"]),
                op(b, Op::AvgPool2d(pool(2, 2, 0, true, true)), &["x"]),
            ]
        }),
        one_op("shapes", &[2, 3, 4], |b| {
            vec![
                op(b, Op::Flatten { axis: 1 }, &["x"]),
                op(b, Op::Flatten { axis: 2 }, &["x"]),
                op(b, Op::Flatten { axis: 4 }, &["x"]),
                op(
                    b,
                    Op::Reshape {
                        shape: vec![0, -1, 2],
                    },
                    &["x"],
                ),
                op(
                    b,
                    Op::Transpose {
                        perm: vec![0, 3, 1, 2],
                    },
                    &["x"],
                ),
                op(b, Op::Concat { axis: 2 }, &["x", "x"]),
            ]
        }),
        one_op("elementwise", &[2, 3], |b| {
            let mut outs: Vec<String> = [
                UnaryOp::Relu,
                UnaryOp::Sigmoid,
                UnaryOp::Tanh,
                UnaryOp::Exp,
                UnaryOp::Scale { factor: -0.5 },
            ]
            .into_iter()
            .map(|u| op(b, Op::Unary(u), &["x"]))
            .collect();
            let bias = b.param("bias", &[3], Init::Uniform { bound: 1.0 }).unwrap();
            for binary in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul] {
                outs.push(op(b, Op::Binary(binary), &["x", &bias]));
            }
            outs.push(op(b, Op::Softmax { axis: -1 }, &["x"]));
            outs.push(op(b, Op::LogSoftmax { axis: 1 }, &["x"]));
            outs.push(b.dropout(None, "x", 0.3).unwrap());
            outs
        }),
        one_op("lstm_forward_batch_first", &[4, 2], |b| {
            let [y, h, c] = b.lstm(None, "x", lstm(Direction::Forward, true)).unwrap();
            vec![y, h, c]
        }),
        one_op("lstm_reverse_seq_first", &[4, 2], |b| {
            // Sequence-first: the IR input is [T, N, I]; with a batch dim first in the builder,
            // T is the batch-sized dim here, which changes nothing for the check.
            let [y, h, c] = b.lstm(None, "x", lstm(Direction::Reverse, false)).unwrap();
            vec![y, h, c]
        }),
        one_op("lstm_bidirectional", &[4, 2], |b| {
            let [y, h, c] = b
                .lstm(None, "x", lstm(Direction::Bidirectional, true))
                .unwrap();
            vec![y, h, c]
        }),
    ]
}

#[test]
fn onnxruntime_runs_every_op_as_the_reference_does() {
    let Some(python) = torch_python() else {
        return;
    };
    for model in op_models() {
        assert_onnxruntime_agrees(&python, &model);
    }
}

/// IR -> ONNX -> IR gives the graph back node for node and the weights bit for bit, for every
/// op form but Dropout (the identity at inference: the export writes it as `Identity` and
/// drops its mask input, as `torch.onnx.export` does).
#[test]
fn every_op_form_comes_back_from_onnx_node_for_node() {
    let dir = temp_dir("onnx-op-roundtrip");
    let mut checked = 0;
    for model in op_models() {
        if model
            .graph
            .nodes
            .iter()
            .any(|n| matches!(n.op, Op::Dropout { .. }))
        {
            continue;
        }
        let path = dir.join(format!("{}.onnx", model.graph.name));
        export_onnx(&model, &path).unwrap();
        let back = dlbench_formats::onnx::import_onnx(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", model.graph.name));
        assert_eq!(back.graph, model.graph, "{}", model.graph.name);
        assert_eq!(back.weights, model.weights, "{}", model.graph.name);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} op models");
}

#[test]
fn onnxruntime_runs_the_seed_models_as_the_reference_does() {
    let Some(python) = torch_python() else {
        return;
    };
    for name in ["mlp", "cnn", "rnn", "vae"] {
        let spec = Spec::load(&repo_root().join(format!("specs/{name}.yaml"))).unwrap();
        let model = spec.build_model().unwrap();
        assert!(model
            .graph
            .inputs
            .iter()
            .all(|i| i.value.shape[0] == Dim::Batch));
        assert_onnxruntime_agrees(&python, &model);
    }
}
