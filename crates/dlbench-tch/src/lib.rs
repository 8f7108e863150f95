//! dlbench-tch owns dlbench's libtorch backend, through the `tch` crate (0.22.0, built against
//! the pip-installed torch 2.11.0). [`TchBackend`] lowers each IR op to libtorch's own op and
//! runs the graph eagerly in f32, as PyTorch runs a model: parameters are leaf tensors that
//! require grad, libtorch's autograd computes gradients and its C++ optimizers (SGD, Adam)
//! take the training steps. It runs on the CPU and on each CUDA device libtorch finds.
//!
//! Building it needs libtorch: `bash scripts/setup-torch.sh` creates the project's virtualenv
//! with torch, then build with `LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1` and that
//! virtualenv's python first on `PATH` (see the README). The build script sets an rpath, so
//! nothing needs `LD_LIBRARY_PATH` at run time.
//!
//! [`export_torchscript`] traces a model's inference forward pass through the same lowering
//! into a TorchScript file that `torch.jit.load` runs at any batch size.

mod convert;
mod ffi;
mod ops;
mod session;
mod torchscript;

use std::sync::OnceLock;

use dlbench_core::{Backend, Capabilities, Device, Error, Model, PrepareOptions, Result, Session};

pub use session::TchSession;
pub use torchscript::{export_torchscript, run_torchscript, traced_inputs};

/// The backend's name in specs, results and `dlbench list`.
pub const NAME: &str = "tch";

/// The tch crate this backend is built on; pinned with `=` in Cargo.toml.
const TCH_VERSION: &str = "0.22.0";

/// libtorch through tch: inference, training and intermediates, on the CPU and CUDA.
#[derive(Debug, Clone, Copy, Default)]
pub struct TchBackend;

impl TchBackend {
    /// The CUDA devices libtorch can use in this process (none without a driver or GPU).
    pub fn cuda_devices() -> Vec<Device> {
        let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
        (0..count).map(Device::Cuda).collect()
    }
}

impl Backend for TchBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    /// `tch 0.22.0 / libtorch 2.11.0+cu130`: the libtorch version is read at build time from
    /// the torch installation the crate was linked against.
    fn version(&self) -> String {
        format!(
            "tch {TCH_VERSION} / libtorch {}",
            env!("DLBENCH_LIBTORCH_VERSION")
        )
    }

    fn capabilities(&self) -> Capabilities {
        let mut devices = vec![Device::Cpu];
        devices.extend(Self::cuda_devices());
        Capabilities {
            inference: true,
            training: true,
            intermediates: true,
            devices,
        }
    }

    /// Sets libtorch's intra-op threads to `options.threads` and its inter-op pool to one
    /// thread (see [`configure_threads`]), checks the device, copies the weights to it and,
    /// for training, builds the optimizer over them.
    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        if let Device::Cuda(i) = options.device {
            let found = Self::cuda_devices();
            if !found.contains(&options.device) {
                return Err(Error::unsupported(
                    NAME,
                    format!(
                        "device cuda:{i}: libtorch finds {} CUDA device(s) on this machine",
                        found.len()
                    ),
                ));
            }
        }
        if let Device::Cuda(_) = options.device {
            ffi::ieee_float32_on_cuda()?;
        }
        configure_threads(options.threads)?;
        Ok(Box::new(TchSession::new(
            model,
            options.device,
            options.training,
        )?))
    }
}

/// Applies a worker's thread count to libtorch.
///
/// The inter-op pool can be sized once per process only, before any parallel work, so it is
/// set once (one thread: dlbench runs one graph at a time, and PyTorch's benchmarks pin it the
/// same way). The intra-op count is set at every prepare: libtorch keeps it per calling thread
/// (OpenMP), and a worker process runs one thread count anyway.
pub fn configure_threads(threads: usize) -> Result<()> {
    static INTEROP: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let n = i32::try_from(threads)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| Error::invalid(format!("thread count {threads}: expected 1 or more")))?;
    let interop = INTEROP.get_or_init(|| {
        // tch panics when libtorch refuses (parallel work already started in this process).
        std::panic::catch_unwind(|| tch::set_num_interop_threads(1))
            .map_err(|_| "libtorch refused to set its inter-op thread count".to_string())
    });
    if let Err(message) = interop {
        return Err(Error::Backend {
            backend: NAME.to_string(),
            message: message.clone(),
        });
    }
    tch::set_num_threads(n);
    Ok(())
}

/// The number of intra-op threads libtorch uses on the calling thread.
pub fn threads() -> usize {
    usize::try_from(tch::get_num_threads()).unwrap_or(0)
}
