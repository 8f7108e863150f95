//! LSTM (PyTorch semantics, gates i, f, g, o, zero initial state, optional reverse direction).

use dlbench_core::ir::Lstm;
use dlbench_core::Tensor;

/// Inputs: x, then w_ih, w_hh, b_ih, b_hh per direction. Returns [Y, Y_h, Y_c].
pub fn lstm(attrs: &Lstm, inputs: &[&Tensor]) -> [Tensor; 3] {
    unimplemented!()
}

/// Gradients for every input (x and each weight), given the gradients of Y, Y_h, Y_c (any may
/// be `None`: that output does not reach the loss).
pub fn lstm_backward(attrs: &Lstm, inputs: &[&Tensor], grads: [Option<&Tensor>; 3]) -> Vec<Tensor> {
    unimplemented!()
}
