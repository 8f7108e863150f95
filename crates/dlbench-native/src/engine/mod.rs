//! The native backend: an f32 engine with reverse-mode autograd that runs the IR. It mirrors
//! the structure of `dlbench_reference` (node-by-node forward keeping every value, backward
//! accumulating gradients from the loss, PyTorch's optimizers updating in place), but on f32
//! buffers with the products in [`crate::kernels::gemm::sgemm`], and with the graph resolved
//! once at prepare time into slot indices, so a step does no name lookups.

mod ops;
mod optim;
mod session;

pub use session::{NativeBackend, NativeSession};
