//! ONNX: the schema ([`proto`], prost messages written from the specification) and the
//! export of a dlbench model to an ONNX file ([`export`]) that onnxruntime and tract run.
//! Import is to follow.

pub mod export;
pub mod import;
pub mod proto;

use std::path::Path;

use dlbench_core::format::write_atomically;
use dlbench_core::Model;
use prost::Message;

use crate::error::Result;

pub use export::{to_onnx, BATCH_SYMBOL, OPSET};
pub use import::{import_onnx, import_onnx_with, read_tensor_file, OPSETS};

/// Writes `model` as an ONNX file (opset [`OPSET`]); a failure leaves no partial file.
pub fn export_onnx(model: &Model, path: &Path) -> Result<()> {
    let bytes = to_onnx(model)?.encode_to_vec();
    write_atomically(path, &bytes)?;
    Ok(())
}
