//! Ops that move elements without arithmetic: Flatten, Reshape, Transpose, Concat.

use dlbench_core::Tensor;

pub fn flatten(axis: usize, x: &Tensor) -> Tensor {
    unimplemented!()
}

/// ONNX Reshape: `0` copies the input dim, one `-1` is inferred.
pub fn reshape(shape: &[i64], x: &Tensor) -> Tensor {
    unimplemented!()
}

/// `dy` with the shape of `like` (the backward of Flatten and Reshape).
pub fn reshape_like(dy: &Tensor, like: &Tensor) -> Tensor {
    unimplemented!()
}

pub fn transpose(perm: &[usize], x: &Tensor) -> Tensor {
    unimplemented!()
}

pub fn transpose_backward(perm: &[usize], dy: &Tensor) -> Tensor {
    unimplemented!()
}

pub fn concat(axis: usize, xs: &[&Tensor]) -> Tensor {
    unimplemented!()
}

pub fn concat_backward(axis: usize, xs: &[&Tensor], dy: &Tensor) -> Vec<Tensor> {
    unimplemented!()
}
