//! Bad input through the binary: every mistake exits with code 2 and a message that points at
//! the file and line/column (or the node), and no results are written.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Writes `text` as a spec in a fresh folder beside a copy of nothing else, runs
/// `dlbench <command> <spec>`, and returns the output and the spec's path.
fn run_bad(name: &str, command: &str, text: &str) -> (Output, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("dlbench-bad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join(format!("{name}.yaml"));
    std::fs::write(&spec, text).unwrap();
    let out_dir = dir.join("out");
    let mut args = vec![command.to_string(), spec.display().to_string()];
    if command == "run" {
        args.extend([
            "--quick".into(),
            "--out".into(),
            out_dir.display().to_string(),
        ]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dlbench"))
        .args(&args)
        .output()
        .expect("dlbench runs");
    (out, spec, out_dir)
}

fn expect_exit_2(name: &str, text: &str, needles: &[&str]) {
    expect_exit_2_from(&["inspect", "run"], name, text, needles);
}

fn expect_exit_2_from(commands: &[&str], name: &str, text: &str, needles: &[&str]) {
    for &command in commands {
        let (out, spec, out_dir) = run_bad(name, command, text);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command} {name}: {stderr}");
        assert!(
            stderr.contains(&spec.display().to_string()),
            "{name}: no file in {stderr}"
        );
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{command} {name}: `{needle}` not in {stderr}"
            );
        }
        assert!(
            !out_dir.exists(),
            "{command} {name}: left an output folder behind"
        );
    }
}

const GOOD: &str = "\
model:
  input: [4]
  layers:
    - dense: {units: 3, activation: relu}
    - dense: {units: 1, activation: sigmoid}
data:
  synthetic: {kind: binary, samples: 64}
train:
  loss: binary_cross_entropy
  optimizer: {adam: {lr: 0.01}}
  batch_size: 16
  steps: 5
";

#[test]
fn the_good_spec_runs() {
    let (out, _, out_dir) = run_bad("good", "run", GOOD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out_dir.join("results.json").exists());
}

#[test]
fn a_typo_in_a_field_points_at_its_line_and_lists_the_accepted_names() {
    let text = GOOD.replace("adam: {lr: 0.01}", "adam: {lerning_rate: 0.01}");
    expect_exit_2(
        "typo",
        &text,
        &[":10:", "unknown field `lerning_rate`", "`lr`"],
    );
}

#[test]
fn a_wrong_type_points_at_its_line() {
    let text = GOOD.replace("batch_size: 16", "batch_size: sixteen");
    expect_exit_2("wrong-type", &text, &[":11:", "batch_size"]);
}

#[test]
fn an_unknown_layer_lists_the_layers() {
    let text = GOOD.replace(
        "- dense: {units: 3, activation: relu}",
        "- dense3d: {units: 3}",
    );
    expect_exit_2(
        "unknown-layer",
        &text,
        &[":4:", "dense3d", "conv2d", "lstm"],
    );
}

#[test]
fn an_unknown_loss_lists_the_losses() {
    let text = GOOD.replace("loss: binary_cross_entropy", "loss: hinge");
    expect_exit_2(
        "unknown-loss",
        &text,
        &[":9:", "hinge", "cross_entropy", "vae_elbo"],
    );
}

#[test]
fn inconsistent_shapes_name_the_node() {
    let text = "\
model:
  input: [1, 8, 8]
  layers:
    - conv2d: {filters: 4, kernel: 3}
    - max_pool2d: {kernel: 4}
    - conv2d: {filters: 4, kernel: 3}
data:
  synthetic: {kind: classification, samples: 64, classes: 2}
train:
  loss: cross_entropy
  optimizer: sgd
  batch_size: 16
  steps: 5
";
    expect_exit_2("shapes", text, &["conv2d_2", "does not fit"]);
}

#[test]
fn a_graph_input_that_does_not_exist_names_the_node() {
    let text = "\
model:
  graph:
    inputs: {x: [4]}
    nodes:
      - {name: h, dense: {units: 3}, inputs: [x]}
      - {name: out, op: add, inputs: [h, y]}
    outputs: [out]
data:
  synthetic: {kind: regression, samples: 64}
train:
  loss: mse
  optimizer: sgd
  batch_size: 16
  steps: 5
";
    expect_exit_2("graph-input", text, &["`out`", "`y`"]);
}

#[test]
fn a_missing_data_file_names_the_path() {
    let text = GOOD.replace(
        "synthetic: {kind: binary, samples: 64}",
        "csv: no_such_file.csv",
    );
    // `inspect` reads no data, so only `run` can notice.
    expect_exit_2_from(&["run"], "missing-data", &text, &["no_such_file.csv"]);
}

#[test]
fn steps_and_epochs_together_are_refused() {
    let text = GOOD.replace("steps: 5", "steps: 5\n  epochs: 2");
    expect_exit_2("steps-epochs", &text, &["epochs", "steps"]);
}
