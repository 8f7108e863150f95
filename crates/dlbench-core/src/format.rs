//! The native file format: a `.safetensors` file holding the weights, with the graph as JSON
//! under the metadata key [`GRAPH_KEY`]. Any safetensors reader (candle, burn-store, Python's
//! `safetensors`) can read the weights.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::ir::Graph;
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

/// Reads a native model from `path` and validates it ([`Model::new`]): [`Model::load`]. A plain
/// safetensors file without the graph metadata is refused.
pub fn read(path: &Path) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
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
    Model::new(graph, weights).map_err(|e| Error::file(path, e.to_string()))
}
