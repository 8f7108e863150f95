//! The `onnx` target of `dlbench-fuzz` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dlbench_fuzz::coverage::run(dlbench_fuzz::Target::Onnx, data);
});
