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

/// The pids of the live processes whose parent is `parent` (from `/proc/<pid>/stat`).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`; comm may hold spaces, so read after the last `)`.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.len() > 1 && fields[1] == parent.to_string()
        })
        .collect()
}

/// Whether `pid` is still running (a zombie waiting to be reaped has ended).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// `kill -9` of `dlbench run` leaves no worker behind: the hanging backend's worker, which
/// would otherwise sleep until the 1800 s default timeout, ends within seconds.
#[test]
fn killing_the_run_kills_its_worker() {
    let dir = temp_dir("orphan");
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_dlbench"))
        .args(["run", &mlp_spec(), "--backends", "test-hang", "--quick"])
        .args(["--out", "out"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let worker = loop {
        if let Some(&pid) = children_of(run.id()).first() {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no worker started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let the worker reach its hang, then SIGKILL the orchestrator.
    std::thread::sleep(Duration::from_millis(500));
    assert!(running(worker));
    run.kill().unwrap();
    run.wait().unwrap();
    let killed = Instant::now();
    while running(worker) && killed.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !running(worker),
        "worker {worker} still runs {:?} after its parent was killed",
        killed.elapsed()
    );
}
