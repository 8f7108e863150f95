//! The f64 reference interpreter: naive, obviously-correct forward and backward passes for
//! every IR op and loss, and PyTorch's optimizers. It is the oracle every backend is judged
//! against, so it favours plain loops over speed, and [`gradcheck`] checks every op's backward
//! against central finite differences.
//!
//! Values are [`dlbench_core::Tensor`]s holding f64 (class labels stay i64).

pub mod gradcheck;
pub mod ops;
pub mod optim;
mod session;

pub use optim::OptimizerState;
pub use session::{ReferenceBackend, ReferenceSession};
