//! Helpers shared by the end-to-end tests: running the `dlbench` binary as a user would, and
//! scratch folders. Each test file uses a part of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `dlbench` in `dir`, without `LD_LIBRARY_PATH` (the binary must find libtorch by its
/// rpath) and without `RUST_BACKTRACE` (so a panic's stderr is the same few lines everywhere).
pub fn dlbench_in(dir: &Path, args: &[&str]) -> Output {
    dlbench_with(dir, args, &[])
}

/// `dlbench_in`, with environment variables set (`DLBENCH_ISA`...).
pub fn dlbench_with(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dlbench"))
        .args(args)
        .current_dir(dir)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("RUST_BACKTRACE")
        .envs(vars.iter().copied())
        .output()
        .expect("dlbench runs")
}

/// Runs `dlbench` in the repository's root, where `specs/` and `data/` are.
pub fn dlbench(args: &[&str]) -> Output {
    dlbench_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a zero exit, showing both output streams otherwise.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A fresh, empty scratch folder, named after the test file and `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let file = module_path!().split("::").next().unwrap_or("test");
    let dir = std::env::temp_dir().join(format!("dlbench-{file}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}
