//! Shared by the integration tests: the repository's paths, the torch Python, the fixtures'
//! expected values.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dlbench_core::{DType, Data, InputRole, Model, Tensor, Values};
use serde_json::Value;

/// The repository root (this crate is `crates/dlbench-formats`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Runs `tests/golden/state_dict.py MODE ARG` and returns its stdout.
pub fn golden(python: &Path, mode: &str, arg: &Path) -> String {
    let out = Command::new(python)
        .arg(repo_root().join("tests/golden/state_dict.py"))
        .arg(mode)
        .arg(arg)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "state_dict.py {mode} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dlbench-formats-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// torch's dtype name for a tensor.
pub fn torch_dtype(t: &Tensor) -> &'static str {
    match t.data() {
        Data::F32(_) => "float32",
        Data::F64(_) => "float64",
        Data::I64(_) => "int64",
    }
}

/// The elements as the JSON's `bits`: IEEE-754 bit patterns for floats, values for ints.
pub fn bits(t: &Tensor) -> Vec<Value> {
    match t.data() {
        Data::F32(v) => v.iter().map(|x| Value::from(x.to_bits())).collect(),
        Data::F64(v) => v.iter().map(|x| Value::from(x.to_bits())).collect(),
        Data::I64(v) => v.iter().map(|&x| Value::from(x)).collect(),
    }
}

/// Checks a tensor against its description by `state_dict.py` (dtype, shape, and its bits or
/// its checksums).
pub fn assert_matches(name: &str, t: &Tensor, expected: &Value) {
    assert_eq!(torch_dtype(t), expected["dtype"], "{name}: dtype");
    let shape: Vec<usize> = serde_json::from_value(expected["shape"].clone()).unwrap();
    assert_eq!(t.shape(), shape, "{name}: shape");
    let bits = bits(t);
    if let Some(all) = expected["bits"].as_array() {
        assert_eq!(&bits, all, "{name}: values");
        return;
    }
    let first = expected["first_bits"].as_array().unwrap();
    assert_eq!(
        &bits[..first.len()],
        first.as_slice(),
        "{name}: first values"
    );
    let values = t.to_f64_vec();
    let sum: f64 = values.iter().sum();
    let weighted: f64 = values
        .iter()
        .enumerate()
        .map(|(i, x)| (i + 1) as f64 * x)
        .sum();
    for (what, got) in [("sum", sum), ("weighted", weighted)] {
        let want = expected[what].as_f64().unwrap();
        // Both sides sum float64s, in different orders.
        let scale = values.iter().map(|x| x.abs()).sum::<f64>() * values.len() as f64;
        assert!(
            (got - want).abs() <= 1e-12 * scale.max(1.0),
            "{name}: {what} {got} != {want}"
        );
    }
}

/// Deterministic values in [-1, 1) (labels and masks are not fed to onnxruntime).
pub fn values(len: usize, salt: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + salt * 104_729) % 2001) as f32 - 1000.0) / 1000.0)
        .collect()
}

/// One batch for every graph input: dropout masks are ones (inference ignores them).
pub fn batch(model: &Model, batch: usize) -> Values {
    model
        .graph
        .inputs
        .iter()
        .enumerate()
        .map(|(k, input)| {
            let shape: Vec<usize> = input.value.shape.iter().map(|d| d.resolve(batch)).collect();
            let len = shape.iter().product();
            let tensor = match (&input.role, input.value.dtype) {
                (InputRole::DropoutMask { .. }, _) => Tensor::f32(shape, vec![1.0; len]),
                (_, DType::I64) => Tensor::i64(shape, vec![0; len]),
                _ => Tensor::f32(shape, values(len, k)),
            };
            (input.value.name.clone(), tensor.unwrap())
        })
        .collect()
}
