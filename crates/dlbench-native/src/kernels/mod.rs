//! Fast f32 kernels of the native backend, one op family per file.

pub mod gemm;
pub mod math;
