//! 2-D convolution (cross-correlation, PyTorch semantics), OIHW weights.

use dlbench_core::ir::Conv2d;
use dlbench_core::Tensor;

pub fn conv2d(attrs: &Conv2d, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    unimplemented!()
}

/// Returns (dx, dw, db if has_bias).
pub fn conv2d_backward(attrs: &Conv2d, x: &Tensor, w: &Tensor, has_bias: bool, dy: &Tensor) -> (Tensor, Tensor, Option<Tensor>) {
    unimplemented!()
}
