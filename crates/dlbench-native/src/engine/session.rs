//! The native backend and its session. `prepare` resolves the graph once into slots (graph
//! inputs, then parameters, then node outputs), so forward and backward index plain vectors.
//! Every check a user's data could fail is an [`Error`], never a panic.
//!
//! Buffers are planned, not allocated per step: every slot's value, every slot's gradient
//! and every gradient a step's backward writes has its own buffer, sized when a batch size
//! is first loaded, and each step keeps its kernels' scratch ([`State`]). Kernels write into
//! these buffers, so a steady-state training step or inference allocates nothing (the
//! `allocations` test counts). In debug builds every buffer a kernel is about to write is
//! first filled with NaN, so an element a kernel forgets cannot pass for last step's value.

use std::collections::HashMap;

use dlbench_core::training::LOSS;
use dlbench_core::{
    Backend, Capabilities, DType, Device, Error, Graph, Mode, Model, Node, PrepareOptions, Result,
    Session, Tensor, ValueInfo, Values,
};

use super::ops::{self, Args, Buf, Ctx, State};
use super::optim::OptimizerState;
use crate::kernels;

const NAME: &str = "native";

/// The most outputs a node has (LSTM: Y, Y_h, Y_c); each step's outputs are taken out of the
/// values into an array this long while its kernel writes them.
const MAX_OUTPUTS: usize = 3;

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

    fn kernels(&self) -> Option<String> {
        kernels::isa::kernel_isa()
            .ok()
            .map(|isa| isa.name().to_string())
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
        // A misspelt cap is refused before anything runs, not met by a panic in a kernel.
        kernels::isa::kernel_isa().map_err(|e| Error::invalid(e.to_string()))?;
        Ok(Box::new(NativeSession::new(model, options)?))
    }
}

/// A node resolved to slots.
#[derive(Debug, Clone)]
struct Step {
    node: Node,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    /// Bit `k`: input `k` is a parameter of an inference session, which never changes
    /// (`Ctx::fixed_inputs`).
    fixed_inputs: u64,
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
    /// What each step keeps between calls (saved for backward, kernel scratch).
    states: Vec<State>,
    /// The slot of the loss, in a training session.
    loss_slot: Option<usize>,
    /// d loss / d slot, for the slots in `requires_grad` (empty for the others); valid where
    /// `grad_set` says so after a backward pass.
    grads: Vec<Vec<f32>>,
    grad_set: Vec<bool>,
    /// Where each step's backward writes the gradient of each of its inputs: sized to the
    /// input when its gradient is wanted, empty otherwise. A first gradient for a slot is
    /// swapped into `grads` (so buffers change places but are never made anew), later ones
    /// are added.
    step_grads: Vec<Vec<Vec<f32>>>,
    /// The loaded batch size, once a batch is loaded.
    batch: Option<usize>,
    /// Whether `values` hold the node outputs of a pass over the loaded batch.
    forwarded: bool,
    /// Whether `grads` hold the gradients of a backward pass.
    has_grads: bool,
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
            if node.outputs.len() > MAX_OUTPUTS {
                return Err(Error::node(
                    &node.name,
                    node.op.name(),
                    format!(
                        "{} outputs; the native engine supports at most {MAX_OUTPUTS}",
                        node.outputs.len()
                    ),
                ));
            }
            let inputs = node.inputs.iter().map(|n| slot_of[n]).collect();
            let outputs = node.outputs.iter().map(|n| add(n, &mut slot_of)).collect();
            steps.push(Step {
                node: node.clone(),
                inputs,
                outputs,
                fixed_inputs: 0,
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
        if optimizer.is_none() {
            // Without a training config nothing changes the weights after prepare.
            let first_node_slot = input_slots.len() + param_slots.len();
            for step in &mut steps {
                for (k, &slot) in step.inputs.iter().enumerate().take(64) {
                    if (input_slots.len()..first_node_slot).contains(&slot) {
                        step.fixed_inputs |= 1 << k;
                    }
                }
            }
        }
        let states = steps.iter().map(|_| State::default()).collect();
        let step_grads = steps
            .iter()
            .map(|s| vec![Vec::new(); s.inputs.len()])
            .collect();
        let loss_slot = optimizer
            .is_some()
            .then(|| names.iter().position(|n| n == LOSS))
            .flatten();
        let slots = names.len();
        // Starts the kernels' threads now, so that no timed step pays for it.
        kernels::threads::pool(options.threads, kernels::gemm::prepare_thread);
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
            states,
            loss_slot,
            grads: vec![Vec::new(); slots],
            grad_set: vec![false; slots],
            step_grads,
            batch: None,
            forwarded: false,
            has_grads: false,
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

    /// Sizes every buffer for `batch`: node outputs, and in a training session the
    /// gradients. Buffers shrink without freeing and grow only past their largest size, so
    /// alternating batch sizes allocate only the first time each is seen.
    fn plan(&mut self, batch: usize) {
        let input_count = self.input_slots.len() + self.param_slots.len();
        for (slot, info) in self.infos.iter().enumerate() {
            let len: usize = info.shape.iter().map(|d| d.resolve(batch)).product();
            if slot >= input_count {
                let buf = &mut self.values[slot];
                buf.shape.clear();
                buf.shape
                    .extend(info.shape.iter().map(|d| d.resolve(batch)));
                buf.data.resize(len, 0.0);
            }
            if self.requires_grad[slot] {
                self.grads[slot].resize(len, 0.0);
            }
        }
        for (step, grads) in self.steps.iter().zip(&mut self.step_grads) {
            for (&slot, grad) in step.inputs.iter().zip(grads) {
                if self.requires_grad[slot] {
                    grad.resize(self.grads[slot].len(), 0.0);
                } else {
                    grad.clear();
                }
            }
        }
        self.batch = Some(batch);
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
        for (step, state) in self.steps.iter().zip(&mut self.states) {
            let ctx = Ctx {
                mode,
                threads: self.threads,
                fixed_inputs: step.fixed_inputs,
            };
            // The outputs leave `values` while the kernel writes them and the inputs are
            // read from it (a node never reads its own output).
            let mut outputs: [Buf; MAX_OUTPUTS] = Default::default();
            for (out, &slot) in outputs.iter_mut().zip(&step.outputs) {
                *out = std::mem::take(&mut self.values[slot]);
                if cfg!(debug_assertions) {
                    out.data.fill(f32::NAN);
                }
            }
            let inputs = Args::new(&self.values, &step.inputs);
            let outcome = ops::forward(
                &step.node,
                inputs,
                &mut outputs[..step.outputs.len()],
                state,
                ctx,
            );
            for (out, &slot) in outputs.iter_mut().zip(&step.outputs) {
                self.values[slot] = std::mem::take(out);
            }
            outcome?;
        }
        self.forwarded = true;
        Ok(())
    }

    /// Reverse-mode accumulation from the loss over the values of a training-mode forward.
    fn run_backward(&mut self) -> Result<()> {
        let loss = self
            .loss_slot
            .ok_or_else(|| Error::invalid(format!("graph `{}` has no loss", self.graph.name)))?;
        self.has_grads = false;
        self.grad_set.fill(false);
        self.grads[loss].fill(1.0);
        self.grad_set[loss] = true;
        for k in (0..self.steps.len()).rev() {
            let step = &self.steps[k];
            // Every consumer of this step's outputs came later, so their gradients are final.
            let mut output_grads: [Option<&[f32]>; MAX_OUTPUTS] = [None; MAX_OUTPUTS];
            for (g, &slot) in output_grads.iter_mut().zip(&step.outputs) {
                *g = self.grad_set[slot].then_some(self.grads[slot].as_slice());
            }
            let input_grads = &mut self.step_grads[k];
            let wanted = step.inputs.iter().any(|&s| self.requires_grad[s]);
            if output_grads.iter().all(Option::is_none) || !wanted {
                continue;
            }
            if cfg!(debug_assertions) {
                input_grads.iter_mut().for_each(|g| g.fill(f32::NAN));
            }
            ops::backward(
                &step.node,
                Args::new(&self.values, &step.inputs),
                Args::new(&self.values, &step.outputs),
                &output_grads[..step.outputs.len()],
                input_grads,
                &mut self.states[k],
                self.threads,
            )?;
            for (&slot, grad) in step.inputs.iter().zip(input_grads.iter_mut()) {
                if !self.requires_grad[slot] {
                    continue;
                }
                // A value read by several nodes (or twice by one) gets the sum.
                if self.grad_set[slot] {
                    let sum = &mut self.grads[slot];
                    sum.iter_mut().zip(grad.iter()).for_each(|(s, g)| *s += g);
                } else {
                    std::mem::swap(&mut self.grads[slot], grad);
                    self.grad_set[slot] = true;
                }
            }
        }
        self.has_grads = true;
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

impl Session for NativeSession {
    /// Every graph input must be present, with one batch size across them (see
    /// [`Graph::check_batch`]); floats are narrowed to f32. Values of an earlier forward pass
    /// are dropped; on error nothing changes.
    fn load(&mut self, inputs: &Values) -> Result<()> {
        let batch = self.graph.check_batch(inputs)?;
        // Copied into the buffers of the last batch, which are reused.
        for (input, &slot) in self.graph.inputs.iter().zip(&self.input_slots) {
            let t = &inputs[&input.value.name];
            let buf = &mut self.values[slot];
            buf.shape.clear();
            buf.shape.extend_from_slice(t.shape());
            buf.data.clear();
            buf.labels.clear();
            if let Some(labels) = t.as_i64() {
                buf.labels.extend_from_slice(labels);
            } else if let Some(data) = t.as_f32() {
                buf.data.extend_from_slice(data);
            } else if let Some(data) = t.as_f64() {
                buf.data.extend(data.iter().map(|&v| v as f32));
            }
        }
        if self.batch != Some(batch) {
            self.plan(batch);
        }
        self.forwarded = false;
        self.has_grads = false;
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
        let Some(optimizer) = &mut self.optimizer else {
            return Err(self.not_run("gradients"));
        };
        for (index, &slot) in self.param_slots.iter().enumerate() {
            if self.grad_set[slot] {
                let threads = self.threads;
                optimizer.step(
                    index,
                    &mut self.values[slot].data,
                    &self.grads[slot],
                    threads,
                );
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
        if !self.has_grads {
            return Err(Error::invalid(
                "native session: no gradients yet; call backward or train_step first",
            ));
        }
        self.param_slots
            .iter()
            .map(|&slot| {
                let shape = self.values[slot].shape.clone();
                let data = if self.grad_set[slot] {
                    self.grads[slot].clone()
                } else {
                    vec![0.0; self.values[slot].data.len()]
                };
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
