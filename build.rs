//! With the `tch` feature, links the `dlbench` binary (and the root package's tests) so that it
//! finds libtorch at run time without LD_LIBRARY_PATH and keeps libtorch_cuda. Without the
//! feature it does nothing, so a plain `cargo build` never needs libtorch.
//!
//! torch-sys, a direct optional dependency for this reason, publishes libtorch's library folder
//! as `DEP_TCH_LIBTORCH_LIB` (its `links = "tch"` metadata). We pass the linker `-rpath <dir>`,
//! then `--no-as-needed -ltorch_cuda`: nothing references libtorch_cuda by symbol, so with the
//! default `--as-needed` it is dropped and CUDA is reported unavailable (tch-rs issue 980).
//! crates/dlbench-tch/build.rs does the same for that crate's tests: link arguments do not
//! propagate from a library to the binaries that use it.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    let Ok(dir) = env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=the tch feature is on but torch-sys gave no libtorch folder");
        return;
    };
    let dir = Path::new(&dir);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    println!("cargo:rustc-link-arg=-L{}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    if dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
    println!("cargo:rustc-link-arg=-ltorch");
}
