//! Reading the `.pt` files real torch wrote (tests/fixtures, made by
//! tests/golden/state_dict.py), and writing files that read back the same.

mod support;

use std::path::Path;

use std::io::{Read, Write};

use dlbench_core::{DType, Data, Tensor};
use dlbench_formats::pytorch::pickle::TensorRef;
use dlbench_formats::pytorch::{gather, read_state_dict, write_state_dict, MAX_EXPANDED_ELEMENTS};
use dlbench_formats::Error;
use support::{assert_matches, bits, expected, fixture, temp_dir};

fn check_fixture(name: &str) {
    let tensors = read_state_dict(&fixture(&format!("{name}.pt"))).unwrap();
    let expected = &expected()[name];
    let keys: Vec<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
    let want: Vec<&str> = expected["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, want, "{name}: keys in the file's order");
    for (key, tensor) in &tensors {
        assert_matches(key, tensor, &expected["tensors"][key]);
    }
}

#[test]
fn reads_every_dtype_and_view_torch_saved() {
    // f32, f64, i64 (with 2^62 and i64::MIN), a transposed view, an offset view, a strided
    // slice, an expanded (stride 0) tensor, all on one shared storage; a scalar, an empty
    // tensor, and -0.0 / inf / NaN bit for bit.
    check_fixture("basic");
}

#[test]
fn reads_the_seed_models_torch_saved_with_their_key_names() {
    check_fixture("mlp");
    check_fixture("rnn");
    let rnn = read_state_dict(&fixture("rnn.pt")).unwrap();
    let keys: Vec<&str> = rnn.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "lstm.weight_ih_l0",
            "lstm.weight_hh_l0",
            "lstm.bias_ih_l0",
            "lstm.bias_hh_l0",
            "fc.weight",
            "fc.bias"
        ]
    );
    assert_eq!(rnn[1].1.shape(), [200, 50]);
}

fn error_text(path: &Path) -> String {
    match read_state_dict(path) {
        Ok(t) => panic!("{} read as {} tensors", path.display(), t.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_malicious_file_is_refused_before_anything_runs() {
    let message = error_text(&fixture("malicious.pt"));
    assert!(message.contains("malicious.pt"), "{message}");
    assert!(
        message.contains("refusing global `posix.system`"),
        "{message}"
    );
}

#[test]
fn unsupported_files_say_what_they_are() {
    let message = error_text(&fixture("bf16.pt"));
    assert!(
        message.contains("bf16.pt: `w`: is bfloat16 (torch.BFloat16Storage)"),
        "{message}"
    );
    let message = error_text(&fixture("legacy.pt"));
    assert!(message.contains("legacy torch.save format"), "{message}");
    let message = error_text(&fixture("checkpoint.pt"));
    assert!(
        message.contains("`model`: holds a dict, expected a tensor"),
        "{message}"
    );
    let message = error_text(&fixture("expected.json"));
    assert!(message.contains("not a PyTorch file"), "{message}");
    let message = error_text(&fixture("missing.pt"));
    assert!(message.contains("missing.pt"), "{message}");
}

#[test]
fn a_zip_that_is_not_a_torch_archive_is_refused() {
    let dir = temp_dir("wrong-zip");
    let path = dir.join("model.pt");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file("weights.bin", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"1234").unwrap();
    zip.finish().unwrap();
    let message = error_text(&path);
    assert!(
        message.contains("without `<archive>/data.pkl`"),
        "{message}"
    );
}

#[test]
fn truncated_and_corrupted_files_are_errors_not_panics() {
    let dir = temp_dir("truncated");
    let original = std::fs::read(fixture("basic.pt")).unwrap();
    let path = dir.join("cut.pt");
    for n in (0..original.len()).step_by(97) {
        std::fs::write(&path, &original[..n]).unwrap();
        let _ = error_text(&path);
    }
    // Flip bytes inside the storages and the pickle: either an error or tensors, never a panic.
    let mut state = 7u64;
    for _ in 0..300 {
        let mut bytes = original.clone();
        for _ in 0..3 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let at = (state >> 33) as usize % bytes.len();
            bytes[at] ^= (state >> 13) as u8 | 1;
        }
        std::fs::write(&path, &bytes).unwrap();
        let _ = read_state_dict(&path);
    }
}

#[test]
fn what_dlbench_writes_reads_back_exactly() {
    let dir = temp_dir("round-trip");
    let path = dir.join("model.pt");
    let tensors = vec![
        (
            "dense.weight".to_string(),
            Tensor::f32(vec![2, 3], vec![1.0, -2.5, 3.25, f32::MIN, -0.0, 1e-30]).unwrap(),
        ),
        (
            "x64".to_string(),
            Tensor::f64(vec![2], vec![0.1, -1e300]).unwrap(),
        ),
        (
            "labels".to_string(),
            Tensor::i64(vec![3], vec![i64::MIN, 0, i64::MAX]).unwrap(),
        ),
        (
            "scalar".to_string(),
            Tensor::f32(vec![], vec![7.0]).unwrap(),
        ),
        (
            "empty".to_string(),
            Tensor::f32(vec![0, 4], vec![]).unwrap(),
        ),
    ];
    write_state_dict(&path, &tensors).unwrap();
    assert_eq!(read_state_dict(&path).unwrap(), tensors);
    // Rewriting replaces the file whole; no temporary file is left beside it.
    write_state_dict(&path, &tensors[..1]).unwrap();
    assert_eq!(read_state_dict(&path).unwrap(), tensors[..1]);
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn torch_layout_is_followed_when_writing() {
    let dir = temp_dir("layout");
    let path = dir.join("lin.pt");
    let w = Tensor::new(vec![3], Data::F32(vec![1.0, 2.0, 3.0])).unwrap();
    write_state_dict(&path, &[("w".to_string(), w)]).unwrap();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    for name in ["lin/data.pkl", "lin/byteorder", "lin/data/0", "lin/version"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let entry = zip.by_name("lin/data/0").unwrap();
    assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
    assert_eq!(entry.data_start() % 64, 0, "storages are 64-byte aligned");
}

#[test]
fn duplicate_names_are_refused_when_writing() {
    let dir = temp_dir("duplicate");
    let t = Tensor::f32(vec![1], vec![1.0]).unwrap();
    let err = write_state_dict(
        &dir.join("d.pt"),
        &[("a".to_string(), t.clone()), ("a".to_string(), t)],
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Tensor { ref key, .. } if key == "a"),
        "{err}"
    );
}

#[test]
fn a_recompressed_archive_reads_the_same() {
    // torch writes entries stored; another zip tool may deflate them.
    let dir = temp_dir("deflated");
    let path = dir.join("basic.pt");
    let mut source =
        zip::ZipArchive::new(std::fs::File::open(fixture("basic.pt")).unwrap()).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..source.len() {
        let mut entry = source.by_index(i).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        zip.start_file(entry.name(), options).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
    // Compared bit for bit: the fixture holds a NaN.
    let as_bits = |tensors: Vec<(String, Tensor)>| -> Vec<_> {
        tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.shape().to_vec(), bits(t)))
            .collect()
    };
    assert_eq!(
        as_bits(read_state_dict(&path).unwrap()),
        as_bits(read_state_dict(&fixture("basic.pt")).unwrap())
    );
}

fn view(offset: usize, shape: &[usize], stride: &[usize]) -> TensorRef {
    TensorRef {
        storage: 0,
        offset,
        shape: shape.to_vec(),
        stride: stride.to_vec(),
    }
}

fn le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn gather_follows_offsets_and_strides() {
    let storage = le(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let t = gather(&storage, DType::F32, 7, &view(1, &[3, 2], &[1, 3]), false).unwrap();
    assert_eq!(t.as_f32().unwrap(), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    let t = gather(&storage, DType::F32, 7, &view(6, &[], &[]), false).unwrap();
    assert_eq!((t.shape(), t.as_f32().unwrap()), (&[][..], &[6.0][..]));
    let t = gather(&storage, DType::F32, 7, &view(2, &[2, 2], &[0, 1]), false).unwrap();
    assert_eq!(t.as_f32().unwrap(), [2.0, 3.0, 2.0, 3.0]);
    // An empty view reads nothing, whatever its offset.
    let t = gather(&[], DType::F32, 0, &view(99, &[0, 5], &[5, 1]), false).unwrap();
    assert_eq!(t.shape(), [0, 5]);
    // A big-endian file (byteorder = "big").
    let be: Vec<u8> = [1.5f64, -2.0]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    let t = gather(&be, DType::F64, 2, &view(0, &[2], &[1]), true).unwrap();
    assert_eq!(t.as_f64().unwrap(), [1.5, -2.0]);
}

#[test]
fn gather_refuses_views_outside_their_storage() {
    let storage = le(&[0.0; 6]);
    for (offset, shape, stride) in [
        (0, vec![2, 4], vec![4, 1]),
        (5, vec![2], vec![1]),
        (0, vec![usize::MAX, 2], vec![1, 1]),
        (0, vec![3, 3], vec![usize::MAX, 1]),
        (usize::MAX, vec![1], vec![1]),
    ] {
        let err = gather(
            &storage,
            DType::F32,
            6,
            &view(offset, &shape, &stride),
            false,
        )
        .unwrap_err();
        assert!(
            err.contains("past its storage") || err.contains("overflows"),
            "{shape:?} {stride:?}: {err}"
        );
    }
    // One element expanded (stride 0) into more than the allowed count.
    let err = gather(
        &storage,
        DType::F32,
        6,
        &view(0, &[MAX_EXPANDED_ELEMENTS, 2], &[0, 0]),
        false,
    )
    .unwrap_err();
    assert!(err.contains("expanded"), "{err}");
}
