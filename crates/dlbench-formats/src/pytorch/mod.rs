//! PyTorch `state_dict` files: what `torch.save(model.state_dict(), "model.pt")` writes and
//! `torch.load(path, weights_only=True)` reads.
//!
//! The file is a zip archive ([`archive`]) holding a pickle (`data.pkl`) that describes an
//! `OrderedDict` of tensors, and one raw entry per storage (`data/<key>`). Reading interprets
//! the pickle opcodes without executing anything ([`pickle`]): only `collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter` and the `torch.*Storage` classes
//! may be named, so a malicious file is an error, not code run. Tensors may be float32,
//! float64 or int64 (others are named in the error).
//!
//! [`read_state_dict`] / [`write_state_dict`] move named tensors; [`export_state_dict`] /
//! [`import_state_dict`] move a dlbench [`Model`](dlbench_core::Model)'s weights (PyTorch's
//! layouts are dlbench's canonical ones).

pub mod archive;
mod model;
pub mod pickle;
mod state_dict;

pub use model::{export_state_dict, import_state_dict, weights_from_state_dict};
pub use state_dict::{
    gather, read_state_dict, read_state_dict_with, write_state_dict, MAX_EXPANDED_ELEMENTS,
};
