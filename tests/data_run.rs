//! Data as `dlbench run` uses it, end to end: test-split metrics and confusion matrices in the
//! record, a dirty CSV cleaned (or refused), and augmented batches shared by every backend.

mod common;

use std::path::Path;

use common::{assert_ok, dlbench, path_str, temp_dir, text};
use serde_json::Value;

fn run(spec: &str, backends: &str, name: &str) -> Value {
    let dir = temp_dir(name);
    let out = dlbench(&[
        "run",
        spec,
        "--quick",
        "--backends",
        backends,
        "--out",
        path_str(&dir),
    ]);
    assert_ok(&out);
    let record = serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    record.unwrap()
}

fn losses(run: &Value) -> Vec<f64> {
    run["training"]["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn seed_specs_score_the_test_split_with_a_confusion_matrix() {
    // Backends the debug build trains in seconds; the scores come from the harness, the same
    // code for every backend.
    let cases = [
        (
            "mlp",
            "native,candle",
            "test_binary_accuracy",
            &["test_precision", "test_f1"][..],
            2,
        ),
        (
            "cnn",
            "native",
            "test_accuracy",
            &["test_f1_macro", "test_recall_weighted"][..],
            10,
        ),
        (
            "rnn",
            "native,candle",
            "test_binary_accuracy",
            &["test_f1", "test_log_loss"][..],
            2,
        ),
    ];
    for (name, backends, accuracy, others, classes) in cases {
        let record = run(
            &format!("specs/{name}.yaml"),
            backends,
            &format!("test-{name}"),
        );
        let test_samples = record["spec"]["test_samples"].as_u64().unwrap();
        assert!(test_samples > 50, "{name}: {test_samples}");
        for run in record["runs"].as_array().unwrap() {
            let metrics = &run["training"]["metrics"];
            let value = metrics[accuracy].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&value), "{name} {accuracy} {value}");
            for other in others {
                assert!(
                    metrics[other].as_f64().is_some(),
                    "{name}: no {other} in {metrics}"
                );
            }
            let matrix = run["training"]["confusion"]["test"].as_array().unwrap();
            assert_eq!(matrix.len(), classes, "{name}");
            let counted: u64 = matrix
                .iter()
                .flat_map(|row| row.as_array().unwrap())
                .map(|c| c.as_u64().unwrap())
                .sum();
            assert_eq!(
                counted, test_samples,
                "{name}: every test sample counted once"
            );
            // Accuracy is the matrix's diagonal.
            let diagonal: u64 = (0..classes).map(|c| matrix[c][c].as_u64().unwrap()).sum();
            assert!((value - diagonal as f64 / test_samples as f64).abs() < 1e-12);
        }
    }
    // A VAE is no classifier: its test split gives the ELBO only.
    let record = run("specs/vae.yaml", "native", "test-vae");
    let run = &record["runs"][0];
    assert!(run["training"]["metrics"]["test_loss"].as_f64().unwrap() > 0.0);
    assert!(run["training"].get("confusion").is_none(), "{run}");
}

#[test]
fn a_dirty_csv_trains_after_cleaning_and_the_record_counts_what_was_cleaned() {
    let dir = temp_dir("penguins");
    let out = dlbench(&[
        "run",
        "specs/mlp-penguins.yaml",
        "--quick",
        "--backends",
        "native",
        "--out",
        path_str(&dir),
    ]);
    assert_ok(&out);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("344 rows read; 19 missing values: 0 rows dropped, 8 values imputed"),
        "{stdout}"
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let cleaning = &record["spec"]["cleaning"][0];
    assert_eq!(cleaning["categories_missing"], 11);
    assert_eq!(cleaning["categories"]["1"][2], "Gentoo");
    let report = std::fs::read_to_string(dir.join("index.md")).unwrap();
    assert!(
        report.contains("Cleaned ") && report.contains("### Quality"),
        "{report}"
    );
    // Dirtier still: three rows again and a constant column.
    let dirty_dir = temp_dir("penguins-dirtier");
    let table = std::fs::read_to_string("data/penguins.csv").unwrap();
    let mut lines: Vec<String> = table
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{l},{}", if i == 0 { "site" } else { "7" }))
        .collect();
    lines.extend(lines[1..4].to_vec());
    std::fs::write(dirty_dir.join("penguins.csv"), lines.join("\n")).unwrap();
    let spec = std::fs::read_to_string("specs/mlp-penguins.yaml")
        .unwrap()
        .replace("../data/", "");
    std::fs::write(dirty_dir.join("dirty.yaml"), spec).unwrap();
    let out_dir = dirty_dir.join("out");
    let out = dlbench(&[
        "run",
        path_str(&dirty_dir.join("dirty.yaml")),
        "--quick",
        "--backends",
        "native",
        "--out",
        path_str(&out_dir),
    ]);
    assert_ok(&out);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "347 rows read; 19 missing values: 0 rows dropped, 8 values imputed, 11 \
                         categories left empty (one-hot zeros); 3 duplicate rows dropped; \
                         constant columns 9 dropped"
        ),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dirty_dir).unwrap();
    // Without `clean:` the same file is refused, naming the line and column.
    let spec = std::fs::read_to_string("specs/mlp-penguins.yaml").unwrap();
    let (start, end) = (
        spec.find("  clean:").unwrap(),
        spec.find("  normalize:").unwrap(),
    );
    let raw = format!("{}{}", &spec[..start], &spec[end..]).replace("../data/", "");
    let raw_dir = temp_dir("penguins-raw");
    std::fs::copy("data/penguins.csv", raw_dir.join("penguins.csv")).unwrap();
    let raw_spec = raw_dir.join("raw.yaml");
    std::fs::write(&raw_spec, raw).unwrap();
    let out = dlbench(&[
        "run",
        path_str(&raw_spec),
        "--quick",
        "--out",
        path_str(&raw_dir.join("out")),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("penguins.csv: line 2, column 1: `Adelie` is not a number"),
        "{stderr}"
    );
    assert!(!raw_dir.join("out").exists());
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&raw_dir).unwrap();
}

/// A small CNN on the 8x8 digits, which the debug build's candle trains in seconds.
const DIGITS: &str = "
model:
  input: [1, 8, 8]
  layers: [{conv2d: {filters: 4, kernel: 3, padding: 1, activation: relu}}, flatten, {dense: {units: 10}}]
data:
  csv: DIGITS
  target_column: -1
  scale: 0.0625
  reshape: [1, 8, 8]
  validation: 0.2
train: {loss: cross_entropy, optimizer: {sgd: {lr: 0.05}}, batch_size: 32, steps: 30}
";

#[test]
fn every_backend_trains_on_the_same_augmented_batches() {
    let dir = temp_dir("augment");
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.csv.gz");
    let spec = DIGITS.replace("DIGITS", path_str(&digits));
    let augmented = spec.replace(
        "  validation: 0.2\n",
        "  validation: 0.2\n  augment: {flip: true, crop: 2, rotate: 10, translate: 1, noise: 0.05}\n",
    );
    assert_ne!(augmented, spec);
    for (name, text) in [("plain.yaml", &spec), ("augmented.yaml", &augmented)] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let plain = run(path_str(&dir.join("plain.yaml")), "native", "augment-plain");
    let record = run(
        path_str(&dir.join("augmented.yaml")),
        "native,candle",
        "augment-both",
    );
    let (native, candle) = (losses(&record["runs"][0]), losses(&record["runs"][1]));
    for (step, (a, b)) in native.iter().zip(&candle).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs(),
            "step {step}: native {a}, candle {b}"
        );
    }
    // Same initial weights, same rows, other pixels: the loss differs from the first step.
    let unaugmented = losses(&plain["runs"][0]);
    assert!(
        (native[0] - unaugmented[0]).abs() > 1e-6,
        "augmentation changed nothing: {native:?} {unaugmented:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
