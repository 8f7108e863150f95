//! The layer vocabulary shared by the sequential and graph model forms: a bare name (`relu`,
//! `flatten`, `add`) or a one-key mapping from the layer's name to its options
//! (`dense: {units: 10, activation: relu}`), and how each becomes nodes of a graph.

use std::fmt;

use dlbench_core::ir::{format_shape, Conv2d, Direction, Lstm, Pool2d};
use dlbench_core::{Error, GraphBuilder, Op, Result};
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;

use super::de;

/// Layers written as a mapping with options.
pub const LAYERS_WITH_OPTIONS: [&str; 10] = [
    "dense",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "dropout",
    "lstm",
    "reshape",
    "scale",
    "concat",
    "transpose",
];

/// Layers written as a bare name.
pub const BARE_LAYERS: [&str; 11] = [
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "flatten",
    "add",
    "sub",
    "mul",
    "exp",
    "mat_mul",
];

/// One layer of a model.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    Dense(DenseSpec),
    Conv2d(Conv2dSpec),
    MaxPool2d(MaxPoolSpec),
    AvgPool2d(AvgPoolSpec),
    Dropout(DropoutSpec),
    Lstm(LstmSpec),
    Reshape(ReshapeSpec),
    Scale(ScaleSpec),
    Concat(ConcatSpec),
    Transpose(TransposeSpec),
    Activation(Activation),
    /// Flattens every dim after the batch into one.
    Flatten,
    /// Element-wise with broadcasting, two inputs.
    Add,
    Sub,
    Mul,
    /// Element-wise `e^x`.
    Exp,
    /// Matrix product of two inputs.
    MatMul,
}

/// An activation, as a layer or as the `activation` option of `dense` and `conv2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
    /// Over the last axis.
    Softmax,
    /// Over the last axis.
    LogSoftmax,
}

impl Activation {
    pub fn name(self) -> &'static str {
        self.op().name()
    }

    pub fn op(self) -> Op {
        match self {
            Activation::Relu => Op::Relu,
            Activation::Sigmoid => Op::Sigmoid,
            Activation::Tanh => Op::Tanh,
            Activation::Softmax => Op::Softmax { axis: -1 },
            Activation::LogSoftmax => Op::LogSoftmax { axis: -1 },
        }
    }
}

fn yes() -> bool {
    true
}

fn ones() -> [usize; 2] {
    [1, 1]
}

/// `dense: {units: 100, activation: relu, bias: true}`: PyTorch `Linear` on the last axis.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseSpec {
    #[serde(deserialize_with = "de::positive")]
    pub units: usize,
    #[serde(default = "yes")]
    pub bias: bool,
    #[serde(default)]
    pub activation: Option<Activation>,
}

/// `conv2d: {filters: 32, kernel: 3, stride: 1, padding: 0, dilation: 1, groups: 1}`; each
/// of kernel, stride, padding and dilation is an integer or a pair `[h, w]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dSpec {
    #[serde(deserialize_with = "de::positive")]
    pub filters: usize,
    #[serde(deserialize_with = "de::positive_pair")]
    pub kernel: [usize; 2],
    #[serde(default = "ones", deserialize_with = "de::positive_pair")]
    pub stride: [usize; 2],
    #[serde(default, deserialize_with = "de::pair")]
    pub padding: [usize; 2],
    #[serde(default = "ones", deserialize_with = "de::positive_pair")]
    pub dilation: [usize; 2],
    #[serde(default = "one", deserialize_with = "de::positive")]
    pub groups: usize,
    #[serde(default = "yes")]
    pub bias: bool,
    #[serde(default)]
    pub activation: Option<Activation>,
}

fn one() -> usize {
    1
}

/// `max_pool2d: {kernel: 2, stride: 2, padding: 0, ceil_mode: false}` (stride defaults to the
/// kernel, as in PyTorch).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPoolSpec {
    #[serde(deserialize_with = "de::positive_pair")]
    pub kernel: [usize; 2],
    #[serde(default, deserialize_with = "de::positive_pair_opt")]
    pub stride: Option<[usize; 2]>,
    #[serde(default, deserialize_with = "de::pair")]
    pub padding: [usize; 2],
    #[serde(default)]
    pub ceil_mode: bool,
}

/// `avg_pool2d`: the options of `max_pool2d` and `count_include_pad` (default true).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvgPoolSpec {
    #[serde(deserialize_with = "de::positive_pair")]
    pub kernel: [usize; 2],
    #[serde(default, deserialize_with = "de::positive_pair_opt")]
    pub stride: Option<[usize; 2]>,
    #[serde(default, deserialize_with = "de::pair")]
    pub padding: [usize; 2],
    #[serde(default)]
    pub ceil_mode: bool,
    #[serde(default = "yes")]
    pub count_include_pad: bool,
}

fn half() -> f64 {
    0.5
}

/// `dropout: {p: 0.5}`: the probability of zeroing an element while training.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutSpec {
    #[serde(default = "half", deserialize_with = "de::fraction")]
    pub p: f64,
}

/// What an LSTM layer passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LstmReturn {
    /// The final hidden state, `[batch, directions * hidden]` (Keras' default).
    #[default]
    Last,
    /// The hidden state at every step, Y (`return_sequences=True`).
    Sequence,
}

fn forward() -> Direction {
    Direction::Forward
}

/// `lstm: {hidden: 50, direction: forward, batch_first: true, return: last}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LstmSpec {
    #[serde(deserialize_with = "de::positive")]
    pub hidden: usize,
    #[serde(default = "forward")]
    pub direction: Direction,
    #[serde(default = "yes")]
    pub batch_first: bool,
    #[serde(default, rename = "return")]
    pub returns: LstmReturn,
}

/// `reshape: {shape: [1, 8, 8]}`: the new shape of each sample (the batch dim is kept); one
/// entry may be -1, inferred from the others.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshapeSpec {
    pub shape: Vec<i64>,
}

/// `scale: {factor: 0.5}`: multiplies by a constant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleSpec {
    #[serde(deserialize_with = "de::finite")]
    pub factor: f64,
}

/// `concat: {axis: 1}`: joins the inputs along an axis (0 is the batch).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcatSpec {
    pub axis: usize,
}

/// `transpose: {perm: [0, 2, 1]}`: output dim `i` is input dim `perm[i]` (0 is the batch).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransposeSpec {
    pub perm: Vec<usize>,
}

impl Layer {
    /// A layer written as a bare name.
    pub fn bare(name: &str) -> Result<Layer, String> {
        Ok(match name {
            "relu" => Layer::Activation(Activation::Relu),
            "sigmoid" => Layer::Activation(Activation::Sigmoid),
            "tanh" => Layer::Activation(Activation::Tanh),
            "softmax" => Layer::Activation(Activation::Softmax),
            "log_softmax" => Layer::Activation(Activation::LogSoftmax),
            "flatten" => Layer::Flatten,
            "add" => Layer::Add,
            "sub" => Layer::Sub,
            "mul" => Layer::Mul,
            "exp" => Layer::Exp,
            "mat_mul" => Layer::MatMul,
            _ if LAYERS_WITH_OPTIONS.contains(&name) => {
                return Err(format!(
                    "layer `{name}` needs options, e.g. `{name}: {{...}}`; see docs/specs.md"
                ))
            }
            _ => return Err(unknown_layer(name)),
        })
    }

    /// The layer's name as written in specs.
    pub fn name(&self) -> &'static str {
        match self {
            Layer::Dense(_) => "dense",
            Layer::Conv2d(_) => "conv2d",
            Layer::MaxPool2d(_) => "max_pool2d",
            Layer::AvgPool2d(_) => "avg_pool2d",
            Layer::Dropout(_) => "dropout",
            Layer::Lstm(_) => "lstm",
            Layer::Reshape(_) => "reshape",
            Layer::Scale(_) => "scale",
            Layer::Concat(_) => "concat",
            Layer::Transpose(_) => "transpose",
            Layer::Activation(a) => a.name(),
            Layer::Flatten => "flatten",
            Layer::Add => "add",
            Layer::Sub => "sub",
            Layer::Mul => "mul",
            Layer::Exp => "exp",
            Layer::MatMul => "mat_mul",
        }
    }

    /// How many inputs the layer takes: `(min, max)`.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Layer::Add | Layer::Sub | Layer::Mul | Layer::MatMul => (2, 2),
            Layer::Concat(_) => (1, usize::MAX),
            _ => (1, 1),
        }
    }

    /// Adds the layer's nodes to `b` and returns the value it passes on. `name` names the
    /// main node (its parameters are `<name>.weight`...); a fused activation becomes a node
    /// `<name>.<activation>`.
    pub fn build(
        &self,
        b: &mut GraphBuilder,
        name: Option<&str>,
        inputs: &[&str],
    ) -> Result<String> {
        let x = inputs[0];
        match self {
            Layer::Dense(d) => {
                let shape = &b.info(x)?.shape;
                if shape.len() > 3 {
                    return Err(Error::invalid(format!(
                        "input `{x}` is {}; dense reads only the last axis: add `flatten` before it",
                        format_shape(shape)
                    )));
                }
                let y = b.dense(name, x, d.units, d.bias)?;
                activate(b, y, d.activation)
            }
            Layer::Conv2d(c) => {
                let attrs = Conv2d {
                    stride: c.stride,
                    padding: c.padding,
                    dilation: c.dilation,
                    groups: c.groups,
                };
                let y = b.conv2d(name, x, c.filters, c.kernel, attrs, c.bias)?;
                activate(b, y, c.activation)
            }
            Layer::MaxPool2d(p) => {
                let pool = Pool2d {
                    kernel: p.kernel,
                    stride: p.stride.unwrap_or(p.kernel),
                    padding: p.padding,
                    ceil_mode: p.ceil_mode,
                    count_include_pad: true,
                };
                b.op(name, Op::MaxPool2d(pool), &[x])
            }
            Layer::AvgPool2d(p) => {
                let pool = Pool2d {
                    kernel: p.kernel,
                    stride: p.stride.unwrap_or(p.kernel),
                    padding: p.padding,
                    ceil_mode: p.ceil_mode,
                    count_include_pad: p.count_include_pad,
                };
                b.op(name, Op::AvgPool2d(pool), &[x])
            }
            Layer::Dropout(d) => b.dropout(name, x, d.p),
            Layer::Lstm(l) => lstm(b, name, x, l),
            Layer::Reshape(r) => {
                // 0 copies the batch dim (ONNX), so the shape applies to each sample.
                let shape = std::iter::once(0).chain(r.shape.iter().copied()).collect();
                b.op(name, Op::Reshape { shape }, &[x])
            }
            Layer::Scale(s) => b.op(name, Op::Scale { factor: s.factor }, &[x]),
            Layer::Concat(c) => b.op(name, Op::Concat { axis: c.axis }, inputs),
            Layer::Transpose(t) => b.op(
                name,
                Op::Transpose {
                    perm: t.perm.clone(),
                },
                &[x],
            ),
            Layer::Activation(a) => b.op(name, a.op(), &[x]),
            Layer::Flatten => b.op(name, Op::Flatten { axis: 1 }, &[x]),
            Layer::Add => b.op(name, Op::Add, inputs),
            Layer::Sub => b.op(name, Op::Sub, inputs),
            Layer::Mul => b.op(name, Op::Mul, inputs),
            Layer::Exp => b.op(name, Op::Exp, &[x]),
            Layer::MatMul => b.op(name, Op::MatMul, inputs),
        }
    }
}

fn activate(b: &mut GraphBuilder, y: String, activation: Option<Activation>) -> Result<String> {
    match activation {
        Some(a) => b.op(Some(&format!("{y}.{}", a.name())), a.op(), &[&y]),
        None => Ok(y),
    }
}

fn lstm(b: &mut GraphBuilder, name: Option<&str>, x: &str, l: &LstmSpec) -> Result<String> {
    let attrs = Lstm {
        hidden: l.hidden,
        direction: l.direction,
        batch_first: l.batch_first,
    };
    let [y, y_h, _] = b.lstm(name, x, attrs)?;
    if l.returns == LstmReturn::Sequence {
        return Ok(y);
    }
    let node = y.strip_suffix(".y").unwrap_or(&y).to_string();
    let last = format!("{node}.last");
    // Y_h is [directions, batch, hidden]; the batch must lead.
    if l.direction.count() == 1 {
        let shape = vec![-1, l.hidden as i64];
        b.op(Some(&last), Op::Reshape { shape }, &[&y_h])
    } else {
        let perm = vec![1, 0, 2];
        let t = b.op(
            Some(&format!("{node}.last_t")),
            Op::Transpose { perm },
            &[&y_h],
        )?;
        b.op(Some(&last), Op::Flatten { axis: 1 }, &[&t])
    }
}

fn unknown_layer(name: &str) -> String {
    format!(
        "unknown layer `{name}`, expected one of {}",
        LAYERS_WITH_OPTIONS
            .iter()
            .chain(&BARE_LAYERS)
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Reads the options of the layer `name` from the map's next value.
pub(crate) fn layer_value<'de, A: MapAccess<'de>>(
    name: &str,
    map: &mut A,
) -> Result<Layer, A::Error> {
    Ok(match name {
        "dense" => Layer::Dense(map.next_value()?),
        "conv2d" => Layer::Conv2d(map.next_value()?),
        "max_pool2d" => Layer::MaxPool2d(map.next_value()?),
        "avg_pool2d" => Layer::AvgPool2d(map.next_value()?),
        "dropout" => Layer::Dropout(map.next_value()?),
        "lstm" => Layer::Lstm(map.next_value()?),
        "reshape" => Layer::Reshape(map.next_value()?),
        "scale" => Layer::Scale(map.next_value()?),
        "concat" => Layer::Concat(map.next_value()?),
        "transpose" => Layer::Transpose(map.next_value()?),
        _ if BARE_LAYERS.contains(&name) => {
            return Err(A::Error::custom(format!(
                "layer `{name}` takes no options: write it as a plain name"
            )))
        }
        _ => return Err(A::Error::custom(unknown_layer(name))),
    })
}

impl<'de> Deserialize<'de> for Layer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Layer;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a layer: a name such as `relu`, or a mapping such as `dense: {units: 10}`",
                )
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Layer, E> {
                Layer::bare(name).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Layer, A::Error> {
                let name: String = map.next_key()?.ok_or_else(|| {
                    A::Error::custom("a layer mapping needs the layer's name as its key")
                })?;
                let layer = layer_value(&name, &mut map)?;
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "`{extra}` is outside the options of `{name}`: indent it under `{name}`, \
                         or write `{name}: {{..., {extra}: ...}}`"
                    )));
                }
                Ok(layer)
            }
        }
        d.deserialize_any(V)
    }
}
