//! Fast f32 kernels of the native backend, one op family per file, and the thread pool they
//! share.

pub mod gemm;
pub mod math;
pub mod threads;
