//! The reference backend and its session: runs a graph node by node in f64, keeps every value,
//! differentiates by reverse-mode accumulation from the loss and updates with PyTorch's
//! optimizers. Every check a user's data could fail is an [`Error`], never a panic: this is the
//! oracle, and it must say why it refuses a batch.

use std::collections::BTreeMap;

use dlbench_core::training::LOSS;
use dlbench_core::{
    Backend, Capabilities, DType, Device, Error, Graph, Mode, Model, Node, PrepareOptions, Result,
    Session, Tensor, TrainingConfig, ValueInfo, Values,
};

use super::ops;
use super::optim::OptimizerState;

const NAME: &str = "reference";

/// The f64 reference interpreter as a [`Backend`]: CPU only, single-threaded, every capability.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceBackend;

impl Backend for ReferenceBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> String {
        format!("f64 reference {}", env!("CARGO_PKG_VERSION"))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            inference: true,
            training: true,
            intermediates: true,
            devices: vec![Device::Cpu],
        }
    }

    /// Ignores `options.threads`: the reference is deliberately sequential.
    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        if options.device != Device::Cpu {
            return Err(Error::unsupported(
                NAME,
                format!(
                    "device {}: the f64 reference runs on the CPU only",
                    options.device
                ),
            ));
        }
        Ok(Box::new(ReferenceSession::new(model, options.training)?))
    }
}

/// A model prepared for the reference interpreter.
///
/// With a training config it runs the training graph (`model.with_loss(loss)`), whose inputs
/// include the target and whose outputs end in [`LOSS`].
#[derive(Debug, Clone)]
pub struct ReferenceSession {
    graph: Graph,
    /// The inferred type of every value of `graph`, for checking batches and kernel results.
    infos: BTreeMap<String, ValueInfo>,
    /// Current parameters, f64, in the graph's declared shapes.
    params: Values,
    /// Present exactly when the session was prepared for training.
    optimizer: Option<OptimizerState>,
    /// The loaded batch (floats as f64, labels as i64) and its batch size.
    batch: Option<(Values, usize)>,
    /// Every value produced by a node in the last forward pass.
    values: Option<Values>,
    /// d loss / d parameter from the last backward pass, for parameters the loss reaches.
    grads: Option<Values>,
}

impl ReferenceSession {
    /// Prepares `model` for inference (`training: None`) or for training with a loss and an
    /// optimizer. Weights are widened to f64; the optimizer's hyperparameters are validated.
    pub fn new(model: &Model, training: Option<TrainingConfig>) -> Result<Self> {
        let (graph, optimizer) = match training {
            Some(config) => (
                model.graph.with_loss(config.loss)?,
                Some(OptimizerState::new(&config.optimizer)?),
            ),
            None => (model.graph.clone(), None),
        };
        model.validate()?;
        let infos = graph.infer()?;
        let params = model
            .weights
            .iter()
            .map(|(name, w)| (name.clone(), w.to_dtype(DType::F64)))
            .collect();
        Ok(ReferenceSession {
            graph,
            infos,
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

    /// Replaces some parameters (widened to f64), e.g. to probe the loss by finite differences
    /// below f32's resolution. Values and gradients of earlier passes are dropped; optimizer
    /// state is kept. Checks every tensor first: on error nothing changes.
    pub fn set_weights(&mut self, weights: &Values) -> Result<()> {
        for (name, weight) in weights {
            let current = self.params.get(name).ok_or_else(|| {
                Error::invalid(format!(
                    "graph `{}` has no parameter `{name}`",
                    self.graph.name
                ))
            })?;
            if weight.shape() != current.shape() || !weight.dtype().is_float() {
                return Err(Error::invalid(format!(
                    "parameter `{name}`: expected a float tensor of shape {:?}, got {} {:?}",
                    current.shape(),
                    weight.dtype(),
                    weight.shape()
                )));
            }
        }
        for (name, weight) in weights {
            self.params
                .insert(name.clone(), weight.to_dtype(DType::F64));
        }
        self.values = None;
        self.grads = None;
        Ok(())
    }

    /// The loss of the last forward pass, when the session trains.
    pub fn loss(&self) -> Result<f64> {
        self.require_training("reading the loss")?;
        let values = self.values.as_ref().ok_or_else(|| not_run("loss"))?;
        let loss = values.get(LOSS).ok_or_else(|| not_run("loss"))?;
        Ok(loss.to_f64_vec().first().copied().unwrap_or(f64::NAN))
    }

    fn require_training(&self, what: &str) -> Result<()> {
        if self.optimizer.is_none() {
            return Err(Error::invalid(format!(
                "reference session for `{}`: {what} needs a training config (loss and \
                 optimizer); this session was prepared for inference only",
                self.graph.name
            )));
        }
        Ok(())
    }

    /// Checks a batch (see [`Graph::check_batch`]) and widens its floats to f64.
    fn check_batch(&self, inputs: &Values) -> Result<(Values, usize)> {
        let batch = self.graph.check_batch(inputs)?;
        let checked = inputs
            .iter()
            .map(|(name, t)| {
                let dtype = if t.dtype() == DType::I64 {
                    DType::I64
                } else {
                    DType::F64
                };
                (name.clone(), t.to_dtype(dtype))
            })
            .collect();
        Ok((checked, batch))
    }

    /// Runs every node in order and returns every value it produced.
    fn run_forward(&self, mode: Mode) -> Result<Values> {
        let (inputs, batch) = self.batch.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "reference session for `{}`: no batch loaded; call load before forward",
                self.graph.name
            ))
        })?;
        let mut values = Values::new();
        for node in &self.graph.nodes {
            let args = node
                .inputs
                .iter()
                .map(|name| lookup(name, &values, inputs, &self.params))
                .collect::<Result<Vec<_>>>()?;
            let outputs = ops::forward(node, &args, mode)?;
            self.check_outputs(node, &outputs, *batch)?;
            values.extend(node.outputs.iter().cloned().zip(outputs));
        }
        Ok(values)
    }

    /// Catches a kernel whose result disagrees with shape inference before it spreads.
    fn check_outputs(&self, node: &Node, outputs: &[Tensor], batch: usize) -> Result<()> {
        if outputs.len() != node.outputs.len() {
            return Err(Error::node(
                &node.name,
                node.op.name(),
                format!(
                    "kernel returned {} outputs, expected {}",
                    outputs.len(),
                    node.outputs.len()
                ),
            ));
        }
        for (name, value) in node.outputs.iter().zip(outputs) {
            let info = &self.infos[name];
            let dtype = if info.dtype == DType::I64 {
                DType::I64
            } else {
                DType::F64
            };
            if value.shape() != info.resolve(batch).as_slice() || value.dtype() != dtype {
                return Err(Error::node(
                    &node.name,
                    node.op.name(),
                    format!(
                        "kernel returned `{name}` as {} {:?}, expected {dtype} {:?}",
                        value.dtype(),
                        value.shape(),
                        info.resolve(batch)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Reverse-mode accumulation from the loss over the values of a training-mode forward.
    fn run_backward(&self, values: &Values) -> Result<Values> {
        let (inputs, _) = self.batch.as_ref().expect("forward ran on a loaded batch");
        let mut grads = Values::new();
        grads.insert(LOSS.to_string(), Tensor::scalar_f64(1.0));
        for node in self.graph.nodes.iter().rev() {
            let output_grads: Vec<Option<&Tensor>> =
                node.outputs.iter().map(|o| grads.get(o)).collect();
            if output_grads.iter().all(Option::is_none) {
                continue;
            }
            let args = node
                .inputs
                .iter()
                .map(|name| lookup(name, values, inputs, &self.params))
                .collect::<Result<Vec<_>>>()?;
            let outs: Vec<&Tensor> = node.outputs.iter().map(|o| &values[o]).collect();
            let input_grads = ops::backward(node, &args, &outs, &output_grads)?;
            if input_grads.len() != node.inputs.len() {
                return Err(Error::node(
                    &node.name,
                    node.op.name(),
                    format!(
                        "backward returned {} gradients for {} inputs",
                        input_grads.len(),
                        node.inputs.len()
                    ),
                ));
            }
            for ((name, arg), grad) in node.inputs.iter().zip(&args).zip(input_grads) {
                if let Some(grad) = grad {
                    accumulate(&mut grads, node, name, arg, grad)?;
                }
            }
            // Gradients of a node's outputs are final once the node is done: every consumer
            // comes later in topological order, so was visited earlier here.
            for output in &node.outputs {
                grads.remove(output);
            }
        }
        grads.retain(|name, _| self.params.contains_key(name));
        Ok(grads)
    }

    fn backward_pass(&mut self) -> Result<()> {
        self.require_training("backward")?;
        let values = self.run_forward(Mode::Training)?;
        let grads = self.run_backward(&values)?;
        self.values = Some(values);
        self.grads = Some(grads);
        Ok(())
    }
}

/// A value by name: a node output of this pass, a loaded input or a parameter.
fn lookup<'a>(
    name: &str,
    values: &'a Values,
    inputs: &'a Values,
    params: &'a Values,
) -> Result<&'a Tensor> {
    values
        .get(name)
        .or_else(|| inputs.get(name))
        .or_else(|| params.get(name))
        .ok_or_else(|| Error::invalid(format!("value `{name}` is not defined")))
}

/// Adds `grad` into the gradient of `name`: a value read by several nodes (or twice by one)
/// gets the sum of the gradients flowing back along each use.
fn accumulate(
    grads: &mut Values,
    node: &Node,
    name: &str,
    value: &Tensor,
    grad: Tensor,
) -> Result<()> {
    let wrong = |what: String| Error::node(&node.name, node.op.name(), what);
    if grad.shape() != value.shape() {
        return Err(wrong(format!(
            "backward returned a gradient of shape {:?} for `{name}` of shape {:?}",
            grad.shape(),
            value.shape()
        )));
    }
    let Some(sum) = grads.remove(name) else {
        grads.insert(name.to_string(), grad);
        return Ok(());
    };
    let shape = sum.shape().to_vec();
    let (Some(a), Some(b)) = (sum.as_f64(), grad.as_f64()) else {
        return Err(wrong(format!(
            "backward returned a non-f64 gradient for `{name}`"
        )));
    };
    let total = a.iter().zip(b).map(|(x, y)| x + y).collect();
    grads.insert(name.to_string(), Tensor::f64(shape, total)?);
    Ok(())
}

fn not_run(what: &str) -> Error {
    Error::invalid(format!(
        "reference session: no {what} yet; run forward (or a training step) first"
    ))
}

impl Session for ReferenceSession {
    /// Every graph input must be present, with one batch size across them; f32 data is widened
    /// to f64. Values of an earlier forward pass are dropped; on error nothing changes.
    fn load(&mut self, inputs: &Values) -> Result<()> {
        let batch = self.check_batch(inputs)?;
        self.batch = Some(batch);
        self.values = None;
        Ok(())
    }

    fn forward(&mut self, mode: Mode) -> Result<()> {
        self.values = Some(self.run_forward(mode)?);
        Ok(())
    }

    fn backward(&mut self) -> Result<()> {
        self.backward_pass()
    }

    /// The forward values kept are those the update was computed from, so the loss read
    /// afterwards is the loss before the update, as in a PyTorch training loop.
    fn train_step(&mut self) -> Result<()> {
        self.backward_pass()?;
        let grads = self.grads.as_ref().expect("set by backward");
        let optimizer = self.optimizer.as_mut().expect("checked by backward");
        let mut flat: BTreeMap<String, Vec<f64>> = self
            .params
            .iter()
            .map(|(name, t)| (name.clone(), t.to_f64_vec()))
            .collect();
        let flat_grads = grads
            .iter()
            .map(|(name, g)| (name.clone(), g.to_f64_vec()))
            .collect();
        optimizer.step(&mut flat, &flat_grads)?;
        for (name, data) in flat {
            let shape = self.params[&name].shape().to_vec();
            self.params.insert(name, Tensor::f64(shape, data)?);
        }
        Ok(())
    }

    fn outputs(&mut self) -> Result<Values> {
        let values = self.values.as_ref().ok_or_else(|| not_run("outputs"))?;
        let (inputs, _) = self.batch.as_ref().ok_or_else(|| not_run("outputs"))?;
        self.graph
            .outputs
            .iter()
            .map(|name| {
                Ok((
                    name.clone(),
                    lookup(name, values, inputs, &self.params)?.clone(),
                ))
            })
            .collect()
    }

    fn intermediates(&mut self) -> Result<Values> {
        self.values.clone().ok_or_else(|| not_run("intermediates"))
    }

    /// A parameter the loss does not reach has a zero gradient here (PyTorch leaves its `grad`
    /// unset and its optimizer skips it; so does this session's).
    fn gradients(&mut self) -> Result<Values> {
        self.require_training("reading gradients")?;
        let grads = self.grads.as_ref().ok_or_else(|| {
            Error::invalid("reference session: no gradients yet; call backward or train_step first")
        })?;
        Ok(self
            .params
            .iter()
            .map(|(name, p)| {
                let grad = grads
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| Tensor::zeros(DType::F64, p.shape().to_vec()));
                (name.clone(), grad)
            })
            .collect())
    }

    fn weights(&mut self) -> Result<Values> {
        Ok(self.params.clone())
    }
}
