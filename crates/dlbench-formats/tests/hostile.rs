//! Crafted state_dict files whose sizes are hostile must be refused as bad input naming the
//! file and the tensor, before the reader allocates what they ask for: one storage element
//! expanded (stride 0) under many names, shapes and storages whose sizes overflow or exceed
//! the memory limit, and compressed entries that inflate past their cap.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};

use dlbench_core::limits::Limits;
use dlbench_core::DType;
use dlbench_formats::pytorch::pickle::TensorRef;
use dlbench_formats::pytorch::{gather, read_state_dict_with};
use support::temp_dir;

fn limits() -> Limits {
    Limits::defaults(16 << 30)
}

/// Hand-assembled pickle opcodes (protocol 2), as torch writes them for a state_dict.
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend(format!("{module}\n{name}\n").as_bytes());
    }

    fn string(&mut self, text: &str) {
        self.0.push(b'X');
        self.0.extend((text.len() as u32).to_le_bytes());
        self.0.extend(text.as_bytes());
    }

    /// LONG1 of 8 bytes: any count below 2^63.
    fn int(&mut self, v: u64) {
        self.0.extend([0x8a, 8]);
        self.0.extend(v.to_le_bytes());
    }

    fn ints(&mut self, values: &[u64]) {
        self.0.push(b'(');
        values.iter().for_each(|&v| self.int(v));
        self.0.push(b't');
    }

    /// `_rebuild_tensor_v2` of a view on the float storage `key` of `numel` elements.
    fn tensor(&mut self, key: &str, numel: u64, offset: u64, shape: &[u64], stride: &[u64]) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.0.extend(b"((");
        self.string("storage");
        self.global("torch", "FloatStorage");
        self.string(key);
        self.string("cpu");
        self.int(numel);
        self.0.extend(b"tQ");
        self.int(offset);
        self.ints(shape);
        self.ints(stride);
        self.0.push(0x89);
        self.global("collections", "OrderedDict");
        self.0.extend(b")RtR");
    }

    /// A state_dict of the entries `body` pushes (name, tensor pairs).
    fn state_dict(body: impl FnOnce(&mut Pickle)) -> Vec<u8> {
        let mut p = Pickle::default();
        p.0.extend([0x80, 2]);
        p.global("collections", "OrderedDict");
        p.0.extend(b")R(");
        body(&mut p);
        p.0.extend(b"u.");
        p.0
    }
}

/// A torch archive of `data.pkl` and the storages `data/<i>`, each stored or deflated.
fn archive(path: &Path, pickle: &[u8], storages: &[(&[u8], bool)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = stored
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    zip.start_file("archive/data.pkl", stored).unwrap();
    zip.write_all(pickle).unwrap();
    for (i, (bytes, deflate)) in storages.iter().enumerate() {
        let options = if *deflate { deflated } else { stored };
        zip.start_file(format!("archive/data/{i}"), options)
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn file(name: &str, pickle: &[u8], storages: &[(&[u8], bool)]) -> PathBuf {
    let path = temp_dir(name).join("model.pt");
    archive(&path, pickle, storages);
    path
}

fn err(path: &Path, limits: &Limits) -> String {
    read_state_dict_with(path, limits).unwrap_err().to_string()
}

#[test]
fn one_element_expanded_under_many_names_is_held_to_the_memory_limit() {
    // One f32 expanded to 2^20 elements (4 MiB), memoized, then named 1000 times: 4 GiB from
    // a file of a few kilobytes. Under a 16 MiB limit the fourth copy is refused.
    let pickle = Pickle::state_dict(|p| {
        p.string("t0");
        p.tensor("0", 1, 0, &[1 << 20], &[0]);
        p.0.extend([b'q', 0]);
        for i in 1..1000 {
            p.string(&format!("t{i}"));
            p.0.extend([b'h', 0]);
        }
    });
    let path = file("expanded", &pickle, &[(&[0; 4], false)]);
    assert!(std::fs::metadata(&path).unwrap().len() < 16 << 10);
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..limits()
    };
    let e = err(&path, &limits);
    assert!(
        e.contains("model.pt: `t3`: the state_dict up to it needs 16.0 MiB, over the memory limit"),
        "{e}"
    );
}

#[test]
fn storages_and_shapes_whose_sizes_overflow_or_exceed_memory_are_refused() {
    let huge_storage = Pickle::state_dict(|p| {
        p.string("w");
        p.tensor("0", 1 << 40, 0, &[1], &[1]);
    });
    let e = err(
        &file("huge-storage", &huge_storage, &[(&[0; 4], false)]),
        &limits(),
    );
    assert!(
        e.contains("model.pt: `w`: the state_dict up to it needs 4.0 TiB, over the memory"),
        "{e}"
    );
    let wide = Pickle::state_dict(|p| {
        p.string("w");
        p.tensor("0", 4, 0, &[1 << 62, 4], &[1, 1]);
    });
    let e = err(&file("wide", &wide, &[(&[0; 16], false)]), &limits());
    assert!(
        e.contains("`w`: size [4611686018427387904, 4] overflows"),
        "{e}"
    );
    let far = Pickle::state_dict(|p| {
        p.string("w");
        p.tensor("0", 4, 1 << 62, &[2], &[1 << 62]);
    });
    let e = err(&file("far", &far, &[(&[0; 16], false)]), &limits());
    assert!(
        e.contains("`w`: the view (offset 4611686018427387904"),
        "{e}"
    );
}

#[test]
fn a_compressed_storage_that_inflates_past_its_cap_is_refused() {
    let zeros = vec![0u8; 8 << 20];
    let pickle = Pickle::state_dict(|p| {
        p.string("w");
        p.tensor("0", 2 << 20, 0, &[2 << 20], &[1]);
    });
    let path = file("inflated", &pickle, &[(&zeros, true)]);
    assert!(std::fs::metadata(&path).unwrap().len() < 200 << 10);
    let limits = Limits {
        decompressed_bytes: 1 << 20,
        ..limits()
    };
    let e = err(&path, &limits);
    assert!(
        e.contains("model.pt: entry `archive/data/0` holds 8388608 bytes, at most 1048576"),
        "{e}"
    );
}

#[test]
fn gather_refuses_empty_views_with_overflowing_dims_and_ragged_strides() {
    let view = |shape: &[usize], stride: &[usize]| TensorRef {
        storage: 0,
        offset: 0,
        shape: shape.to_vec(),
        stride: stride.to_vec(),
    };
    let e = gather(
        &[],
        DType::F32,
        0,
        &view(&[0, 1 << 62, 8], &[0, 0, 0]),
        false,
    )
    .unwrap_err();
    assert!(e.contains("overflows"), "{e}");
    let e = gather(&[0; 8], DType::F32, 2, &view(&[2, 1], &[1]), false).unwrap_err();
    assert!(e.contains("differ in rank"), "{e}");
}
