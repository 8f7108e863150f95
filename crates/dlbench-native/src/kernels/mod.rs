//! Fast f32 kernels of the native backend, one op family per file, and the thread pool they
//! share.

pub mod dot;
pub mod gemm;
pub mod im2col;
pub mod isa;
pub mod math;
pub mod pool;
pub mod split;
#[cfg(test)]
pub(crate) mod test_rng;
pub mod threads;
