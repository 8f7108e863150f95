//! [`BurnSession`]: a model prepared for burn. It interprets the graph node by node with burn
//! ops (burn runs eagerly), keeps every value of the last pass, lets burn's autodiff compute
//! the parameters' gradients (`loss.backward()`, then `param.grad(&grads)`) and steps burn's
//! optimizers ([`crate::optim`]). Moving data in and out is untimed; `forward`, `backward` and
//! `train_step` compute and then synchronise the device.

use std::collections::{BTreeMap, BTreeSet};

use burn::tensor::Tensor;
use dlbench_core::interpret::{self, Lowering, Named, Sources};
use dlbench_core::training::LOSS;
use dlbench_core::{
    Error, Graph, LossOp, Mode, Model, Node, Op, Result, Session, TrainingConfig, ValueInfo, Values,
};

use crate::convert::{self, burn_error, guard, Value};
use crate::ops;
use crate::optim::Updater;

/// Values on the device, by name.
type DeviceValues = Named<Value>;

/// A parameter: a flat f32 leaf tensor (tracked by autodiff when training) and its IR shape.
struct Param {
    flat: Tensor<1>,
    shape: Vec<usize>,
    /// Held in burn's `Linear` layout, `[in, out]`: the transpose of the IR's `[out, in]`
    /// Dense weight, so that no pass transposes it (see [`linear_weights`]).
    linear: bool,
}

impl Param {
    /// The shape the device tensor has: the IR's, or its transpose for a linear weight.
    fn device_shape(&self) -> Vec<usize> {
        match self.linear {
            true => self.shape.iter().rev().copied().collect(),
            false => self.shape.clone(),
        }
    }

    /// `flat` (the parameter or its gradient, in this parameter's device layout) on the host
    /// in the IR's layout.
    fn to_host(&self, flat: &Tensor<1>) -> Result<dlbench_core::Tensor> {
        let host = convert::flat_to_host(flat, &self.device_shape())?;
        match self.linear {
            true => convert::transpose_2d(&host),
            false => Ok(host),
        }
    }
}

/// The parameters used only as a Dense weight (and not read as a graph output): held as burn's
/// `Linear` holds its weight, `[in, out]`, as a burn user's model would, so that every pass
/// multiplies by them directly rather than transposing the IR's `[out, in]` each time.
fn linear_weights(graph: &Graph) -> BTreeSet<String> {
    let mut dense = BTreeSet::new();
    let mut other = BTreeSet::new();
    for node in &graph.nodes {
        for (i, input) in node.inputs.iter().enumerate() {
            match (&node.op, i) {
                (Op::Dense, 1) => dense.insert(input.clone()),
                _ => other.insert(input.clone()),
            };
        }
    }
    other.extend(graph.outputs.iter().cloned());
    graph
        .params
        .iter()
        .map(|p| &p.value.name)
        .filter(|name| dense.contains(*name) && !other.contains(*name))
        .cloned()
        .collect()
}

/// A model prepared for burn on one device.
///
/// With a training config it runs the training graph (`model.with_loss(loss)`), whose inputs
/// include the target and whose outputs end in [`LOSS`]; its tensors then live on burn's
/// autodiff device (`Device::flex().autodiff()`), an inference session's on the plain one.
pub struct BurnSession {
    graph: Graph,
    /// The inferred type of every value, for checking batches and each op's result.
    infos: BTreeMap<String, ValueInfo>,
    device: burn::tensor::Device,
    params: BTreeMap<String, Param>,
    /// Present exactly when the session was prepared for training.
    optimizer: Option<Updater>,
    /// The loaded batch on the device, and its batch size.
    batch: Option<(DeviceValues, usize)>,
    /// Every node output of the last pass.
    values: Option<DeviceValues>,
    /// The gradients of the last backward pass, by parameter; a parameter the loss does not
    /// reach has none.
    grads: Option<BTreeMap<String, Tensor<1>>>,
}

impl std::fmt::Debug for BurnSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BurnSession")
            .field("graph", &self.graph.name)
            .field("device", &self.device)
            .field("training", &self.optimizer.is_some())
            .finish_non_exhaustive()
    }
}

impl BurnSession {
    /// Copies the model's weights to `device` as flat f32 tensors (leaves that require grad
    /// when training) and, with a training config, builds the optimizer after them.
    pub fn new(
        model: &Model,
        device: burn::tensor::Device,
        training: Option<TrainingConfig>,
    ) -> Result<Self> {
        model.validate()?;
        let graph = match training {
            Some(config) => model.graph.with_loss(config.loss)?,
            None => model.graph.clone(),
        };
        let infos = graph.infer()?;
        let linear = linear_weights(&graph);
        let mut params = BTreeMap::new();
        for param in &graph.params {
            let name = &param.value.name;
            let weight = model
                .weights
                .get(name)
                .ok_or_else(|| Error::invalid(format!("no weight for parameter `{name}`")))?;
            let is_linear = linear.contains(name);
            let flat = match is_linear {
                true => convert::to_burn(&convert::transpose_2d(weight)?, &device)?,
                false => convert::to_burn(weight, &device)?,
            };
            let flat = flat.flat()?.clone();
            let flat = match training {
                Some(_) => flat.require_grad(),
                None => flat,
            };
            let shape = weight.shape().to_vec();
            let param = Param {
                flat,
                shape,
                linear: is_linear,
            };
            params.insert(name.clone(), param);
        }
        // The weights are in place before the optimizer exists (burn keys optimizer state by
        // parameter; here, by name).
        let optimizer = match training {
            Some(config) => Some(Updater::new(&config.optimizer)?),
            None => None,
        };
        Ok(BurnSession {
            graph,
            infos,
            device,
            params,
            optimizer,
            batch: None,
            values: None,
            grads: None,
        })
    }

    /// The graph this session runs (the training graph when prepared for training).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    fn require_training(&self, what: &str) -> Result<()> {
        match self.optimizer {
            Some(_) => Ok(()),
            None => Err(Error::invalid(format!(
                "burn session for `{}`: {what} needs a training config (loss and optimizer); \
                 this session was prepared for inference only",
                self.graph.name
            ))),
        }
    }

    /// Runs every node in order on the loaded batch and returns every value it produced.
    /// Untracked passes read the parameters detached, so autodiff records nothing.
    fn run_forward(&self, mode: Mode, tracked: bool) -> Result<DeviceValues> {
        let (inputs, batch) = self.batch.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "burn session for `{}`: no batch loaded; call load before forward",
                self.graph.name
            ))
        })?;
        let params: DeviceValues = self
            .params
            .iter()
            .map(|(name, p)| {
                let flat = if tracked {
                    p.flat.clone()
                } else {
                    p.flat.clone().detach()
                };
                (name.clone(), Value::with_shape(flat, p.device_shape()))
            })
            .collect();
        let sources = Sources {
            inputs,
            params: &params,
        };
        let mut lowering = BurnLowering {
            mode,
            params: &self.params,
        };
        interpret::run_nodes(&self.graph, &self.infos, *batch, sources, &mut lowering)
    }

    /// Waits for the device to finish the queued work.
    fn synchronize(&self) -> Result<()> {
        self.device
            .sync()
            .map_err(|e| burn_error("synchronizing the device", format!("{e:?}")))
    }

    /// A tracked training-mode forward, then backward from the loss. Only this pass's
    /// gradients are kept (burn returns a fresh `Gradients` per backward).
    fn backward_pass(&mut self) -> Result<()> {
        self.require_training("backward")?;
        self.grads = None;
        let values = self.run_forward(Mode::Training, true)?;
        let loss = values
            .get(LOSS)
            .ok_or_else(|| Error::invalid("the training graph produced no loss"))?
            .flat()?
            .clone();
        let grads = guard("backward", || {
            let gradients = loss.backward();
            Ok(self
                .params
                .iter()
                .filter_map(|(name, p)| p.flat.grad(&gradients).map(|g| (name.clone(), g)))
                .collect())
        })?;
        self.values = Some(values);
        self.grads = Some(grads);
        Ok(())
    }

    fn not_run(&self, what: &str) -> Error {
        Error::invalid(format!(
            "burn session for `{}`: no {what} yet; run forward (or a training step) first",
            self.graph.name
        ))
    }

    /// Refuses a label outside `[0, classes)` for a cross-entropy loss: burn would gather out
    /// of range instead of reporting it.
    fn check_labels(&self, inputs: &Values) -> Result<()> {
        for node in &self.graph.nodes {
            let labels = match (&node.op, node.inputs.get(1)) {
                (Op::Loss(LossOp::CrossEntropy), Some(labels)) => labels,
                _ => continue,
            };
            let classes = node
                .inputs
                .first()
                .and_then(|logits| self.infos.get(logits))
                .and_then(|info| info.shape.last().copied())
                .map(|d| d.resolve(0));
            let (Some(tensor), Some(classes)) = (inputs.get(labels), classes) else {
                continue;
            };
            let bad = tensor
                .as_i64()
                .into_iter()
                .flatten()
                .find(|&&l| l < 0 || l as u64 >= classes as u64);
            if let Some(label) = bad {
                return Err(Error::invalid(format!(
                    "label {label} in `{labels}` is out of range for {classes} classes"
                )));
            }
        }
        Ok(())
    }
}

/// burn's lowering for the shared walk ([`interpret::run_nodes`]).
struct BurnLowering<'a> {
    mode: Mode,
    /// The session's parameters: which are held in `Linear`'s layout.
    params: &'a BTreeMap<String, Param>,
}

impl Lowering for BurnLowering<'_> {
    type Value = Value;

    fn framework(&self) -> &str {
        "burn"
    }

    fn dims(&self, value: &Value) -> Vec<usize> {
        value.shape().to_vec()
    }

    /// The Dense lowering takes its weight as `[in, out]`; only a weight that is not a linear
    /// parameter (computed, or shared with another op) is transposed here.
    fn lower(&mut self, node: &Node, inputs: &[&Value]) -> Result<Vec<Value>> {
        if let (Op::Dense, Some(weight), [x, w, rest @ ..]) = (&node.op, node.inputs.get(1), inputs)
        {
            if !self.params.get(weight).is_some_and(|p| p.linear) {
                let transposed = convert::transposed_2d(w)?;
                let args: Vec<&Value> = [*x, &transposed]
                    .into_iter()
                    .chain(rest.iter().copied())
                    .collect();
                return ops::forward(node, &args, self.mode);
            }
        }
        ops::forward(node, inputs, self.mode)
    }
}

fn to_host_all(values: &DeviceValues) -> Result<Values> {
    values
        .iter()
        .map(|(name, v)| Ok((name.clone(), convert::to_host(v)?)))
        .collect()
}

impl Session for BurnSession {
    /// Every graph input must be present, with one batch size across them; floats go to the
    /// device as f32, labels as integers. Values of an earlier pass are dropped; on error
    /// nothing changes.
    fn load(&mut self, inputs: &Values) -> Result<()> {
        let batch = self.graph.check_batch(inputs)?;
        self.check_labels(inputs)?;
        let mut loaded = DeviceValues::new();
        for (name, tensor) in inputs {
            loaded.insert(name.clone(), convert::to_burn(tensor, &self.device)?);
        }
        self.batch = Some((loaded, batch));
        self.values = None;
        Ok(())
    }

    /// Records no autograd graph (the parameters are read detached): `backward` and
    /// `train_step` run their own forward pass.
    fn forward(&mut self, mode: Mode) -> Result<()> {
        let values = self.run_forward(mode, false)?;
        self.values = Some(values);
        self.synchronize()
    }

    fn backward(&mut self) -> Result<()> {
        self.backward_pass()?;
        self.synchronize()
    }

    /// Forward, backward and one optimizer update of every parameter that has a gradient
    /// (PyTorch's optimizers skip a parameter without one). The values kept are those the
    /// update was computed from, so the loss read afterwards is the loss before the update.
    fn train_step(&mut self) -> Result<()> {
        self.backward_pass()?;
        let grads = self
            .grads
            .as_ref()
            .ok_or_else(|| self.not_run("gradients"))?;
        let updater = self
            .optimizer
            .as_mut()
            .ok_or_else(|| Error::invalid("a training step needs a training config"))?;
        for (name, param) in self.params.iter_mut() {
            let Some(grad) = grads.get(name) else {
                continue;
            };
            param.flat = guard("optimizer step", || {
                let updated = updater.step(name, param.flat.clone().inner(), grad.clone().inner());
                Ok(updated.autodiff().require_grad())
            })?;
        }
        self.synchronize()
    }

    fn outputs(&mut self) -> Result<Values> {
        let values = self
            .values
            .as_ref()
            .ok_or_else(|| self.not_run("outputs"))?;
        let (inputs, _) = self.batch.as_ref().ok_or_else(|| self.not_run("outputs"))?;
        let params = DeviceValues::new();
        self.graph
            .outputs
            .iter()
            .map(|name| {
                let value = match self.params.get(name) {
                    Some(p) => p.to_host(&p.flat)?,
                    None => {
                        let sources = Sources {
                            inputs,
                            params: &params,
                        };
                        convert::to_host(sources.lookup(name, values)?)?
                    }
                };
                Ok((name.clone(), value))
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

    /// A parameter the loss does not reach has no gradient in burn; it reads as zeros here,
    /// as in the reference.
    fn gradients(&mut self) -> Result<Values> {
        self.require_training("reading gradients")?;
        let grads = self.grads.as_ref().ok_or_else(|| {
            Error::invalid("burn session: no gradients yet; call backward or train_step first")
        })?;
        self.params
            .iter()
            .map(|(name, p)| {
                let grad = match grads.get(name) {
                    Some(g) => p.to_host(g)?,
                    None => convert::host_zeros(&p.shape),
                };
                Ok((name.clone(), grad))
            })
            .collect()
    }

    fn weights(&mut self) -> Result<Values> {
        self.params
            .iter()
            .map(|(name, p)| Ok((name.clone(), p.to_host(&p.flat)?)))
            .collect()
    }

    /// The nodes this session composes from burn tensor ops (burn has no module for them, or
    /// one that does not take the IR's inputs), which burn optimizer it steps with, and the
    /// thread count it was told.
    fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .graph
            .nodes
            .iter()
            .filter_map(|node| {
                let what = match &node.op {
                    Op::Dropout { .. } if self.optimizer.is_some() => {
                        "composed: x * mask / (1 - p) with the harness's mask (burn's Dropout draws its own)"
                    }
                    Op::Loss(LossOp::BinaryCrossEntropy) => {
                        "composed: burn-nn's BCE takes integer targets only"
                    }
                    Op::Loss(LossOp::BinaryCrossEntropyWithLogits) => {
                        "composed: (1 - t) x - log_sigmoid(x)"
                    }
                    Op::Loss(LossOp::VaeElbo) => "composed from burn tensor ops (BCE sum + KL)",
                    Op::Dense
                    | Op::MatMul
                    | Op::Conv2d(_)
                    | Op::MaxPool2d(_)
                    | Op::AvgPool2d(_)
                    | Op::Flatten { .. }
                    | Op::Reshape { .. }
                    | Op::Transpose { .. }
                    | Op::Concat { .. }
                    | Op::Unary(_)
                    | Op::Softmax { .. }
                    | Op::LogSoftmax { .. }
                    | Op::Dropout { .. }
                    | Op::Lstm(_)
                    | Op::Binary(_)
                    | Op::Loss(LossOp::Mse | LossOp::CrossEntropy) => return None,
                };
                Some(format!("burn: `{}` ({}): {what}", node.name, node.op.name()))
            })
            .collect();
        if let Some(updater) = &self.optimizer {
            let name = match updater {
                Updater::Sgd { .. } => "burn-optim Sgd, every option set explicitly (dampening 0)",
                Updater::Adam { .. } => {
                    "burn-optim Adam, every option set explicitly (eps, L2 decay)"
                }
            };
            notes.push(format!("burn: optimizer: {name}"));
        }
        notes.push(format!(
            "burn: told {} thread(s): rayon's global pool",
            crate::threads()
        ));
        notes
    }
}
