//! The entry point of the libFuzzer targets (`fuzz/`, built by cargo-fuzz on nightly Rust):
//! the same [`Target::run`] as the mutation loop, in libFuzzer's process. libFuzzer supplies
//! the guards there (`-rss_limit_mb`, `-malloc_limit_mb`, `-timeout`) and treats a panic as a
//! crash.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::targets::Target;

/// The scratch folder of this process, made once; dlbench's memory limit is set on first use
/// as the mutation loop sets it.
fn scratch() -> &'static PathBuf {
    static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        if std::env::var_os("DLBENCH_MAX_MEMORY").is_none() {
            std::env::set_var("DLBENCH_MAX_MEMORY", crate::FUZZ_MAX_MEMORY);
        }
        let dir = std::env::temp_dir().join(format!("dlbench-libfuzzer-{}", std::process::id()));
        // A folder that cannot be made fails every file target's input loudly (`Err` is fine,
        // a missing folder would only be refused, so check here).
        std::fs::create_dir_all(&dir).expect("creating the fuzz scratch folder");
        dir
    })
}

/// Runs one input; a refusal is fine, a panic is libFuzzer's crash.
pub fn run(target: Target, data: &[u8]) {
    let _ = target.run(data, scratch());
}
