//! With the `tch` feature, links the `dlbench` binary (and the root package's tests) so that it
//! finds libtorch at run time without LD_LIBRARY_PATH and keeps libtorch_cuda (see
//! `dlbench-torch-link`). Without the feature it does nothing, so a plain `cargo build` never
//! needs libtorch.

fn main() {
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    if dlbench_torch_link::link_libtorch().is_none() {
        println!("cargo:warning=the tch feature is on but torch-sys gave no libtorch folder");
    }
}
