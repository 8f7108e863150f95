//! [`CandleSession`]: a model prepared for candle. It interprets the graph node by node with
//! candle ops (eager, as candle runs a model), keeps every value of the last pass, lets
//! candle's autograd (`Tensor::backward`, a `GradStore`) compute the parameters' gradients and
//! steps the optimizers of [`crate::optim`]. Moving data in and out is untimed; `forward`,
//! `backward` and `train_step` compute and then synchronise the device, so that a timer around
//! them sees the whole work. On the CPU every pass runs inside candle's own thread pool
//! (`Device::with_context`), which [`crate::configure_threads`] sized.

use std::collections::BTreeMap;

use candle_core::{Tensor as CTensor, Var};
use dlbench_core::interpret::{self, Lowering, Named, Sources};
use dlbench_core::training::LOSS;
use dlbench_core::{
    DType, Error, Graph, Mode, Model, Node, Result, Session, Tensor, TrainingConfig, ValueInfo,
    Values,
};

use crate::convert::{self, candle_error};
use crate::ops;
use crate::optim::Stepper;

/// Tensors on the device, by value name.
pub(crate) type DeviceValues = Named<CTensor>;

/// A model prepared for candle on one device.
///
/// With a training config it runs the training graph (`model.with_loss(loss)`), whose inputs
/// include the target and whose outputs end in [`LOSS`].
pub struct CandleSession {
    graph: Graph,
    /// The inferred type of every value, for checking batches and each op's result.
    infos: BTreeMap<String, ValueInfo>,
    device: candle_core::Device,
    /// The parameters as candle `Var`s, in the graph's order.
    params: Vec<(String, Var)>,
    /// Present exactly when the session was prepared for training.
    optimizer: Option<Stepper>,
    /// The loaded batch on the device, and its batch size.
    batch: Option<(DeviceValues, usize)>,
    /// Every node output of the last pass.
    values: Option<DeviceValues>,
    /// Each parameter's gradient from the last backward pass; `None` where the loss does not
    /// reach the parameter. Absent before the first backward pass.
    gradients: Option<BTreeMap<String, Option<CTensor>>>,
}

impl std::fmt::Debug for CandleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleSession")
            .field("graph", &self.graph.name)
            .field("device", &self.device)
            .field("optimizer", &self.optimizer)
            .finish_non_exhaustive()
    }
}

impl CandleSession {
    /// Copies the model's weights to `device` as f32 `Var`s and, with a training config,
    /// builds the optimizer over them in the graph's parameter order.
    pub fn new(
        model: &Model,
        device: candle_core::Device,
        training: Option<TrainingConfig>,
    ) -> Result<Self> {
        model.validate()?;
        let graph = match training {
            Some(config) => model.graph.with_loss(config.loss)?,
            None => model.graph.clone(),
        };
        let infos = graph.infer()?;
        let mut params = Vec::with_capacity(graph.params.len());
        for param in &graph.params {
            let name = &param.value.name;
            let weight = model
                .weights
                .get(name)
                .ok_or_else(|| Error::invalid(format!("no weight for parameter `{name}`")))?;
            let tensor = convert::to_candle(weight, &device)?;
            let var = Var::from_tensor(&tensor).map_err(candle_error("making a parameter"))?;
            params.push((name.clone(), var));
        }
        let optimizer = match training {
            Some(config) => Some(Stepper::new(&config.optimizer, &params)?),
            None => None,
        };
        Ok(CandleSession {
            graph,
            infos,
            device,
            params,
            optimizer,
            batch: None,
            values: None,
            gradients: None,
        })
    }

    /// The graph this session runs (the training graph when prepared for training).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Which optimizer implementation a training session steps with (candle-nn's own or one
    /// composed from candle ops, see the crate docs); `None` for an inference session.
    pub fn optimizer(&self) -> Option<&'static str> {
        self.optimizer.as_ref().map(Stepper::describe)
    }

    fn require_training(&self, what: &str) -> Result<()> {
        match self.optimizer {
            Some(_) => Ok(()),
            None => Err(Error::invalid(format!(
                "candle session for `{}`: {what} needs a training config (loss and optimizer); \
                 this session was prepared for inference only",
                self.graph.name
            ))),
        }
    }

    /// Runs every node in order on the loaded batch and returns every value it produced.
    /// `track` runs on the parameters' `Var`s, so that candle records the autograd graph;
    /// otherwise on detached copies (no recording, as under `torch.no_grad()`).
    fn run_forward(&self, mode: Mode, track: bool) -> Result<DeviceValues> {
        let (inputs, batch) = self.batch.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "candle session for `{}`: no batch loaded; call load before forward",
                self.graph.name
            ))
        })?;
        let params: DeviceValues = self
            .params
            .iter()
            .map(|(name, var)| {
                let t = match track {
                    true => var.as_tensor().clone(),
                    false => var.as_detached_tensor(),
                };
                (name.clone(), t)
            })
            .collect();
        let sources = Sources {
            inputs,
            params: &params,
        };
        interpret::run_nodes(
            &self.graph,
            &self.infos,
            *batch,
            sources,
            &mut CandleLowering { mode },
        )
    }

    /// Waits for the device to finish the queued work (CUDA runs asynchronously).
    fn synchronize(&self) -> Result<()> {
        self.device
            .synchronize()
            .map_err(candle_error("synchronizing the device"))
    }

    /// A training-mode forward with autograd recording, then backward from the loss. The
    /// gradients are this pass's only: a parameter the loss does not reach has none (it reads
    /// as zeros, and the optimizer skips it, as after PyTorch's `zero_grad()`).
    fn backward_pass(&mut self) -> Result<candle_core::backprop::GradStore> {
        self.require_training("backward")?;
        self.gradients = None;
        let values = self.run_forward(Mode::Training, true)?;
        let loss = values
            .get(LOSS)
            .ok_or_else(|| Error::invalid("the training graph produced no loss"))?;
        let store = loss.backward().map_err(candle_error("backward"))?;
        let gradients = self
            .params
            .iter()
            .map(|(name, var)| (name.clone(), store.get(var.as_tensor()).cloned()))
            .collect();
        self.values = Some(values);
        self.gradients = Some(gradients);
        Ok(store)
    }

    fn not_run(&self, what: &str) -> Error {
        Error::invalid(format!(
            "candle session for `{}`: no {what} yet; run forward (or a training step) first",
            self.graph.name
        ))
    }

    /// Runs `f` where candle's CPU kernels find the pool [`crate::configure_threads`] sized.
    fn in_pool<R: Send>(&mut self, f: impl FnOnce(&mut Self) -> R + Send) -> R {
        let device = self.device.clone();
        device.with_context(|| f(self))
    }
}

/// candle's lowering for the shared walk ([`interpret::run_nodes`]).
struct CandleLowering {
    mode: Mode,
}

impl Lowering for CandleLowering {
    type Value = CTensor;

    fn framework(&self) -> &str {
        "candle"
    }

    fn dims(&self, value: &CTensor) -> Vec<usize> {
        value.dims().to_vec()
    }

    fn lower(&mut self, node: &Node, inputs: &[&CTensor]) -> Result<Vec<CTensor>> {
        ops::forward(node, inputs, self.mode)
    }
}

fn to_host_all<'a>(values: impl Iterator<Item = (&'a String, &'a CTensor)>) -> Result<Values> {
    values
        .map(|(name, t)| Ok((name.clone(), convert::to_host(t)?)))
        .collect()
}

impl Session for CandleSession {
    /// Every graph input must be present, with one batch size across them; floats go to the
    /// device as f32, labels as i64. Values of an earlier pass are dropped; on error nothing
    /// changes.
    fn load(&mut self, inputs: &Values) -> Result<()> {
        let batch = self.graph.check_batch(inputs)?;
        let mut loaded = DeviceValues::new();
        for (name, tensor) in inputs {
            loaded.insert(name.clone(), convert::to_candle(tensor, &self.device)?);
        }
        self.batch = Some((loaded, batch));
        self.values = None;
        Ok(())
    }

    /// Records no autograd graph: `backward` and `train_step` run their own forward pass.
    fn forward(&mut self, mode: Mode) -> Result<()> {
        self.in_pool(|s| {
            let values = s.run_forward(mode, false)?;
            s.values = Some(values);
            s.synchronize()
        })
    }

    fn backward(&mut self) -> Result<()> {
        self.in_pool(|s| {
            s.backward_pass()?;
            s.synchronize()
        })
    }

    /// Forward, backward, step: a PyTorch training loop's body. The values kept are those the
    /// update was computed from, so the loss read afterwards is the loss before the update.
    fn train_step(&mut self) -> Result<()> {
        self.in_pool(|s| {
            let store = s.backward_pass()?;
            let optimizer = s
                .optimizer
                .as_mut()
                .ok_or_else(|| Error::invalid("a training step needs a training config"))?;
            optimizer.step(&store)?;
            s.synchronize()
        })
    }

    fn outputs(&mut self) -> Result<Values> {
        let values = self
            .values
            .as_ref()
            .ok_or_else(|| self.not_run("outputs"))?;
        let (inputs, _) = self.batch.as_ref().ok_or_else(|| self.not_run("outputs"))?;
        let params: DeviceValues = self
            .params
            .iter()
            .map(|(n, v)| (n.clone(), v.as_detached_tensor()))
            .collect();
        self.graph
            .outputs
            .iter()
            .map(|name| {
                let sources = Sources {
                    inputs,
                    params: &params,
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
        to_host_all(values.iter())
    }

    /// A parameter the loss does not reach has no gradient in candle's `GradStore`; it reads
    /// as zeros here, as in the reference.
    fn gradients(&mut self) -> Result<Values> {
        self.require_training("reading gradients")?;
        let gradients = self.gradients.as_ref().ok_or_else(|| {
            Error::invalid("candle session: no gradients yet; call backward or train_step first")
        })?;
        self.params
            .iter()
            .map(|(name, var)| {
                let grad = match gradients.get(name) {
                    Some(Some(g)) => convert::to_host(g)?,
                    _ => Tensor::zeros(DType::F32, var.dims().to_vec()),
                };
                Ok((name.clone(), grad))
            })
            .collect()
    }

    fn weights(&mut self) -> Result<Values> {
        to_host_all(self.params.iter().map(|(n, v)| (n, v.as_tensor())))
    }

    /// Each node whose op is (partly) composed from candle tensor ops, and the optimizer when
    /// it is PyTorch's rule composed rather than candle-nn's.
    fn notes(&self) -> Vec<String> {
        let training = self.optimizer.is_some();
        let mut notes: Vec<String> = self
            .graph
            .nodes
            .iter()
            .filter_map(|node| {
                ops::composed(&node.op, training)
                    .map(|what| format!("candle: `{}` ({}): {what}", node.name, node.op.name()))
            })
            .collect();
        if let Some(stepper) = &self.optimizer {
            notes.push(format!("candle: optimizer: {}", stepper.describe()));
        }
        notes.push(format!(
            "candle: told {} thread(s): RAYON_NUM_THREADS and CANDLE_NUM_THREADS, its pools sized once",
            crate::threads()
        ));
        notes
    }
}
