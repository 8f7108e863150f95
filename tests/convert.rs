//! `dlbench convert` end to end: native model -> PyTorch state_dict -> native model, the seed
//! models as PyTorch users write them, and the usage errors (exit code 2, files named).

mod common;

use common::{assert_ok, dlbench, path_str, temp_dir, text};
use dlbench_testkit::python::torch_python;
use std::process::{Command, Output};

use dlbench_core::Model;
use dlbench_formats::pytorch::read_state_dict;

/// Exit code 2 and a message containing each of `parts`.
fn assert_usage_error(out: &Output, parts: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for part in parts {
        assert!(stderr.contains(part), "missing {part:?} in\n{stderr}");
    }
}

#[test]
fn a_model_survives_the_trip_through_a_state_dict() {
    let dir = temp_dir("round-trip");
    let (native, pt, back) = (
        dir.join("mlp.safetensors"),
        dir.join("mlp.pt"),
        dir.join("back.safetensors"),
    );
    assert_ok(&dlbench(&[
        "init",
        "specs/mlp.yaml",
        "--out",
        path_str(&native),
    ]));
    assert_ok(&dlbench(&["convert", path_str(&native), path_str(&pt)]));
    let out = dlbench(&[
        "convert",
        path_str(&pt),
        path_str(&back),
        "--like",
        "specs/mlp.yaml",
    ]);
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("431 parameters"),
        "{}",
        text(&out.stderr)
    );
    let (a, b) = (Model::load(&native).unwrap(), Model::load(&back).unwrap());
    assert_eq!(a, b);
    // --like may also be the native model itself.
    assert_ok(&dlbench(&[
        "convert",
        path_str(&pt),
        path_str(&back),
        "--like",
        path_str(&native),
    ]));
    assert_eq!(Model::load(&back).unwrap(), a);
}

#[test]
fn usage_errors_exit_2_and_name_the_files() {
    let dir = temp_dir("usage");
    let native = dir.join("m.safetensors");
    assert_ok(&dlbench(&[
        "init",
        "specs/mlp.yaml",
        "--out",
        path_str(&native),
    ]));
    let pt = dir.join("m.pt");
    assert_ok(&dlbench(&["convert", path_str(&native), path_str(&pt)]));
    let back = dir.join("back.safetensors");

    let out = dlbench(&["convert", path_str(&pt), path_str(&back)]);
    assert_usage_error(&out, &["m.pt", "back.safetensors", "needs --like"]);

    let out = dlbench(&["convert", "specs/mlp.yaml", path_str(&pt)]);
    assert_usage_error(&out, &["cannot convert specs/mlp.yaml", "m.pt"]);

    let out = dlbench(&["convert", path_str(&native), path_str(&dir.join("m.keras"))]);
    assert_usage_error(&out, &["m.keras"]);

    let out = dlbench(&[
        "convert",
        path_str(&native),
        path_str(&pt),
        "--like",
        "specs/mlp.yaml",
    ]);
    assert_usage_error(&out, &["--like specs/mlp.yaml", "already holds its graph"]);

    // The weights of the mlp into the cnn: the key and both shapes are named.
    let out = dlbench(&[
        "convert",
        path_str(&pt),
        path_str(&back),
        "--like",
        "specs/cnn.yaml",
    ]);
    assert_usage_error(&out, &["m.pt", "graph `cnn`"]);
    assert!(!back.exists(), "nothing is written on failure");

    let malicious = "crates/dlbench-formats/tests/fixtures/malicious.pt";
    let out = dlbench(&[
        "convert",
        malicious,
        path_str(&back),
        "--like",
        "specs/mlp.yaml",
    ]);
    assert_usage_error(&out, &["malicious.pt", "refusing global `posix.system`"]);
}

/// Without the `tch` feature there is no libtorch to trace with: TorchScript output is a usage
/// error that says how to build it in (with it, tests/torchscript_cli.rs converts).
#[cfg(not(feature = "tch"))]
#[test]
fn torchscript_output_without_libtorch_says_how_to_build_it() {
    let dir = temp_dir("no-tch");
    let native = dir.join("m.safetensors");
    assert_ok(&dlbench(&[
        "init",
        "specs/mlp.yaml",
        "--out",
        path_str(&native),
    ]));
    let ts = dir.join("m.ts");
    let out = dlbench(&["convert", path_str(&native), path_str(&ts)]);
    assert_usage_error(
        &out,
        &[
            "m.ts",
            "libtorch",
            "--features tch",
            "scripts/setup-torch.sh",
        ],
    );
    assert!(!ts.exists());
}

#[test]
fn the_seed_models_as_torch_saves_them_convert_into_the_specs() {
    let Some(python) = torch_python() else {
        return;
    };
    let dir = temp_dir("seed");
    let out = Command::new(python)
        .args(["tests/golden/state_dict.py", "seed", path_str(&dir)])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python runs");
    assert_ok(&out);
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("seed.json")).unwrap()).unwrap();
    for (name, params) in [
        ("mlp", 431),
        ("cnn", 250_326),
        ("rnn", 10_651),
        ("vae", 552_012),
    ] {
        let pt = dir.join(format!("{name}.pt"));
        let native = dir.join(format!("{name}.safetensors"));
        let spec = format!("specs/{name}.yaml");
        let out = dlbench(&["convert", path_str(&pt), path_str(&native), "--like", &spec]);
        assert_ok(&out);
        let model = Model::load(&native).unwrap();
        assert_eq!(model.parameter_count(), params, "{name}");
        // torch's keys (`0.weight`, `conv1.weight`, `lstm.weight_ih_l0`, ...) in the file's
        // order land on the spec's parameters in the graph's order.
        let tensors = read_state_dict(&pt).unwrap();
        let keys: Vec<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            serde_json::json!(keys),
            expected[name]["keys"],
            "{name}: keys"
        );
        for (param, (key, tensor)) in model.graph.params.iter().zip(&tensors) {
            assert_eq!(
                &model.weights[&param.value.name], tensor,
                "{name}: {key} -> {}",
                param.value.name
            );
            let described = &expected[name]["tensors"][key];
            let shape: Vec<usize> = serde_json::from_value(described["shape"].clone()).unwrap();
            assert_eq!(tensor.shape(), shape, "{name}: {key}");
            // torch's first values, as float32 bit patterns.
            let first = described["first_bits"]
                .as_array()
                .or(described["bits"].as_array())
                .unwrap();
            let got: Vec<u64> = tensor.as_f32().unwrap()[..first.len()]
                .iter()
                .map(|x| u64::from(x.to_bits()))
                .collect();
            let want: Vec<u64> = first.iter().map(|b| b.as_u64().unwrap()).collect();
            assert_eq!(got, want, "{name}: {key} values");
        }
    }
}

#[test]
fn a_model_converts_to_onnx_that_onnxruntime_runs_and_onnx_is_not_read_yet() {
    let dir = temp_dir("onnx");
    let (native, pt, onnx) = (
        dir.join("cnn.safetensors"),
        dir.join("cnn.pt"),
        dir.join("cnn.onnx"),
    );
    assert_ok(&dlbench(&[
        "init",
        "specs/cnn.yaml",
        "--out",
        path_str(&native),
    ]));
    assert_ok(&dlbench(&["convert", path_str(&native), path_str(&onnx)]));
    let bytes = std::fs::read(&onnx).unwrap();
    // The weights are in it: 250,326 f32 parameters.
    assert!(bytes.len() > 250_326 * 4, "{} bytes", bytes.len());
    // A state_dict with the graph from --like, too.
    assert_ok(&dlbench(&["convert", path_str(&native), path_str(&pt)]));
    std::fs::remove_file(&onnx).unwrap();
    assert_ok(&dlbench(&[
        "convert",
        path_str(&pt),
        path_str(&onnx),
        "--like",
        "specs/cnn.yaml",
    ]));
    assert_eq!(
        std::fs::read(&onnx).unwrap(),
        bytes,
        "the same model, the same file"
    );
    if let Some(python) = torch_python() {
        let out = Command::new(python)
            .args([
                "-c",
                "import onnx, sys; onnx.checker.check_model(sys.argv[1], full_check=True)",
            ])
            .arg(&onnx)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Reading ONNX is not there yet: a usage error that says so, and no file written.
    let back = dir.join("back.safetensors");
    let out = dlbench(&["convert", path_str(&onnx), path_str(&back)]);
    assert_usage_error(&out, &["cnn.onnx", "reading ONNX is not supported yet"]);
    assert!(!back.exists());
}
