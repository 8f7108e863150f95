//! Losses: MSE, cross-entropy (logits, i64 labels), BCE (probabilities, and logits), VAE ELBO.

use dlbench_core::{Op, Tensor};

/// The scalar loss (shape `[]`). Errors only for bad data, e.g. a label out of range.
pub fn loss(op: &Op, inputs: &[&Tensor]) -> Result<Tensor, String> {
    unimplemented!()
}

/// Gradients of `dloss * loss` with respect to each input (`None` for labels).
pub fn loss_backward(op: &Op, inputs: &[&Tensor], dloss: f64) -> Result<Vec<Option<Tensor>>, String> {
    unimplemented!()
}
