//! A short run of every target, part of the test command: a parser change that panics, hangs
//! or allocates past the cap on a mutated input fails here. The long runs (a million inputs
//! per target) are in docs/fuzzing.md.

use std::process::Command;

use dlbench_fuzz::Target;

/// Inputs per target: a few seconds each in a debug build.
const RUNS: u64 = 2_000;

#[test]
fn every_target_survives_a_short_run() {
    let out = std::env::temp_dir().join(format!("dlbench-fuzz-short-{}", std::process::id()));
    let mut failed = Vec::new();
    for target in Target::ALL {
        let output = Command::new(env!("CARGO_BIN_EXE_dlbench-fuzz"))
            .arg(target.name())
            .args(["--runs", &RUNS.to_string(), "--seed", "20261205"])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("{stdout}");
        if !output.status.success() || !stdout.contains(&format!("{RUNS} inputs")) {
            failed.push(format!("{}: {stdout}\n{stderr}", target.name()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    let _ = std::fs::remove_dir_all(&out);
}
