//! [`TchSession`]: a model prepared for libtorch. It interprets the graph node by node with
//! libtorch ops (eager mode, like PyTorch itself), keeps every value of the last pass on the
//! device, lets libtorch's autograd fill the parameters' gradients and steps libtorch's C++
//! optimizers. Moving data in and out is untimed; `forward`, `backward` and `train_step`
//! compute and then synchronise the device, so that a timer around them sees the whole work.

use std::collections::BTreeMap;

use dlbench_core::interpret::{self, Lowering, Named, Sources};
use dlbench_core::training::{Adam, Gd, Sgd, LOSS};
use dlbench_core::{
    DType, Device, Error, Graph, Mode, Model, Node, Optimizer, Result, Session, Tensor,
    TrainingConfig, ValueInfo, Values,
};
use tch::COptimizer;

use crate::convert::{self, torch_error};
use crate::{ops, NAME};

/// Tensors on the device, by value name.
pub(crate) type DeviceValues = Named<tch::Tensor>;

/// A model prepared for libtorch on one device.
///
/// With a training config it runs the training graph (`model.with_loss(loss)`), whose inputs
/// include the target and whose outputs end in [`LOSS`].
pub struct TchSession {
    graph: Graph,
    /// The inferred type of every value, for checking batches and each op's result.
    infos: BTreeMap<String, ValueInfo>,
    device: Device,
    /// The parameters: f32 leaf tensors on the device, requiring grad when training.
    params: DeviceValues,
    /// Present exactly when the session was prepared for training.
    optimizer: Option<COptimizer>,
    /// The loaded batch on the device, and its batch size.
    batch: Option<(DeviceValues, usize)>,
    /// Every node output of the last pass.
    values: Option<DeviceValues>,
    /// True once a backward pass has filled the parameters' gradients.
    has_gradients: bool,
}

impl std::fmt::Debug for TchSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TchSession")
            .field("graph", &self.graph.name)
            .field("device", &self.device)
            .field("training", &self.optimizer.is_some())
            .finish_non_exhaustive()
    }
}

impl TchSession {
    /// Copies the model's weights to `device` as f32 leaf tensors and, with a training config,
    /// builds the optimizer over them in the graph's parameter order.
    pub fn new(model: &Model, device: Device, training: Option<TrainingConfig>) -> Result<Self> {
        model.validate()?;
        let graph = match training {
            Some(config) => model.graph.with_loss(config.loss)?,
            None => model.graph.clone(),
        };
        let infos = graph.infer()?;
        let on = convert::device(device);
        let mut params = DeviceValues::new();
        for param in &graph.params {
            let name = &param.value.name;
            let weight = model
                .weights
                .get(name)
                .ok_or_else(|| Error::invalid(format!("no weight for parameter `{name}`")))?;
            let tensor = convert::to_torch(weight, on)?;
            let tensor = match training {
                Some(_) => tensor
                    .f_set_requires_grad(true)
                    .map_err(torch_error("making a parameter trainable"))?,
                None => tensor,
            };
            params.insert(name.clone(), tensor);
        }
        let optimizer = match training {
            Some(config) => Some(optimizer(&config.optimizer, &graph, &params)?),
            None => None,
        };
        Ok(TchSession {
            graph,
            infos,
            device,
            params,
            optimizer,
            batch: None,
            values: None,
            has_gradients: false,
        })
    }

    /// The graph this session runs (the training graph when prepared for training).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    fn require_training(&self, what: &str) -> Result<&COptimizer> {
        self.optimizer.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "tch session for `{}`: {what} needs a training config (loss and optimizer); \
                 this session was prepared for inference only",
                self.graph.name
            ))
        })
    }

    /// Runs every node in order on the loaded batch and returns every value it produced.
    fn run_forward(&self, mode: Mode) -> Result<DeviceValues> {
        let (inputs, batch) = self.batch.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "tch session for `{}`: no batch loaded; call load before forward",
                self.graph.name
            ))
        })?;
        run_nodes(&self.graph, &self.infos, inputs, &self.params, *batch, mode)
    }

    /// Waits for the device to finish the queued work (CUDA runs asynchronously).
    fn synchronize(&self) -> Result<()> {
        match self.device {
            Device::Cpu => Ok(()),
            Device::Cuda(i) => {
                // tch panics on a CUDA error here; it is this backend's failure, not ours.
                std::panic::catch_unwind(|| tch::Cuda::synchronize(i as i64)).map_err(|_| {
                    Error::Backend {
                        backend: NAME.to_string(),
                        message: format!("synchronizing cuda:{i} failed"),
                    }
                })
            }
        }
    }

    /// A training-mode forward with autograd recording, then backward from the loss. Gradients
    /// are reset first (to none, as `optimizer.zero_grad()` does in a PyTorch loop), so that
    /// they are this pass's only and a parameter the loss does not reach keeps none.
    fn backward_pass(&mut self) -> Result<()> {
        let optimizer = self.require_training("backward")?;
        optimizer
            .zero_grad()
            .map_err(torch_error("zeroing gradients"))?;
        self.has_gradients = false;
        let values = self.run_forward(Mode::Training)?;
        let loss = values
            .get(LOSS)
            .ok_or_else(|| Error::invalid("the training graph produced no loss"))?;
        loss.f_backward().map_err(torch_error("backward"))?;
        self.values = Some(values);
        self.has_gradients = true;
        Ok(())
    }

    fn not_run(&self, what: &str) -> Error {
        Error::invalid(format!(
            "tch session for `{}`: no {what} yet; run forward (or a training step) first",
            self.graph.name
        ))
    }
}

/// libtorch's own optimizer for `config`, over `params` in the graph's order. GD is SGD on the
/// whole training set, so plain SGD here.
fn optimizer(config: &Optimizer, graph: &Graph, params: &DeviceValues) -> Result<COptimizer> {
    config.validate()?;
    let mut optimizer = match *config {
        Optimizer::Gd(Gd { lr }) => COptimizer::sgd(lr, 0.0, 0.0, 0.0, false),
        Optimizer::Sgd(Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        }) => COptimizer::sgd(lr, momentum, dampening, weight_decay, nesterov),
        Optimizer::Adam(Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
        }) => COptimizer::adam(lr, beta1, beta2, weight_decay, eps, amsgrad),
    }
    .map_err(torch_error("building the optimizer"))?;
    for param in &graph.params {
        if let Some(tensor) = params.get(&param.value.name) {
            optimizer
                .add_parameters(tensor, 0)
                .map_err(torch_error("registering a parameter with the optimizer"))?;
        }
    }
    Ok(optimizer)
}

/// libtorch's lowering for the shared walk ([`interpret::run_nodes`]).
struct TchLowering {
    mode: Mode,
}

impl Lowering for TchLowering {
    type Value = tch::Tensor;

    fn framework(&self) -> &str {
        "libtorch"
    }

    /// Reading sizes does not wait for the device.
    fn dims(&self, value: &tch::Tensor) -> Vec<usize> {
        value.size().iter().map(|&d| d as usize).collect()
    }

    fn lower(&mut self, node: &Node, inputs: &[&tch::Tensor]) -> Result<Vec<tch::Tensor>> {
        ops::forward(node, inputs, self.mode)
    }
}

/// Runs every node of `graph` in order with the lowering in [`ops`] and returns every value it
/// produced. The session's passes and the TorchScript export (which records this same walk
/// with libtorch's tracer) share it, so the exported module computes what the session does.
/// `infos` is the graph's inferred types: each result is checked against them at `batch`.
pub(crate) fn run_nodes(
    graph: &Graph,
    infos: &BTreeMap<String, ValueInfo>,
    inputs: &DeviceValues,
    params: &DeviceValues,
    batch: usize,
    mode: Mode,
) -> Result<DeviceValues> {
    let sources = Sources { inputs, params };
    interpret::run_nodes(graph, infos, batch, sources, &mut TchLowering { mode })
}

fn to_host_all(values: &DeviceValues) -> Result<Values> {
    values
        .iter()
        .map(|(name, t)| Ok((name.clone(), convert::to_host(t)?)))
        .collect()
}

impl Session for TchSession {
    /// Every graph input must be present, with one batch size across them; floats go to the
    /// device as f32, labels as i64. Values of an earlier pass are dropped; on error nothing
    /// changes.
    fn load(&mut self, inputs: &Values) -> Result<()> {
        let batch = self.graph.check_batch(inputs)?;
        let on = convert::device(self.device);
        let mut loaded = DeviceValues::new();
        for (name, tensor) in inputs {
            loaded.insert(name.clone(), convert::to_torch(tensor, on)?);
        }
        self.batch = Some((loaded, batch));
        self.values = None;
        Ok(())
    }

    /// Records no autograd graph, as under `torch.no_grad()`: `backward` and `train_step`
    /// run their own forward pass.
    fn forward(&mut self, mode: Mode) -> Result<()> {
        let values = {
            let _no_grad = tch::no_grad_guard();
            self.run_forward(mode)?
        };
        self.values = Some(values);
        self.synchronize()
    }

    fn backward(&mut self) -> Result<()> {
        self.backward_pass()?;
        self.synchronize()
    }

    /// `zero_grad`, forward, backward, `step`: a PyTorch training loop's body. The values kept
    /// are those the update was computed from, so the loss read afterwards is the loss before
    /// the update.
    fn train_step(&mut self) -> Result<()> {
        self.backward_pass()?;
        let optimizer = self.require_training("a training step")?;
        optimizer.step().map_err(torch_error("optimizer step"))?;
        self.synchronize()
    }

    fn outputs(&mut self) -> Result<Values> {
        let values = self
            .values
            .as_ref()
            .ok_or_else(|| self.not_run("outputs"))?;
        let (inputs, _) = self.batch.as_ref().ok_or_else(|| self.not_run("outputs"))?;
        self.graph
            .outputs
            .iter()
            .map(|name| {
                let sources = Sources {
                    inputs,
                    params: &self.params,
                };
                let tensor = sources.lookup(name, values)?;
                Ok((name.clone(), convert::to_host(tensor)?))
            })
            .collect()
    }

    fn intermediates(&mut self) -> Result<Values> {
        let values = self
            .values
            .as_ref()
            .ok_or_else(|| self.not_run("intermediates"))?;
        to_host_all(values)
    }

    /// A parameter the loss does not reach has no gradient in libtorch (and its optimizer skips
    /// it); it reads as zeros here, as in the reference.
    fn gradients(&mut self) -> Result<Values> {
        self.require_training("reading gradients")?;
        if !self.has_gradients {
            return Err(Error::invalid(
                "tch session: no gradients yet; call backward or train_step first",
            ));
        }
        self.params
            .iter()
            .map(|(name, p)| {
                let grad = p.f_grad().map_err(torch_error("reading a gradient"))?;
                let grad = if grad.defined() {
                    convert::to_host(&grad)?
                } else {
                    let shape = p.size().iter().map(|&d| d as usize).collect();
                    Tensor::zeros(DType::F32, shape)
                };
                Ok((name.clone(), grad))
            })
            .collect()
    }

    fn weights(&mut self) -> Result<Values> {
        to_host_all(&self.params)
    }
}
