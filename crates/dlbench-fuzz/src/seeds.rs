//! Seed corpora and dictionaries. Seeds come from the repository (its specs and data files) and
//! from dlbench's own writers (models, state dicts, arrays), so that mutation starts from what
//! real users feed the parsers.

use std::path::{Path, PathBuf};

use dlbench_core::{Model, Tensor};
use dlbench_spec::Spec;

use crate::mutate::{gzip, zip_members};
use crate::targets::Target;

/// The repository this crate lives in.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder of a target's regression inputs: every input that once failed.
pub fn regression_dir(target: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(target.name())
}

/// The regression inputs of `target`, sorted by name.
pub fn regression_files(target: Target) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(regression_dir(target))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_none_or(|e| e != "msg"))
        .collect();
    files.sort();
    files
}

/// Regression inputs larger than this are replayed but not mutated: they are bombs, and a
/// corpus of bombs runs a few inputs a second.
const MAX_SEED_BYTES: usize = 16 << 10;

/// The bytes of the small regression inputs of `target`, to seed its mutations.
pub fn regressions(target: Target) -> Vec<Vec<u8>> {
    regression_files(target)
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|bytes| bytes.len() <= MAX_SEED_BYTES)
        .collect()
}

fn read_repository(relative: &str) -> Vec<u8> {
    std::fs::read(repository().join(relative)).unwrap_or_default()
}

/// The first `lines` lines of `bytes`: seeds stay small, so that mutation is fast.
fn head(bytes: &[u8], lines: usize) -> Vec<u8> {
    let mut out: Vec<u8> = bytes
        .split(|&b| b == b'\n')
        .take(lines)
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    out.truncate(bytes.len());
    out
}

/// Small specs that reach every layer and data source, beside the repository's own.
pub(crate) const EXTRA_SPECS: &[&str] = &[
    "model:\n  input: [4]\n  layers:\n    - dense: {units: 3}\n    - softmax\ndata:\n  synthetic: {kind: classification, classes: 3, samples: 16}\ntrain:\n  loss: cross_entropy\n  optimizer: {adam: {lr: 0.01, eps: 1e-8}}\n  batch_size: 4\n  steps: 2\ninference:\n  batch_sizes: [1, 4]\n",
    "model:\n  input: [2, 8, 8]\n  layers:\n    - conv2d: {filters: 3, kernel: 3, stride: 1, padding: 1}\n    - avg_pool2d: {kernel: 2, stride: 2}\n    - dropout: {p: 0.5}\n    - flatten\n    - dense: {units: 2}\ndata:\n  synthetic: {kind: classification, classes: 2, samples: 8}\ntrain:\n  loss: cross_entropy\n  optimizer: {sgd: {lr: 0.1, momentum: 0.9, weight_decay: 0.0001}}\n  batch_size: 2\n  steps: 1\n",
    "model:\n  input: [5, 3]\n  layers:\n    - lstm: {hidden: 4, return: sequence}\n    - reshape: {shape: [20]}\n    - dense: {units: 1}\ndata:\n  synthetic: {kind: regression, samples: 6}\ntrain:\n  loss: mse\n  optimizer: {sgd: {lr: 0.01}}\n  batch_size: 3\n  steps: 1\n",
    "name: series\nmodel:\n  input: [10, 1]\n  layers:\n    - lstm: {hidden: 5, return: last}\n    - dense: {units: 1, activation: sigmoid}\ndata:\n  csv: ../data/sunspots.csv\n  skip_rows: 1\n  windows: {length: 10, column: 1}\n  scale: 0.005\n  standardize: true\n  validation: 0.25\ntrain:\n  loss: binary_cross_entropy\n  optimizer: {adam: {lr: 0.001}}\n  batch_size: 8\n  epochs: 1\n",
];

/// Spec seeds: the repository's specs and [`EXTRA_SPECS`].
pub fn specs() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = ["cnn", "mlp", "rnn", "vae"]
        .iter()
        .map(|name| read_repository(&format!("specs/{name}.yaml")))
        .filter(|b| !b.is_empty())
        .collect();
    out.extend(EXTRA_SPECS.iter().map(|s| s.as_bytes().to_vec()));
    out
}

/// CSV seeds: the heads of the repository's data files, plain and gzipped.
pub fn csvs() -> Vec<Vec<u8>> {
    let digits = read_repository("data/digits.csv.gz");
    let mut out = vec![
        head(&read_repository("data/breast_cancer.csv"), 12),
        head(&read_repository("data/sunspots.csv"), 20),
        b"1,2,3\n4,5,6\n".to_vec(),
        b"a;b\n1.5;2e3\n-0;nan\n".to_vec(),
    ];
    out.push(gzip(&out[0]));
    out.push(digits);
    out
}

/// Arrays of each dtype and rank that `.npy` files hold.
fn arrays() -> Vec<Tensor> {
    [
        Tensor::f32(vec![3, 4], (0..12).map(|i| i as f32 * 0.5).collect()),
        Tensor::f64(vec![2], vec![1.0, -2.0]),
        Tensor::i64(vec![2, 1, 2], vec![1, 2, 3, 4]),
        Tensor::f32(vec![], vec![7.0]),
        Tensor::f64(vec![0, 3], vec![]),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A `.npy` header for `descr` and `shape` followed by `data`, for dtypes dlbench does not
/// write (it must still read or refuse them).
fn npy_with(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.bytes());
    out.extend(data);
    out
}

/// `.npy` seeds.
pub fn npys() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = arrays().iter().map(dlbench_data::npy::encode).collect();
    out.push(npy_with("|u1", false, "(2, 2)", &[1, 2, 3, 4]));
    out.push(npy_with(
        ">f4",
        false,
        "(2,)",
        &[0x3f, 0x80, 0, 0, 0x40, 0, 0, 0],
    ));
    out.push(npy_with("<f8", true, "(2, 1)", &[0; 16]));
    out.push(npy_with(
        "<i4",
        false,
        "(3,)",
        &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0],
    ));
    out.push(npy_with("<f2", false, "()", &[0, 0x3c]));
    out
}

/// Names that zip members of `.npz` and state-dict archives have, or might.
pub const MEMBER_NAMES: &[&str] = &[
    "x.npy",
    "y.npy",
    "x",
    "archive/data.pkl",
    "archive/data/0",
    "archive/data/1",
    "archive/version",
    "../x.npy",
    "/abs.npy",
];

/// `.npz` seeds: archives of `x` and `y`, stored and deflated.
pub fn npzs() -> Vec<Vec<u8>> {
    let npys = npys();
    let pairs = [(0, 1), (2, 3), (5, 6), (1, 4)];
    let mut out = Vec::new();
    for (deflate, (x, y)) in pairs.iter().enumerate() {
        let members = vec![
            ("x.npy".to_string(), npys[*x].clone()),
            ("y.npy".to_string(), npys[*y].clone()),
        ];
        out.push(zip_members(&members, deflate % 2 == 1));
    }
    out
}

/// Small models from specs: an MLP, a CNN and an LSTM.
fn seed_models() -> Vec<Model> {
    let texts = [EXTRA_SPECS[0], EXTRA_SPECS[1], EXTRA_SPECS[2]];
    texts
        .iter()
        .filter_map(|text| Spec::parse(text, Path::new("seed.yaml")).ok())
        .filter_map(|spec| spec.build_model().ok())
        .collect()
}

/// Writes with one of dlbench's writers into a temporary file and reads the bytes back.
fn written(name: &str, write: impl FnOnce(&Path) -> bool) -> Option<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("dlbench-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(name);
    let bytes = write(&path).then(|| std::fs::read(&path).ok()).flatten();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// Native model seeds, as `dlbench init` writes them.
pub fn models() -> Vec<Vec<u8>> {
    seed_models()
        .iter()
        .filter_map(|m| {
            written("model.safetensors", |p| {
                dlbench_core::format::write(m, p).is_ok()
            })
        })
        .collect()
}

/// State-dict seeds, as `dlbench convert --to pytorch` writes them.
pub fn state_dicts() -> Vec<Vec<u8>> {
    seed_models()
        .iter()
        .filter_map(|m| {
            let tensors: Vec<(String, Tensor)> = m
                .weights
                .iter()
                .map(|(name, t)| (name.clone(), t.clone()))
                .collect();
            written("model.pt", |p| {
                dlbench_formats::pytorch::write_state_dict(p, &tensors).is_ok()
            })
        })
        .collect()
}

/// The JSON header of a safetensors file, if its length prefix is sane.
pub fn safetensors_header(bytes: &[u8]) -> Option<Vec<u8>> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    bytes.get(8..8usize.checked_add(len)?).map(|h| h.to_vec())
}

/// Writes `target`'s corpus to `dir` (one file per seed) and its dictionary to `dict` in
/// libFuzzer's format, for the coverage-guided runs.
pub fn export(target: Target, dir: &Path, dict: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let corpus = target.corpus();
    for (i, seed) in corpus.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), seed)?;
    }
    let lines: String = target
        .dictionary()
        .iter()
        .map(|token| {
            let escaped: String = token
                .iter()
                .map(|&b| match b {
                    b'"' | b'\\' => format!("\\{}", b as char),
                    0x20..=0x7e => (b as char).to_string(),
                    _ => format!("\\x{b:02X}"),
                })
                .collect();
            format!("\"{escaped}\"\n")
        })
        .collect();
    std::fs::write(dict, lines)?;
    Ok(corpus.len())
}

/// Spec tokens: keys, layers, YAML syntax.
pub const SPEC_TOKENS: &[&[u8]] = &[
    b"units: ",
    b"filters: ",
    b"kernel: ",
    b"stride: ",
    b"padding: ",
    b"hidden: ",
    b"rate: ",
    b"samples: ",
    b"batch_size: ",
    b"batch_sizes: [",
    b"upsample: ",
    b"input: [",
    b"steps: ",
    b"epochs: ",
    b"lr: ",
    b"momentum: ",
    b"eps: ",
    b"weight_decay: ",
    b"validation: ",
    b"scale: ",
    b"reshape: [",
    b"windows: {length: ",
    b"column: ",
    b"target_column: ",
    b"skip_rows: ",
    b"seed: ",
    b"threads: ",
    b"name: ",
    b"- dense: {units: ",
    b"- conv2d: {",
    b"- lstm: {hidden: ",
    b"- max_pool2d: {kernel: ",
    b"- flatten\n",
    b"- relu\n",
    b"- softmax\n",
    b"- reshape: {shape: [",
    b"direction: bidirectional",
    b"return: sequence",
    b"- transpose: ",
    b"- concat: ",
    b"- mat_mul",
    b"- add",
    b"- exp",
    b"graph:\n",
    b"nodes:\n",
    b"inputs: ",
    b"outputs: ",
    b"op: ",
    b"csv: ",
    b"npz: ",
    b"npy: ",
    b"synthetic: {kind: ",
    b"sequence",
    b"reconstruction",
    b"file: ",
    b"/dev/zero",
    b"../data/digits.csv.gz",
    b"&a ",
    b"*a",
    b"<<: *a",
    b"!!binary ",
    b"---\n",
    b"...\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b", ",
    b": ",
    b"\n  ",
    b"\n    - ",
    b"'",
    b"\"",
    b"\t",
    b"\xef\xbb\xbf",
    b"~",
    b"null",
    b"true",
];

/// CSV tokens.
pub const CSV_TOKENS: &[&[u8]] = &[
    b",",
    b";",
    b"\n",
    b"\r\n",
    b"\"",
    b"nan",
    b"inf",
    b"-",
    b"1e400",
    b"0x10",
    b" ",
    b"\t",
    b"\x1f\x8b",
    b",,",
    b"\"a,b\"",
];

/// `.npy` header tokens.
pub const NPY_TOKENS: &[&[u8]] = &[
    b"\x93NUMPY",
    b"\x01\x00",
    b"\x02\x00",
    b"\x03\x00",
    b"'descr': ",
    b"'<f4'",
    b"'<f8'",
    b"'<i8'",
    b"'|u1'",
    b"'>f4'",
    b"'<f2'",
    b"'<c8'",
    b"'|O'",
    b"'<U3'",
    b"'fortran_order': ",
    b"True",
    b"False",
    b"'shape': (",
    b"(4294967296, 4294967296, 4294967296)",
    b"(4611686018427387904, 4)",
    b",)",
    b"()",
    b"{",
    b"}",
    b"-1",
    b"\n",
];

/// Safetensors header tokens: JSON and the graph's own keys.
pub const SAFETENSORS_TOKENS: &[&[u8]] = &[
    b"\"dtype\":",
    b"\"F32\"",
    b"\"F64\"",
    b"\"I64\"",
    b"\"BF16\"",
    b"\"U8\"",
    b"\"shape\":[",
    b"\"data_offsets\":[",
    b"\"__metadata__\":{",
    b"dlbench.graph",
    b"\\\"op\\\"",
    b"\\\"shape\\\":[",
    b"\\\"nodes\\\":[",
    b"\\\"kernel\\\":",
    b"\\\"stride\\\":",
    b"\\\"padding\\\":",
    b"\\\"units\\\":",
    b"\\\"hidden\\\":",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b"\"",
    b"\\\"",
];

/// Pickle opcodes and the globals a state dict names.
pub const PICKLE_TOKENS: &[&[u8]] = &[
    b"\x80\x02",
    b"}",
    b"]",
    b")",
    b"(",
    b"t",
    b"R",
    b"b",
    b"s",
    b"u",
    b"e",
    b"a",
    b".",
    b"\x85",
    b"\x86",
    b"\x87",
    b"Q",
    b"\x94",
    b"q\x00",
    b"r\xff\xff\xff\x7f",
    b"h\x00",
    b"j\xff\xff\xff\x7f",
    b"K\xff",
    b"J\xff\xff\xff\x7f",
    b"M\xff\xff",
    b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f",
    b"X\xff\xff\xff\x7f",
    b"X\x01\x00\x00\x00x",
    b"\x89",
    b"\x88",
    b"N",
    b"G\x7f\xf8\x00\x00\x00\x00\x00\x00",
    b"ctorch._utils\n_rebuild_tensor_v2\n",
    b"ccollections\nOrderedDict\n",
    b"ctorch\nFloatStorage\n",
    b"ctorch\nLongStorage\n",
    b"cos\nsystem\n",
    b"cbuiltins\neval\n",
    b"X\x07\x00\x00\x00storage",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extra_spec_builds_its_model_and_data() {
        for text in EXTRA_SPECS {
            let spec = Spec::parse(text, &repository().join("specs/seed.yaml")).unwrap();
            spec.build_model().unwrap();
            spec.load_data().unwrap();
        }
    }

    #[test]
    fn every_target_has_seeds() {
        for target in Target::ALL {
            assert!(target.corpus().len() >= 3, "{}", target.name());
        }
    }
}
