//! Crafted native model files must be refused as bad input naming the file and what is
//! wrong, before anything sized by the file is allocated: devices, header lengths past the
//! file or the format's limit, shapes whose size overflows, headers that promise more data
//! than the file holds, and weights over the memory limit.

use std::path::{Path, PathBuf};

use dlbench_core::format::{read_safetensors, read_with, to_safetensors};
use dlbench_core::limits::Limits;
use dlbench_core::{Tensor, Values};

fn fixture(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dlbench-format-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn limits() -> Limits {
    Limits::defaults(16 << 30)
}

/// A safetensors file of `header` (JSON) and `data`.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

fn err(path: &Path, limits: &Limits) -> String {
    read_safetensors(path, limits).unwrap_err().to_string()
}

#[test]
fn a_device_is_read_no_further_than_its_header_says() {
    let err = read_with(Path::new("/dev/zero"), &limits())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/dev/zero: not a safetensors file: the header: EOF"),
        "{err}"
    );
}

#[test]
fn header_lengths_past_the_limit_or_the_file_are_refused() {
    let path = fixture("huge-header.safetensors", &u64::MAX.to_le_bytes());
    let e = err(&path, &limits());
    assert!(
        e.contains(
            "huge-header.safetensors: not a safetensors file: a header of \
             18446744073709551615 bytes is longer than the 95.4 MiB"
        ),
        "{e}"
    );
    let mut short = 1000u64.to_le_bytes().to_vec();
    short.extend(b"{}");
    let e = err(&fixture("short.safetensors", &short), &limits());
    assert!(
        e.contains("a header of 1000 bytes, but only 2 bytes follow"),
        "{e}"
    );
    let e = err(&fixture("tiny.safetensors", b"\x01\x02"), &limits());
    assert!(
        e.contains("shorter than the 8 bytes of its header length"),
        "{e}"
    );
}

#[test]
fn shapes_whose_size_overflows_are_refused_by_tensor() {
    let header = r#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#;
    let e = err(
        &fixture("wrap.safetensors", &file(header, &[0; 16])),
        &limits(),
    );
    assert!(
        e.contains(
            "wrap.safetensors: not a safetensors file: tensor `w`: shape \
             [4611686018427387904, 4] of F32 has more bytes than can be counted"
        ),
        "{e}"
    );
    let header = r#"{"w":{"dtype":"F64","shape":[3],"data_offsets":[0,16]}}"#;
    let e = err(
        &fixture("offsets.safetensors", &file(header, &[0; 16])),
        &limits(),
    );
    assert!(
        e.contains("tensor `w`: shape [3] of F64 needs 24 bytes, its offsets [0, 16] hold 16"),
        "{e}"
    );
}

#[test]
fn a_header_that_promises_more_data_than_the_file_holds_is_refused_unread() {
    let header = r#"{"w":{"dtype":"F32","shape":[274877906944],"data_offsets":[0,1099511627776]}}"#;
    let e = err(
        &fixture("promise.safetensors", &file(header, &[])),
        &limits(),
    );
    assert!(
        e.contains(
            "promise.safetensors: not a safetensors file: its header describes \
             1099511627776 bytes of tensor data, the file holds 0"
        ),
        "{e}"
    );
}

#[test]
fn weights_over_the_memory_limit_are_refused() {
    let mut values = Values::new();
    values.insert(
        "w".to_string(),
        Tensor::f32(vec![1000], vec![0.5; 1000]).unwrap(),
    );
    let path = fixture("big.safetensors", &to_safetensors(&values, None).unwrap());
    assert_eq!(read_safetensors(&path, &limits()).unwrap().len() as u64, {
        std::fs::metadata(&path).unwrap().len()
    });
    let small = Limits {
        memory_bytes: 4096,
        ..limits()
    };
    let e = err(&path, &small);
    assert!(
        e.contains("big.safetensors: its tensors needs 7.8 KiB, over the memory limit"),
        "{e}"
    );
}

#[test]
fn a_pipe_that_goes_on_past_its_data_is_refused() {
    let dir = std::env::temp_dir().join(format!("dlbench-format-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("model.safetensors");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let header = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
            // The reader stops early; the broken pipe that follows is expected.
            let _ = pipe.write_all(&file(header, &[0; 8]));
            let zeros = [0u8; 1 << 16];
            for _ in 0..64 {
                if pipe.write_all(&zeros).is_err() {
                    break;
                }
            }
        })
    };
    let e = err(&fifo, &limits());
    writer.join().unwrap();
    std::fs::remove_file(&fifo).unwrap();
    assert!(
        e.contains("model.safetensors: not a safetensors file: more bytes follow the tensor data"),
        "{e}"
    );
}
