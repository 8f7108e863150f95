//! The two traits every adapter implements: a [`Backend`] prepares a [`Model`] once into a
//! [`Session`], which then runs many times (tract's split). A session keeps untimed work
//! (moving inputs in and results out) apart from timed work (compute and synchronise), the
//! benchmark contract of burn's burnbench.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::model::Model;
use crate::tensor::Values;
use crate::training::TrainingConfig;

/// Where a session computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The host CPU; written `cpu`.
    Cpu,
    /// The CUDA GPU with this ordinal; written `cuda:N` (`cuda` alone means `cuda:0`).
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let index = |i: &str| {
            i.parse()
                .map_err(|_| Error::invalid(format!("device `{s}`: `{i}` is not an index")))
        };
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:") {
                Some(i) => Ok(Device::Cuda(index(i)?)),
                None => Err(Error::invalid(format!(
                    "unknown device `{s}`, expected `cpu`, `cuda` or `cuda:N`"
                ))),
            },
        }
    }
}

impl Serialize for Device {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Device {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a backend can do; anything it cannot is reported as unsupported, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Can run forward passes ([`Session::forward`], [`Session::outputs`]).
    pub inference: bool,
    /// Can run backward passes and optimizer updates ([`Session::backward`],
    /// [`Session::train_step`]).
    pub training: bool,
    /// Can return every intermediate value (for locating a divergence).
    pub intermediates: bool,
    /// Devices this build can use on this machine.
    pub devices: Vec<Device>,
}

/// Whether dropout is active in a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Dropout is the identity (PyTorch's `model.eval()`).
    Inference,
    /// Dropout masks and rescales its input (PyTorch's `model.train()`).
    Training,
}

/// How to prepare a session.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareOptions {
    /// Where the session computes; must be one of [`Capabilities::devices`].
    pub device: Device,
    /// Intra-op CPU threads the session may use (PyTorch's `torch.set_num_threads`); 1 by
    /// default.
    pub threads: usize,
    /// Loss and optimizer; `None` prepares for inference only.
    pub training: Option<TrainingConfig>,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        PrepareOptions {
            device: Device::Cpu,
            threads: 1,
            training: None,
        }
    }
}

/// A framework (or dlbench's own engine) that can run the IR.
pub trait Backend {
    /// Short, stable name used in specs and results: `reference`, `native`, `burn`...
    fn name(&self) -> &'static str;
    /// The framework's version, for the results record.
    fn version(&self) -> String;
    /// What this build can do on this machine; the harness skips, and reports, the rest.
    fn capabilities(&self) -> Capabilities;
    /// Which kernels its CPU work runs on, where the backend chooses them at run time (the
    /// native backend's instruction set, `avx2`); recorded with each run, so that a report can
    /// explain a difference between machines. `None`: the backend does not say.
    fn kernels(&self) -> Option<String> {
        None
    }
    /// Untimed, done once: lower the model, copy its weights, plan buffers, build the optimizer.
    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>>;
}

/// A prepared model. Timed methods compute and synchronise; untimed ones move data.
///
/// With a training config the session runs the training graph (the model plus its loss node,
/// see [`crate::Graph::with_loss`]), whose outputs end in [`crate::training::LOSS`].
pub trait Session {
    /// Untimed: hands a batch (data, target and noise inputs, by name) to the device.
    fn load(&mut self, inputs: &Values) -> Result<()>;
    /// Timed: one forward pass over the loaded batch.
    fn forward(&mut self, mode: Mode) -> Result<()>;
    /// Timed: forward and backward in training mode; gradients become readable, weights stay.
    fn backward(&mut self) -> Result<()>;
    /// Timed: forward, backward and one optimizer update.
    fn train_step(&mut self) -> Result<()>;
    /// Untimed: the graph outputs of the last forward pass.
    fn outputs(&mut self) -> Result<Values>;
    /// Untimed: every value of the last forward pass, by name.
    fn intermediates(&mut self) -> Result<Values>;
    /// Untimed: d loss / d parameter from the last backward pass or training step.
    fn gradients(&mut self) -> Result<Values>;
    /// Untimed: the current parameters.
    fn weights(&mut self) -> Result<Values>;
    /// What the timed work includes beyond the framework's own building blocks: each op,
    /// backward or optimizer this session composes from the framework's tensor ops because the
    /// framework lacks it (or has it wrong), one line each. The results record keeps them
    /// beside the timings. Empty by default.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}
