//! The fuzzer's own guards: a panic, an allocation over the cap, a hang and an abort are each
//! caught, saved with their cause, and the run goes on to the next input.

use std::path::{Path, PathBuf};
use std::process::Command;

fn write_inputs(dir: &Path, inputs: &[&str]) -> Vec<PathBuf> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let path = dir.join(format!("{i}-{text}"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

#[test]
fn every_guard_reports_its_input_and_the_run_goes_on() {
    let dir = std::env::temp_dir().join(format!("dlbench-fuzz-guards-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files = write_inputs(
        &dir,
        &["ok", "panic", "ok", "memory", "hang", "ok", "abort", "ok"],
    );
    let out = dir.join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_dlbench-fuzz"))
        .arg("selftest")
        .arg("--hang-ms")
        .arg("300")
        .arg("--out")
        .arg(&out)
        .arg("--replay")
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("selftest: 8 inputs"), "{stdout}");
    assert!(stdout.contains("4 failures"), "{stdout}");
    let cause = |name: &str| std::fs::read_to_string(out.join("selftest").join(name)).unwrap();
    assert!(
        cause("1-panic.msg").starts_with("panic: selftest panic"),
        "{}",
        cause("1-panic.msg")
    );
    assert!(
        cause("3-memory.msg").starts_with("memory: an allocation of 2147483648 bytes"),
        "{}",
        cause("3-memory.msg")
    );
    assert!(
        cause("4-hang.msg").starts_with("hang: the input ran for over 300 ms"),
        "{}",
        cause("4-hang.msg")
    );
    assert!(
        cause("6-abort.msg").starts_with("the worker died"),
        "{}",
        cause("6-abort.msg")
    );
    assert_eq!(
        std::fs::read(out.join("selftest/3-memory")).unwrap(),
        b"memory"
    );
    for ok in ["0-ok.msg", "2-ok.msg", "5-ok.msg", "7-ok.msg"] {
        assert!(!out.join("selftest").join(ok).exists(), "{ok} was reported");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_mutation_run_is_the_same_inputs_for_the_same_seed() {
    use dlbench_fuzz::Target;
    let corpus = Target::Spec.corpus();
    for index in [0, 1, 99, 12345] {
        assert_eq!(
            Target::Spec.generate(&corpus, 3, index),
            Target::Spec.generate(&corpus, 3, index)
        );
    }
    assert_ne!(
        Target::Spec.generate(&corpus, 3, 1),
        Target::Spec.generate(&corpus, 4, 1)
    );
}

/// A run resumed at `--from` names its inputs by their index in the whole run, so that a
/// failure found after a restart is saved as the input that failed.
#[test]
fn a_run_from_an_index_reports_that_index() {
    let out = std::env::temp_dir().join(format!("dlbench-fuzz-from-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_dlbench-fuzz"))
        .args(["npy", "--from", "5000", "--runs", "3", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let slowest: u64 = stdout
        .split("slowest input #")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!((5000..5003).contains(&slowest), "{stdout}");
    let _ = std::fs::remove_dir_all(&out);
}
