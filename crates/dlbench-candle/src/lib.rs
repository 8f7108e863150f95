//! dlbench-candle owns dlbench's candle backend (candle-core and candle-nn 0.11.1, pinned).
//! [`CandleBackend`] lowers each IR op to candle's own op and runs the graph eagerly in f32, as
//! a candle program runs a model: parameters are `candle_core::Var`s, candle's autograd
//! (`Tensor::backward`, a `GradStore`) computes the gradients, and each optimizer follows
//! PyTorch's update rule. It runs on the CPU, and on CUDA devices when built with the `cuda`
//! feature. [`CandleSession`] keeps every value of the last pass (`intermediates`) and each
//! parameter's gradient by name (zeros where the loss does not reach it).
//!
//! # The lowering
//!
//! Every op runs candle's own kernels. Where candle's op lacks an attribute of the IR, or its
//! backward is missing or not PyTorch's, the rest is composed from candle tensor ops that
//! candle differentiates itself:
//!
//! | IR | candle |
//! | --- | --- |
//! | dense | `candle_nn::Linear` (weight `[out, in]`, the IR's layout), on a contiguous input: on a transposed one candle 0.11.1's CPU matmul is silently wrong (huggingface/candle#3744, #3758) |
//! | mat_mul | `Tensor::broadcast_matmul`, on contiguous operands (as dense) |
//! | conv2d | `Tensor::conv2d`, groups included. candle takes one padding, stride and dilation for both axes: unequal padding is applied first with `pad_with_zeros`, unequal stride runs at stride 1 and keeps every stride-th row or column (`index_select`), unequal dilation spreads the kernel with zeros |
//! | max_pool2d | `max_pool2d_with_stride` on the input padded with -inf (and, in ceil mode, extended at the end) by concatenation. candle's backward scales a window's unique maximum's gradient by `1 / (kh * kw)` and is missing where the kernel differs from the stride, so in training the windows are gathered (`index_select`) and each one's first maximum is read with `argmax` + `gather`: the gradient goes to that one cell, as in PyTorch |
//! | avg_pool2d | `avg_pool2d_with_stride` on the input padded with zeros (extended in ceil mode, cut to the cells the windows read); a divisor other than `kh * kw` (padding not counted, a window overhanging in ceil mode) is a constant `[Ho, Wo]` factor. candle's backward is missing where the kernel differs from the stride: there training sums gathered windows |
//! | flatten, reshape, transpose, concat | `flatten_from`, `reshape` (ONNX's `0` and `-1` resolved first), `permute`, `Tensor::cat` |
//! | relu, sigmoid, tanh, exp, scale | `relu` (its gradient at exactly 0 is 1; PyTorch's is 0), `candle_nn::ops::sigmoid`, `tanh`, `exp`, `affine` |
//! | softmax, log_softmax | `candle_nn::ops::softmax`, `candle_nn::ops::log_softmax`, on any axis, both differentiable (not `softmax_last_dim`, which has no backward) |
//! | dropout | `x * mask` then `affine(1 / (1 - p))` in training (the mask is the harness's input), the identity in inference |
//! | lstm | `candle_nn::rnn::LSTM`'s cell (gates i, f, g, o), given our weights under PyTorch's names (`weight_ih_l0`, `..._reverse`) through a `VarBuilder`, stepped forward or backward; Y, Y_h and Y_c stacked as the IR defines them |
//! | add, sub, mul | `broadcast_add`, `broadcast_sub`, `broadcast_mul` |
//! | mse, cross_entropy | `candle_nn::loss::mse`, `candle_nn::loss::cross_entropy` (labels checked against the class count first) |
//! | bce | composed: `-mean(t log p + (1 - t) log(1 - p))` with each log clamped at -100, PyTorch's `BCELoss` (candle-nn has none) |
//! | bce_with_logits | composed, stable: `mean(max(x, 0) - x t + log(1 + e^-abs(x)))`. candle-nn's `binary_cross_entropy_with_logit` takes `log(sigmoid(x))` and is NaN for logits past about ±17 |
//! | vae_elbo | composed as the tch backend's: the BCE sum plus the KL term, over the batch |
//!
//! # The optimizers
//!
//! candle-nn has SGD without momentum and AdamW. Plain SGD (GD, or SGD with neither momentum
//! nor weight decay) is candle-nn's `SGD`; Adam without weight decay or AMSGrad is candle-nn's
//! `AdamW` with its decay at 0, which is then Adam. SGD with momentum, dampening, Nesterov or
//! weight decay, and Adam with (L2) weight decay or AMSGrad, are `torch.optim.SGD` and
//! `torch.optim.Adam` composed from candle tensor ops, rule for rule.
//! [`CandleSession::optimizer`] says which one a session steps with. As in PyTorch after
//! `zero_grad()`, a parameter the loss does not reach is skipped (no decay, no momentum).
//!
//! # Threads
//!
//! candle's CPU kernels run on thread pools that are sized once per process, the first time
//! they are used: matmul splits its work into `candle_core::utils::get_num_threads()` parts
//! (the `RAYON_NUM_THREADS` variable, read at each call, else the physical cores), convolutions
//! run on rayon (candle's own pool, sized from the same at its first use), and element-wise
//! ops on candle's barrier pool (`CANDLE_NUM_THREADS`, else `RAYON_NUM_THREADS`, read once).
//! [`configure_threads`], which `prepare` calls, sets both variables to `options.threads` and
//! starts candle's pools at that size; every pass then runs inside candle's own pool
//! (`Device::with_context`). A later `prepare` with another count in the same process is an
//! error: a worker process runs one thread count. [`threads`] reports what candle uses.
//!
//! # CUDA
//!
//! The `cuda` feature (off by default) compiles candle's CUDA path and lists the CUDA devices
//! candle can open. It is compiled only on a machine with nvcc: cudarc's and candle-kernels'
//! build scripts run it. No default build enables it. Without the feature, or without a GPU,
//! `Device::Cuda(i)` is [`Error::Unsupported`].

mod convert;
mod ops;
mod optim;
mod session;

use std::sync::Mutex;

use dlbench_core::{Backend, Capabilities, Device, Error, Model, PrepareOptions, Result, Session};

pub use session::CandleSession;

/// The backend's name in specs, results and `dlbench list`.
pub const NAME: &str = "candle";

/// The candle version this backend is built on; candle-core and candle-nn are pinned to it
/// with `=` in Cargo.toml.
pub const CANDLE_VERSION: &str = "0.11.1";

/// candle: inference, training and intermediates, on the CPU (and CUDA with the `cuda`
/// feature).
#[derive(Debug, Clone, Copy, Default)]
pub struct CandleBackend;

impl CandleBackend {
    /// The CUDA devices candle can open in this process: none without the `cuda` feature,
    /// a driver or a GPU.
    pub fn cuda_devices() -> Vec<Device> {
        cuda_device_count()
            .map(|n| (0..n).map(Device::Cuda).collect())
            .unwrap_or_default()
    }
}

/// How many CUDA devices candle opens, probed once: candle creates a device by ordinal and
/// fails past the last one. cudarc loads the driver library at run time and panics where
/// there is none; that counts as no device.
#[cfg(feature = "cuda")]
fn cuda_device_count() -> Option<usize> {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    Some(*COUNT.get_or_init(|| {
        let opens = |i: usize| {
            std::panic::catch_unwind(|| candle_core::Device::new_cuda(i).is_ok()).unwrap_or(false)
        };
        (0..64).take_while(|&i| opens(i)).count()
    }))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device_count() -> Option<usize> {
    None
}

/// The candle device for a dlbench device, or why it cannot be had.
fn candle_device(device: Device) -> Result<candle_core::Device> {
    match device {
        Device::Cpu => Ok(candle_core::Device::Cpu),
        Device::Cuda(i) => {
            if !cfg!(feature = "cuda") {
                return Err(Error::unsupported(
                    NAME,
                    format!(
                        "device cuda:{i}: this build of dlbench-candle has no CUDA support \
                         (build with the `cuda` feature, on a machine with nvcc)"
                    ),
                ));
            }
            let found = CandleBackend::cuda_devices();
            if !found.contains(&device) {
                return Err(Error::unsupported(
                    NAME,
                    format!(
                        "device cuda:{i}: candle finds {} CUDA device(s) on this machine",
                        found.len()
                    ),
                ));
            }
            candle_core::Device::new_cuda(i).map_err(|e| {
                Error::unsupported(NAME, format!("device cuda:{i}: candle cannot open it: {e}"))
            })
        }
    }
}

impl Backend for CandleBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    /// `candle 0.11.1`.
    fn version(&self) -> String {
        format!("candle {CANDLE_VERSION}")
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

    /// Sizes candle's CPU thread pools to `options.threads` (once per process, see
    /// [`configure_threads`]), opens the device, copies the weights to it as `Var`s and, for
    /// training, builds the optimizer over them.
    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        let device = candle_device(options.device)?;
        configure_threads(options.threads)?;
        Ok(Box::new(CandleSession::new(
            model,
            device,
            options.training,
        )?))
    }
}

/// The thread count this process's candle pools were sized to, once set.
static THREADS: Mutex<Option<usize>> = Mutex::new(None);

/// Applies a worker's thread count to candle, once per process.
///
/// The first call sets `RAYON_NUM_THREADS` and `CANDLE_NUM_THREADS` to `threads` and starts
/// candle's thread pools (its rayon pool and its barrier pool), which read them once; it fails
/// if either pool was already started at another size (candle was used in this process
/// before). A later call with the same count does nothing; with another count it is an error,
/// since candle cannot resize its pools.
pub fn configure_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        return Err(Error::invalid(format!(
            "thread count {threads}: expected 1 or more"
        )));
    }
    let mut fixed = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = *fixed {
        if n == threads {
            return Ok(());
        }
        return Err(Error::Backend {
            backend: NAME.to_string(),
            message: format!(
                "candle's thread pools are sized once per process and this one runs {n} \
                 thread(s); {threads} cannot be applied (run it in a new worker process)"
            ),
        });
    }
    let value = threads.to_string();
    // Set before candle reads them, while no pool of candle's is running; the worker process
    // does this once, early.
    std::env::set_var("RAYON_NUM_THREADS", &value);
    std::env::set_var("CANDLE_NUM_THREADS", &value);
    let rayon = candle_core::utils::with_threadpool(rayon::current_num_threads);
    let barrier = candle_core::utils::barrier_pool().n_workers() + 1;
    let matmul = candle_core::utils::get_num_threads();
    if rayon != threads || barrier != threads || matmul != threads {
        return Err(Error::Backend {
            backend: NAME.to_string(),
            message: format!(
                "candle's thread pools were started before dlbench sized them (rayon pool \
                 {rayon}, element-wise pool {barrier}, matmul {matmul} thread(s)); \
                 {threads} cannot be applied in this process"
            ),
        });
    }
    *fixed = Some(threads);
    Ok(())
}

/// The number of CPU threads candle uses in this process: `options.threads` once a session
/// was prepared, before that candle's default (`candle_core::utils::get_num_threads`).
pub fn threads() -> usize {
    candle_core::utils::get_num_threads()
}
