//! End to end, through the `dlbench` binary as a user runs it.

mod common;

use std::path::Path;

use common::{assert_ok, dlbench, dlbench_with, path_str, temp_dir, text};

#[test]
fn help_lists_the_commands() {
    let out = dlbench(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in ["list", "inspect", "run", "init", "convert", "predict"] {
        assert!(help.contains(command), "{help}");
    }
}

#[cfg(unix)]
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::process::{Command, Stdio};
    // The read end is closed before dlbench writes: its first line meets a closed pipe.
    let mut child = Command::new(env!("CARGO_BIN_EXE_dlbench"))
        .args(["inspect", "specs/cnn.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}

#[test]
fn list_shows_the_reference_backend_and_what_is_missing() {
    let out = dlbench(&["list"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert!(
        listing.contains("reference") && listing.contains("training"),
        "{listing}"
    );
    assert!(
        listing.contains("Not in this build") && listing.contains("tch"),
        "{listing}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&dlbench(&["list", "--json"]).stdout).unwrap();
    assert_eq!(json["backends"][0]["name"], "reference");
}

#[test]
fn inspect_cnn_prints_every_shape_and_the_parameter_count() {
    let out = dlbench(&["inspect", "specs/cnn.yaml"]);
    let summary = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(summary.contains("250,326"), "{summary}");
    for shape in [
        "batch x 32x30x30",
        "batch x 32x15x15",
        "batch x 64x13x13",
        "batch x 64x6x6",
        "batch x 2304",
        "batch x 100",
        "batch x 10",
    ] {
        assert!(summary.contains(shape), "missing {shape} in\n{summary}");
    }
}

#[test]
fn inspect_json_gives_the_seed_parameter_counts() {
    for (spec, params) in [
        ("specs/mlp.yaml", 431),
        ("specs/cnn.yaml", 250_326),
        ("specs/rnn.yaml", 10_651),
        ("specs/vae.yaml", 552_012),
    ] {
        let out = dlbench(&["inspect", spec, "--json"]);
        assert!(out.status.success(), "{spec}: {}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["parameters"], params, "{spec}");
        assert!(json["flops_per_sample"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_saved_model_inspects_like_its_spec() {
    let dir = temp_dir("init");
    let model = dir.join("rnn.safetensors");
    let out = dlbench(&["init", "specs/rnn.yaml", "--out", path_str(&model)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_file = dlbench(&["inspect", path_str(&model), "--json"]);
    let from_spec = dlbench(&["inspect", "specs/rnn.yaml", "--json"]);
    let a: serde_json::Value = serde_json::from_slice(&from_file.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&from_spec.stdout).unwrap();
    assert_eq!(a["nodes"], b["nodes"]);
    assert_eq!(a["parameters"], 10_651);
}

#[test]
fn run_mlp_on_the_reference_writes_a_record_whose_loss_goes_down() {
    let dir = temp_dir("run-mlp");
    let out = dlbench(&[
        "run",
        "specs/mlp.yaml",
        "--backends",
        "reference",
        "--out",
        path_str(&dir),
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(record["schema"], "dlbench.results/v1");
    assert_eq!(record["spec"]["parameters"], 431);
    assert!(record["environment"]["cores"].as_u64().unwrap() >= 1);
    assert!(record["environment"]["rustc"]
        .as_str()
        .unwrap()
        .starts_with("rustc"));
    let run = &record["runs"][0];
    assert_eq!(run["backend"], "reference");
    assert_eq!(run["status"], "ok");
    // Run in its own worker process: the peak RSS is the backend's own.
    assert!(run["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(!run["notes"].to_string().contains("in-process"), "{run}");
    let losses: Vec<f64> = run["training"]["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (head, tail) = (&losses[..10], &losses[losses.len() - 10..]);
    assert!(
        mean(tail) < 0.5 * mean(head),
        "loss did not go down: {head:?} .. {tail:?}"
    );
    let accuracy = run["training"]["metrics"]["val_binary_accuracy"]
        .as_f64()
        .unwrap();
    assert!(accuracy > 0.85, "validation accuracy {accuracy}");
    // The breast-cancer MLP predicts both classes well: precision, recall and F1 of class 1.
    for name in ["val_precision", "val_recall", "val_f1"] {
        let score = run["training"]["metrics"][name].as_f64().unwrap();
        assert!(score > 0.85 && score <= 1.0, "{name} {score}");
    }
    let inference = run["inference"].as_array().unwrap();
    assert!(!inference.is_empty());
    for entry in inference {
        assert!(entry["median_ns"].as_f64().unwrap() > 0.0);
        assert!(entry["samples"].as_u64().unwrap() >= 1);
        assert_eq!(
            entry["raw_ns"].as_array().unwrap().len() as u64,
            entry["samples"].as_u64().unwrap()
        );
    }
}

#[test]
fn dlbench_isa_caps_the_native_kernels_and_the_record_says_so() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |name: &str, isa: &str| {
        let dir = temp_dir(name);
        let args = [
            "run",
            "specs/mlp.yaml",
            "--backends",
            "native",
            "--quick",
            "--out",
            path_str(&dir),
        ];
        (dlbench_with(root, &args, &[("DLBENCH_ISA", isa)]), dir)
    };
    let (out, dir) = run("isa", "portable");
    assert_ok(&out);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(record["environment"]["isa_cap"], "portable");
    let native = &record["runs"][0];
    assert_eq!(native["backend"], "native");
    assert_eq!(native["status"], "ok", "{native}");
    assert_eq!(native["kernels"], "portable", "{native}");

    // A misspelt cap is bad input: exit 2, named, and nothing written.
    let (out, dir) = run("isa-misspelt", "avx3");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("DLBENCH_ISA=`avx3`: expected one of avx512, avx2, portable"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.join("results.json").exists());
}

/// The planned backends `dlbench list` says this build lacks.
fn not_built() -> Vec<String> {
    let out = dlbench(&["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let Some((_, missing)) = listing.split_once("Not in this build:") else {
        return Vec::new();
    };
    missing
        .lines()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

/// With a backend missing (`cargo test` without `--features tch`): a run that names it records
/// it unsupported and keeps the rest. With every planned backend built in (the test command),
/// `dlbench list` must say so and a run over all of them must find each.
#[test]
fn a_backend_not_in_this_build_is_reported_unsupported_and_the_rest_kept() {
    let dir = temp_dir("run-missing");
    let missing = not_built();
    let Some(absent) = missing.first() else {
        let listing = text(&dlbench(&["list"]).stdout);
        for name in ["native", "burn", "candle", "tract", "tch"] {
            assert!(
                listing.contains(&format!("\n  {name} ")),
                "{name} in\n{listing}"
            );
        }
        return;
    };
    let backends = format!("reference,{absent}");
    let out = dlbench(&[
        "run",
        "specs/mlp.yaml",
        "--backends",
        &backends,
        "--quick",
        "--out",
        path_str(&dir),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(record["runs"][0]["status"], "ok");
    assert_eq!(record["runs"][1]["backend"], absent.as_str());
    assert_eq!(record["runs"][1]["status"], "unsupported");
    assert!(record["runs"][1]["error"]
        .as_str()
        .unwrap()
        .contains("not in this build"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(dlbench(&["frobnicate"]).status.code(), Some(2));
    let out = dlbench(&["inspect", "no/such/spec.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no/such/spec.yaml"),
        "{}",
        text(&out.stderr)
    );
    let out = dlbench(&["inspect", "README.md"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(".safetensors"));
    let out = dlbench(&["run", "specs/mlp.yaml", "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown device `tpu`"),
        "{}",
        text(&out.stderr)
    );
}
