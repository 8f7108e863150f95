//! The backends compiled into this binary. Each adapter crate comes in behind a cargo feature;
//! the harness receives this list and never names an adapter itself.

use dlbench_core::Backend;
use dlbench_native::reference::ReferenceBackend;

/// Every backend in this build; with the `test-backends` feature, also the deliberately
/// faulty `test-...` backends of `dlbench-testkit`, which the end-to-end tests run.
pub fn backends() -> Vec<Box<dyn Backend>> {
    #[allow(unused_mut)] // extended only with the `test-backends` feature
    let mut all: Vec<Box<dyn Backend>> = vec![Box::new(ReferenceBackend)];
    #[cfg(feature = "test-backends")]
    all.extend(dlbench_testkit::backends());
    all
}

/// Backends that dlbench plans but this build does not contain, and why.
pub const NOT_BUILT: &[(&str, &str)] = &[
    ("native", "dlbench's fast f32 kernels: not implemented yet"),
    ("tch", "libtorch through the tch crate: not implemented yet"),
    ("burn", "burn 0.22 (flex CPU backend): not implemented yet"),
    ("candle", "candle 0.11: not implemented yet"),
    (
        "tract",
        "ONNX through tract-onnx 0.23 (inference only): not implemented yet",
    ),
];
