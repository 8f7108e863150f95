//! Crafted `.npy` and `.npz` files that must be refused as bad input, naming the file, the
//! array and what is wrong, before anything sized by the file is allocated: shapes whose size
//! overflows, headers that promise more data than the file holds, devices, zip members that
//! inflate without end, and float arrays holding NaN or infinities.

use std::io::Write;
use std::path::{Path, PathBuf};

use dlbench_core::limits::Limits;
use dlbench_core::Tensor;
use dlbench_data::npy::{encode, read_npy_with, read_npz_with};

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dlbench-hostile-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn limits() -> Limits {
    Limits::defaults(16 << 30)
}

/// A version 1 `.npy` header for `shape` (a Python tuple's text) of `descr`, no data.
fn header(descr: &str, shape: &str) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((dict.len() as u16).to_le_bytes());
    bytes.extend(dict.as_bytes());
    bytes
}

fn npy_err(path: &Path, limits: &Limits) -> String {
    read_npy_with(path, limits).unwrap_err().to_string()
}

/// An archive of `(member, bytes, deflated)`.
fn npz(name: &str, members: &[(&str, &[u8])]) -> PathBuf {
    let path = dir().join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    for (member, bytes) in members {
        zip.start_file(*member, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

#[test]
fn shapes_whose_size_overflows_are_refused() {
    let path = fixture(
        "wrap.npy",
        &header("<f8", "(4294967296, 4294967296, 4294967296)"),
    );
    let err = npy_err(&path, &limits());
    assert!(
        err.contains("wrap.npy: shape [4294967296, 4294967296, 4294967296] has more elements"),
        "{err}"
    );
    let path = fixture("wide.npy", &header("<f4", "(4611686018427387904, 4)"));
    let err = npy_err(&path, &limits());
    assert!(
        err.contains("wide.npy: shape [4611686018427387904, 4] has more"),
        "{err}"
    );
    let path = fixture("bytes.npy", &header("<f8", "(2305843009213693952,)"));
    let err = npy_err(&path, &limits());
    assert!(
        err.contains("of '<f8' has more bytes than can be counted"),
        "{err}"
    );
    // An empty array whose other dims overflow would break every later size computation.
    let path = fixture("empty.npy", &header("<f4", "(0, 4294967296, 4294967296)"));
    let err = npy_err(&path, &limits());
    assert!(
        err.contains("has more elements than can be counted"),
        "{err}"
    );
}

#[test]
fn a_header_that_promises_more_data_than_the_file_holds_is_refused_unread() {
    let path = fixture("promise.npy", &header("<f4", "(1099511627776,)"));
    let err = npy_err(&path, &limits());
    assert!(
        err.contains(
            "promise.npy: shape [1099511627776] of '<f4' needs 4398046511104 bytes of \
             data, the file has 0"
        ),
        "{err}"
    );
}

#[test]
fn an_array_over_the_memory_limit_is_refused() {
    let tensor = Tensor::f32(vec![1000], vec![0.5; 1000]).unwrap();
    let path = fixture("big.npy", &encode(&tensor));
    let limits = Limits {
        memory_bytes: 4096,
        ..limits()
    };
    let err = npy_err(&path, &limits);
    assert!(
        err.contains("big.npy: shape [1000] of '<f4' needs 7.8 KiB, over the memory limit"),
        "{err}"
    );
}

#[test]
fn a_device_fails_on_the_magic() {
    let err = npy_err(Path::new("/dev/zero"), &limits());
    assert!(
        err.starts_with("/dev/zero: not a .npy file (it does not start with"),
        "{err}"
    );
}

#[test]
fn a_header_full_of_junk_is_quoted_briefly() {
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend((1u32 << 20).to_le_bytes());
    bytes.extend(vec![b'x'; 1 << 20]);
    let err = npy_err(&fixture("junk.npy", &bytes), &limits());
    assert!(
        err.contains("junk.npy: the header has no 'descr'"),
        "{}",
        &err[..100]
    );
    assert!(err.len() < 400, "{} bytes", err.len());
    let mut long = b"\x93NUMPY\x02\x00".to_vec();
    long.extend(u32::MAX.to_le_bytes());
    let err = npy_err(&fixture("long.npy", &long), &limits());
    assert!(
        err.contains("the header is 4294967295 bytes, more than the 1.0 MiB"),
        "{err}"
    );
}

#[test]
fn an_npz_member_that_inflates_past_its_cap_is_refused() {
    // 8 MiB of zeros deflate to a few KiB; the cap is lowered to 1 MiB to keep the test small
    // (the 64 MiB floor takes the same path).
    let zeros = Tensor::f64(vec![1 << 20], vec![0.0; 1 << 20]).unwrap();
    let mut lying = header("<f8", "(10,)");
    lying.extend(vec![0u8; 8 << 20]);
    let junk = vec![0u8; 8 << 20];
    let path = npz(
        "bomb.npz",
        &[
            ("x.npy", &encode(&zeros)),
            ("y.npy", &lying),
            ("z.npy", &junk),
        ],
    );
    assert!(std::fs::metadata(&path).unwrap().len() < 200 << 10);
    let limits = Limits {
        decompressed_bytes: 1 << 20,
        ..limits()
    };
    let err = read_npz_with(&path, "x", &limits).unwrap_err().to_string();
    assert!(
        err.contains("bomb.npz: array `x`: shape [1048576] of '<f8' needs 8388608 bytes of data")
            && err.contains("expands to more than 1.0 MiB"),
        "{err}"
    );
    // A header that declares less than the member holds: read up to one byte past it.
    let err = read_npz_with(&path, "y", &limits).unwrap_err().to_string();
    assert!(
        err.contains(
            "array `y`: shape [10] of '<f8' needs 80 bytes of data, the file \
         has more than 80"
        ),
        "{err}"
    );
    let err = read_npz_with(&path, "z", &limits).unwrap_err().to_string();
    assert!(err.contains("array `z`: not a .npy file"), "{err}");
}

#[test]
fn non_finite_floats_are_refused_by_flat_index() {
    let nan = Tensor::f32(vec![2, 2], vec![0.0, 1.0, 2.0, f32::NAN]).unwrap();
    let err = npy_err(&fixture("nan.npy", &encode(&nan)), &limits());
    assert!(
        err.contains("nan.npy: the value at flat index 3 is NaN: data must be finite"),
        "{err}"
    );
    let inf = Tensor::f64(vec![3], vec![f64::NEG_INFINITY, 0.0, 0.0]).unwrap();
    let big = Tensor::f64(vec![2], vec![0.0, 1e300]).unwrap();
    let labels = Tensor::i64(vec![2], vec![0, i64::MAX]).unwrap();
    let path = npz(
        "nonfinite.npz",
        &[
            ("x.npy", &encode(&inf)),
            ("big.npy", &encode(&big)),
            ("y.npy", &encode(&labels)),
        ],
    );
    let err = read_npz_with(&path, "x", &limits())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nonfinite.npz: array `x`: the value at flat index 0 is -inf"),
        "{err}"
    );
    let err = read_npz_with(&path, "big", &limits())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("index 1 is 1e300, beyond the f32 range"),
        "{err}"
    );
    assert_eq!(read_npz_with(&path, "y", &limits()).unwrap(), labels);
}
