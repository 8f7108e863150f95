//! The native file format: a `.safetensors` file holding the weights, with the graph as JSON
//! under the metadata key [`GRAPH_KEY`]. Any safetensors reader (candle, burn-store, Python's
//! `safetensors`) can read the weights.

use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use safetensors::tensor::{Dtype, Metadata, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::ir::Graph;
use crate::limits::{format_bytes, is_over_cap, BoundedReader, Limits};
use crate::model::Model;
use crate::tensor::Values;
use crate::tensor::{Data, Tensor};

/// Metadata key holding the graph JSON.
pub const GRAPH_KEY: &str = "dlbench.graph";
/// Metadata key holding the format version.
pub const FORMAT_KEY: &str = "dlbench.format";
/// The format version this build writes under [`FORMAT_KEY`]; [`read`] does not check it.
pub const FORMAT_VERSION: &str = "1";

fn to_bytes(t: &Tensor) -> (Dtype, Vec<u8>) {
    match t.data() {
        Data::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::F64(v) => (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        Data::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    }
}

fn from_view(view: &TensorView) -> std::result::Result<Tensor, String> {
    let bytes = view.data();
    let shape = view.shape().to_vec();
    let data = match view.dtype() {
        Dtype::F32 => Data::F32(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
        ),
        Dtype::F64 => Data::F64(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ),
        Dtype::I64 => Data::I64(
            bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ),
        other => return Err(format!("dtype {other:?} is not supported (f32, f64, i64)")),
    };
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

/// Serialises tensors, with optional string metadata, as safetensors bytes.
pub fn to_safetensors(
    values: &Values,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = values
        .iter()
        .map(|(name, t)| {
            let (dtype, bytes) = to_bytes(t);
            (name.clone(), dtype, t.shape().to_vec(), bytes)
        })
        .collect();
    let views = encoded
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid(format!("safetensors: {e}")))?;
    safetensors::serialize(views, metadata).map_err(|e| Error::invalid(format!("safetensors: {e}")))
}

/// Parses safetensors bytes into tensors and metadata; `path` only names the file in errors.
pub fn from_safetensors(
    bytes: &[u8],
    path: &Path,
) -> Result<(Values, Option<HashMap<String, String>>)> {
    let (_, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
    let values = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            from_view(&view)
                .map(|t| (name.clone(), t))
                .map_err(|e| Error::file(path, format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Values>>()?;
    Ok((values, metadata.metadata().clone()))
}

/// Writes `bytes` to `path` through a temporary file in the same folder, so a failure leaves
/// no partial file behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::file(path, "not a file path"))?;
    let tmp = dir
        .unwrap_or(Path::new("."))
        .join(format!(".{}.tmp", file_name.to_string_lossy()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

impl Model {
    /// Reads a native `.safetensors` model (weights, with the graph in the metadata).
    pub fn load(path: &Path) -> Result<Model> {
        read(path)
    }

    /// Writes a native `.safetensors` model; the file appears whole or not at all.
    pub fn save(&self, path: &Path) -> Result<()> {
        write(self, path)
    }
}

/// Writes `model` to `path` in the native format, atomically: [`Model::save`].
pub fn write(model: &Model, path: &Path) -> Result<()> {
    let graph = serde_json::to_string(&model.graph)
        .map_err(|e| Error::invalid(format!("graph to JSON: {e}")))?;
    let metadata = HashMap::from([
        (GRAPH_KEY.to_string(), graph),
        (FORMAT_KEY.to_string(), FORMAT_VERSION.to_string()),
    ]);
    write_atomically(path, &to_safetensors(&model.weights, Some(metadata))?)
}

/// The longest safetensors header read: the `safetensors` crate's own limit.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Reads the bytes of a safetensors file, trusting nothing it says before checking it: the
/// header's length (at most [`MAX_HEADER_BYTES`], within the file), then the header, whose
/// tensors (shapes and offsets, with checked arithmetic) give the size of the data; that size
/// must match the bytes the file holds and, twice over (the bytes and the tensors decoded
/// from them), fit [`Limits::memory_bytes`]. A pipe or a device is read no further than the
/// header says.
pub fn read_safetensors(path: &Path, limits: &Limits) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    let file_len = meta.is_file().then_some(meta.len());
    let bad = |message: String| Error::file(path, format!("not a safetensors file: {message}"));
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => bad("shorter than the 8 bytes of its header length".into()),
        _ => Error::io(path, e),
    })?;
    let header_len = u64::from_le_bytes(prefix);
    if header_len > MAX_HEADER_BYTES {
        return Err(bad(format!(
            "a header of {header_len} bytes is longer than the {} a safetensors header may have",
            format_bytes(MAX_HEADER_BYTES)
        )));
    }
    let present = file_len.map(|len| len - 8);
    if present.is_some_and(|p| header_len > p) {
        return Err(bad(format!(
            "a header of {header_len} bytes, but only {} bytes follow",
            present.unwrap_or_default()
        )));
    }
    let mut bytes = prefix.to_vec();
    read_exactly(&mut file, &mut bytes, header_len, false, path, "the header")?;
    let metadata: Metadata = serde_json::from_slice(&bytes[8..])
        .map_err(|e| bad(diagnose(&bytes[8..]).unwrap_or_else(|| format!("the header: {e}"))))?;
    // Offsets are contiguous from 0 once validated, so the last end is the data's size.
    let data_len = metadata
        .tensors()
        .values()
        .map(|info| info.data_offsets.1 as u64)
        .max()
        .unwrap_or(0);
    if let Some(present) = present {
        let present = present - header_len;
        if present != data_len {
            return Err(bad(format!(
                "its header describes {data_len} bytes of tensor data, the file holds {present}"
            )));
        }
    }
    limits
        .check_memory("its tensors", data_len.saturating_mul(2))
        .map_err(|e| Error::file(path, e.to_string()))?;
    read_exactly(
        &mut file,
        &mut bytes,
        data_len,
        true,
        path,
        "the tensor data",
    )?;
    Ok(bytes)
}

/// The first tensor of a header that `safetensors` refused whose shape, dtype and offsets do
/// not fit together, to name it; `None` when the fault is elsewhere.
fn diagnose(header: &[u8]) -> Option<String> {
    let entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).ok()?;
    for (name, entry) in entries.iter().filter(|(name, _)| *name != "__metadata__") {
        let dims = entry.get("shape")?.as_array()?;
        let shape: Vec<u64> = dims.iter().map(|d| d.as_u64()).collect::<Option<_>>()?;
        let dtype: Dtype = serde_json::from_value(entry.get("dtype")?.clone()).ok()?;
        let bits = shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype.bitsize() as u64));
        let Some(bits) = bits else {
            return Some(format!(
                "tensor `{name}`: shape {shape:?} of {dtype:?} has more bytes than can be counted"
            ));
        };
        let offsets = entry.get("data_offsets")?.as_array()?;
        let (start, end) = (offsets.first()?.as_u64()?, offsets.get(1)?.as_u64()?);
        if end.checked_sub(start) != Some(bits / 8) {
            return Some(format!(
                "tensor `{name}`: shape {shape:?} of {dtype:?} needs {} bytes, its offsets \
                 [{start}, {end}] hold {}",
                bits / 8,
                end.saturating_sub(start)
            ));
        }
    }
    None
}

/// Appends exactly `len` more bytes of `file` to `bytes`: fewer is a file cut short. With
/// `last`, one byte more (a pipe or a device that goes on) is refused too.
fn read_exactly(
    file: &mut File,
    bytes: &mut Vec<u8>,
    len: u64,
    last: bool,
    path: &Path,
    what: &str,
) -> Result<()> {
    let before = bytes.len() as u64;
    // The caller has checked `len` against the file's size or the memory limit.
    bytes.reserve(usize::try_from(len).unwrap_or(usize::MAX));
    let probe = u64::from(last);
    let mut bounded = BoundedReader::new(file.take(len.saturating_add(probe)), len);
    match bounded.read_to_end(bytes) {
        Ok(_) if bytes.len() as u64 - before == len => Ok(()),
        Ok(_) => Err(Error::file(
            path,
            format!(
                "not a safetensors file: {what} is cut short ({} of {len} bytes)",
                bytes.len() as u64 - before
            ),
        )),
        Err(e) if is_over_cap(&e) => Err(Error::file(
            path,
            format!("not a safetensors file: more bytes follow {what} than its header describes"),
        )),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Reads a native model from `path` and validates it ([`Model::new`]): [`Model::load`]. A plain
/// safetensors file without the graph metadata is refused. The file is read under the limits
/// of the environment ([`Limits::from_env`]); see [`read_with`].
pub fn read(path: &Path) -> Result<Model> {
    read_with(path, &Limits::from_env()?)
}

/// [`read`] under `limits`: see [`read_safetensors`] for how the file is bounded.
pub fn read_with(path: &Path, limits: &Limits) -> Result<Model> {
    let bytes = read_safetensors(path, limits)?;
    let (weights, metadata) = from_safetensors(&bytes, path)?;
    let graph_json = metadata
        .as_ref()
        .and_then(|m| m.get(GRAPH_KEY))
        .ok_or_else(|| {
            Error::file(
                path,
                format!("no `{GRAPH_KEY}` in the metadata: a plain safetensors file holds weights, not a dlbench model"),
            )
        })?;
    let graph: Graph = serde_json::from_str(graph_json)
        .map_err(|e| Error::file(path, format!("metadata `{GRAPH_KEY}`: {e}")))?;
    limits
        .check_nodes(&format!("metadata `{GRAPH_KEY}`"), graph.nodes.len())
        .map_err(|e| Error::file(path, e.to_string()))?;
    Model::new(graph, weights).map_err(|e| Error::file(path, e.to_string()))
}
