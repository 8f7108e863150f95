//! Building graphs layer by layer, the way Keras' functional API does: each call adds a node
//! (and its parameters, with PyTorch's default initialisation), infers its output type at once
//! and returns the output's name. Spec files, importers and tests all build graphs here.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::{Error, Result};
use crate::init::Init;
use crate::ir::{
    shape, Conv2d, Dim, Direction, Graph, Input, InputRole, Lstm, Node, Op, Param, ValueInfo,
};
use crate::tensor::DType;

/// An incremental, shape-checked graph builder.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    name: String,
    inputs: Vec<Input>,
    params: Vec<Param>,
    nodes: Vec<Node>,
    values: BTreeMap<String, ValueInfo>,
    counts: HashMap<&'static str, usize>,
    /// The names in `nodes`, so that naming a node stays O(1) in graphs of many layers.
    node_names: HashSet<String>,
}

impl GraphBuilder {
    /// An empty graph named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        GraphBuilder {
            name: name.into(),
            ..Default::default()
        }
    }

    fn declare(&mut self, info: ValueInfo) -> Result<()> {
        if self.values.contains_key(&info.name) {
            return Err(Error::invalid(format!(
                "graph `{}`: the name `{}` is used twice",
                self.name, info.name
            )));
        }
        self.values.insert(info.name.clone(), info);
        Ok(())
    }

    /// A graph input of any role.
    pub fn input(
        &mut self,
        name: &str,
        dtype: DType,
        shape: Vec<Dim>,
        role: InputRole,
    ) -> Result<String> {
        let value = ValueInfo::new(name, dtype, shape);
        self.declare(value.clone())?;
        self.inputs.push(Input { value, role });
        Ok(name.to_string())
    }

    /// A batch of f32 samples of shape `sample` (the batch dim is prepended).
    pub fn data_input(&mut self, name: &str, sample: &[usize]) -> Result<String> {
        let shape = std::iter::once(Dim::Batch)
            .chain(sample.iter().map(|&d| Dim::Known(d)))
            .collect();
        self.input(name, DType::F32, shape, InputRole::Data)
    }

    /// A trainable f32 parameter.
    pub fn param(&mut self, name: &str, shape: &[usize], init: Init) -> Result<String> {
        if crate::limits::checked_numel(shape).is_none() {
            return Err(Error::invalid(format!(
                "graph `{}`: parameter `{name}` {shape:?} has more elements than can be \
                 addressed",
                self.name
            )));
        }
        let value = ValueInfo::new(
            name,
            DType::F32,
            shape.iter().map(|&d| Dim::Known(d)).collect(),
        );
        self.declare(value.clone())?;
        self.params.push(Param { value, init });
        Ok(name.to_string())
    }

    /// The type of a value defined so far.
    pub fn info(&self, name: &str) -> Result<&ValueInfo> {
        self.values.get(name).ok_or_else(|| {
            Error::invalid(format!("graph `{}`: no value named `{name}`", self.name))
        })
    }

    /// A node name not used yet: `dense_1`, `dense_2`... (Keras style).
    pub fn fresh_name(&mut self, op: &Op) -> String {
        loop {
            let k = self.counts.entry(op.name()).or_insert(0);
            *k += 1;
            let name = format!("{}_{}", op.name(), k);
            if !self.values.contains_key(&name) && !self.node_names.contains(&name) {
                return name;
            }
        }
    }

    /// Adds a node and returns its output names: the node's name for a single output,
    /// `<name>.y`, `<name>.y_h`, `<name>.y_c` for an LSTM.
    pub fn node(&mut self, name: Option<&str>, op: Op, inputs: &[&str]) -> Result<Vec<String>> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.fresh_name(&op),
        };
        if self.node_names.contains(&name) {
            return Err(Error::invalid(format!(
                "graph `{}`: two nodes are named `{name}`",
                self.name
            )));
        }
        let outputs = op.output_names(&name);
        let node = Node {
            name: name.clone(),
            op,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs,
        };
        let infos = node
            .inputs
            .iter()
            .map(|i| {
                self.values.get(i).ok_or_else(|| {
                    Error::node(
                        &name,
                        node.op.name(),
                        format!("input `{i}` is not defined before this node"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let outs = shape::infer_node(&node, &infos)?;
        for info in outs {
            self.declare(info)?;
        }
        let names = node.outputs.clone();
        self.node_names.insert(node.name.clone());
        self.nodes.push(node);
        Ok(names)
    }

    /// A one-output node.
    pub fn op(&mut self, name: Option<&str>, op: Op, inputs: &[&str]) -> Result<String> {
        Ok(self.node(name, op, inputs)?.remove(0))
    }

    fn node_name(&mut self, name: Option<&str>, op: &Op) -> String {
        name.map(str::to_string)
            .unwrap_or_else(|| self.fresh_name(op))
    }

    fn last_known(&self, x: &str, op: &Op, what: &str) -> Result<usize> {
        self.info(x)?
            .shape
            .last()
            .and_then(|d| d.known())
            .ok_or_else(|| Error::node(x, op.name(), format!("{what} must be a known size")))
    }

    /// `Dense(units)` on the last dim of `x`: weight `[units, in]`, bias `[units]`.
    pub fn dense(
        &mut self,
        name: Option<&str>,
        x: &str,
        units: usize,
        bias: bool,
    ) -> Result<String> {
        let name = self.node_name(name, &Op::Dense);
        let fan_in = self.last_known(x, &Op::Dense, "the input's last dim")?;
        let w = self.param(
            &format!("{name}.weight"),
            &[units, fan_in],
            Init::fan_in(fan_in),
        )?;
        let mut inputs = vec![x.to_string(), w];
        if bias {
            inputs.push(self.param(&format!("{name}.bias"), &[units], Init::fan_in(fan_in))?);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.op(Some(&name), Op::Dense, &refs)
    }

    /// `Conv2d(filters, kernel)` on NCHW `x`: weight OIHW, bias `[filters]`.
    pub fn conv2d(
        &mut self,
        name: Option<&str>,
        x: &str,
        filters: usize,
        kernel: [usize; 2],
        attrs: Conv2d,
        bias: bool,
    ) -> Result<String> {
        let op = Op::Conv2d(attrs);
        let name = self.node_name(name, &op);
        let channels = self
            .info(x)?
            .shape
            .get(1)
            .and_then(|d| d.known())
            .ok_or_else(|| Error::node(&name, op.name(), "the input must be NCHW with known C"))?;
        if attrs.groups == 0 || channels % attrs.groups != 0 {
            return Err(Error::node(
                &name,
                op.name(),
                format!(
                    "{channels} input channels are not divisible by groups {}",
                    attrs.groups
                ),
            ));
        }
        // Saturating: only the init bound uses it, and `param` refuses a shape this large.
        let fan_in = (channels / attrs.groups)
            .saturating_mul(kernel[0])
            .saturating_mul(kernel[1]);
        let w = self.param(
            &format!("{name}.weight"),
            &[filters, channels / attrs.groups, kernel[0], kernel[1]],
            Init::fan_in(fan_in),
        )?;
        let mut inputs = vec![x.to_string(), w];
        if bias {
            inputs.push(self.param(&format!("{name}.bias"), &[filters], Init::fan_in(fan_in))?);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.op(Some(&name), op, &refs)
    }

    /// An LSTM layer; returns the names of Y, Y_h and Y_c.
    pub fn lstm(&mut self, name: Option<&str>, x: &str, attrs: Lstm) -> Result<[String; 3]> {
        let op = Op::Lstm(attrs);
        let name = self.node_name(name, &op);
        let features = self.last_known(x, &op, "the input's feature dim")?;
        let (h, init) = (attrs.hidden, Init::fan_in(attrs.hidden));
        let gates = h.checked_mul(4).ok_or_else(|| {
            Error::node(
                &name,
                op.name(),
                format!("hidden {h} is too large to address"),
            )
        })?;
        let mut inputs = vec![x.to_string()];
        let suffixes: &[&str] = match attrs.direction {
            Direction::Bidirectional => &["", "_reverse"],
            _ => &[""],
        };
        for suffix in suffixes {
            inputs.push(self.param(&format!("{name}.w_ih{suffix}"), &[gates, features], init)?);
            inputs.push(self.param(&format!("{name}.w_hh{suffix}"), &[gates, h], init)?);
            inputs.push(self.param(&format!("{name}.b_ih{suffix}"), &[gates], init)?);
            inputs.push(self.param(&format!("{name}.b_hh{suffix}"), &[gates], init)?);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let outs = self.node(Some(&name), op, &refs)?;
        Ok([outs[0].clone(), outs[1].clone(), outs[2].clone()])
    }

    /// Dropout with its keep-mask as a graph input `<name>.mask`, fed by the harness.
    pub fn dropout(&mut self, name: Option<&str>, x: &str, p: f64) -> Result<String> {
        let op = Op::Dropout { p };
        let name = self.node_name(name, &op);
        let info = self.info(x)?.clone();
        let mask = self.input(
            &format!("{name}.mask"),
            info.dtype,
            info.shape,
            InputRole::DropoutMask { p },
        )?;
        self.op(Some(&name), op, &[x, &mask])
    }

    /// The finished graph, checked once more as a whole.
    pub fn finish(self, outputs: &[&str]) -> Result<Graph> {
        let graph = Graph {
            name: self.name,
            inputs: self.inputs,
            params: self.params,
            nodes: self.nodes,
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
        };
        graph.infer()?;
        Ok(graph)
    }
}
