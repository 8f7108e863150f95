//! Process per backend, end to end: `dlbench run` with the deliberately faulty `test-...`
//! backends (the `test-backends` feature) records each crash, panic, error and hang as that
//! backend's failure, and keeps the reference's results.

#![cfg(feature = "test-backends")]

mod common;

use common::{dlbench_in, temp_dir, text};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

fn mlp_spec() -> String {
    format!("{}/specs/mlp.yaml", env!("CARGO_MANIFEST_DIR"))
}

/// The runs of `dir/out/results.json`, by backend name.
fn runs(dir: &Path) -> Vec<Value> {
    let record: Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/results.json")).unwrap()).unwrap();
    record["runs"].as_array().unwrap().clone()
}

fn run_of<'a>(runs: &'a [Value], backend: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["backend"] == backend)
        .unwrap_or_else(|| panic!("no run of {backend} in {runs:?}"))
}

fn error_of(run: &Value) -> &str {
    run["error"].as_str().unwrap_or_default()
}

/// The reference ran to the end, in its own worker.
fn assert_reference_ok(runs: &[Value]) {
    let reference = run_of(runs, "reference");
    assert_eq!(reference["status"], "ok", "{reference}");
    assert_eq!(
        reference["training"]["losses"].as_array().unwrap().len(),
        30
    );
    assert!(reference["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    let notes = reference["notes"].to_string();
    assert!(!notes.contains("in-process"), "{notes}");
}

#[test]
fn crashes_panics_and_errors_are_each_a_failed_run_and_the_reference_is_kept() {
    let dir = temp_dir("faults");
    let out = dlbench_in(
        &dir,
        &[
            "run",
            &mlp_spec(),
            "--backends",
            "reference,test-abort,test-segfault,test-panic,test-error",
            "--quick",
            "--out",
            "out",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{stderr}",
        text(&out.stdout)
    );
    let runs = runs(&dir);
    assert_eq!(runs.len(), 5);
    assert_reference_ok(&runs);
    for (backend, cause) in [
        ("test-abort", "killed by SIGABRT"),
        ("test-segfault", "killed by SIGSEGV"),
        (
            "test-panic",
            "panicked: test-panic: index out of bounds (on purpose)",
        ),
        (
            "test-error",
            "test-error: out of device memory (on purpose)",
        ),
    ] {
        let run = run_of(&runs, backend);
        assert_eq!(run["status"], "failed", "{run}");
        let error = error_of(run);
        assert!(error.contains(cause), "{backend}: {error}");
        // The worker's stderr tail follows the cause; it names the worker's run.
        assert!(error.contains("the worker's stderr"), "{backend}: {error}");
        assert!(
            error.contains(&format!("{backend} cpu x1")),
            "{backend}: {error}"
        );
        if backend == "test-panic" {
            // The panic hook's report, with the place that panicked.
            assert!(error.contains("faults.rs"), "{error}");
        }
        // Each failure is also told as it happens, after the progress the worker reported.
        assert!(
            stderr.contains(&format!("{backend} cpu x1: failed")),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("reference cpu x1: trained 30 steps"),
        "{stderr}"
    );
}

#[test]
fn a_hanging_backend_times_out_and_the_reference_is_kept() {
    let dir = temp_dir("hang");
    let started = Instant::now();
    let out = dlbench_in(
        &dir,
        &[
            "run",
            &mlp_spec(),
            "--backends",
            "test-hang,reference",
            "--quick",
            "--timeout",
            "5",
            "--out",
            "out",
        ],
    );
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    assert!(elapsed >= Duration::from_secs(5), "took {elapsed:?}");
    let runs = runs(&dir);
    assert_reference_ok(&runs);
    let hang = run_of(&runs, "test-hang");
    assert_eq!(hang["status"], "failed");
    assert!(
        error_of(hang).contains("timed out after 5 s"),
        "{}",
        error_of(hang)
    );
}

#[test]
fn the_worker_subcommand_is_hidden_and_refuses_an_unknown_backend() {
    let dir = temp_dir("hidden");
    let help = text(&dlbench_in(&dir, &["--help"]).stdout);
    assert!(!help.contains("worker"), "{help}");
    let out = dlbench_in(
        &dir,
        &[
            "worker",
            "--spec",
            &mlp_spec(),
            "--backend",
            "nonesuch",
            "--device",
            "cpu",
            "--threads",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("nonesuch"),
        "{}",
        text(&out.stderr)
    );
}
