//! ONNX → IR. The four seed models come back from dlbench's own export exactly (the same
//! weights bit for bit, the same outputs); the same models exported by real PyTorch with both
//! of its exporters (`tests/golden/onnx_torch_export.py`) import and give torch's outputs on the
//! f64 reference; malformed files are refused with a message, without a panic.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use dlbench_core::{Backend, DType, InputRole, Mode, Model, PrepareOptions, Tensor, Values};
use dlbench_formats::onnx::{export_onnx, import_onnx};
use dlbench_reference::ReferenceBackend;
use dlbench_spec::Spec;
use dlbench_testkit::python::torch_python;
use support::{repo_root, temp_dir};

const SEEDS: [&str; 4] = ["mlp", "cnn", "rnn", "vae"];

fn seed(name: &str) -> Model {
    Spec::load(&repo_root().join(format!("specs/{name}.yaml")))
        .unwrap()
        .build_model()
        .unwrap()
}

/// Deterministic values in [-1, 1) for every input the exported graph keeps; dropout masks are
/// ones.
fn batch(model: &Model, batch: usize) -> Values {
    model
        .graph
        .inputs
        .iter()
        .enumerate()
        .map(|(k, input)| {
            let shape: Vec<usize> = input.value.shape.iter().map(|d| d.resolve(batch)).collect();
            let len: usize = shape.iter().product();
            let tensor = match (&input.role, input.value.dtype) {
                (InputRole::DropoutMask { .. }, _) => Tensor::f32(shape, vec![1.0; len]),
                (_, DType::I64) => Tensor::i64(shape, vec![0; len]),
                _ => Tensor::f32(
                    shape,
                    (0..len)
                        .map(|i| (((i * 7919 + k * 104_729) % 2001) as f32 - 1000.0) / 1000.0)
                        .collect(),
                ),
            };
            (input.value.name.clone(), tensor.unwrap())
        })
        .collect()
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
