//! The native backend and its session. `prepare` resolves the graph once into slots (graph
//! inputs, then parameters, then node outputs), so forward and backward index plain vectors.
//! Every check a user's data could fail is an [`Error`], never a panic.

use std::collections::HashMap;

use dlbench_core::training::LOSS;
use dlbench_core::{
    Backend, Capabilities, DType, Device, Error, Graph, Mode, Model, Node, PrepareOptions, Result,
    Session, Tensor, ValueInfo, Values,
};

use super::ops::{self, Buf, Ctx, Saved};
use super::optim::OptimizerState;
use crate::kernels;

const NAME: &str = "native";

/// dlbench's own f32 engine as a [`Backend`]: CPU, every capability.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeBackend;

impl Backend for NativeBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> String {
        format!("native {}", env!("CARGO_PKG_VERSION"))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            inference: true,
            training: true,
            intermediates: true,
            devices: vec![Device::Cpu],
        }
    }

    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        if options.device != Device::Cpu {
            return Err(Error::unsupported(
                NAME,
                format!(
                    "device {}: the native engine runs on the CPU only",
                    options.device
                ),
            ));
        }
        Ok(Box::new(NativeSession::new(model, options)?))
    }
}

/// A node resolved to slots.
#[derive(Debug, Clone)]
struct Step {
    node: Node,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
}

/// A model prepared for the native engine.
///
/// With a training config it runs the training graph (`model.with_loss(loss)`), whose inputs
/// include the target and whose outputs end in [`LOSS`].
#[derive(Debug)]
pub struct NativeSession {
    graph: Graph,
    /// Name and inferred type of every slot.
    names: Vec<String>,
    infos: Vec<ValueInfo>,
    /// Slots of the graph inputs, the parameters (in the graph's order) and the outputs.
    input_slots: Vec<usize>,
    param_slots: Vec<usize>,
    output_slots: Vec<usize>,
    steps: Vec<Step>,
    /// Whether the loss's gradient with respect to a slot is wanted: parameters and anything
    /// computed from one. Data inputs are not, which spares e.g. the first layer's dx.
    requires_grad: Vec<bool>,
    /// Every slot's current value: loaded inputs, parameters, node outputs of the last pass.
    values: Vec<Buf>,
    /// What each step's forward kept for its backward.
    saved: Vec<Saved>,
    /// The shape of every slot at the loaded batch size.
    shapes: Vec<Vec<usize>>,
    /// The loaded batch size, once a batch is loaded.
    batch: Option<usize>,
    /// Whether `values` hold the node outputs of a pass over the loaded batch.
    forwarded: bool,
    /// d loss / d parameter of the last backward pass, by parameter index.
    grads: Option<Vec<Option<Vec<f32>>>>,
    /// Present exactly when the session was prepared for training.
    optimizer: Option<OptimizerState>,
    threads: usize,
}

impl NativeSession {
    /// Prepares `model` for inference (`options.training: None`) or for training with a loss
    /// and an optimizer. Weights are narrowed to f32.
    pub fn new(model: &Model, options: &PrepareOptions) -> Result<Self> {
        model.validate()?;
        let graph = match options.training {
            Some(config) => model.graph.with_loss(config.loss)?,
            None => model.graph.clone(),
        };
        let optimizer = options
            .training
            .map(|config| OptimizerState::new(&config.optimizer, graph.params.len()))
            .transpose()?;
        let inferred = graph.infer()?;
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        let mut add = |name: &str, slot_of: &mut HashMap<String, usize>| {
            let slot = names.len();
            names.push(name.to_string());
            slot_of.insert(name.to_string(), slot);
            slot
        };
        let input_slots: Vec<usize> = graph
            .inputs
            .iter()
            .map(|i| add(&i.value.name, &mut slot_of))
            .collect();
        let param_slots: Vec<usize> = graph
            .params
            .iter()
            .map(|p| add(&p.value.name, &mut slot_of))
            .collect();
        let mut steps = Vec::with_capacity(graph.nodes.len());
        for node in &graph.nodes {
            let inputs = node.inputs.iter().map(|n| slot_of[n]).collect();
            let outputs = node.outputs.iter().map(|n| add(n, &mut slot_of)).collect();
            steps.push(Step {
                node: node.clone(),
                inputs,
                outputs,
            });
        }
        let output_slots = graph.outputs.iter().map(|n| slot_of[n]).collect();
        let infos: Vec<ValueInfo> = names.iter().map(|n| inferred[n].clone()).collect();
        let mut values = vec![Buf::default(); names.len()];
        for (param, &slot) in graph.params.iter().zip(&param_slots) {
            let name = &param.value.name;
            let weight = model.weights.get(name).ok_or_else(|| {
                Error::invalid(format!("model `{}`: no weight for `{name}`", graph.name))
            })?;
            values[slot] = Buf::new(weight.shape().to_vec(), f32s(weight));
        }
        let mut requires_grad = vec![false; names.len()];
        if optimizer.is_some() {
            for &slot in &param_slots {
                requires_grad[slot] = true;
            }
            for step in &steps {
                if step.inputs.iter().any(|&s| requires_grad[s]) {
                    for &s in &step.outputs {
                        requires_grad[s] = true;
                    }
                }
            }
        }
        let saved = steps.iter().map(|_| Saved::Nothing).collect();
        // Starts the kernels' threads now, so that no timed step pays for it.
        kernels::threads::pool(options.threads);
        Ok(NativeSession {
            graph,
            names,
            infos,
            input_slots,
            param_slots,
            output_slots,
            steps,
            requires_grad,
            values,
            saved,
            shapes: Vec::new(),
            batch: None,
            forwarded: false,
            grads: None,
            optimizer,
            threads: options.threads.max(1),
        })
    }

    fn require_training(&self, what: &str) -> Result<()> {
        if self.optimizer.is_none() {
            return Err(Error::invalid(format!(
                "native session for `{}`: {what} needs a training config (loss and \
                 optimizer); this session was prepared for inference only",
                self.graph.name
            )));
        }
        Ok(())
    }

    /// Runs every node in order, keeping every value and what backward needs.
    fn run_forward(&mut self, mode: Mode) -> Result<()> {
        if self.batch.is_none() {
            return Err(Error::invalid(format!(
                "native session for `{}`: no batch loaded; call load before forward",
                self.graph.name
            )));
        }
        self.forwarded = false;
        let ctx = Ctx {
            mode,
            threads: self.threads,
        };
        for (k, step) in self.steps.iter().enumerate() {
            let args: Vec<&Buf> = step.inputs.iter().map(|&s| &self.values[s]).collect();
            let out_shapes: Vec<Vec<usize>> = step
                .outputs
                .iter()
                .map(|&s| self.shapes[s].clone())
                .collect();
            let (outputs, saved) = ops::forward(&step.node, &args, &out_shapes, ctx)?;
            check_outputs(&step.node, &outputs, &out_shapes)?;
            for (&slot, buf) in step.outputs.iter().zip(outputs) {
                self.values[slot] = buf;
            }
            self.saved[k] = saved;
        }
        self.forwarded = true;
        Ok(())
    }

    /// Reverse-mode accumulation from the loss over the values of a training-mode forward.
    fn run_backward(&mut self) -> Result<()> {
        let loss =
            self.names.iter().position(|n| n == LOSS).ok_or_else(|| {
                Error::invalid(format!("graph `{}` has no loss", self.graph.name))
            })?;
        let mut grads: Vec<Option<Vec<f32>>> = vec![None; self.names.len()];
        grads[loss] = Some(vec![1.0]);
        for (k, step) in self.steps.iter().enumerate().rev() {
            // Every consumer of this step's outputs came later, so their gradients are final.
            let out_grads: Vec<Option<Vec<f32>>> =
                step.outputs.iter().map(|&s| grads[s].take()).collect();
            let need: Vec<bool> = step.inputs.iter().map(|&s| self.requires_grad[s]).collect();
            if out_grads.iter().all(Option::is_none) || !need.contains(&true) {
                continue;
            }
            let args: Vec<&Buf> = step.inputs.iter().map(|&s| &self.values[s]).collect();
            let outs: Vec<&Buf> = step.outputs.iter().map(|&s| &self.values[s]).collect();
            let out_refs: Vec<Option<&[f32]>> = out_grads.iter().map(|g| g.as_deref()).collect();
            let input_grads = ops::backward(
                &step.node,
                &args,
                &outs,
                &out_refs,
                &need,
                &self.saved[k],
                self.threads,
            )?;
            let node = &step.node;
            if input_grads.len() != step.inputs.len() {
                return Err(Error::node(
                    &node.name,
                    node.op.name(),
                    format!(
                        "backward returned {} gradients for {} inputs",
                        input_grads.len(),
                        step.inputs.len()
                    ),
                ));
            }
            for (&slot, grad) in step.inputs.iter().zip(input_grads) {
                let Some(grad) = grad.filter(|_| self.requires_grad[slot]) else {
                    continue;
                };
                if grad.len() != self.values[slot].data.len() {
                    return Err(Error::node(
                        &node.name,
                        node.op.name(),
                        format!(
                            "backward returned {} gradient values for `{}` of shape {:?}",
                            grad.len(),
                            self.names[slot],
                            self.values[slot].shape
                        ),
                    ));
                }
                // A value read by several nodes (or twice by one) gets the sum.
                match &mut grads[slot] {
                    Some(sum) => sum.iter_mut().zip(&grad).for_each(|(s, g)| *s += g),
                    empty => *empty = Some(grad),
                }
            }
        }
        self.grads = Some(self.param_slots.iter().map(|&s| grads[s].take()).collect());
        Ok(())
    }

    fn backward_pass(&mut self) -> Result<()> {
        self.require_training("backward")?;
        self.run_forward(Mode::Training)?;
        self.run_backward()
    }

    fn not_run(&self, what: &str) -> Error {
        Error::invalid(format!(
            "native session for `{}`: no {what} yet; run forward (or a training step) first",
            self.graph.name
        ))
    }

    fn tensor(&self, slot: usize) -> Result<Tensor> {
        let buf = &self.values[slot];
        if self.infos[slot].dtype == DType::I64 {
            Tensor::i64(buf.shape.clone(), buf.labels.clone())
        } else {
            Tensor::f32(buf.shape.clone(), buf.data.clone())
        }
    }
}

/// The data of a float tensor as f32 (narrowing f64).
fn f32s(t: &Tensor) -> Vec<f32> {
    match t.as_f32() {
        Some(data) => data.to_vec(),
        None => t.to_f64_vec().into_iter().map(|v| v as f32).collect(),
    }
}

/// Catches a kernel whose result disagrees with shape inference before it spreads.
fn check_outputs(node: &Node, outputs: &[Buf], shapes: &[Vec<usize>]) -> Result<()> {
    let wrong = |message: String| Error::node(&node.name, node.op.name(), message);
    if outputs.len() != shapes.len() {
        return Err(wrong(format!(
            "kernel returned {} outputs, expected {}",
            outputs.len(),
            shapes.len()
        )));
    }
    for ((buf, shape), name) in outputs.iter().zip(shapes).zip(&node.outputs) {
        if &buf.shape != shape || buf.data.len() != shape.iter().product::<usize>() {
            return Err(wrong(format!(
                "kernel returned `{name}` of shape {:?} with {} values, expected {shape:?}",
                buf.shape,
                buf.data.len()
            )));
        }
    }
    Ok(())
}

impl Session for NativeSession {
    /// Every graph input must be present, with one batch size across them (see
    /// [`Graph::check_batch`]); floats are narrowed to f32. Values of an earlier forward pass
    /// are dropped; on error nothing changes.
    fn load(&mut self, inputs: &Values) -> Result<()> {
        let batch = self.graph.check_batch(inputs)?;
        for (input, &slot) in self.graph.inputs.iter().zip(&self.input_slots) {
            let t = &inputs[&input.value.name];
            self.values[slot] = match t.as_i64() {
                Some(labels) => Buf::labels(t.shape().to_vec(), labels.to_vec()),
                None => Buf::new(t.shape().to_vec(), f32s(t)),
            };
        }
        if self.batch != Some(batch) {
            self.shapes = self.infos.iter().map(|i| i.resolve(batch)).collect();
            self.batch = Some(batch);
        }
        self.forwarded = false;
        Ok(())
    }

    fn forward(&mut self, mode: Mode) -> Result<()> {
        self.run_forward(mode)
    }

    fn backward(&mut self) -> Result<()> {
        self.backward_pass()
    }

    /// The forward values kept are those the update was computed from, so the loss read
    /// afterwards is the loss before the update, as in a PyTorch training loop.
    fn train_step(&mut self) -> Result<()> {
        self.backward_pass()?;
        let (Some(grads), Some(optimizer)) = (&self.grads, &mut self.optimizer) else {
            return Err(self.not_run("gradients"));
        };
        for (index, (&slot, grad)) in self.param_slots.iter().zip(grads).enumerate() {
            if let Some(grad) = grad {
                optimizer.step(index, &mut self.values[slot].data, grad);
            }
        }
        Ok(())
    }

    fn outputs(&mut self) -> Result<Values> {
        if !self.forwarded {
            return Err(self.not_run("outputs"));
        }
        self.output_slots
            .iter()
            .map(|&s| Ok((self.names[s].clone(), self.tensor(s)?)))
            .collect()
    }

    fn intermediates(&mut self) -> Result<Values> {
        if !self.forwarded {
            return Err(self.not_run("intermediates"));
        }
        self.steps
            .iter()
            .flat_map(|step| step.outputs.iter())
            .map(|&s| Ok((self.names[s].clone(), self.tensor(s)?)))
            .collect()
    }

    /// A parameter the loss does not reach has a zero gradient here (PyTorch leaves its `grad`
    /// unset and its optimizer skips it; so does this session's).
    fn gradients(&mut self) -> Result<Values> {
        self.require_training("reading gradients")?;
        let grads = self.grads.as_ref().ok_or_else(|| {
            Error::invalid("native session: no gradients yet; call backward or train_step first")
        })?;
        self.param_slots
            .iter()
            .zip(grads)
            .map(|(&slot, grad)| {
                let shape = self.values[slot].shape.clone();
                let data = grad
                    .clone()
                    .unwrap_or_else(|| vec![0.0; self.values[slot].data.len()]);
                Ok((self.names[slot].clone(), Tensor::f32(shape, data)?))
            })
            .collect()
    }

    fn weights(&mut self) -> Result<Values> {
        self.param_slots
            .iter()
            .map(|&s| Ok((self.names[s].clone(), self.tensor(s)?)))
            .collect()
    }
}
