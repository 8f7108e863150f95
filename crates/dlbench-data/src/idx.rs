//! IDX files, the format of MNIST and Fashion-MNIST (`train-images-idx3-ubyte.gz`), plain or
//! gzipped (detected from the first bytes).
//!
//! The header is two zero bytes, a type code (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32,
//! 0x0E f64), the number of dimensions, then each dimension as a big-endian u32; the values
//! follow, big-endian, row-major. Every value becomes an f32 (exact for the 8- and 16-bit
//! types MNIST-like data uses).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use dlbench_core::limits::{bytes_of, checked_numel, is_over_cap, BoundedReader, Limits};
use dlbench_core::Tensor;

use crate::bounds::{env_limits, read_up_to};
use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// Reads an IDX file into an f32 tensor of its dimensions, under the limits of the
/// environment ([`Limits::from_env`]).
pub fn read_idx(path: &Path) -> Result<Tensor> {
    read_idx_with(path, &env_limits()?)
}

/// Reads images and, optionally, their labels (one per image) into a [`Dataset`]: features
/// f32 `[n, ..]`, targets f32 `[n]`.
pub fn read_idx_dataset(images: &Path, labels: Option<&Path>) -> Result<Dataset> {
    let features = read_idx(images)?;
    let Some(labels_path) = labels else {
        return Dataset::new(features, None);
    };
    let labels = read_idx(labels_path)?;
    if labels.shape().len() != 1 || labels.len() != features.shape()[0] {
        return Err(Error::file(
            labels_path,
            format!(
                "holds labels of shape {:?}; expected one label per image of {} ({} images)",
                labels.shape(),
                images.display(),
                features.shape()[0]
            ),
        ));
    }
    Dataset::new(features, Some(labels))
}

/// [`read_idx`] under `limits`: a gzipped file may expand to [`Limits::decompressed_cap`] of
/// its size, and the values the header announces must fit the memory limit before anything
/// is allocated.
pub fn read_idx_with(path: &Path, limits: &Limits) -> Result<Tensor> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut file, &mut magic).map_err(|e| Error::io(path, e))?;
    let source = (&magic[..got]).chain(file);
    if magic[..got] == [0x1f, 0x8b] {
        let cap = limits.decompressed_cap(len);
        let gunzip = flate2::read::MultiGzDecoder::new(source);
        read_stream(BoundedReader::new(gunzip, cap), path, limits).map_err(|e| match e {
            Error::Io { source, .. } if is_over_cap(&source) => {
                Error::file(path, limits.decompression_message(cap))
            }
            Error::Io { source, .. } => {
                Error::file(path, format!("cannot decompress (gzip): {source}"))
            }
            e => e,
        })
    } else {
        read_stream(source, path, limits)
    }
}

/// The element types of IDX: code, bytes per value.
fn element(code: u8) -> Option<usize> {
    match code {
        0x08 | 0x09 => Some(1),
        0x0B => Some(2),
        0x0C | 0x0D => Some(4),
        0x0E => Some(8),
        _ => None,
    }
}

fn read_stream(mut text: impl Read, path: &Path, limits: &Limits) -> Result<Tensor> {
    let mut header = [0u8; 4];
    let got = read_up_to(&mut text, &mut header).map_err(|e| Error::io(path, e))?;
    let bad_magic = |what: String| {
        Error::file(
            path,
            format!(
                "not an IDX file: {what} (expected 0x00 0x00, a type code 0x08..0x0E and a \
                 dimension count)"
            ),
        )
    };
    if got < 4 || header[0] != 0 || header[1] != 0 {
        return Err(bad_magic(format!(
            "its first bytes are {:02x?}",
            &header[..got]
        )));
    }
    let size = element(header[2])
        .ok_or_else(|| bad_magic(format!("unknown type code 0x{:02x}", header[2])))?;
    let ndim = header[3] as usize;
    if ndim == 0 {
        return Err(bad_magic("zero dimensions".into()));
    }
    let mut dims = vec![0u8; 4 * ndim];
    let got = read_up_to(&mut text, &mut dims).map_err(|e| Error::io(path, e))?;
    if got < dims.len() {
        return Err(Error::file(
            path,
            format!("the header is cut short: {ndim} dimensions announced, {got} bytes of them"),
        ));
    }
    let shape: Vec<usize> = dims
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    let n = checked_numel(&shape).ok_or_else(|| {
        Error::file(
            path,
            format!("dimensions {shape:?} hold more values than can be counted"),
        )
    })?;
    limits
        .check_memory(&format!("its {shape:?} values"), bytes_of(n, 4 + size))
        .map_err(|e| Error::file(path, e.to_string()))?;
    let mut raw = vec![0u8; n * size];
    let got = read_up_to(&mut text, &mut raw).map_err(|e| Error::io(path, e))?;
    if got < raw.len() {
        return Err(Error::file(
            path,
            format!(
                "the header announces {shape:?} = {n} values ({} bytes), the file holds {got} \
                 bytes of them (cut short?)",
                raw.len()
            ),
        ));
    }
    let values: Vec<f32> = match header[2] {
        0x08 => raw.iter().map(|&b| f32::from(b)).collect(),
        0x09 => raw.iter().map(|&b| f32::from(b as i8)).collect(),
        0x0B => be(&raw, |b| f32::from(i16::from_be_bytes(*b))),
        0x0C => be(&raw, |b| i32::from_be_bytes(*b) as f32),
        0x0D => be(&raw, |b| f32::from_be_bytes(*b)),
        _ => be(&raw, |b| f64::from_be_bytes(*b) as f32),
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::file(
            path,
            format!("value {i} is not finite in f32: data must be finite numbers"),
        ));
    }
    Ok(Tensor::f32(shape, values)?)
}

fn be<const N: usize>(raw: &[u8], f: impl Fn(&[u8; N]) -> f32) -> Vec<f32> {
    raw.chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks of N")))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dlbench-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// An IDX file of u8 values with `dims`.
    fn idx_u8(dims: &[u32], values: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
        dims.iter().for_each(|d| bytes.extend(d.to_be_bytes()));
        bytes.extend(values);
        bytes
    }

    #[test]
    fn reads_images_and_labels_plain_and_gzipped() {
        let images = fixture(
            "images",
            &idx_u8(&[2, 2, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]),
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&idx_u8(&[2], &[7, 3])).unwrap();
        let labels = fixture("labels.gz", &gz.finish().unwrap());
        let data = read_idx_dataset(&images, Some(&labels)).unwrap();
        assert_eq!(data.features.shape(), [2, 2, 3]);
        assert_eq!(data.features.as_f32().unwrap()[11], 255.0);
        assert_eq!(data.targets.unwrap().as_f32().unwrap(), [7.0, 3.0]);
        // Big-endian wider types.
        let mut i16s = vec![0, 0, 0x0B, 1, 0, 0, 0, 2];
        i16s.extend((-2i16).to_be_bytes());
        i16s.extend(300i16.to_be_bytes());
        let t = read_idx(&fixture("i16", &i16s)).unwrap();
        assert_eq!(t.as_f32().unwrap(), [-2.0, 300.0]);
    }

    #[test]
    fn bad_files_name_the_file_and_the_fault() {
        let err =
            |bytes: &[u8], name: &str| read_idx(&fixture(name, bytes)).unwrap_err().to_string();
        let e = err(b"P5\n28 28\n255\n", "magic");
        assert!(
            e.contains("magic: not an IDX file: its first bytes are"),
            "{e}"
        );
        let e = err(&[0, 0, 0x07, 1, 0, 0, 0, 1, 0], "code");
        assert!(e.contains("unknown type code 0x07"), "{e}");
        let e = err(&idx_u8(&[10, 28, 28], &[0; 100]), "short");
        assert!(
            e.contains(
                "short: the header announces [10, 28, 28] = 7840 values (7840 bytes), the \
                        file holds 100 bytes"
            ),
            "{e}"
        );
        let e = err(&idx_u8(&[u32::MAX, u32::MAX, u32::MAX], &[]), "huge");
        assert!(e.contains("huge: "), "{e}");
        let e = err(&[0, 0, 0x08, 3, 0, 0], "header");
        assert!(e.contains("the header is cut short"), "{e}");
        let images = fixture("three", &idx_u8(&[3, 1], &[1, 2, 3]));
        let labels = fixture("two-labels", &idx_u8(&[2], &[1, 2]));
        let e = read_idx_dataset(&images, Some(&labels))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("two-labels: holds labels of shape [2]; expected one label per image"),
            "{e}"
        );
        let e = read_idx(&images.with_file_name("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
