//! dlbench-native is dlbench's own engine, in three parts:
//! - [`mod@reference`], a naive f64 interpreter of the whole IR (forward, backward,
//!   optimizers): the oracle every backend is judged against, itself checked by finite
//!   differences and against PyTorch;
//! - [`engine`], the native f32 backend: autograd for every IR op over buffers planned per
//!   batch size, so that a steady-state step allocates nothing;
//! - [`kernels`], what the engine runs on: SGEMM, convolution lowerings, pooling, vectorised
//!   math and a thread pool, each chosen at run time for the CPU (AVX-512, AVX2, portable).

pub mod engine;
pub mod kernels;
pub mod reference;
