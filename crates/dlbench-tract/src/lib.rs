//! dlbench-tract owns dlbench's tract backend (tract-onnx 0.23.9): inference only, through the
//! model's ONNX export ([`dlbench_formats::onnx`]). tract is an ONNX runtime: what it runs is a
//! file, so the session writes the model as ONNX in memory, reads it with `tract_onnx::onnx()`,
//! fixes the input shapes for the loaded batch size, and keeps tract's optimized, runnable
//! plan (`into_optimized`, `into_runnable`) and its state: prepared once per batch size, run
//! many times. Training is reported unsupported (tract has no autodiff or optimizers), and so
//! are intermediate values (the optimized plan fuses them away).
//!
//! # Threads
//!
//! tract computes on the calling thread. With `--threads` above 1, each session holds a
//! tract-linalg executor of that many threads (the `multithread-mm` feature), which splits
//! matrix products, convolutions included, across them; the other ops stay on one thread. The
//! session's notes say so.

mod session;

use dlbench_core::{Backend, Capabilities, Device, Error, Model, PrepareOptions, Result, Session};

pub use session::TractSession;

/// The backend's name in specs, results and `dlbench list`.
pub const NAME: &str = "tract";

/// The tract-onnx crate this backend is built on; pinned with `=` in Cargo.toml.
const TRACT_VERSION: &str = "0.23.9";

/// tract-onnx on the CPU: inference only.
#[derive(Debug, Clone, Copy, Default)]
pub struct TractBackend;

impl Backend for TractBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> String {
        format!("tract-onnx {TRACT_VERSION}")
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            inference: true,
            training: false,
            intermediates: false,
            devices: vec![Device::Cpu],
        }
    }

    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        if options.device != Device::Cpu {
            return Err(Error::unsupported(
                NAME,
                format!("device {}: tract runs on the CPU only", options.device),
            ));
        }
        if options.training.is_some() {
            return Err(Error::unsupported(
                NAME,
                "training: tract is an inference engine (no autodiff, no optimizers)",
            ));
        }
        if options.threads == 0 {
            return Err(Error::invalid("thread count 0: expected 1 or more"));
        }
        Ok(Box::new(TractSession::new(model, options.threads)?))
    }
}
