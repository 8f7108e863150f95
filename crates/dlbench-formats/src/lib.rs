//! dlbench-formats owns import and export: moving a dlbench [`Model`](dlbench_core::Model)
//! (graph + named weights) to and from other frameworks' files. The native format
//! (`.safetensors` with the graph in its metadata) lives in `dlbench-core`; this crate adds the
//! foreign ones.
//!
//! Today it holds the PyTorch row: [`pytorch`] reads and writes the `state_dict` files of
//! `torch.save(model.state_dict(), path)`, without executing any pickle code; [`matching`]
//! says which of a file's named tensors goes to which parameter of a graph, for every format
//! that names its tensors. ONNX, Keras, Caffe and MXNet are to follow, one module each.

mod error;
pub mod matching;
pub mod onnx;
pub mod pytorch;

pub use error::{Error, Result};
