//! `dlbench convert` end to end: native model -> PyTorch state_dict -> native model, the seed
//! models as PyTorch users write them, and the usage errors (exit code 2, files named).

mod common;

use common::{assert_ok, dlbench, path_str, temp_dir, text};
use dlbench_testkit::python::torch_python;
use std::process::{Command, Output};

use dlbench_core::{Model, Tensor};
use dlbench_formats::pytorch::{read_state_dict, write_state_dict};

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
    assert_usage_error(&out, &["m.pt", "needs --like"]);

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

/// The vae's weights as another framework names them, `z_log_var` listed before `z_mean`:
/// matched by position they would land swapped. Written next to the vae's native model.
fn renamed_vae(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (native, ours, theirs) = (
        dir.join("vae.safetensors"),
        dir.join("ours.pt"),
        dir.join("theirs.pt"),
    );
    assert_ok(&dlbench(&[
        "init",
        "specs/vae.yaml",
        "--out",
        path_str(&native),
    ]));
    assert_ok(&dlbench(&["convert", path_str(&native), path_str(&ours)]));
    let tensors = read_state_dict(&ours).unwrap();
    let get = |name: &str| -> Tensor {
        let found = tensors.iter().find(|(k, _)| k == name);
        found.unwrap_or_else(|| panic!("no {name}")).1.clone()
    };
    let renamed: Vec<(String, Tensor)> = [
        ("encoder.weight", "enc.weight"),
        ("encoder.bias", "enc.bias"),
        ("z_log_var.weight", "logvar.weight"),
        ("z_log_var.bias", "logvar.bias"),
        ("z_mean.weight", "mu.weight"),
        ("z_mean.bias", "mu.bias"),
        ("decoder.weight", "dec.weight"),
        ("decoder.bias", "dec.bias"),
        ("out.weight", "recon.weight"),
        ("out.bias", "recon.bias"),
    ]
    .iter()
    .map(|(key, param)| (key.to_string(), get(param)))
    .collect();
    write_state_dict(&theirs, &renamed).unwrap();
    (native, theirs)
}

#[test]
fn equal_shapes_that_position_alone_would_match_are_refused() {
    let dir = temp_dir("ambiguous");
    let (_, theirs) = renamed_vae(&dir);
    let back = dir.join("back.safetensors");
    let out = dlbench(&[
        "convert",
        path_str(&theirs),
        path_str(&back),
        "--like",
        "specs/vae.yaml",
    ]);
    assert_usage_error(
        &out,
        &[
            "theirs.pt",
            "position alone",
            "`z_log_var.weight`, `z_mean.weight`",
            "`mu.weight`, `logvar.weight`",
            "`encoder.bias`, `decoder.bias`",
            "--map OLD=NEW",
            "--map-file FILE",
        ],
    );
    assert!(!back.exists(), "nothing is written on failure");
    // A --map naming a tensor the file lacks is named too.
    let out = dlbench(&[
        "convert",
        path_str(&theirs),
        path_str(&back),
        "--like",
        "specs/vae.yaml",
        "--map",
        "mean.weight=mu.weight",
    ]);
    assert_usage_error(&out, &["theirs.pt", "`mean.weight`", "not in the file"]);
    assert!(!back.exists());
}

#[test]
fn a_map_file_places_the_tensors_and_the_mapping_is_printed() {
    let dir = temp_dir("map-file");
    let (native, theirs) = renamed_vae(&dir);
    let back = dir.join("back.safetensors");
    let map = dir.join("vae.map");
    std::fs::write(
        &map,
        "# their names = dlbench's\n\
         z_mean.weight = mu.weight\n\
         z_mean.bias = mu.bias\n\
         \n\
         z_log_var.weight = logvar.weight  # the swap position would make\n\
         z_log_var.bias = logvar.bias\n\
         encoder.bias = enc.bias\n",
    )
    .unwrap();
    let out = dlbench(&[
        "convert",
        path_str(&theirs),
        path_str(&back),
        "--like",
        "specs/vae.yaml",
        "--map-file",
        path_str(&map),
        "--map",
        "decoder.bias=dec.bias",
    ]);
    assert_ok(&out);
    let stderr = text(&out.stderr);
    for line in [
        "theirs.pt: 0 of 10 tensors matched by name; the others:",
        "  encoder.weight -> enc.weight (by position)\n  encoder.bias -> enc.bias (by --map)\n  \
         z_mean.weight -> mu.weight (by --map)\n",
        "  z_log_var.bias -> logvar.bias (by --map)\n",
        "  decoder.bias -> dec.bias (by --map)\n",
        "  out.bias -> recon.bias (by position)\n",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in\n{stderr}");
    }
    // The values landed where the map says: the very model the names came from.
    assert_eq!(Model::load(&back).unwrap(), Model::load(&native).unwrap());

    // A bad line is named by file and line.
    std::fs::write(&map, "z_mean.weight = mu.weight\nz_mean.bias mu.bias\n").unwrap();
    let out = dlbench(&[
        "convert",
        path_str(&theirs),
        path_str(&back),
        "--like",
        "specs/vae.yaml",
        "--map-file",
        path_str(&map),
    ]);
    assert_usage_error(&out, &["vae.map:2: expected OLD=NEW"]);
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
    // The vae's torch names are the spec's (`enc.weight`, ...): matched by name. The others
    // go by position, which must not be trusted between tensors of equal shape: the mlp's
    // `0.bias` and `2.bias` are both [10], the LSTM's two biases both [200], and are mapped.
    let maps: [&[&str]; 4] = [
        &["0.bias=dense_1.bias", "2.bias=dense_2.bias"],
        &[],
        &["lstm.bias_ih_l0=lstm_1.b_ih", "lstm.bias_hh_l0=lstm_1.b_hh"],
        &[],
    ];
    for ((name, params), map) in [
        ("mlp", 431),
        ("cnn", 250_326),
        ("rnn", 10_651),
        ("vae", 552_012),
    ]
    .into_iter()
    .zip(maps)
    {
        let pt = dir.join(format!("{name}.pt"));
        let native = dir.join(format!("{name}.safetensors"));
        let spec = format!("specs/{name}.yaml");
        let mut args = vec!["convert", path_str(&pt), path_str(&native), "--like", &spec];
        if !map.is_empty() {
            let out = dlbench(&args);
            assert_usage_error(&out, &[&format!("{name}.pt"), "position alone", "--map"]);
            assert!(!native.exists(), "{name}: nothing is written on failure");
        }
        for pair in map {
            args.extend(["--map", *pair]);
        }
        let out = dlbench(&args);
        assert_ok(&out);
        let stderr = text(&out.stderr);
        match name {
            "vae" => assert!(!stderr.contains(" -> "), "{name}: all by name\n{stderr}"),
            "cnn" => assert!(
                stderr.contains("  conv1.weight -> conv2d_1.weight (by position)"),
                "{stderr}"
            ),
            _ => assert!(
                stderr.contains(&format!("  {} (by --map)", map[0].replace('=', " -> "))),
                "{stderr}"
            ),
        }
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
    // And back: the same model, weights bit for bit, from the ONNX file and through a
    // state_dict whose graph comes from it.
    let back = dir.join("back.safetensors");
    assert_ok(&dlbench(&["convert", path_str(&onnx), path_str(&back)]));
    let (original, returned) = (
        dlbench_core::Model::load(&native).unwrap(),
        dlbench_core::Model::load(&back).unwrap(),
    );
    assert_eq!(returned.weights, original.weights);
    assert_eq!(returned.graph.inputs, original.graph.inputs);
    let again = dir.join("again.safetensors");
    let like = ["--like", path_str(&onnx)];
    assert_ok(&dlbench(
        &[&["convert", path_str(&pt), path_str(&again)][..], &like].concat(),
    ));
    assert_eq!(
        dlbench_core::Model::load(&again).unwrap().weights,
        original.weights
    );
}
