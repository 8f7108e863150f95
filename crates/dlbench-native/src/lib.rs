//! dlbench-native is dlbench's own engine. Today it holds [`reference`], a naive f64
//! interpreter of the whole IR (forward, backward, optimizers): the oracle every backend is
//! judged against, itself checked by finite differences. The fast f32 kernels come next.

pub mod engine;
pub mod kernels;
pub mod reference;
