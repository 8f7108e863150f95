//! TorchScript export of the four seed models: each traced module, loaded back by Python's
//! `torch.jit.load` and by tch's `CModule::load`, computes what the tch session computes, at
//! the traced batch size (1) and another (5), and agrees loosely with the f64 reference.
//! Also: the size-reading lowerings (reshape, LSTM, flatten) at another batch size, a graph
//! with dropout exports with no mask argument, and a failed save leaves no file.

use dlbench_testkit::python::torch_python;
use std::path::{Path, PathBuf};
use std::process::Command;

use dlbench_core::ir::{Direction, Lstm};
use dlbench_core::{
    Backend, DType, GraphBuilder, InputRole, Mode, Model, Op, PrepareOptions, Tensor, UnaryOp,
    Values,
};
use dlbench_reference::ReferenceBackend;
use dlbench_spec::Spec;
use dlbench_tch::{export_torchscript, traced_inputs, TchBackend};
use tch::{CModule, IValue};

/// The batch sizes each export is checked at: the traced one and another.
const BATCHES: [usize; 2] = [1, 5];

/// The exported module against the session: the same libtorch ops, so the differences are
/// zero or rounding (TorchScript's executor may pick other kernels once it has profiled).
const RTOL: f64 = 1e-5;

/// f32 against the f64 reference: loosely, as the harness's agreement check does.
const REFERENCE_RTOL: f64 = 1e-3;

/// Runs a TorchScript file on `.npy` inputs: `run.py MODULE DIR N_INPUTS BATCH...` reads
/// `DIR/b{batch}_in{i}.npy` and writes each output to `DIR/b{batch}_out{j}.npy`.
const RUN_PY: &str = r#"
import sys
import numpy as np
import torch

module = torch.jit.load(sys.argv[1])
folder, n = sys.argv[2], int(sys.argv[3])
for batch in sys.argv[4:]:
    args = [torch.from_numpy(np.load(f"{folder}/b{batch}_in{i}.npy")) for i in range(n)]
    with torch.no_grad():
        out = module(*args)
    outs = out if isinstance(out, tuple) else (out,)
    for j, o in enumerate(outs):
        np.save(f"{folder}/b{batch}_out{j}.npy", o.numpy())
"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dlbench-ts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn seed_model(name: &str) -> Model {
    let spec = Spec::load(&repo().join(format!("specs/{name}.yaml"))).unwrap();
    spec.build_model().unwrap()
}

/// Deterministic inputs for every graph input at `batch`: data in [0, 1), noise in [-1, 1),
/// dropout masks all ones (unused in inference mode).
fn inputs(model: &Model, batch: usize) -> Values {
    let mut values = Values::new();
    for (k, input) in model.graph.inputs.iter().enumerate() {
        let shape = input.value.resolve(batch);
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|i| {
                let u = ((i * 7919 + k * 104_729 + 13) % 1009) as f32 / 1009.0;
                match input.role {
                    InputRole::Normal => 2.0 * u - 1.0,
                    InputRole::DropoutMask { .. } => 1.0,
                    InputRole::Data | InputRole::Target => u,
                }
            })
            .collect();
        assert_eq!(input.value.dtype, DType::F32, "{}", input.value.name);
        values.insert(input.value.name.clone(), Tensor::f32(shape, data).unwrap());
    }
    values
}

/// The graph outputs, in graph order, from a backend's inference forward.
fn run(backend: &dyn Backend, model: &Model, batch: &Values) -> Vec<Tensor> {
    let mut session = backend.prepare(model, &PrepareOptions::default()).unwrap();
    session.load(batch).unwrap();
    session.forward(Mode::Inference).unwrap();
    let outputs = session.outputs().unwrap();
    model
        .graph
        .outputs
        .iter()
        .map(|name| outputs[name].clone())
        .collect()
}

/// The traced arguments for `batch`, in the module's order.
fn module_args(model: &Model, batch: &Values) -> Vec<Tensor> {
    traced_inputs(&model.graph)
        .iter()
        .map(|input| batch[&input.value.name].clone())
        .collect()
}

fn to_torch(t: &Tensor) -> tch::Tensor {
    let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
    tch::Tensor::from_slice(t.as_f32().unwrap()).reshape(shape.as_slice())
}

fn from_torch(t: &tch::Tensor) -> Tensor {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t.to_kind(tch::Kind::Float).flatten(0, -1);
    Tensor::f32(shape, Vec::<f32>::try_from(&flat).unwrap()).unwrap()
}

/// A module's outputs for `args`: a lone tensor or a tuple of them.
fn forward_module(module: &CModule, args: &[Tensor]) -> Vec<Tensor> {
    let args: Vec<IValue> = args.iter().map(|t| IValue::Tensor(to_torch(t))).collect();
    match module.forward_is(&args).unwrap() {
        IValue::Tensor(t) => vec![from_torch(&t)],
        IValue::Tuple(items) => items
            .iter()
            .map(|item| match item {
                IValue::Tensor(t) => from_torch(t),
                other => panic!("a tuple item that is not a tensor: {other:?}"),
            })
            .collect(),
        other => panic!("forward returned {other:?}"),
    }
}

/// The largest `|a - b|`, after checking shapes and `|a - b| <= rtol * (|b| + max|b|)`:
/// relative to each element and to the tensor's scale, so that an output near zero (a CNN
/// logit of 3e-4 beside others of 0.1) is not held to a tolerance below float rounding.
fn compare(what: &str, got: &Tensor, want: &Tensor, rtol: f64) -> f64 {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    let (a, b) = (got.to_f64_vec(), want.to_f64_vec());
    let scale = b.iter().fold(0f64, |m, y| m.max(y.abs()));
    let mut max = 0f64;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let d = (x - y).abs();
        assert!(
            d <= rtol * (y.abs() + scale),
            "{what}: element {i}: {x} vs {y}"
        );
        max = max.max(d);
    }
    max
}

/// Exports the seed model `name` and checks it through Rust and, when there is one, Python.
fn check_seed(name: &str) {
    let model = seed_model(name);
    let dir = temp_dir(name);
    let path = dir.join(format!("{name}.ts"));
    export_torchscript(&model, &path).unwrap();
    assert!(!dir.join(format!(".{name}.ts.tmp")).exists());
    let loaded = CModule::load(&path).unwrap();
    let n_args = traced_inputs(&model.graph).len();
    let mut batches = Vec::new();
    for batch in BATCHES {
        let values = inputs(&model, batch);
        let session = run(&TchBackend, &model, &values);
        let reference = run(&ReferenceBackend, &model, &values);
        let args = module_args(&model, &values);
        for (i, arg) in args.iter().enumerate() {
            std::fs::write(
                dir.join(format!("b{batch}_in{i}.npy")),
                dlbench_data::npy::encode(arg),
            )
            .unwrap();
        }
        let rust = forward_module(&loaded, &args);
        assert_eq!(rust.len(), model.graph.outputs.len(), "{name}");
        for (j, out) in model.graph.outputs.iter().enumerate() {
            let what = format!("{name} batch {batch} `{out}`");
            let d = compare(&what, &rust[j], &session[j], RTOL);
            let r = compare(&what, &rust[j], &reference[j], REFERENCE_RTOL);
            println!("{what}: CModule::load vs session {d:e}, vs reference {r:e}");
        }
        batches.push((batch, session));
    }
    let Some(python) = torch_python() else {
        return;
    };
    let script = dir.join("run.py");
    std::fs::write(&script, RUN_PY).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .arg(&path)
        .arg(&dir)
        .arg(n_args.to_string())
        .args(BATCHES.map(|b| b.to_string()))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{name}: python failed\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (batch, session) in &batches {
        for (j, out) in model.graph.outputs.iter().enumerate() {
            let file = dir.join(format!("b{batch}_out{j}.npy"));
            let got = dlbench_data::npy::read_npy(&file).unwrap();
            let what = format!("{name} batch {batch} `{out}`");
            let d = compare(&what, &got, &session[j], RTOL);
            println!("{what}: torch.jit.load vs session {d:e}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_mlp_exports_to_torchscript() {
    check_seed("mlp");
}

#[test]
fn the_cnn_exports_to_torchscript() {
    check_seed("cnn");
}

#[test]
fn the_rnn_exports_to_torchscript() {
    check_seed("rnn");
}

#[test]
fn the_vae_exports_with_its_noise_input_and_three_outputs() {
    let model = seed_model("vae");
    let names: Vec<&str> = traced_inputs(&model.graph)
        .iter()
        .map(|i| i.value.name.as_str())
        .collect();
    assert_eq!(names, ["x", "eps"]);
    check_seed("vae");
}

#[test]
fn a_graph_with_dropout_exports_without_a_mask_argument() {
    let mut b = GraphBuilder::new("dropout net");
    b.data_input("x", &[4]).unwrap();
    let h = b.dense(Some("hidden"), "x", 6, true).unwrap();
    let d = b.dropout(Some("drop"), &h, 0.5).unwrap();
    let y = b.op(Some("act"), Op::Unary(UnaryOp::Tanh), &[&d]).unwrap();
    let model = Model::initialized(b.finish(&[&y]).unwrap(), 7).unwrap();
    let names: Vec<&str> = traced_inputs(&model.graph)
        .iter()
        .map(|i| i.value.name.as_str())
        .collect();
    assert_eq!(names, ["x"]);
    let dir = temp_dir("dropout");
    let path = dir.join("dropout.ts");
    export_torchscript(&model, &path).unwrap();
    let module = CModule::load(&path).unwrap();
    for batch in BATCHES {
        let values = inputs(&model, batch);
        let session = run(&TchBackend, &model, &values);
        let traced = forward_module(&module, &module_args(&model, &values));
        assert_eq!(traced.len(), 1);
        compare("dropout net", &traced[0], &session[0], RTOL);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reshape with a copied batch and an inferred dim, a bidirectional LSTM and a flatten: the
/// lowerings that read sizes, traced at batch 1 and run at 5.
#[test]
fn reshape_lstm_and_flatten_run_at_another_batch_size() {
    let mut b = GraphBuilder::new("layouts");
    b.data_input("x", &[12]).unwrap();
    let seq = b
        .op(
            Some("seq"),
            Op::Reshape {
                shape: vec![0, 4, -1],
            },
            &["x"],
        )
        .unwrap();
    let attrs = Lstm {
        hidden: 5,
        direction: Direction::Bidirectional,
        batch_first: true,
    };
    let [y, _, _] = b.lstm(Some("lstm"), &seq, attrs).unwrap();
    let flat = b.op(Some("flat"), Op::Flatten { axis: 1 }, &[&y]).unwrap();
    let out = b.dense(Some("out"), &flat, 2, true).unwrap();
    let model = Model::initialized(b.finish(&[&out]).unwrap(), 11).unwrap();
    let dir = temp_dir("layouts");
    let path = dir.join("layouts.ts");
    export_torchscript(&model, &path).unwrap();
    let module = CModule::load(&path).unwrap();
    for batch in BATCHES {
        let values = inputs(&model, batch);
        let session = run(&TchBackend, &model, &values);
        let traced = forward_module(&module, &module_args(&model, &values));
        let d = compare("layouts", &traced[0], &session[0], RTOL);
        println!("layouts batch {batch}: CModule::load vs session {d:e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_save_is_an_error_and_leaves_no_file() {
    let model = seed_model("mlp");
    let dir = temp_dir("missing");
    let path = dir.join("no such folder").join("mlp.ts");
    let err = export_torchscript(&model, &path).unwrap_err();
    assert!(matches!(err, dlbench_core::Error::Backend { .. }), "{err}");
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
