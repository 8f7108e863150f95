//! ONNX files from real exporters, end to end through the CLI. `tests/golden/onnx_torch_export.py`
//! exports the four seed models with both of torch's exporters (TorchScript-based and
//! `dynamo=True`) and records torch's outputs; Keras models through tf2onnx are committed with
//! Keras' outputs (`tests/golden/onnx_keras_export.py`). `dlbench predict` must give them,
//! within 1e-4, on every backend in this build; `dlbench inspect` summarises the files; a spec
//! whose model is an ONNX file trains; a malformed file is exit 2 on every command. The torch
//! tests need the project's Python with torch, onnx and onnxscript (`scripts/setup-torch.sh`);
//! they are skipped, saying so, without.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_ok, dlbench, path_str, temp_dir, text};
use dlbench_core::Tensor;
use dlbench_testkit::python::torch_python;

const SEEDS: [(&str, &[&str], &[&str]); 4] = [
    ("mlp", &["x"], &["y"]),
    ("cnn", &["x"], &["y"]),
    ("rnn", &["x"], &["y"]),
    ("vae", &["x", "eps"], &["recon", "mu", "logvar"]),
];
const EXPORTERS: [&str; 2] = ["torchscript", "dynamo"];

/// torch's files, inputs and outputs in a fresh folder.
fn torch_exports(name: &str) -> Option<PathBuf> {
    let Some(python) = torch_python() else {
        eprintln!("skipped: no Python with torch and onnx (run scripts/setup-torch.sh)");
        return None;
    };
    let dir = temp_dir(name);
    let out = Command::new(python)
        .arg("tests/golden/onnx_torch_export.py")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "onnx_torch_export.py failed:\n{}",
        text(&out.stderr)
    );
    Some(dir)
}

/// The backends of this build that run inference (the `test-...` ones left out).
fn backends() -> Vec<String> {
    let out = dlbench(&["list", "--json"]);
    assert_ok(&out);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["backends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["capabilities"]["inference"] == true)
        .map(|b| b["name"].as_str().unwrap().to_string())
        .filter(|n| !n.starts_with("test-"))
        .collect()
}

fn npy(path: &Path) -> Tensor {
    dlbench_data::npy::read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.to_f64_vec()
        .iter()
        .zip(b.to_f64_vec())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Runs `dlbench predict` on `file` with each `(input, .npy)` on `backend` and checks each
/// `(output, expected .npy)` within 1e-4.
fn assert_predicts(
    file: &Path,
    inputs: &[(&str, PathBuf)],
    outputs: &[(&str, PathBuf)],
    backend: &str,
    out_dir: &Path,
) {
    let feeds: Vec<String> = inputs
        .iter()
        .map(|(name, path)| format!("{name}={}", path.display()))
        .collect();
    let mut args = vec!["predict", path_str(file), "--backend", backend];
    for feed in &feeds {
        args.extend(["--input", feed]);
    }
    args.extend(["--out", path_str(out_dir)]);
    assert_ok(&dlbench(&args));
    for (output, expected) in outputs {
        let got = npy(&out_dir.join(format!("{output}.npy")));
        let worst = max_difference(&got, &npy(expected));
        let what = format!("{} on {backend}: {output}", file.display());
        println!("{what}: {worst:.2e}");
        assert!(worst <= 1e-4, "{what} off by {worst:e}");
    }
}

#[test]
fn torchs_onnx_files_predict_torchs_outputs_on_every_backend() {
    let Some(dir) = torch_exports("onnx-models-predict") else {
        return;
    };
    let backends = backends();
    assert!(backends.iter().any(|b| b == "reference"), "{backends:?}");
    for (model, inputs, outputs) in SEEDS {
        let inputs: Vec<(&str, PathBuf)> = inputs
            .iter()
            .map(|i| (*i, dir.join(format!("{model}.in.{i}.npy"))))
            .collect();
        let outputs: Vec<(&str, PathBuf)> = outputs
            .iter()
            .enumerate()
            .map(|(k, o)| (*o, dir.join(format!("{model}.out.{k}.npy"))))
            .collect();
        for exporter in EXPORTERS {
            let file = dir.join(format!("{model}.{exporter}.onnx"));
            for backend in &backends {
                let out_dir = dir.join(format!("{model}.{exporter}.{backend}"));
                assert_predicts(&file, &inputs, &outputs, backend, &out_dir);
            }
        }
    }
}

#[test]
fn keras_onnx_files_predict_keras_outputs_on_every_backend() {
    // tf2onnx's files of Keras models, committed with Keras' outputs
    // (tests/golden/onnx_keras_export.py).
    let fixtures = Path::new("crates/dlbench-formats/tests/fixtures/keras");
    let dir = temp_dir("onnx-models-keras");
    for backend in backends() {
        for model in ["mlp", "cnn", "rnn"] {
            let file = fixtures.join(format!("{model}.onnx"));
            let x = [("x", fixtures.join(format!("{model}.x.npy")))];
            let y = [("y", fixtures.join(format!("{model}.y.npy")))];
            let out_dir = dir.join(format!("{model}.{backend}"));
            assert_predicts(&file, &x, &y, &backend, &out_dir);
        }
    }
}

#[test]
fn inspect_summarises_an_onnx_file_and_a_spec_trains_an_onnx_model() {
    let Some(dir) = torch_exports("onnx-models-spec") else {
        return;
    };
    let out = dlbench(&["inspect", path_str(&dir.join("rnn.dynamo.onnx"))]);
    assert_ok(&out);
    let summary = text(&out.stdout);
    // The LSTM (4*50*(1+50+2) = 10,600) and the head (51): 10,651 parameters, as the spec's.
    assert!(summary.contains("Total parameters: 10,651"), "{summary}");
    assert!(summary.contains("lstm"), "{summary}");

    // specs/rnn.yaml with the model read from torch's file.
    let spec = std::fs::read_to_string("specs/rnn.yaml").unwrap();
    let start = spec.find("model:").unwrap();
    let end = spec.find("\ndata:").unwrap();
    let root = std::env::current_dir().unwrap();
    let spec = format!(
        "{}model: {{file: rnn.dynamo.onnx}}\n{}",
        &spec[..start],
        &spec[end..]
    )
    .replace("../data/", &format!("{}/data/", root.display()));
    let spec_path = dir.join("rnn_onnx.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    let results = dir.join("results");
    let out = dlbench(&[
        "run",
        path_str(&spec_path),
        "--backends",
        "reference,native",
        "--quick",
        "--out",
        path_str(&results),
    ]);
    assert_ok(&out);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("results.json")).unwrap())
            .unwrap();
    let text = record.to_string();
    assert!(text.contains("\"native\""), "{text}");
    let stdout = common::text(&out.stdout);
    assert!(stdout.contains("pass"), "agreement table:\n{stdout}");
    assert!(!stdout.contains("FAIL"), "agreement table:\n{stdout}");
}

#[test]
fn a_malformed_onnx_file_is_exit_2_on_every_command() {
    let dir = temp_dir("onnx-models-malformed");
    let bad = dir.join("bad.onnx");
    // A protobuf field header that claims more bytes than follow: a truncated file.
    std::fs::write(&bad, [0x3a, 0xff, 0xff, 0x03, 0x0a, 0x01]).unwrap();
    let out_dir = dir.join("out");
    let converted = dir.join("m.safetensors");
    let commands: [Vec<&str>; 3] = [
        vec!["inspect", path_str(&bad)],
        vec![
            "predict",
            path_str(&bad),
            "--input",
            "x=x.npy",
            "--out",
            path_str(&out_dir),
        ],
        vec!["convert", path_str(&bad), path_str(&converted)],
    ];
    for args in commands {
        let out = dlbench(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("bad.onnx"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(!out_dir.exists() && !converted.exists());
}
