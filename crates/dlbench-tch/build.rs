//! Links this crate's tests against libtorch so that they run without LD_LIBRARY_PATH and keep
//! libtorch_cuda (see `dlbench-torch-link`), and records the libtorch version for
//! `TchBackend::version`.
//!
//! It also compiles `cpp/end_tracing.cpp`, the one function of the TorchScript export that
//! tch's C API lacks (ending a trace with a tuple output), and `cpp/precision.cpp` (IEEE
//! float32 on CUDA, which tch cannot set either), against libtorch's headers beside
//! that folder (`<lib>/../include`, as in both the pip wheel and the libtorch archive), with
//! the compiler's default C++11 string ABI, which libtorch 2.8 and later use throughout.

use std::path::Path;

fn main() {
    let Some(dir) = dlbench_torch_link::link_libtorch() else {
        println!("cargo:rustc-env=DLBENCH_LIBTORCH_VERSION=unknown");
        return;
    };
    compile_shim(&dir);
    println!(
        "cargo:rustc-env=DLBENCH_LIBTORCH_VERSION={}",
        libtorch_version(&dir)
    );
}

/// Builds our C++ (`cpp/end_tracing.cpp`, `cpp/precision.cpp`) into a static library linked
/// into this crate.
fn compile_shim(lib: &Path) {
    let sources = ["cpp/end_tracing.cpp", "cpp/precision.cpp"];
    for source in sources {
        println!("cargo:rerun-if-changed={source}");
    }
    let include = lib.parent().unwrap_or(lib).join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .std("c++17")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        // libtorch's headers are not warning-free; ours is checked by reading.
        .warnings(false)
        .files(sources)
        .compile("dlbench_tch_shim");
}

/// The version of the libtorch in `lib`: a pip wheel has `torch/version.py` beside `torch/lib`,
/// a libtorch archive has `build-version` beside its `lib`.
fn libtorch_version(lib: &Path) -> String {
    let Some(root) = lib.parent() else {
        return "unknown".into();
    };
    let version_py = root.join("version.py");
    println!("cargo:rerun-if-changed={}", version_py.display());
    if let Ok(text) = std::fs::read_to_string(&version_py) {
        let found = text.lines().find_map(|line| {
            let value = line.strip_prefix("__version__")?.split('=').nth(1)?;
            Some(
                value
                    .trim()
                    .trim_matches(|c| c == '\'' || c == '"')
                    .to_string(),
            )
        });
        if let Some(version) = found {
            return version;
        }
    }
    std::fs::read_to_string(root.join("build-version"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
