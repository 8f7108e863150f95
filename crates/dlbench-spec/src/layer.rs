//! The layer vocabulary shared by the sequential and graph model forms: a bare name (`relu`,
//! `flatten`, `add`) or a one-key mapping from the layer's name to its options
//! (`dense: {units: 10, activation: relu}`), and how each becomes nodes of a graph.

use std::fmt;

use dlbench_core::ir::{format_shape, Conv2d, Lstm, Pool2d};
use dlbench_core::{BinaryOp, Error, GraphBuilder, Op, Result, UnaryOp};
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;
use strum::{EnumIter, IntoEnumIterator};

mod options;

pub use options::{
    AvgPoolSpec, ConcatSpec, Conv2dSpec, DenseSpec, DropoutSpec, LstmReturn, LstmSpec, MaxPoolSpec,
    ReshapeSpec, ScaleSpec, TransposeSpec,
};

/// Every layer of the spec format, in the order error messages list them: the layers written
/// with options, then the bare names. [`LayerKind::entry`] is the one table of their names,
/// forms and inputs; everything else about the vocabulary is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter)]
pub enum LayerKind {
    /// `dense` (with options): PyTorch `Linear` on the last axis.
    Dense,
    /// `conv2d` (with options): PyTorch `Conv2d` on NCHW input.
    Conv2d,
    /// `max_pool2d` (with options): PyTorch `MaxPool2d`.
    MaxPool2d,
    /// `avg_pool2d` (with options): PyTorch `AvgPool2d`.
    AvgPool2d,
    /// `dropout` (with options): PyTorch `Dropout`.
    Dropout,
    /// `lstm` (with options): PyTorch `LSTM`, one layer.
    Lstm,
    /// `reshape` (with options): a new shape for each sample, the batch kept.
    Reshape,
    /// `scale` (with options): multiplies by a constant.
    Scale,
    /// `concat` (with options): joins one or more inputs along an axis.
    Concat,
    /// `transpose` (with options): permutes the axes.
    Transpose,
    /// `relu` (bare): `max(x, 0)`.
    Relu,
    /// `sigmoid` (bare): `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh` (bare): the hyperbolic tangent.
    Tanh,
    /// `softmax` (bare): softmax over the last axis.
    Softmax,
    /// `log_softmax` (bare): log of the softmax over the last axis.
    LogSoftmax,
    /// `flatten` (bare): keeps the batch, flattens the rest.
    Flatten,
    /// `add` (bare): element-wise sum of two inputs, numpy broadcasting.
    Add,
    /// `sub` (bare): element-wise first input minus second, numpy broadcasting.
    Sub,
    /// `mul` (bare): element-wise product of two inputs, numpy broadcasting.
    Mul,
    /// `exp` (bare): element-wise `e^x`.
    Exp,
    /// `mat_mul` (bare): matrix product of two inputs.
    MatMul,
}

/// How a layer is written in a spec.
#[derive(Debug, Clone, PartialEq)]
pub enum Form {
    /// A one-key mapping from the name to the options: `dense: {units: 10}`.
    WithOptions,
    /// A bare name (`relu`), standing for this layer.
    Bare(Layer),
}

/// One row of the layer table.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerEntry {
    /// The name written in specs.
    pub name: &'static str,
    /// Written as a mapping with options, or as a bare name standing for a fixed layer.
    pub form: Form,
    /// How many inputs the layer takes: `(min, max)`.
    pub inputs: (usize, usize),
}

const ONE: (usize, usize) = (1, 1);
const TWO: (usize, usize) = (2, 2);
const ONE_OR_MORE: (usize, usize) = (1, usize::MAX);

impl LayerKind {
    /// The layer table.
    pub fn entry(self) -> LayerEntry {
        use LayerKind as K;
        let options = Form::WithOptions;
        let bare = Form::Bare;
        let activation = |a| Form::Bare(Layer::Activation(a));
        let (name, form, inputs) = match self {
            K::Dense => ("dense", options, ONE),
            K::Conv2d => ("conv2d", options, ONE),
            K::MaxPool2d => ("max_pool2d", options, ONE),
            K::AvgPool2d => ("avg_pool2d", options, ONE),
            K::Dropout => ("dropout", options, ONE),
            K::Lstm => ("lstm", options, ONE),
            K::Reshape => ("reshape", options, ONE),
            K::Scale => ("scale", options, ONE),
            K::Concat => ("concat", options, ONE_OR_MORE),
            K::Transpose => ("transpose", options, ONE),
            K::Relu => ("relu", activation(Activation::Relu), ONE),
            K::Sigmoid => ("sigmoid", activation(Activation::Sigmoid), ONE),
            K::Tanh => ("tanh", activation(Activation::Tanh), ONE),
            K::Softmax => ("softmax", activation(Activation::Softmax), ONE),
            K::LogSoftmax => ("log_softmax", activation(Activation::LogSoftmax), ONE),
            K::Flatten => ("flatten", bare(Layer::Flatten), ONE),
            K::Add => ("add", bare(Layer::Add), TWO),
            K::Sub => ("sub", bare(Layer::Sub), TWO),
            K::Mul => ("mul", bare(Layer::Mul), TWO),
            K::Exp => ("exp", bare(Layer::Exp), ONE),
            K::MatMul => ("mat_mul", bare(Layer::MatMul), TWO),
        };
        LayerEntry { name, form, inputs }
    }

    /// The name written in specs.
    pub fn name(self) -> &'static str {
        self.entry().name
    }

    /// The layer of this name.
    pub fn from_name(name: &str) -> Option<LayerKind> {
        LayerKind::iter().find(|k| k.name() == name)
    }

    /// Whether the layer is written as a mapping with options.
    pub fn takes_options(self) -> bool {
        self.entry().form == Form::WithOptions
    }
}

/// The names of the layers written as a mapping with options, in table order.
pub fn layers_with_options() -> Vec<&'static str> {
    LayerKind::iter()
        .filter(|k| k.takes_options())
        .map(LayerKind::name)
        .collect()
}

/// The names of the layers written as a bare name, in table order.
pub fn bare_layers() -> Vec<&'static str> {
    LayerKind::iter()
        .filter(|k| !k.takes_options())
        .map(LayerKind::name)
        .collect()
}

/// One layer of a model.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// `dense`: PyTorch `Linear` on the last axis, then an optional activation.
    Dense(DenseSpec),
    /// `conv2d`: PyTorch `Conv2d` on NCHW input, then an optional activation.
    Conv2d(Conv2dSpec),
    /// `max_pool2d`: PyTorch `MaxPool2d` on NCHW input.
    MaxPool2d(MaxPoolSpec),
    /// `avg_pool2d`: PyTorch `AvgPool2d` on NCHW input.
    AvgPool2d(AvgPoolSpec),
    /// `dropout`: PyTorch `Dropout`; its keep-mask is a graph input fed from the seed.
    Dropout(DropoutSpec),
    /// `lstm`: one PyTorch `LSTM` layer with zero initial state.
    Lstm(LstmSpec),
    /// `reshape`: a new shape for each sample, the batch dim kept.
    Reshape(ReshapeSpec),
    /// `scale`: multiplies every element by a constant.
    Scale(ScaleSpec),
    /// `concat`: joins one or more inputs along an axis.
    Concat(ConcatSpec),
    /// `transpose`: permutes the axes, batch included.
    Transpose(TransposeSpec),
    /// `relu`, `sigmoid`, `tanh`, `softmax` or `log_softmax`, written bare.
    Activation(Activation),
    /// Flattens every dim after the batch into one.
    Flatten,
    /// Element-wise with broadcasting, two inputs.
    Add,
    /// Element-wise first input minus second, with broadcasting.
    Sub,
    /// Element-wise product of two inputs, with broadcasting.
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
    /// `relu`: `max(x, 0)`.
    Relu,
    /// `sigmoid`: `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh`: the hyperbolic tangent.
    Tanh,
    /// Over the last axis.
    Softmax,
    /// Over the last axis.
    LogSoftmax,
}

impl Activation {
    /// The name as written in specs (`log_softmax`), also the suffix of a fused activation's
    /// node (`<name>.relu`).
    pub fn name(self) -> &'static str {
        self.op().name()
    }

    /// The graph op that applies it; `softmax` and `log_softmax` act on axis -1.
    pub fn op(self) -> Op {
        match self {
            Activation::Relu => Op::Unary(UnaryOp::Relu),
            Activation::Sigmoid => Op::Unary(UnaryOp::Sigmoid),
            Activation::Tanh => Op::Unary(UnaryOp::Tanh),
            Activation::Softmax => Op::Softmax { axis: -1 },
            Activation::LogSoftmax => Op::LogSoftmax { axis: -1 },
        }
    }
}

impl Layer {
    /// A layer written as a bare name.
    pub fn bare(name: &str) -> Result<Layer, String> {
        let kind = LayerKind::from_name(name).ok_or_else(|| unknown_layer(name))?;
        match kind.entry().form {
            Form::Bare(layer) => Ok(layer),
            Form::WithOptions => Err(format!(
                "layer `{name}` needs options, e.g. `{name}: {{...}}`; see docs/specs.md"
            )),
        }
    }

    /// The layer's row of the layer table.
    pub fn kind(&self) -> LayerKind {
        use LayerKind as K;
        match self {
            Layer::Dense(_) => K::Dense,
            Layer::Conv2d(_) => K::Conv2d,
            Layer::MaxPool2d(_) => K::MaxPool2d,
            Layer::AvgPool2d(_) => K::AvgPool2d,
            Layer::Dropout(_) => K::Dropout,
            Layer::Lstm(_) => K::Lstm,
            Layer::Reshape(_) => K::Reshape,
            Layer::Scale(_) => K::Scale,
            Layer::Concat(_) => K::Concat,
            Layer::Transpose(_) => K::Transpose,
            Layer::Activation(a) => match a {
                Activation::Relu => K::Relu,
                Activation::Sigmoid => K::Sigmoid,
                Activation::Tanh => K::Tanh,
                Activation::Softmax => K::Softmax,
                Activation::LogSoftmax => K::LogSoftmax,
            },
            Layer::Flatten => K::Flatten,
            Layer::Add => K::Add,
            Layer::Sub => K::Sub,
            Layer::Mul => K::Mul,
            Layer::Exp => K::Exp,
            Layer::MatMul => K::MatMul,
        }
    }

    /// The layer's name as written in specs.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// How many inputs the layer takes: `(min, max)`.
    pub fn arity(&self) -> (usize, usize) {
        self.kind().entry().inputs
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
            Layer::Scale(s) => b.op(name, Op::Unary(UnaryOp::Scale { factor: s.factor }), &[x]),
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
            Layer::Add => b.op(name, Op::Binary(BinaryOp::Add), inputs),
            Layer::Sub => b.op(name, Op::Binary(BinaryOp::Sub), inputs),
            Layer::Mul => b.op(name, Op::Binary(BinaryOp::Mul), inputs),
            Layer::Exp => b.op(name, Op::Unary(UnaryOp::Exp), &[x]),
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
        layers_with_options()
            .iter()
            .chain(&bare_layers())
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
    use LayerKind as K;
    let kind = LayerKind::from_name(name).ok_or_else(|| A::Error::custom(unknown_layer(name)))?;
    Ok(match kind {
        K::Dense => Layer::Dense(map.next_value()?),
        K::Conv2d => Layer::Conv2d(map.next_value()?),
        K::MaxPool2d => Layer::MaxPool2d(map.next_value()?),
        K::AvgPool2d => Layer::AvgPool2d(map.next_value()?),
        K::Dropout => Layer::Dropout(map.next_value()?),
        K::Lstm => Layer::Lstm(map.next_value()?),
        K::Reshape => Layer::Reshape(map.next_value()?),
        K::Scale => Layer::Scale(map.next_value()?),
        K::Concat => Layer::Concat(map.next_value()?),
        K::Transpose => Layer::Transpose(map.next_value()?),
        // The bare layers of the table (a test checks the two agree).
        K::Relu
        | K::Sigmoid
        | K::Tanh
        | K::Softmax
        | K::LogSoftmax
        | K::Flatten
        | K::Add
        | K::Sub
        | K::Mul
        | K::Exp
        | K::MatMul => {
            return Err(A::Error::custom(format!(
                "layer `{name}` takes no options: write it as a plain name"
            )))
        }
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

/// The layer table against the parser, the docs and the vocabulary as it was before the
/// table (whose order the error messages show).
#[cfg(test)]
mod tests;
