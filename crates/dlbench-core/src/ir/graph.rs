//! The IR's containers: a [`Graph`] of [`Node`]s over typed [`Input`]s and [`Param`]s, with
//! the checks every consumer relies on (name uniqueness, topological order, shape inference,
//! batch validation).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{op::Op, shape, Dim, ValueInfo};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::tensor::DType;
use crate::tensor::Values;

/// What the harness feeds into a graph input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum InputRole {
    /// A batch of the dataset's features.
    Data,
    /// The training target (class labels, or values shaped like the prediction).
    Target,
    /// A dropout keep-mask: 1 with probability `1 - p`, else 0, from the counter-based RNG.
    DropoutMask {
        /// Drop probability, PyTorch's `Dropout(p)`.
        p: f64,
    },
    /// Standard normal noise (the VAE's epsilon), from the counter-based RNG.
    Normal,
}

/// A graph input: its type and what feeds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// Name, dtype and shape; the shape usually starts with [`Dim::Batch`].
    #[serde(flatten)]
    pub value: ValueInfo,
    /// What the harness feeds it.
    pub role: InputRole,
}

/// A trainable parameter: its type and its PyTorch-default initialisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Name, dtype and shape (all dims known), in the canonical layout of the module docs.
    #[serde(flatten)]
    pub value: ValueInfo,
    /// How [`crate::Model::initialized`] fills it.
    pub init: Init,
}

/// One operation: named inputs in, named outputs out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Unique in the graph; errors and divergence reports name nodes by it.
    pub name: String,
    /// What the node computes, with its attributes.
    pub op: Op,
    /// Names of the values it reads, in the op's argument order (e.g. `x, weight, bias`).
    pub inputs: Vec<String>,
    /// Names of the values it defines; no other node defines them.
    pub outputs: Vec<String>,
}

/// A model's computation: typed inputs, trainable parameters, nodes in topological order and
/// the names of its outputs. Every value has a single producer (SSA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// The model's name, used in messages and results.
    pub name: String,
    /// What the harness feeds per batch, in declaration order.
    pub inputs: Vec<Input>,
    /// The trainable parameters, in declaration order.
    pub params: Vec<Param>,
    /// The operations, each after the producers of its inputs.
    pub nodes: Vec<Node>,
    /// Names of the values the graph returns, in order.
    pub outputs: Vec<String>,
}

impl Graph {
    /// Checks names and ordering and infers the type of every value: the map from value name to
    /// its [`ValueInfo`]. An error names the node, its op and the shapes that disagree.
    pub fn infer(&self) -> Result<BTreeMap<String, ValueInfo>> {
        let mut values: BTreeMap<String, ValueInfo> = BTreeMap::new();
        let declared = self
            .inputs
            .iter()
            .map(|i| &i.value)
            .chain(self.params.iter().map(|p| &p.value));
        for info in declared {
            if crate::limits::checked_numel(&info.resolve(1)).is_none() {
                return Err(Error::invalid(format!(
                    "graph `{}`: value `{}` {} has more elements than can be addressed",
                    self.name,
                    info.name,
                    super::format_shape(&info.shape)
                )));
            }
            if values.insert(info.name.clone(), info.clone()).is_some() {
                return Err(Error::invalid(format!(
                    "graph `{}`: value `{}` is declared twice",
                    self.name, info.name
                )));
            }
        }
        let mut node_names = HashSet::new();
        for node in &self.nodes {
            if !node_names.insert(node.name.as_str()) {
                return Err(Error::invalid(format!(
                    "graph `{}`: two nodes are named `{}`",
                    self.name, node.name
                )));
            }
            let inputs = node
                .inputs
                .iter()
                .map(|name| {
                    values.get(name).ok_or_else(|| {
                        Error::node(
                            &node.name,
                            node.op.name(),
                            format!("input `{name}` is not a graph input, a parameter or an earlier node's output"),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let outputs = shape::infer_node(node, &inputs)?;
            for info in outputs {
                if values.contains_key(&info.name) {
                    return Err(Error::node(
                        &node.name,
                        node.op.name(),
                        format!("output `{}` is already defined", info.name),
                    ));
                }
                values.insert(info.name.clone(), info);
            }
        }
        for out in &self.outputs {
            if !values.contains_key(out) {
                return Err(Error::invalid(format!(
                    "graph `{}`: output `{out}` is not produced by any node",
                    self.name
                )));
            }
        }
        Ok(values)
    }

    /// The [`ValueInfo`] of each graph output, in order.
    pub fn output_infos(&self) -> Result<Vec<ValueInfo>> {
        let values = self.infer()?;
        Ok(self.outputs.iter().map(|o| values[o].clone()).collect())
    }

    /// The graph input named `name`.
    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|i| i.value.name == name)
    }

    /// The parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.value.name == name)
    }

    /// Total number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        // Saturating: a crafted graph must not wrap into a small count (it is refused by the
        // memory limits instead).
        self.params
            .iter()
            .fold(0usize, |n, p| n.saturating_add(p.value.numel_per_sample()))
    }

    /// The parameters a node reads, in its input order.
    pub fn node_params<'a>(&'a self, node: &'a Node) -> impl Iterator<Item = &'a Param> + 'a {
        node.inputs.iter().filter_map(|name| self.param(name))
    }

    /// Checks a batch that a session is asked to load: exactly the graph's inputs by name, each
    /// with its declared rank and known dims, one batch size across them, and a dtype that fits
    /// (floats for float inputs, i64 for label inputs). Returns the batch size. Every backend's
    /// `Session::load` starts here, so they all refuse the same batches with the same words.
    pub fn check_batch(&self, inputs: &Values) -> Result<usize> {
        let graph = &self.name;
        if let Some(unknown) = inputs.keys().find(|k| self.input(k).is_none()) {
            let known: Vec<&str> = self.inputs.iter().map(|i| i.value.name.as_str()).collect();
            return Err(Error::invalid(format!(
                "graph `{graph}` has no input `{unknown}`; its inputs are {known:?}"
            )));
        }
        let show = |shape: &[Dim]| {
            let dims: Vec<String> = shape.iter().map(Dim::to_string).collect();
            format!("[{}]", dims.join(", "))
        };
        for input in &self.inputs {
            if !inputs.contains_key(&input.value.name) {
                return Err(Error::invalid(format!(
                    "graph `{graph}`: input `{}` ({} {}) is missing from the batch",
                    input.value.name,
                    input.value.dtype,
                    show(&input.value.shape)
                )));
            }
        }
        // The first input (in declaration order) with a batch dim and the declared rank fixes
        // the batch size; the rank check below reports the others.
        let batch = self.inputs.iter().find_map(|input| {
            let given = inputs[&input.value.name].shape();
            let at = input.value.shape.iter().position(|d| *d == Dim::Batch)?;
            (given.len() == input.value.shape.len()).then(|| (given[at], &input.value.name))
        });
        if let Some((0, name)) = batch {
            return Err(Error::invalid(format!(
                "input `{name}`: the batch is empty"
            )));
        }
        for input in &self.inputs {
            let info = &input.value;
            let given = &inputs[&info.name];
            let fits = given.shape().len() == info.shape.len()
                && info.shape.iter().zip(given.shape()).all(|(d, &n)| match d {
                    Dim::Known(k) => *k == n,
                    Dim::Batch => batch.is_none_or(|(b, _)| b == n),
                });
            if !fits {
                let resolved = match batch {
                    Some((b, from)) if info.shape.contains(&Dim::Batch) => format!(
                        " = {:?} with batch {b} from input `{from}`",
                        info.resolve(b)
                    ),
                    _ => String::new(),
                };
                return Err(Error::invalid(format!(
                    "input `{}`: expected shape {}{resolved}, got {:?}",
                    info.name,
                    show(&info.shape),
                    given.shape()
                )));
            }
            let (fits, expected) = match info.dtype {
                DType::I64 => (given.dtype() == DType::I64, "i64"),
                DType::F32 | DType::F64 => (given.dtype().is_float(), "f32 or f64"),
            };
            if !fits {
                return Err(Error::invalid(format!(
                    "input `{}`: expected {expected} values, got {}",
                    info.name,
                    given.dtype()
                )));
            }
        }
        Ok(batch.map_or(1, |(b, _)| b))
    }

    /// True when any node is a loss (a training graph).
    pub fn has_loss(&self) -> bool {
        self.nodes.iter().any(|n| n.op.is_loss())
    }
}
