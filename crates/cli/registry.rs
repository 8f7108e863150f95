//! The backends compiled into this binary. Each adapter crate comes in behind a cargo feature;
//! the harness receives this list and never names an adapter itself.

use dlbench_core::Backend;
use dlbench_native::engine::NativeBackend;
use dlbench_reference::ReferenceBackend;

/// Every backend in this build: the f64 reference and the native f32 engine always; burn,
/// candle and tract with their features (on by default); libtorch with the `tch` feature; with the
/// `test-backends` feature, also the deliberately faulty `test-...` backends of
/// `dlbench-testkit`, which the end-to-end tests run.
pub fn backends() -> Vec<Box<dyn Backend>> {
    #[allow(unused_mut)] // extended only by features
    let mut all: Vec<Box<dyn Backend>> = vec![Box::new(ReferenceBackend), Box::new(NativeBackend)];
    #[cfg(feature = "burn")]
    all.push(Box::new(dlbench_burn::BurnBackend));
    #[cfg(feature = "candle")]
    all.push(Box::new(dlbench_candle::CandleBackend));
    #[cfg(feature = "tract")]
    all.push(Box::new(dlbench_tract::TractBackend));
    #[cfg(feature = "tch")]
    all.push(Box::new(dlbench_tch::TchBackend));
    #[cfg(feature = "test-backends")]
    all.extend(dlbench_testkit::backends());
    all
}

/// How to build the libtorch backend in: the README's recipe, in one line.
pub const TCH_RECIPE: &str = "libtorch 2.11 through tch 0.22: build with the `tch` feature. Run \
    `bash scripts/setup-torch.sh` (creates .venv with torch), then `VIRTUAL_ENV=$PWD/.venv \
    PATH=$PWD/.venv/bin:$PATH LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1 \
    cargo build --release --features tch`";

/// Backends that dlbench plans but this build does not contain, and why (or how to add them).
pub fn not_built() -> Vec<(&'static str, &'static str)> {
    let planned = [
        ("tch", TCH_RECIPE),
        (
            "burn",
            "burn 0.22 (flex CPU backend, pure Rust): build with the `burn` feature, on by default",
        ),
        (
            "candle",
            "candle 0.11 (pure Rust): build with the `candle` feature, on by default",
        ),
        (
            "tract",
            "tract-onnx 0.23 (pure Rust, inference only): build with the `tract` feature, on by \
             default",
        ),
    ];
    let built = backends();
    planned
        .into_iter()
        .filter(|(name, _)| !built.iter().any(|b| b.name() == *name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the feature, `dlbench list` (and a run that asks for tch) gives the recipe;
    /// with it, tch is a backend and not listed as missing.
    #[test]
    fn tch_is_either_built_in_or_explained() {
        let missing = not_built();
        let tch = missing.iter().find(|(name, _)| *name == "tch");
        let built = backends().iter().any(|b| b.name() == "tch");
        assert_eq!(built, cfg!(feature = "tch"));
        match tch {
            Some((_, how)) => {
                assert!(!built);
                for step in [
                    "bash scripts/setup-torch.sh",
                    "--features tch",
                    "LIBTORCH_USE_PYTORCH=1",
                ] {
                    assert!(how.contains(step), "{how}");
                }
            }
            None => assert!(built),
        }
    }
}
