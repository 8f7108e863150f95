//! Agreement end to end: `dlbench run` checks every backend against the f64 reference before it
//! times anything. A backend that is wrong on purpose (the `test-backends` feature's mutants)
//! is caught, its error is localized to the node that introduces it, it is left untimed, and
//! the run exits 1.

#![cfg(feature = "test-backends")]

mod common;

use common::temp_dir;
use std::process::Command;

use serde_json::Value;

/// Runs `spec` with `backends` in quick mode; returns the exit code, stdout and the record.
fn run(spec: &str, backends: &str, name: &str) -> (Option<i32>, String, Value) {
    let dir = temp_dir(name);
    let out = Command::new(env!("CARGO_BIN_EXE_dlbench"))
        .args(["run", spec, "--backends", backends, "--quick", "--out"])
        .arg(&dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("dlbench runs");
    let record = serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        record,
    )
}

fn run_of<'a>(record: &'a Value, backend: &str) -> &'a Value {
    record["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["backend"] == backend)
        .unwrap()
}

#[test]
fn a_transposed_dense_weight_is_caught_localized_and_left_untimed() {
    let (code, stdout, record) = run("specs/mlp.yaml", "reference,test-transposed-dense", "dense");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("disagrees") && stdout.contains("dense_1"),
        "{stdout}"
    );
    assert!(run_of(&record, "reference")["agreement"].is_null());
    let mutant = run_of(&record, "test-transposed-dense");
    let forward = &mutant["agreement"]["forward"];
    assert_eq!(forward["pass"], false);
    assert_eq!(forward["first_divergent_node"], "dense_1");
    assert_eq!(forward["first_divergent_op"], "dense");
    assert_eq!(mutant["agreement"]["gradients"]["pass"], false);
    assert!(mutant["inference"].as_array().unwrap().is_empty());
    assert!(mutant["training"].is_null());
    let notes = mutant["notes"].to_string();
    assert!(notes.contains("not timed"), "{notes}");
}

#[test]
fn swapped_lstm_gates_are_localized_to_the_lstm() {
    let (code, stdout, record) = run(
        "specs/rnn.yaml",
        "reference,test-swapped-lstm-gates",
        "lstm",
    );
    assert_eq!(code, Some(1), "{stdout}");
    let forward = &run_of(&record, "test-swapped-lstm-gates")["agreement"]["forward"];
    assert_eq!(forward["pass"], false);
    assert_eq!(forward["first_divergent_node"], "lstm_1");
    assert_eq!(forward["first_divergent_op"], "lstm");
}

#[test]
fn a_correct_backend_agrees_and_is_timed() {
    // Floor pooling is only wrong where a spec asks for ceil mode; the MLP has no pooling, so
    // this backend computes exactly what the reference does.
    let (code, stdout, record) = run("specs/mlp.yaml", "test-floor-pooling", "agree");
    assert_eq!(code, Some(0), "{stdout}");
    let run = run_of(&record, "test-floor-pooling");
    let agreement = &run["agreement"];
    for check in ["forward", "gradients", "training"] {
        assert_eq!(agreement[check]["pass"], true, "{check}: {agreement}");
        assert_eq!(agreement[check]["max_abs"], 0.0, "{check}");
    }
    assert_eq!(run["inference"].as_array().unwrap().len(), 2);
    assert!(run["training"]["losses"].as_array().unwrap().len() == 30);
}
