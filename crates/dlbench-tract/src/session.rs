//! [`TractSession`]: a model prepared for tract. It holds the model's ONNX export and, per batch
//! size loaded, tract's optimized plan and its state; `forward` runs the plan on the loaded
//! batch. Loading (and, for a new batch size, planning) is untimed; `forward` is tract's run.

use std::collections::BTreeMap;
use std::sync::Arc;

use dlbench_core::{DType, Data, Error, Graph, Mode, Model, Result, Session, Tensor, Values};
use dlbench_formats::onnx::export::exported_inputs;
use dlbench_formats::onnx::proto::{DataType, GraphProto, NodeProto, TensorProto};
use dlbench_formats::onnx::to_onnx;
use prost::Message;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::{
    Datum, Framework, InferenceFact, InferenceModelExt, IntoRunnable, TValue, TVec,
    Tensor as TTensor, TypedSimplePlan, TypedSimpleState,
};

use crate::NAME;

/// A tract error (an error chain) as a backend error, naming what was being done.
fn tract_error(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Backend {
        backend: NAME.to_string(),
        message: format!("{what}: {e:?}"),
    }
}

/// A model prepared for tract: its ONNX export, and the plans made from it so far.
pub struct TractSession {
    graph: Graph,
    weights: Values,
    /// The model as an ONNX file, as `dlbench convert` writes it.
    onnx: Vec<u8>,
    /// The graph inputs the ONNX model has (data and noise; not dropout masks or targets), in
    /// its order.
    fed: Vec<String>,
    /// tract's optimized plan and a state to run it, per batch size.
    plans: BTreeMap<usize, TypedSimpleState>,
    /// The matrix-product executor every run goes through.
    executor: Executor,
    threads: usize,
    /// The loaded batch (tract tensors, in `fed` order) and its size.
    batch: Option<(TVec<TValue>, usize)>,
    /// The outputs of the last run, in the graph's output order.
    outputs: Option<TVec<TValue>>,
    /// LSTMs whose cell state runs as a node of its own ([`split_cell_state`]).
    split_lstms: usize,
    /// Reverse LSTMs run forward over the reversed sequence ([`reverse_by_slicing`]).
    reversed_lstms: usize,
}

impl std::fmt::Debug for TractSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractSession")
            .field("graph", &self.graph.name)
            .field("threads", &self.threads)
            .field("planned_batches", &self.plans.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TractSession {
    /// Exports `model` to ONNX; plans are made when a batch of a new size is loaded.
    pub fn new(model: &Model, threads: usize) -> Result<Self> {
        let mut onnx = to_onnx(model)
            .map_err(|e| Error::unsupported(NAME, format!("exporting to ONNX: {e}")))?;
        let reversed_lstms = onnx.graph.as_mut().map_or(0, reverse_by_slicing);
        let split_lstms = onnx.graph.as_mut().map_or(0, split_cell_state);
        let onnx = onnx.encode_to_vec();
        let fed = exported_inputs(&model.graph)
            .map(|i| i.value.name.clone())
            .collect();
        let executor = match threads {
            1 => Executor::SingleThread,
            n => Executor::multithread(n),
        };
        Ok(TractSession {
            graph: model.graph.clone(),
            weights: model.weights.clone(),
            onnx,
            fed,
            plans: BTreeMap::new(),
            executor,
            threads,
            batch: None,
            outputs: None,
            split_lstms,
            reversed_lstms,
        })
    }

    /// tract's optimized plan for `inputs` (their shapes fixed), and a state to run it.
    fn plan(&self, inputs: &Values) -> Result<TypedSimpleState> {
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut self.onnx.as_slice())
            .map_err(|e| tract_error("reading the ONNX export", e))?;
        for (i, name) in self.fed.iter().enumerate() {
            let t = &inputs[name];
            let fact = match t.dtype() {
                DType::I64 => InferenceFact::dt_shape(i64::datum_type(), t.shape()),
                DType::F32 | DType::F64 => InferenceFact::dt_shape(f32::datum_type(), t.shape()),
            };
            model = model
                .with_input_fact(i, fact)
                .map_err(|e| tract_error(&format!("input `{name}`"), e))?;
        }
        let plan: Arc<TypedSimplePlan> = model
            .into_optimized()
            .map_err(|e| tract_error("optimizing the model", e))?
            .into_runnable()
            .map_err(|e| tract_error("making the plan runnable", e))?;
        plan.spawn()
            .map_err(|e| tract_error("starting the plan", e))
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::unsupported(NAME, what.to_string())
    }
}

/// A host tensor as a tract tensor (f64 data goes in as f32, as the model's inputs are).
fn to_tract(t: &Tensor) -> Result<TTensor> {
    let result = match t.data() {
        Data::F32(v) => TTensor::from_shape(t.shape(), v),
        Data::F64(v) => {
            let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
            TTensor::from_shape(t.shape(), &v)
        }
        Data::I64(v) => TTensor::from_shape(t.shape(), v),
    };
    result.map_err(|e| tract_error("copying an input", e))
}

fn to_host(name: &str, t: &TTensor) -> Result<Tensor> {
    let shape = t.shape().to_vec();
    let bad = |e| tract_error(&format!("reading output `{name}`"), e);
    if t.datum_type() == i64::datum_type() {
        let view = t.to_plain_array_view::<i64>().map_err(bad)?;
        return Tensor::i64(shape, view.iter().copied().collect());
    }
    let view = t.to_plain_array_view::<f32>().map_err(bad)?;
    Tensor::f32(shape, view.iter().copied().collect())
}

impl Session for TractSession {
    /// Every graph input must be present, with one batch size across them; the first batch of
    /// a size makes tract's plan for it (untimed, as a user prepares a model once).
    fn load(&mut self, inputs: &Values) -> Result<()> {
        let batch = self.graph.check_batch(inputs)?;
        if !self.plans.contains_key(&batch) {
            let state = self.plan(inputs)?;
            self.plans.insert(batch, state);
        }
        let fed = self
            .fed
            .iter()
            .map(|name| Ok(to_tract(&inputs[name])?.into()))
            .collect::<Result<TVec<TValue>>>()?;
        self.batch = Some((fed, batch));
        self.outputs = None;
        Ok(())
    }

    /// Inference only: tract runs the exported graph, where Dropout is the identity.
    fn forward(&mut self, mode: Mode) -> Result<()> {
        if mode == Mode::Training {
            return Err(self.unsupported("a training-mode forward pass (tract infers only)"));
        }
        let (inputs, batch) = self.batch.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "tract session for `{}`: no batch loaded; call load before forward",
                self.graph.name
            ))
        })?;
        let state = self
            .plans
            .get_mut(batch)
            .ok_or_else(|| Error::invalid("no plan for the loaded batch size"))?;
        let inputs: TVec<TValue> = inputs.iter().cloned().collect();
        let outputs = multithread_tract_scope(self.executor.clone(), || state.run(inputs))
            .map_err(|e| tract_error("running the plan", e))?;
        self.outputs = Some(outputs);
        Ok(())
    }

    fn backward(&mut self) -> Result<()> {
        Err(self.unsupported("backward: tract is an inference engine"))
    }

    fn train_step(&mut self) -> Result<()> {
        Err(self.unsupported("training: tract is an inference engine"))
    }

    fn outputs(&mut self) -> Result<Values> {
        let outputs = self
            .outputs
            .as_ref()
            .ok_or_else(|| Error::invalid("tract session: no outputs yet; run forward first"))?;
        self.graph
            .outputs
            .iter()
            .zip(outputs.iter())
            .map(|(name, value)| Ok((name.clone(), to_host(name, value)?)))
            .collect()
    }

    fn intermediates(&mut self) -> Result<Values> {
        Err(self.unsupported("intermediate values: tract's optimized plan fuses them away"))
    }

    fn gradients(&mut self) -> Result<Values> {
        Err(self.unsupported("gradients: tract is an inference engine"))
    }

    /// The weights as prepared (tract never changes them).
    fn weights(&mut self) -> Result<Values> {
        Ok(self.weights.clone())
    }

    fn notes(&self) -> Vec<String> {
        let threads = match self.threads {
            1 => "tract: 1 thread (tract computes on the calling thread)".to_string(),
            n => format!(
                "tract: told {n} threads: runs under a tract-linalg executor of {n} threads, which \
                 tract uses for matrix products only; other ops run on one thread"
            ),
        };
        let mut notes = vec![
            "tract: runs dlbench's ONNX export (opset 17), an optimized plan per batch size"
                .to_string(),
            threads,
        ];
        if self.split_lstms > 0 {
            notes.push(format!(
                "tract: {} LSTM(s) computed twice, once for Y_c alone: tract 0.23.9 cannot run a \
                 one-direction LSTM whose Y_c is read with Y or Y_h",
                self.split_lstms
            ));
        }
        if self.reversed_lstms > 0 {
            notes.push(format!(
                "tract: {} reverse LSTM(s) run forward on the sequence reversed by Slice: tract \
                 0.23.9 reads no LSTM direction",
                self.reversed_lstms
            ));
        }
        notes
    }
}

/// tract 0.23.9 cannot run a one-direction ONNX LSTM whose `Y_c` is read together with `Y` or
/// `Y_h` (its Scan body fails with "Clashing resolution for expression 1=1 != <batch>"), while
/// any output alone runs. So where `Y_c` is read, a copy of the node computes it alone, and the
/// original keeps `Y` and `Y_h` (tract drops it if neither is read). Returns how many LSTMs
/// were split.
fn split_cell_state(graph: &mut GraphProto) -> usize {
    let read: std::collections::HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(graph.output.iter().map(|o| o.name.clone()))
        .collect();
    let mut copies = Vec::new();
    for (i, node) in graph.node.iter_mut().enumerate() {
        let one_direction = !node
            .attribute
            .iter()
            .any(|a| a.name == "direction" && a.s == b"bidirectional");
        let cell = node
            .output
            .get(2)
            .filter(|c| !c.is_empty() && read.contains(*c));
        if node.op_type != "LSTM" || !one_direction {
            continue;
        }
        let Some(cell) = cell.cloned() else { continue };
        let mut copy = node.clone();
        copy.name = format!("{}/cell_state", node.name);
        copy.output = vec![String::new(), String::new(), cell];
        node.output[2] = String::new();
        copies.push((i + 1, copy));
    }
    let split = copies.len();
    for (at, copy) in copies.into_iter().rev() {
        graph.node.insert(at, copy);
    }
    split
}

/// tract 0.23.9 reads no `direction` from a one-direction LSTM: a reverse one runs forward.
/// So a reverse LSTM becomes a forward one over the sequence reversed along time (dlbench's
/// export writes `layout = 0`, time first) by a `Slice` with step -1, and its `Y` is reversed
/// back the same way; `Y_h` and `Y_c`, the states after the last step read, are the same.
/// Returns how many LSTMs were rewritten.
fn reverse_by_slicing(graph: &mut GraphProto) -> usize {
    let mut rewritten = Vec::new();
    for (i, node) in graph.node.iter_mut().enumerate() {
        let Some(direction) = node
            .attribute
            .iter_mut()
            .find(|a| a.name == "direction" && a.s == b"reverse")
        else {
            continue;
        };
        if node.op_type != "LSTM" {
            continue;
        }
        direction.s = b"forward".to_vec();
        let base = format!("{}/reverse", node.name);
        let x = std::mem::replace(&mut node.input[0], format!("{base}/x"));
        let y = match node.output.first().filter(|y| !y.is_empty()) {
            Some(_) => Some(std::mem::replace(&mut node.output[0], format!("{base}/y"))),
            None => None,
        };
        rewritten.push((i, base, x, y));
    }
    let count = rewritten.len();
    for (i, base, x, y) in rewritten.into_iter().rev() {
        let bounds = [
            ("starts", -1),
            ("ends", i64::MIN),
            ("axes", 0),
            ("steps", -1),
        ];
        for (what, value) in bounds {
            graph.initializer.push(TensorProto {
                name: format!("{base}/{what}"),
                dims: vec![1],
                data_type: DataType::Int64 as i32,
                int64_data: vec![value],
                ..TensorProto::default()
            });
        }
        let slice = |input: &str, output: &str, name: String| NodeProto {
            name,
            op_type: "Slice".into(),
            input: std::iter::once(input.to_string())
                .chain(bounds.iter().map(|(what, _)| format!("{base}/{what}")))
                .collect(),
            output: vec![output.to_string()],
            ..NodeProto::default()
        };
        if let Some(y) = y {
            let back = slice(&format!("{base}/y"), &y, format!("{base}/y_back"));
            graph.node.insert(i + 1, back);
        }
        let forth = slice(&x, &format!("{base}/x"), format!("{base}/x_reversed"));
        graph.node.insert(i, forth);
    }
    count
}
