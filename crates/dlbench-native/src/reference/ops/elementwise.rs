//! Add, Sub, Mul with numpy broadcasting.

use dlbench_core::{Op, Tensor};

pub fn binary(op: &Op, a: &Tensor, b: &Tensor) -> Tensor {
    unimplemented!()
}

/// Gradients reduced back to each operand's own shape.
pub fn binary_backward(op: &Op, a: &Tensor, b: &Tensor, dy: &Tensor) -> (Tensor, Tensor) {
    unimplemented!()
}
