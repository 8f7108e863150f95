//! ONNX → IR. The four seed models come back from dlbench's own export exactly (the same
//! weights bit for bit, the same outputs); the same models exported by real PyTorch with both
//! of its exporters (`tests/golden/onnx_torch_export.py`) import and give torch's outputs on the
//! f64 reference; malformed files are refused with a message, without a panic.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use dlbench_core::{Backend, Mode, Model, PrepareOptions, Tensor, Values};
use dlbench_formats::onnx::{export_onnx, import_onnx};
use dlbench_reference::ReferenceBackend;
use dlbench_spec::Spec;
use dlbench_testkit::python::torch_python;
use support::{batch, repo_root, temp_dir};

const SEEDS: [&str; 4] = ["mlp", "cnn", "rnn", "vae"];

fn seed(name: &str) -> Model {
    Spec::load(&repo_root().join(format!("specs/{name}.yaml")))
        .unwrap()
        .build_model()
        .unwrap()
}

fn reference_outputs(model: &Model, inputs: &Values) -> Vec<Tensor> {
    let mut session = ReferenceBackend
        .prepare(model, &PrepareOptions::default())
        .unwrap();
    session.load(inputs).unwrap();
    session.forward(Mode::Inference).unwrap();
    let outputs = session.outputs().unwrap();
    model
        .graph
        .outputs
        .iter()
        .map(|o| outputs[o].clone())
        .collect()
}

#[test]
fn the_seed_models_come_back_from_dlbenchs_onnx_exactly() {
    let dir = temp_dir("onnx-roundtrip");
    for name in SEEDS {
        let model = seed(name);
        let path = dir.join(format!("{name}.onnx"));
        export_onnx(&model, &path).unwrap();
        let back = import_onnx(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            back.weights, model.weights,
            "{name}: the weights, by name, bit for bit"
        );
        assert_eq!(
            back.graph.inputs, model.graph.inputs,
            "{name}: the inputs and their roles"
        );
        assert_eq!(
            back.graph.outputs, model.graph.outputs,
            "{name}: the output names"
        );
        assert_eq!(back.graph, model.graph, "{name}: the graph, node for node");
        let inputs = batch(&model, 3);
        let (want, got) = (
            reference_outputs(&model, &inputs),
            reference_outputs(&back, &inputs),
        );
        assert_eq!(got, want, "{name}: the reference's outputs");
    }
}

/// torch's files, inputs and outputs, made once per test run.
fn torch_exports() -> Option<PathBuf> {
    let Some(python) = torch_python() else {
        eprintln!("skipped: no Python with torch and onnx (run scripts/setup-torch.sh)");
        return None;
    };
    let dir = temp_dir("onnx-torch");
    let out = Command::new(python)
        .arg(repo_root().join("tests/golden/onnx_torch_export.py"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "onnx_torch_export.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(dir)
}

fn npy(path: &Path) -> Tensor {
    dlbench_data::npy::read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn models_exported_by_torch_import_and_give_torchs_outputs() {
    let Some(dir) = torch_exports() else { return };
    for name in SEEDS {
        for exporter in ["torchscript", "dynamo"] {
            let file = dir.join(format!("{name}.{exporter}.onnx"));
            let model = import_onnx(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let inputs: Values = model
                .graph
                .inputs
                .iter()
                .map(|i| {
                    let path = dir.join(format!("{name}.in.{}.npy", i.value.name));
                    (i.value.name.clone(), npy(&path))
                })
                .collect();
            let got = reference_outputs(&model, &inputs);
            assert_eq!(got.len(), model.graph.outputs.len());
            // And out again: dlbench's export of the imported model reads back to the same
            // numbers (its added names must not clash with the imported ones).
            let again = dir.join(format!("{name}.{exporter}.again.onnx"));
            export_onnx(&model, &again).unwrap();
            let back = import_onnx(&again).unwrap_or_else(|e| panic!("{}: {e}", again.display()));
            assert_eq!(
                reference_outputs(&back, &inputs),
                got,
                "{name}.{exporter} re-exported"
            );
            for (k, got) in got.iter().enumerate() {
                let want = npy(&dir.join(format!("{name}.out.{k}.npy")));
                assert_eq!(got.shape(), want.shape(), "{name}.{exporter} output {k}");
                let worst = got
                    .to_f64_vec()
                    .iter()
                    .zip(want.to_f64_vec())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(
                    worst <= 1e-4,
                    "{name}.{exporter} output {k}: off by {worst:e}"
                );
            }
        }
    }
}

// ------------------------------------------------------------------ malformed files

use dlbench_formats::onnx::proto::{
    AttributeProto, AttributeType, Dimension, DimensionValue, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TensorTypeProto,
    TypeProto, ValueInfoProto,
};
use prost::Message;

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(match d {
                -1 => DimensionValue::DimParam("N".into()),
                d => DimensionValue::DimValue(d),
            }),
            ..Dimension::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim }),
            }),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..NodeProto::default()
    }
}

/// `x [N, 4] -> nodes -> y`, at `opset`.
fn model(opset: i64, nodes: Vec<NodeProto>, initializer: Vec<TensorProto>) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer,
            input: vec![value_info("x", &[-1, 4])],
            output: vec![value_info("y", &[-1, 4])],
            ..GraphProto::default()
        }),
        ..ModelProto::default()
    }
}

/// Writes `proto` and imports it; returns the error's text.
fn refused(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let error = import_onnx(&path).expect_err(name).to_string();
    assert!(error.contains(name), "the message names the file: {error}");
    error
}

fn assert_mentions(error: &str, parts: &[&str]) {
    for part in parts {
        assert!(error.contains(part), "missing {part:?} in: {error}");
    }
}

#[test]
fn a_minimal_hand_written_model_imports() {
    let dir = temp_dir("onnx-minimal");
    let proto = model(13, vec![node("act", "Relu", &["x"], &["y"])], vec![]);
    let path = dir.join("relu.onnx");
    std::fs::write(&path, proto.encode_to_vec()).unwrap();
    let model = import_onnx(&path).unwrap();
    assert_eq!(model.graph.nodes.len(), 1);
    assert_eq!(model.graph.outputs, ["y"]);
}

#[test]
fn malformed_onnx_files_are_refused_with_a_message_naming_what_is_wrong() {
    let dir = temp_dir("onnx-malformed");
    let good = model(13, vec![node("act", "Relu", &["x"], &["y"])], vec![]).encode_to_vec();

    let truncated = refused(&dir, "truncated.onnx", &good[..good.len() / 2]);
    assert_mentions(&truncated, &["not a readable ONNX model"]);

    // A tensor that claims 2^40 elements and holds 8 bytes: refused by its claim, before any
    // allocation of that size.
    let huge = TensorProto {
        name: "w".into(),
        dims: vec![1 << 20, 1 << 20],
        data_type: 1,
        raw_data: vec![0; 8],
        ..TensorProto::default()
    };
    let proto = model(
        13,
        vec![node("add", "Add", &["x", "w"], &["y"])],
        vec![huge],
    );
    let error = refused(&dir, "huge.onnx", &proto.encode_to_vec());
    assert_mentions(&error, &["initializer `w`"]);

    // The same claim with a memory limit that allows it is still refused: the data is not there.
    let short = TensorProto {
        name: "w".into(),
        dims: vec![4],
        data_type: 1,
        raw_data: vec![0; 8],
        ..TensorProto::default()
    };
    let proto = model(
        13,
        vec![node("add", "Add", &["x", "w"], &["y"])],
        vec![short],
    );
    let error = refused(&dir, "short.onnx", &proto.encode_to_vec());
    assert_mentions(&error, &["initializer `w`", "16 B", "8 B"]);

    let proto = model(13, vec![node("absolute", "Abs", &["x"], &["y"])], vec![]);
    let error = refused(&dir, "unknown.onnx", &proto.encode_to_vec());
    assert_mentions(
        &error,
        &["node `absolute`", "Abs", "opset 13", "not supported"],
    );

    let cycle = vec![
        node("a", "Relu", &["b_out"], &["a_out"]),
        node("b", "Relu", &["a_out"], &["b_out"]),
        node("c", "Relu", &["a_out"], &["y"]),
    ];
    let error = refused(
        &dir,
        "cycle.onnx",
        &model(13, cycle, vec![]).encode_to_vec(),
    );
    assert_mentions(&error, &["cycle", "Relu"]);

    let proto = model(8, vec![node("act", "Relu", &["x"], &["y"])], vec![]);
    let error = refused(&dir, "old.onnx", &proto.encode_to_vec());
    assert_mentions(&error, &["opset 8", "9 to 22"]);

    let escaping = TensorProto {
        name: "w".into(),
        dims: vec![4],
        data_type: 1,
        data_location: 1,
        external_data: vec![StringStringEntryProto {
            key: "location".into(),
            value: "../../etc/passwd".into(),
        }],
        ..TensorProto::default()
    };
    let proto = model(
        13,
        vec![node("add", "Add", &["x", "w"], &["y"])],
        vec![escaping],
    );
    let error = refused(&dir, "escape.onnx", &proto.encode_to_vec());
    assert_mentions(&error, &["initializer `w`", "leaves the model's folder"]);

    let mut softmax = node("sm", "Softmax", &["x"], &["y"]);
    softmax.attribute.push(AttributeProto {
        name: "axis".into(),
        r#type: AttributeType::Int as i32,
        i: 0,
        ..AttributeProto::default()
    });
    let error = refused(
        &dir,
        "axis.onnx",
        &model(11, vec![softmax], vec![]).encode_to_vec(),
    );
    assert_mentions(
        &error,
        &["node `sm`", "Softmax", "opset 11", "attribute `axis`"],
    );

    // A small constant expanded to 2^42 elements: refused before the fold allocates.
    let shape = TensorProto {
        name: "s".into(),
        dims: vec![3],
        data_type: 7,
        int64_data: vec![1 << 20, 1 << 20, 4],
        ..TensorProto::default()
    };
    let nodes = vec![
        node("grow", "Expand", &["w", "s"], &["e"]),
        node("add", "Add", &["x", "e"], &["y"]),
    ];
    let proto = model(13, nodes, vec![floats("w", &[4], vec![1.0; 4]), shape]);
    let error = refused(&dir, "expand.onnx", &proto.encode_to_vec());
    assert_mentions(&error, &["node `grow`", "memory limit"]);

    let error = refused(&dir, "empty.onnx", b"");
    assert_mentions(&error, &["no graph"]);
}

#[test]
fn external_data_beside_the_model_is_read() {
    let dir = temp_dir("onnx-external");
    let values: Vec<u8> = [1.0f32, -2.0, 3.0, -4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut file = vec![0u8; 16];
    file.extend(&values);
    std::fs::write(dir.join("weights.bin"), &file).unwrap();
    let entry = |k: &str, v: &str| StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    };
    let external = TensorProto {
        name: "w".into(),
        dims: vec![4],
        data_type: 1,
        data_location: 1,
        external_data: vec![
            entry("location", "weights.bin"),
            entry("offset", "16"),
            entry("length", "16"),
        ],
        ..TensorProto::default()
    };
    let proto = model(
        13,
        vec![node("add", "Add", &["x", "w"], &["y"])],
        vec![external],
    );
    let path = dir.join("external.onnx");
    std::fs::write(&path, proto.encode_to_vec()).unwrap();
    let model = import_onnx(&path).unwrap();
    assert_eq!(
        model.weights["w"],
        Tensor::f32(vec![4], vec![1.0, -2.0, 3.0, -4.0]).unwrap()
    );
}

fn floats(name: &str, dims: &[i64], values: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: values,
        ..TensorProto::default()
    }
}

#[test]
fn flatten_counts_a_negative_axis_from_the_rank() {
    let dir = temp_dir("onnx-flatten");
    let mut flatten = node("flat", "Flatten", &["x"], &["y"]);
    flatten.attribute.push(AttributeProto {
        name: "axis".into(),
        r#type: AttributeType::Int as i32,
        i: -1,
        ..AttributeProto::default()
    });
    let path = dir.join("flatten.onnx");
    std::fs::write(&path, model(13, vec![flatten], vec![]).encode_to_vec()).unwrap();
    let model = import_onnx(&path).unwrap();
    let y = &model.graph.output_infos().unwrap()[0];
    assert_eq!(
        y.shape,
        [dlbench_core::Dim::Batch, dlbench_core::Dim::Known(4)]
    );
}

#[test]
fn lstm_sequence_lengths_are_read_against_the_time_dim() {
    let dir = temp_dir("onnx-lstm-lens");
    // X [T = 5, N = 3, I = 2], hidden 1.
    let lstm = |lens: [i32; 3]| {
        let lens = TensorProto {
            name: "lens".into(),
            dims: vec![3],
            data_type: 6,
            int32_data: lens.to_vec(),
            ..TensorProto::default()
        };
        let weights = vec![
            floats("W", &[1, 4, 2], vec![0.1; 8]),
            floats("R", &[1, 4, 1], vec![0.2; 4]),
            lens,
        ];
        let mut proto = model(
            13,
            vec![node(
                "lstm",
                "LSTM",
                &["x", "W", "R", "", "lens"],
                &["", "y"],
            )],
            weights,
        );
        let graph = proto.graph.as_mut().unwrap();
        graph.input = vec![value_info("x", &[5, 3, 2])];
        graph.output = vec![value_info("y", &[1, 3, 1])];
        proto.encode_to_vec()
    };
    let full = dir.join("full.onnx");
    std::fs::write(&full, lstm([5, 5, 5])).unwrap();
    import_onnx(&full).unwrap();
    let error = refused(&dir, "partial.onnx", &lstm([3, 3, 3]));
    assert_mentions(&error, &["node `lstm`", "sequence_lens", "full length"]);
}

#[test]
fn keras_models_through_tf2onnx_give_keras_outputs() {
    // Files made by tests/golden/onnx_keras_export.py (TensorFlow 2.21, tf2onnx 1.17): NHWC
    // convolutions behind transposes, MatMul + Add for Dense, and an LSTM whose last step is
    // read by Slice + Squeeze (Keras' return_sequences=False).
    let dir = support::fixture("keras");
    for name in ["mlp", "cnn", "rnn"] {
        let model = import_onnx(&dir.join(format!("{name}.onnx")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let x = npy(&dir.join(format!("{name}.x.npy")));
        let want = npy(&dir.join(format!("{name}.y.npy")));
        let inputs: Values = [("x".to_string(), x)].into();
        let got = reference_outputs(&model, &inputs);
        let worst = got[0]
            .to_f64_vec()
            .iter()
            .zip(want.to_f64_vec())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert_eq!(got[0].shape(), want.shape(), "{name}");
        assert!(worst <= 1e-4, "{name}: off by {worst:e}");
    }
}
