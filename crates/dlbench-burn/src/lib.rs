//! dlbench-burn owns dlbench's burn backend (burn 0.22.1). [`BurnBackend`] lowers each IR op to
//! burn's own building blocks and runs the graph eagerly in f32 on burn's pure-Rust CPU backend
//! `flex`: inference sessions on `Device::flex()`, training sessions on
//! `Device::flex().autodiff()`, where parameters are leaf tensors that require grad, burn's
//! autodiff computes the gradients and burn-optim's SGD and Adam take the steps.
//!
//! What is burn's own and what is composed from burn tensor ops:
//! - burn's own: `linear` (Dense, its weight held as burn's `Linear` holds it, `[in, out]`,
//!   and read back in the IR's `[out, in]`), `matmul`, `conv2d`, `max_pool2d`, `avg_pool2d`,
//!   `permute`, `cat`, `reshape`, the activations, `softmax` / `log_softmax`, burn-nn's `Lstm` module
//!   (its eight gate `Linear`s hold views of the IR's stacked weights), burn-nn's `MseLoss` and
//!   `CrossEntropyLoss`, burn-optim's `Sgd` and `Adam` (per-tensor steps).
//! - composed from burn tensor ops: Dropout with the harness's mask (`x * mask / (1 - p)`),
//!   binary cross-entropy on probabilities and on logits (burn-nn's BCE takes integer targets
//!   only; the formulas are the ones it uses inside), and the VAE ELBO.
//!
//! # Threads
//!
//! burn-flex computes on rayon's global pool, which a process can size once, before any
//! parallel work. [`configure_threads`] (called by every `prepare`) sizes it to
//! `PrepareOptions::threads` the first time and refuses a different count afterwards; a
//! worker process runs one thread count. [`threads`] reports the count in force.
//!
//! # Devices and features
//!
//! The CPU always. The cargo features `cuda` and `wgpu` (off by default) add burn's CubeCL GPU
//! backends:
//! - `cuda`: burn-cuda through cubecl-cuda 0.11. Building needs no CUDA toolkit, but
//!   cubecl-cuda depends on cubecl-llvm (NVPTX), whose build script (tracel-llvm-bundler)
//!   downloads a prebuilt LLVM from the tracel-llvm GitHub releases into
//!   `~/.local/share/tracel/tracel-llvm-23.1.0-4` unless that directory is already there: so it
//!   does not build on a machine that reaches only the package registries (ours). Running
//!   needs an NVIDIA driver (cudarc loads libcuda at run time); kernels are compiled just in
//!   time to PTX by that bundled LLVM (NVRTC and the CUDA headers only on cubecl's optional
//!   C++ path, which this crate does not enable).
//! - `wgpu`: burn-wgpu. Building needs nothing beyond Rust and the registries; running needs a
//!   Vulkan (or Metal / DX12) driver with a GPU adapter. With only this feature, `cuda:N` is
//!   the N-th adapter burn's wgpu runtime enumerates.
//!
//! Without the feature, or without a GPU, `Device::Cuda(i)` is reported unsupported.

mod convert;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod gpu;
mod loss;
mod lstm;
mod ops;
mod optim;
mod session;

use std::sync::OnceLock;

use dlbench_core::{Backend, Capabilities, Device, Error, Model, PrepareOptions, Result, Session};

pub use session::BurnSession;

/// The backend's name in specs, results and `dlbench list`.
pub const NAME: &str = "burn";

/// The burn crate this backend is built on; pinned with `=` in Cargo.toml.
const BURN_VERSION: &str = "0.22.1";

/// burn on its flex CPU backend (and, with the `cuda` or `wgpu` feature, a GPU): inference,
/// training and intermediates.
#[derive(Debug, Clone, Copy, Default)]
pub struct BurnBackend;

impl BurnBackend {
    /// The GPUs this build can use on this machine (none without the `cuda` or `wgpu`
    /// feature).
    pub fn gpu_devices() -> Vec<Device> {
        #[cfg(any(feature = "cuda", feature = "wgpu"))]
        {
            gpu::devices()
        }
        #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
        {
            Vec::new()
        }
    }

    /// burn's device for a dlbench device, or unsupported when this build or this machine has
    /// none such.
    fn burn_device(device: Device) -> Result<burn::tensor::Device> {
        match device {
            Device::Cpu => Ok(burn::tensor::Device::flex()),
            Device::Cuda(i) => {
                #[cfg(any(feature = "cuda", feature = "wgpu"))]
                {
                    gpu::device(i)
                }
                #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
                {
                    Err(Error::unsupported(
                        NAME,
                        format!(
                            "device cuda:{i}: this build has no GPU backend (build dlbench-burn \
                             with the `cuda` or `wgpu` feature)"
                        ),
                    ))
                }
            }
        }
    }
}

impl Backend for BurnBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    /// `burn 0.22.1 (flex)`, with the GPU backends compiled in listed after flex.
    fn version(&self) -> String {
        let mut backends = vec!["flex"];
        if cfg!(feature = "cuda") {
            backends.push("cuda");
        }
        if cfg!(feature = "wgpu") {
            backends.push("wgpu");
        }
        format!("burn {BURN_VERSION} ({})", backends.join(", "))
    }

    fn capabilities(&self) -> Capabilities {
        let mut devices = vec![Device::Cpu];
        devices.extend(Self::gpu_devices());
        Capabilities {
            inference: true,
            training: true,
            intermediates: true,
            devices,
        }
    }

    /// Checks the device, sizes burn's CPU thread pool (see [`configure_threads`]), copies the
    /// weights and, for training, builds the optimizer after them.
    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        let device = Self::burn_device(options.device)?;
        configure_threads(options.threads)?;
        let device = match options.training {
            Some(_) => device.autodiff(),
            None => device,
        };
        Ok(Box::new(BurnSession::new(model, device, options.training)?))
    }
}

/// The thread count this process's rayon global pool was given by [`configure_threads`].
static THREADS: OnceLock<usize> = OnceLock::new();

/// Sizes burn-flex's thread pool (rayon's global pool) to `threads`.
///
/// The first call builds the pool (`rayon::ThreadPoolBuilder::build_global`); later calls with
/// the same count are accepted, with another count refused: rayon cannot resize its global
/// pool once built. If something else built the pool first, its size is what counts.
pub fn configure_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        return Err(Error::invalid(format!(
            "thread count {threads}: expected 1 or more"
        )));
    }
    let in_force = *THREADS.get_or_init(|| {
        match rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
        {
            Ok(()) => threads,
            // Already built (by rayon's first parallel work, or another caller).
            Err(_) => rayon::current_num_threads(),
        }
    });
    if in_force != threads {
        return Err(Error::Backend {
            backend: NAME.to_string(),
            message: format!(
                "{threads} thread(s) asked, but burn's CPU thread pool (rayon's global pool) \
                 already runs {in_force} in this process and cannot be resized; run each \
                 thread count in its own process"
            ),
        });
    }
    Ok(())
}

/// The number of threads burn-flex computes on in this process: the count
/// [`configure_threads`] set, or else the size of rayon's global pool (which asking builds,
/// at rayon's default size, if nothing has yet).
pub fn threads() -> usize {
    THREADS
        .get()
        .copied()
        .unwrap_or_else(rayon::current_num_threads)
}
