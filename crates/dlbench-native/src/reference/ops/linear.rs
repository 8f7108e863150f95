//! Dense (`x W^T + b`) and MatMul.

use dlbench_core::Tensor;

/// `x [.., in]`, `w [out, in]`, `b [out]` -> `[.., out]`.
pub fn dense(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    unimplemented!()
}

/// Returns (dx, dw, db if has_bias).
pub fn dense_backward(x: &Tensor, w: &Tensor, has_bias: bool, dy: &Tensor) -> (Tensor, Tensor, Option<Tensor>) {
    unimplemented!()
}

/// `a [.., m, k]` by `b [k, n]` or `[.., k, n]` (same leading dims).
pub fn matmul(a: &Tensor, b: &Tensor) -> Tensor {
    unimplemented!()
}

pub fn matmul_backward(a: &Tensor, b: &Tensor, dy: &Tensor) -> (Tensor, Tensor) {
    unimplemented!()
}
