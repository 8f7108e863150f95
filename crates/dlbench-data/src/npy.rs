//! NumPy's `.npy` format (versions 1 to 3) and `.npz` archives of them.
//!
//! A `.npy` file is the magic `\x93NUMPY`, a version, a header length (2 bytes in v1, 4 in
//! v2/v3), a Python dict literal such as `{'descr': '<f4', 'fortran_order': False, 'shape':
//! (2, 3), }` padded to a multiple of 64 bytes, then the raw elements. Supported element types:
//! `<f4` (as f32), `<f8` (f64), `<i8`, `<i4` and `|u1` (all as i64), in C order.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use dlbench_core::limits::{
    bytes_of, checked_numel, format_bytes, is_over_cap, BoundedReader, Limits,
};
use dlbench_core::{Data, Tensor};

use crate::bounds::{check_finite, env_limits, read_up_to};
use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The longest header read. NumPy itself refuses headers over 10000 bytes unless told
/// otherwise; a header of any supported array is far shorter than this.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// Reads a `.npy` file under the limits of the environment ([`Limits::from_env`]); see
/// [`read_npy_with`].
pub fn read_npy(path: &Path) -> Result<Tensor> {
    read_npy_with(path, &env_limits()?)
}

/// Reads a `.npy` file: the header first, then, once the array's size is known to match the
/// file and to fit the memory limit, exactly its data. A float array holding NaN or an
/// infinity is refused, naming the element's flat index.
pub fn read_npy_with(path: &Path, limits: &Limits) -> Result<Tensor> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let source = Source {
        len: meta.is_file().then_some(meta.len()),
        cap: None,
    };
    let tensor = decode_from(BufReader::new(file), source, limits)
        .map_err(|message| Error::file(path, message))?;
    check_finite(&tensor).map_err(|message| Error::file(path, message))?;
    Ok(tensor)
}

/// Reads the array `name` (with or without `.npy`) from a `.npz` archive under the limits of
/// the environment; see [`read_npz_with`].
pub fn read_npz(path: &Path, name: &str) -> Result<Tensor> {
    read_npz_with(path, name, &env_limits()?)
}

/// Reads the array `name` (with or without `.npy`) from a `.npz` archive; an error lists the
/// arrays the archive does hold. The member may expand to [`Limits::decompressed_cap`] of its
/// compressed size, whatever size it declares, and its array is checked as in
/// [`read_npy_with`].
pub fn read_npz_with(path: &Path, name: &str, limits: &Limits) -> Result<Tensor> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| Error::file(path, format!("not a zip (.npz) archive: {e}")))?;
    let member = if name.ends_with(".npy") {
        name.to_string()
    } else {
        format!("{name}.npy")
    };
    if archive.index_for_name(&member).is_none() {
        let names: Vec<&str> = archive
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n))
            .collect();
        return Err(Error::file(
            path,
            format!("no array `{name}`; the archive holds {}", names.join(", ")),
        ));
    }
    let in_array = |message: String| Error::file(path, format!("array `{name}`: {message}"));
    let entry = archive
        .by_name(&member)
        .map_err(|e| in_array(e.to_string()))?;
    let cap = limits.decompressed_cap(entry.compressed_size());
    let source = Source {
        len: None,
        cap: Some(cap),
    };
    let tensor = decode_from(BoundedReader::new(entry, cap), source, limits).map_err(in_array)?;
    check_finite(&tensor).map_err(in_array)?;
    Ok(tensor)
}

/// Parses the bytes of a `.npy` file under the limits of the environment; the error says what
/// was expected. Values are not checked for being finite: see [`read_npy_with`].
pub fn decode(bytes: &[u8]) -> Result<Tensor, String> {
    let limits = Limits::from_env().map_err(|e| e.to_string())?;
    decode_with(bytes, &limits)
}

/// [`decode`] under `limits`.
pub fn decode_with(bytes: &[u8], limits: &Limits) -> Result<Tensor, String> {
    let source = Source {
        len: Some(bytes.len() as u64),
        cap: None,
    };
    decode_from(bytes, source, limits)
}

/// What is known of a `.npy` stream's size before it is read.
#[derive(Debug, Clone, Copy)]
struct Source {
    /// Its exact length in bytes (a regular file, a buffer).
    len: Option<u64>,
    /// The most bytes it may yield: a decompressed stream behind a [`BoundedReader`].
    cap: Option<u64>,
}

/// Reads a `.npy` stream: the fixed prefix and the header, then the data once its size is
/// known to be sane. Nothing sized by the file is allocated before it is checked.
fn decode_from(mut reader: impl Read, source: Source, limits: &Limits) -> Result<Tensor, String> {
    let io = |e: std::io::Error| match source.cap {
        Some(cap) if is_over_cap(&e) => limits.decompression_message(cap),
        _ => format!("cannot read it: {e}"),
    };
    let mut prefix = [0u8; 12];
    let got = read_up_to(&mut reader, &mut prefix[..10]).map_err(io)?;
    if got < 10 || !prefix.starts_with(MAGIC) {
        return Err("not a .npy file (it does not start with \\x93NUMPY)".to_string());
    }
    let (header_len, start) = match prefix[6] {
        1 => (usize::from(u16::from_le_bytes([prefix[8], prefix[9]])), 10),
        2 | 3 => {
            if read_up_to(&mut reader, &mut prefix[10..]).map_err(io)? < 2 {
                return Err("the header is cut short".to_string());
            }
            let len = u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
            (usize::try_from(len).unwrap_or(usize::MAX), 12)
        }
        v => {
            return Err(format!(
                ".npy version {v} is not supported (expected 1, 2 or 3)"
            ))
        }
    };
    if header_len > MAX_HEADER_BYTES {
        return Err(format!(
            "the header is {header_len} bytes, more than the {} a .npy header may have",
            format_bytes(MAX_HEADER_BYTES as u64)
        ));
    }
    let header_end = (start + header_len) as u64;
    if source.len.is_some_and(|len| len < header_end) {
        return Err("the header is cut short".to_string());
    }
    let mut header = vec![0u8; header_len];
    reader.read_exact(&mut header).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => "the header is cut short".to_string(),
        _ => io(e),
    })?;
    let header = std::str::from_utf8(&header).map_err(|_| "the header is not text")?;
    let (descr, shape) = parse_header(header)?;
    let size = element_size(descr)?;
    let numel = checked_numel(&shape)
        .filter(|_| checked_numel(&nonzero(&shape)).is_some())
        .ok_or_else(|| format!("shape {shape:?} has more elements than can be counted"))?;
    let needed = numel.checked_mul(size).ok_or_else(|| {
        format!("shape {shape:?} of '{descr}' has more bytes than can be counted")
    })?;
    if let Some(len) = source.len {
        let present = len - header_end;
        if present != needed as u64 {
            return Err(format!(
                "shape {shape:?} of '{descr}' needs {needed} bytes of data, the file has {present}"
            ));
        }
    }
    if let Some(cap) = source.cap {
        if header_end.saturating_add(needed as u64) > cap {
            return Err(format!(
                "shape {shape:?} of '{descr}' needs {needed} bytes of data, but the member {}",
                limits.decompression_message(cap)
            ));
        }
    }
    // The raw bytes and the decoded values are both held at once.
    let out_size = if descr == "<f4" { 4 } else { 8 };
    limits
        .check_memory(
            &format!("shape {shape:?} of '{descr}'"),
            (needed as u64).saturating_add(bytes_of(numel, out_size)),
        )
        .map_err(|e| e.to_string())?;
    // An exact length was checked above; a stream's is trusted only as far as it delivers.
    let reserve = match source.len {
        Some(_) => needed,
        None => needed.min(1 << 20),
    };
    let mut body = Vec::with_capacity(reserve);
    reader
        .take(needed as u64 + 1)
        .read_to_end(&mut body)
        .map_err(io)?;
    if body.len() != needed {
        let present = match body.len() > needed {
            true => format!("more than {needed}"),
            false => body.len().to_string(),
        };
        return Err(format!(
            "shape {shape:?} of '{descr}' needs {needed} bytes of data, the file has {present}"
        ));
    }
    let data = match descr {
        "<f4" => Data::F32(chunks(&body, f32::from_le_bytes)),
        "<f8" => Data::F64(chunks(&body, f64::from_le_bytes)),
        "<i8" => Data::I64(chunks(&body, i64::from_le_bytes)),
        "<i4" => Data::I64(chunks(&body, |b: [u8; 4]| i64::from(i32::from_le_bytes(b)))),
        _ => Data::I64(body.iter().map(|&b| i64::from(b)).collect()),
    };
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

/// The element type and the shape of a header dict; Fortran order only for 0-d and 1-d.
fn parse_header(header: &str) -> Result<(&str, Vec<usize>), String> {
    let descr = dict_value(header, "descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| format!("`descr` is {descr}, expected a quoted type such as '<f4'"))?;
    let fortran = match dict_value(header, "fortran_order")? {
        v if v.starts_with("False") => false,
        v if v.starts_with("True") => true,
        v => return Err(format!("`fortran_order` is {v}, expected True or False")),
    };
    let shape = parse_shape(dict_value(header, "shape")?)?;
    if fortran && shape.len() > 1 {
        return Err("Fortran-order arrays are not supported; save a C-order array".to_string());
    }
    Ok((descr, shape))
}

/// The bytes of one element of `descr` in the file.
fn element_size(descr: &str) -> Result<usize, String> {
    match descr {
        "<f4" | "<i4" => Ok(4),
        "<f8" | "<i8" => Ok(8),
        "|u1" => Ok(1),
        other => Err(format!(
            "element type '{other}' is not supported (expected '<f4', '<f8', '<i8', '<i4' or '|u1')"
        )),
    }
}

/// The shape without its zero dims: an empty array of shape `(0, 2**62, 2**62)` would hold
/// no data yet make every later size computation overflow.
fn nonzero(shape: &[usize]) -> Vec<usize> {
    shape.iter().copied().filter(|&d| d != 0).collect()
}

/// Writes `tensor` as a version 1 `.npy` file, byte for byte as NumPy's `np.save` does.
pub fn encode(tensor: &Tensor) -> Vec<u8> {
    let (descr, body): (&str, Vec<u8>) = match tensor.data() {
        Data::F32(v) => ("<f4", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::F64(v) => ("<f8", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::I64(v) => ("<i8", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    let dims: Vec<String> = tensor.shape().iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // NumPy pads with spaces so that the data starts on a 64-byte boundary.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([1, 0]);
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(body);
    out
}

/// The text after `'key':` in the header dict.
fn dict_value<'a>(header: &'a str, key: &str) -> Result<&'a str, String> {
    let pattern = format!("'{key}':");
    header
        .find(&pattern)
        .map(|at| header[at + pattern.len()..].trim_start())
        .ok_or_else(|| format!("the header has no '{key}': {}", excerpt(header)))
}

/// The start of a header, for a message: a crafted header may be a megabyte of anything.
fn excerpt(header: &str) -> String {
    let header = header.trim_end();
    match header.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", header[..at].escape_debug()),
        None => header.escape_debug().to_string(),
    }
}

/// A Python tuple of sizes, `(2, 3)`, `(3,)` or `()`.
fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.split(')').next())
        .ok_or_else(|| format!("`shape` is {text}, expected a tuple such as (2, 3)"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse()
                .map_err(|_| format!("`shape` has `{d}`, expected a size"))
        })
        .collect()
}

fn chunks<const N: usize, T>(body: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    body.chunks_exact(N)
        .map(|c| f(c.try_into().expect("exact chunks")))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// `np.save(f, np.arange(6, dtype='<f4').reshape(2, 3))` with NumPy 2.4, byte for byte.
    fn numpy_arange() -> Vec<u8> {
        let mut bytes = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        bytes.extend(dict.as_bytes());
        bytes.extend(std::iter::repeat_n(b' ', 118 - dict.len() - 1));
        bytes.push(b'\n');
        for x in 0..6 {
            bytes.extend((x as f32).to_le_bytes());
        }
        bytes
    }

    #[test]
    fn reads_numpy_bytes_and_writes_them_back() {
        let bytes = numpy_arange();
        assert_eq!(bytes.len(), 152);
        let t = decode(&bytes).unwrap();
        assert_eq!(t.shape(), [2, 3]);
        assert_eq!(t.as_f32().unwrap(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(encode(&t), bytes);
    }

    #[test]
    fn reads_other_types_and_versions() {
        let labels = Tensor::i64(vec![3], vec![1, 0, 2]).unwrap();
        assert_eq!(decode(&encode(&labels)).unwrap(), labels);
        let scalar = Tensor::scalar_f64(3.5);
        assert_eq!(decode(&encode(&scalar)).unwrap(), scalar);
        // Version 2 has a 4-byte header length; u1 becomes i64.
        let header = "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }\n";
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend((header.len() as u32).to_le_bytes());
        v2.extend(header.as_bytes());
        v2.extend([0, 7, 255, 1]);
        let t = decode(&v2).unwrap();
        assert_eq!(t.as_i64().unwrap(), [0, 7, 255, 1]);
    }

    #[test]
    fn errors_say_what_was_expected() {
        let mut short = numpy_arange();
        short.truncate(150);
        let err = decode(&short).unwrap_err();
        assert!(
            err.contains("needs 24 bytes of data, the file has 22"),
            "{err}"
        );
        let mut big = numpy_arange();
        big[21] = b'>';
        assert_eq!(&big[20..24], b"'>f4");
        let err = decode(&big).unwrap_err();
        assert!(err.contains("'>f4' is not supported"), "{err}");
        assert!(decode(b"PK\x03\x04")
            .unwrap_err()
            .contains("not a .npy file"));
    }

    #[test]
    fn reads_files_and_npz_archives() {
        let dir = std::env::temp_dir().join(format!("dlbench-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let npy = dir.join("x.npy");
        std::fs::write(&npy, numpy_arange()).unwrap();
        assert_eq!(read_npy(&npy).unwrap().shape(), [2, 3]);

        let npz = dir.join("data.npz");
        let mut zip = zip::ZipWriter::new(File::create(&npz).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, tensor) in [
            (
                "x.npy",
                Tensor::f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
            ),
            ("y.npy", Tensor::i64(vec![2], vec![0, 1]).unwrap()),
        ] {
            zip.start_file(name, options).unwrap();
            zip.write_all(&encode(&tensor)).unwrap();
        }
        zip.finish().unwrap();
        assert_eq!(
            read_npz(&npz, "x").unwrap().as_f32().unwrap(),
            [1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(read_npz(&npz, "y.npy").unwrap().as_i64().unwrap(), [0, 1]);
        let err = read_npz(&npz, "labels").unwrap_err().to_string();
        assert!(
            err.contains("data.npz: no array `labels`; the archive holds x, y"),
            "{err}"
        );
        let missing = read_npy(&dir.join("missing.npy")).unwrap_err().to_string();
        assert!(missing.contains("missing.npy"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
