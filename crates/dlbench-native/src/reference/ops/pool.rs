//! Max and average pooling (PyTorch semantics, ceil_mode, count_include_pad).

use dlbench_core::ir::Pool2d;
use dlbench_core::Tensor;

pub fn max_pool2d(p: &Pool2d, x: &Tensor) -> Tensor {
    unimplemented!()
}

/// The gradient goes to the first maximum of each window (PyTorch's choice on ties).
pub fn max_pool2d_backward(p: &Pool2d, x: &Tensor, dy: &Tensor) -> Tensor {
    unimplemented!()
}

pub fn avg_pool2d(p: &Pool2d, x: &Tensor) -> Tensor {
    unimplemented!()
}

pub fn avg_pool2d_backward(p: &Pool2d, x: &Tensor, dy: &Tensor) -> Tensor {
    unimplemented!()
}
