//! Runs one test of this binary again, in a child process, on each other instruction set the
//! machine has, with `DLBENCH_ISA` capping the kernels: so one `cargo test` checks every
//! kernel path (AVX-512, AVX2, portable) wherever it runs, not only the fastest.

use std::process::Command;

use dlbench_native::kernels::isa::{kernel_isa, Isa, ISA_VARIABLE};

/// Set in the children, so that they run only the test asked for.
const CHILD: &str = "DLBENCH_ISA_CHILD";

/// The line a test prints first, which the parent looks for to know the cap took effect.
pub fn announce() {
    let isa = kernel_isa().expect("DLBENCH_ISA names an instruction set");
    eprintln!("native kernels: {isa}");
}

/// Runs `test` (its full name in this binary) once per instruction set below the one this
/// process uses, and fails when a run fails or did not run on the set it was given. Returns
/// the sets it ran (none in a child).
pub fn rerun_on_other_isas(test: &str) -> Vec<Isa> {
    if std::env::var_os(CHILD).is_some() {
        return Vec::new();
    }
    let others: Vec<Isa> = Isa::available().into_iter().skip(1).collect();
    let exe = std::env::current_exe().expect("the test binary's path");
    for isa in &others {
        let output = Command::new(&exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(ISA_VARIABLE, isa.name())
            .env(CHILD, "1")
            .output()
            .expect("the test binary starts again");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && text.contains("1 passed"),
            "`{test}` with {ISA_VARIABLE}={isa} failed:\n{text}"
        );
        assert!(
            text.contains(&format!("native kernels: {isa}\n")),
            "`{test}` with {ISA_VARIABLE}={isa} did not run on {isa}:\n{text}"
        );
        eprintln!("`{test}` passed with {ISA_VARIABLE}={isa}");
    }
    others
}
