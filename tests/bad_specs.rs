//! Bad input through the binary: every mistake exits with code 2 and a message that points at
//! the file and line/column (or the node), and no results are written.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Writes `text` as a spec in a fresh folder beside a copy of nothing else, runs
/// `dlbench <command> <spec>`, and returns the output and the spec's path.
fn run_bad(name: &str, command: &str, text: &str) -> (Output, PathBuf, PathBuf) {
    run_bad_with(name, command, text, &[])
}

/// [`run_bad`] with data `files` written beside the spec.
fn run_bad_with(
    name: &str,
    command: &str,
    text: &str,
    files: &[(&str, &[u8])],
) -> (Output, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("dlbench-bad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, bytes) in files {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
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
    expect_exit_2_with(commands, name, text, &[], needles);
}

fn expect_exit_2_with(
    commands: &[&str],
    name: &str,
    text: &str,
    files: &[(&str, &[u8])],
    needles: &[&str],
) {
    for &command in commands {
        let (out, spec, out_dir) = run_bad_with(name, command, text, files);
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

/// An IDX file of u8 values with `dims`, its values cut to `keep` bytes.
fn idx(dims: &[u32], keep: usize) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    dims.iter().for_each(|d| bytes.extend(d.to_be_bytes()));
    bytes.extend(std::iter::repeat_n(1u8, keep));
    bytes
}

#[test]
fn loader_errors_name_the_file_and_the_row() {
    let csv = |data: &str| {
        GOOD.replace(
            "synthetic: {kind: binary, samples: 64}",
            &format!("{data}\n  validation: 0"),
        )
    };
    let cases: [(&str, String, Vec<u8>, &[&str]); 4] = [
        (
            "ragged",
            csv("csv: d.csv\n  target_column: -1"),
            b"1,2,3,4,0\n1,2,3\n".to_vec(),
            &["d.csv: line 2 has 3 columns, expected 5"],
        ),
        (
            "missing-value",
            csv("csv: d.csv\n  target_column: -1"),
            b"1,2,3,4,0\n1,2,NA,4,1\n".to_vec(),
            &["d.csv: line 2, column 3: missing value (`NA`)", "clean:"],
        ),
        (
            "idx-magic",
            csv("idx: {images: d.csv}\n  reshape: [4]").replace("binary_cross_entropy", "mse"),
            b"P5 not idx".to_vec(),
            &["d.csv: not an IDX file"],
        ),
        (
            "idx-short",
            csv("idx: {images: d.csv}\n  reshape: [4]"),
            idx(&[8, 2, 2], 20),
            &["d.csv: the header announces [8, 2, 2] = 32 values (32 bytes), the file holds 20"],
        ),
    ];
    for (name, text, file, needles) in &cases {
        expect_exit_2_with(&["run"], name, text, &[("d.csv", file)], needles);
    }
    let classes = GOOD
        .replace(
            "synthetic: {kind: binary, samples: 64}",
            "csv: d.csv\n  target_column: -1",
        )
        .replace(
            "dense: {units: 1, activation: sigmoid}",
            "dense: {units: 3}",
        )
        .replace("binary_cross_entropy", "cross_entropy");
    expect_exit_2_with(
        &["run"],
        "label-range",
        &classes,
        &[("d.csv", b"1,2,3,4,0\n1,2,3,4,5\n")],
        &["d.csv: the label of sample 1 is 5, out of range for 3 classes"],
    );
    let package = GOOD.replace(
        "synthetic: {kind: binary, samples: 64}",
        "idx: {images: /no/such/dir/images-idx3-ubyte.gz}\n  package: dataset-fashion-mnist",
    );
    expect_exit_2_from(
        &["run"],
        "package",
        &package,
        &[
            "/no/such/dir/images-idx3-ubyte.gz",
            "apt-get install dataset-fashion-mnist",
        ],
    );
}

#[test]
fn steps_and_epochs_together_are_refused() {
    let text = GOOD.replace("steps: 5", "steps: 5\n  epochs: 2");
    expect_exit_2("steps-epochs", &text, &["epochs", "steps"]);
}
