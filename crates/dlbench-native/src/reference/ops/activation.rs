//! Element-wise activations (Relu, Sigmoid, Tanh, Exp, Scale), Softmax / LogSoftmax, Dropout.

use dlbench_core::{Mode, Op, Tensor};

pub fn unary(op: &Op, x: &Tensor) -> Tensor {
    unimplemented!()
}

/// Given x, y = unary(x) and dy.
pub fn unary_backward(op: &Op, x: &Tensor, y: &Tensor, dy: &Tensor) -> Tensor {
    unimplemented!()
}

/// Softmax (or LogSoftmax if `log`) along `axis` (negative counts from the end).
pub fn softmax(axis: i64, x: &Tensor, log: bool) -> Tensor {
    unimplemented!()
}

/// Given y = softmax(x) (or log_softmax) and dy.
pub fn softmax_backward(axis: i64, y: &Tensor, dy: &Tensor, log: bool) -> Tensor {
    unimplemented!()
}

/// Training: `x * mask / (1 - p)`; inference: `x`.
pub fn dropout(p: f64, x: &Tensor, mask: &Tensor, mode: Mode) -> Tensor {
    unimplemented!()
}

/// The training-mode gradient with respect to x.
pub fn dropout_backward(p: f64, mask: &Tensor, dy: &Tensor) -> Tensor {
    unimplemented!()
}
