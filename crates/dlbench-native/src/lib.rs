//! dlbench-native is dlbench's own f32 backend, in two parts:
//! - [`engine`], autograd for every IR op over buffers planned per batch size, so that a
//!   steady-state step allocates nothing, and the optimizers;
//! - [`kernels`], what the engine runs on: SGEMM, convolution lowerings, pooling, vectorised
//!   math and a thread pool, each chosen at run time for the CPU (AVX-512, AVX2, portable).
//!
//! It is judged against the f64 reference (`dlbench-reference`), with which it shares no code.

pub mod engine;
pub mod kernels;
