//! Every input that once made a parser fail (`regressions/<target>/`) is replayed under the
//! guards, and must now be parsed or refused cleanly.

use std::process::Command;

use dlbench_fuzz::seeds::regression_files;
use dlbench_fuzz::Target;

#[test]
fn every_regression_input_is_handled() {
    let out = std::env::temp_dir().join(format!("dlbench-fuzz-regressions-{}", std::process::id()));
    let mut replayed = 0;
    for target in Target::ALL {
        let files = regression_files(target);
        if files.is_empty() {
            continue;
        }
        replayed += files.len();
        let output = Command::new(env!("CARGO_BIN_EXE_dlbench-fuzz"))
            .arg(target.name())
            .arg("--out")
            .arg(&out)
            .arg("--replay")
            .args(&files)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}\n{}",
            target.name(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(replayed > 0, "no regression inputs found");
    let _ = std::fs::remove_dir_all(&out);
}
