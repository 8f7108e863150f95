//! dlbench-core owns everything that is framework-neutral: [`Tensor`] and [`DType`], the model IR
//! ([`Graph`], [`Node`], the closed [`Op`] enum, [`ValueInfo`] with a symbolic batch dimension),
//! [`Model`] (a graph plus its named weights), shape inference, seeded PyTorch-style weight
//! initialisation, the counter-based RNG, the [`Backend`] / [`Session`] traits every adapter
//! implements, and the native file format (safetensors with the graph in its metadata).
//!
//! It depends on no framework: adapters depend on it, never the other way round.

pub mod backend;
pub mod builder;
mod error;
pub mod flops;
pub mod footprint;
pub mod format;
pub mod init;
pub mod interpret;
pub mod ir;
pub mod limits;
mod model;
pub mod rng;
mod tensor;
pub mod training;

pub use backend::{Backend, Capabilities, Device, Mode, PrepareOptions, Session};
pub use builder::GraphBuilder;
pub use error::{Error, Result};
pub use ir::{
    BinaryOp, Dim, Graph, Input, InputRole, LossOp, Node, Op, OpKind, Param, UnaryOp, ValueInfo,
};
pub use model::Model;
pub use tensor::{DType, Data, Tensor, Values};
pub use training::{Loss, Optimizer, TrainingConfig};
