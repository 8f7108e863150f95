//! The Python with torch that golden and round-trip tests run (`torch.load`, `torch.jit.load`).

use std::path::{Path, PathBuf};

/// The repository's root (this crate is `crates/dlbench-testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A Python with torch: `$DLBENCH_PYTHON`, else the repository's `.venv/bin/python` (made by
/// `scripts/setup-torch.sh`). `None`, with a printed `skipped:` line, when neither is set up,
/// so that `cargo test` works on a machine without torch.
///
/// # Panics
/// When `$DLBENCH_PYTHON` names a file that does not exist: the test command sets it, and a
/// torch check there must run, never skip.
pub fn torch_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DLBENCH_PYTHON").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(p);
        assert!(
            path.exists(),
            "$DLBENCH_PYTHON is {}, which does not exist",
            path.display()
        );
        return Some(path);
    }
    let venv = repo_root().join(".venv/bin/python");
    if venv.exists() {
        Some(venv)
    } else {
        println!("skipped: no torch python ($DLBENCH_PYTHON unset and no .venv/bin/python)");
        None
    }
}
