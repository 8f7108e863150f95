//! Reading the `.pt` files real torch wrote (tests/fixtures, made by
//! tests/golden/state_dict.py), and writing files that read back the same.

mod support;

use std::path::Path;

use dlbench_core::{Data, Tensor};
use dlbench_formats::pytorch::{read_state_dict, write_state_dict};
use dlbench_formats::Error;
use support::{assert_matches, expected, fixture, temp_dir};

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
