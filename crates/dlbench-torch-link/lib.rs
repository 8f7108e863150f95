//! Shared by the build scripts of every package whose binaries, tests or benchmarks call
//! libtorch (the root `dlbench` package, `dlbench-tch`, `dlbench-benchmarks`): link arguments
//! do not propagate from a library to the binaries that use it, so each package passes them
//! itself, through this one function.
//!
//! torch-sys publishes the folder holding libtorch's shared libraries as `DEP_TCH_LIBTORCH_LIB`
//! (its `links = "tch"` metadata), visible to the build script of any package that depends on
//! torch-sys directly. From it we pass the linker:
//! - `-rpath <dir>`: the binaries find libtorch at run time without LD_LIBRARY_PATH;
//! - `--no-as-needed -ltorch_cuda`: the pip wheel's CUDA kernels live in libtorch_cuda, which
//!   nothing references by symbol; with the default `--as-needed` the linker drops it and CUDA
//!   is reported unavailable (tch-rs issue 980);
//! - `-ltorch`.

use std::env;
use std::path::PathBuf;

/// Prints the link arguments for the libtorch torch-sys found and returns its library folder;
/// `None` (nothing printed) when the calling package's torch-sys dependency is not in the
/// build. Call from a build script only: it writes `cargo:` instructions to stdout.
pub fn link_libtorch() -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let dir = PathBuf::from(env::var_os("DEP_TCH_LIBTORCH_LIB")?);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    println!("cargo:rustc-link-arg=-L{}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    if dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
    println!("cargo:rustc-link-arg=-ltorch");
    Some(dir)
}
