//! The lowering: each IR op to burn's own building blocks — the functional module ops
//! (`linear`, `conv2d`, `max_pool2d`, `avg_pool2d`), the activations (`relu`, `sigmoid`,
//! `tanh`, `softmax`, `log_softmax`), tensor ops (`matmul`, `permute`, `cat`, broadcasting
//! arithmetic) and, in [`crate::lstm`] and [`crate::loss`], burn-nn's LSTM and losses. burn's
//! autodiff differentiates whatever these record, so there is no backward here.
//!
//! Values are flat tensors with an IR shape ([`Value`]): element-wise ops run on the flat
//! tensor whatever the rank, softmax and concat view their input as `[outer, axis, inner]`,
//! Dense and MatMul fold leading dims into rows, and the ops whose rank matters (Transpose,
//! broadcasting arithmetic) pick burn's rank at run time with [`with_rank`].

use burn::tensor::activation::{log_softmax, relu, sigmoid, softmax};
use burn::tensor::module::{avg_pool2d, conv2d, linear, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::Tensor;
use dlbench_core::ir::{Conv2d, Pool2d};
use dlbench_core::{BinaryOp, Error, Mode, Node, Op, Result, UnaryOp};

use crate::convert::{dims_of, guard, with_rank, Value};
use crate::{loss, lstm};

/// The node's outputs from its inputs (in the op's documented input order). Shapes and arity
/// were checked by shape inference when the model was built; what burn still refuses (it
/// panics on a bad argument) comes back as an error naming the node.
pub(crate) fn forward(node: &Node, inputs: &[&Value], mode: Mode) -> Result<Vec<Value>> {
    let what = format!("node `{}` ({})", node.name, node.op.name());
    guard(&what, || lower(&node.op, inputs, mode)).map_err(|e| match e {
        Error::Invalid(message) => Error::node(&node.name, node.op.name(), message),
        other => other,
    })
}

fn lower(op: &Op, inputs: &[&Value], mode: Mode) -> Result<Vec<Value>> {
    let x = arg(inputs, 0)?;
    let one = |v: Value| Ok(vec![v]);
    match op {
        Op::Dense => one(dense(x, arg(inputs, 1)?, inputs.get(2).copied())?),
        Op::MatMul => one(matmul(x, arg(inputs, 1)?)?),
        Op::Conv2d(attrs) => one(conv(attrs, x, arg(inputs, 1)?, inputs.get(2).copied())?),
        Op::MaxPool2d(p) => {
            let options = MaxPoolOptions {
                kernel_size: p.kernel,
                stride: p.stride,
                padding: pairs(p.padding),
                dilation: [1, 1],
                ceil_mode: p.ceil_mode,
            };
            one(Value::from_float(max_pool2d(x.view::<4>()?, options)))
        }
        Op::AvgPool2d(p) => one(avg_pool(p, x)?),
        Op::Flatten { axis } => {
            let shape = x.shape();
            let axis = (*axis).min(shape.len());
            let mut out: Vec<usize> = shape[..axis].to_vec();
            out.push(shape[axis..].iter().product());
            one(Value::with_shape(x.flat()?.clone(), out))
        }
        Op::Reshape { shape } => one(Value::with_shape(
            x.flat()?.clone(),
            reshape_target(x.shape(), shape)?,
        )),
        Op::Transpose { perm } => one(transpose(x, perm)?),
        Op::Concat { axis } => one(concat(inputs, *axis)?),
        Op::Unary(op) => one(Value::with_shape(unary(*op, x.flat()?), x.shape().to_vec())),
        Op::Softmax { axis } => one(along(x, *axis, |t| softmax(t, 1))?),
        Op::LogSoftmax { axis } => one(along(x, *axis, |t| log_softmax(t, 1))?),
        Op::Dropout { p } => match mode {
            // The mask comes from the harness (framework RNGs cannot be aligned), so this is
            // what `nn.Dropout` computes once its Bernoulli mask is drawn, written with burn's
            // tensor ops (burn's Dropout module draws its own mask).
            Mode::Training => {
                let mask = arg(inputs, 1)?.flat()?.clone();
                let y = x.flat()?.clone().mul(mask).mul_scalar(1.0 / (1.0 - p));
                one(Value::with_shape(y, x.shape().to_vec()))
            }
            Mode::Inference => one(x.clone()),
        },
        Op::Lstm(attrs) => lstm::lstm(attrs, inputs),
        Op::Binary(op) => one(binary(*op, x, arg(inputs, 1)?)?),
        Op::Loss(op) => one(loss::loss(*op, inputs)?),
    }
}

/// Input `i`, or an error if the node has fewer (shape inference makes this unreachable for a
/// validated model; the error keeps a hand-built one from panicking).
pub(crate) fn arg<'a>(inputs: &[&'a Value], i: usize) -> Result<&'a Value> {
    inputs
        .get(i)
        .copied()
        .ok_or_else(|| Error::invalid(format!("missing input {i}")))
}

fn pairs(padding: [usize; 2]) -> [(usize, usize); 2] {
    [(padding[0], padding[0]), (padding[1], padding[1])]
}

fn unary(op: UnaryOp, x: &Tensor<1>) -> Tensor<1> {
    let x = x.clone();
    match op {
        UnaryOp::Relu => relu(x),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Scale { factor } => x.mul_scalar(factor),
    }
}

fn apply<const D: usize>(op: BinaryOp, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    match op {
        BinaryOp::Add => a.add(b),
        BinaryOp::Sub => a.sub(b),
        BinaryOp::Mul => a.mul(b),
    }
}

/// Numpy broadcasting: equal shapes run on the flat tensors; otherwise both inputs are viewed
/// at the output's rank (leading 1s added to the shorter) and burn broadcasts the 1s.
fn binary(op: BinaryOp, a: &Value, b: &Value) -> Result<Value> {
    if a.shape() == b.shape() {
        let y = apply(op, a.flat()?.clone(), b.flat()?.clone());
        return Ok(Value::with_shape(y, a.shape().to_vec()));
    }
    let rank = a.shape().len().max(b.shape().len());
    let padded = |s: &[usize]| -> Vec<usize> {
        let mut p = vec![1; rank - s.len()];
        p.extend_from_slice(s);
        p
    };
    let (sa, sb) = (padded(a.shape()), padded(b.shape()));
    with_rank!(rank, D => {
        let x = a.view_as::<D>(dims_of(&sa)?)?;
        let y = b.view_as::<D>(dims_of(&sb)?)?;
        Ok(Value::from_float(apply(op, x, y)))
    })
}

/// `y = x W^T + b` with burn's functional `linear`, which takes the weight as `[in, out]`:
/// the IR's `[out, in]` weight is passed transposed (a view; autodiff transposes the
/// gradient back, so the parameter and its gradient stay in the IR layout). Leading dims of
/// `x` are folded into rows.
/// burn's `linear` with the weight in its `Linear` layout, `[in, out]` (the session hands it
/// so: see `session::linear_weights`).
fn dense(x: &Value, w: &Value, b: Option<&Value>) -> Result<Value> {
    let [inn, out] = dims_of::<2>(w.shape())?;
    let elements: usize = x.shape().iter().product();
    let rows = elements.checked_div(inn).unwrap_or(0);
    let x2 = x.view_as([rows, inn])?;
    let bias = b.map(Value::view::<1>).transpose()?;
    let y = linear(x2, w.view::<2>()?, bias);
    let mut shape = x.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = out;
    }
    Ok(Value::with_shape(y.reshape([rows * out]), shape))
}

/// burn's `matmul`: a 2-D right operand takes every leading dim of `a` as rows; a batched one
/// (same leading dims) is a rank-3 batched product.
fn matmul(a: &Value, b: &Value) -> Result<Value> {
    let sa = a.shape();
    let sb = b.shape();
    let (k, n) = match sb {
        [.., k, n] => (*k, *n),
        _ => return Err(Error::invalid(format!("mat_mul: b has shape {sb:?}"))),
    };
    let elements: usize = sa.iter().product();
    if sb.len() == 2 {
        let rows = elements.checked_div(k).unwrap_or(0);
        let y = a.view_as([rows, k])?.matmul(b.view::<2>()?);
        let mut shape = sa.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        return Ok(Value::with_shape(y.reshape([rows * n]), shape));
    }
    let m = match sa {
        [.., m, _] => *m,
        _ => return Err(Error::invalid(format!("mat_mul: a has shape {sa:?}"))),
    };
    let batch = elements.checked_div(m * k).unwrap_or(0);
    let y = a.view_as([batch, m, k])?.matmul(b.view_as([batch, k, n])?);
    let mut shape = sa[..sa.len() - 2].to_vec();
    shape.extend([m, n]);
    Ok(Value::with_shape(y.reshape([batch * m * n]), shape))
}

fn conv(attrs: &Conv2d, x: &Value, w: &Value, b: Option<&Value>) -> Result<Value> {
    let options = ConvOptions::new(attrs.stride, attrs.padding, attrs.dilation, attrs.groups);
    let bias = b.map(Value::view::<1>).transpose()?;
    Ok(Value::from_float(conv2d(
        x.view::<4>()?,
        w.view::<4>()?,
        bias,
        options,
    )))
}

fn avg_pool(p: &Pool2d, x: &Value) -> Result<Value> {
    let options = AvgPoolOptions {
        kernel_size: p.kernel,
        stride: p.stride,
        padding: pairs(p.padding),
        count_include_pad: p.count_include_pad,
        ceil_mode: p.ceil_mode,
    };
    Ok(Value::from_float(avg_pool2d(x.view::<4>()?, options)))
}

/// ONNX Reshape: `0` copies the input dim at that position, one `-1` takes what is left.
fn reshape_target(input: &[usize], target: &[i64]) -> Result<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut shape = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        shape.push(match d {
            0 => *input
                .get(i)
                .ok_or_else(|| Error::invalid(format!("reshape: no input dim {i} to copy")))?,
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            d => usize::try_from(d)
                .map_err(|_| Error::invalid(format!("reshape: bad target dim {d}")))?,
        });
    }
    if let Some(i) = infer {
        let known: usize = shape.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(Error::invalid(format!(
                "reshape: cannot infer a dim of {target:?} from {input:?}"
            )));
        }
        shape[i] = total / known;
    }
    if shape.iter().product::<usize>() != total {
        return Err(Error::invalid(format!(
            "reshape: {target:?} does not hold the {total} elements of {input:?}"
        )));
    }
    Ok(shape)
}

/// burn's `permute` at the value's rank.
fn transpose(x: &Value, perm: &[usize]) -> Result<Value> {
    with_rank!(x.shape().len(), D => {
        let axes: [usize; D] = dims_of(perm)?;
        Ok(Value::from_float(x.view::<D>()?.permute(axes)))
    })
}

/// `[outer, axis, inner]`: the dims before `axis`, `axis` itself and the dims after, each
/// folded into one.
fn split_at(shape: &[usize], axis: usize) -> [usize; 3] {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    [outer, shape[axis], inner]
}

/// `axis` counted from the front, negative counting from the end (softmax's axis).
fn axis_index(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(Error::invalid(format!(
            "axis {axis} out of range for rank {rank}"
        )))
    }
}

/// Applies `f` along `axis` to `x` viewed as `[outer, axis, inner]` (softmax, log-softmax).
fn along(x: &Value, axis: i64, f: impl FnOnce(Tensor<3>) -> Tensor<3>) -> Result<Value> {
    let axis = axis_index(axis, x.shape().len())?;
    let t = x.view_as(split_at(x.shape(), axis))?;
    let y = f(t);
    let n: usize = x.shape().iter().product();
    Ok(Value::with_shape(y.reshape([n]), x.shape().to_vec()))
}

/// burn's `cat` along `axis`, each input viewed as `[outer, len, inner]`.
fn concat(inputs: &[&Value], axis: usize) -> Result<Value> {
    let first = arg(inputs, 0)?;
    let mut shape = first.shape().to_vec();
    if axis >= shape.len() {
        return Err(Error::invalid(format!(
            "concat: axis {axis} out of range for rank {}",
            shape.len()
        )));
    }
    let parts = inputs
        .iter()
        .map(|v| v.view_as(split_at(v.shape(), axis)))
        .collect::<Result<Vec<_>>>()?;
    shape[axis] = inputs
        .iter()
        .map(|v| v.shape().get(axis).copied().unwrap_or(0))
        .sum();
    let n: usize = shape.iter().product();
    let y = Tensor::cat(parts, 1);
    Ok(Value::with_shape(y.reshape([n]), shape))
}
