//! The lowering: each IR op to libtorch's own op (`linear`, `conv2d`, `max_pool2d`, `lstm`,
//! the losses...), run eagerly in f32 as PyTorch runs a model. libtorch's autograd then
//! differentiates whatever these functions record, so there is no backward here.
//!
//! The same functions are recorded by libtorch's tracer for the TorchScript export, which
//! keeps every size passed to an op as a constant. So no inference op passes a size read from
//! its input's batch dim: they flatten from a dim, let `-1` stand for the batch, or build
//! tensors `zeros_like` a slice of the input, and a traced module then runs at any batch size.

use dlbench_core::ir::{Conv2d, Direction, Lstm, Pool2d};
use dlbench_core::{BinaryOp, Error, LossOp, Mode, Node, Op, Result, UnaryOp};
use tch::{Kind, Reduction, TchError, Tensor};

use crate::NAME;

/// The node's outputs from its inputs (in the op's documented input order). Shapes and arity
/// were checked by shape inference when the model was built; what only the data can break
/// (a label out of range, a probability outside [0, 1]) comes back from libtorch as an error
/// naming the node.
pub(crate) fn forward(node: &Node, inputs: &[&Tensor], mode: Mode) -> Result<Vec<Tensor>> {
    lower(&node.op, inputs, mode).map_err(|e| Error::Backend {
        backend: NAME.to_string(),
        message: format!("node `{}` ({}): {e}", node.name, node.op.name()),
    })
}

fn lower(op: &Op, inputs: &[&Tensor], mode: Mode) -> Result<Vec<Tensor>, TchError> {
    let x = arg(inputs, 0)?;
    let one = |t: Tensor| Ok(vec![t]);
    match op {
        Op::Dense => one(x.f_linear(arg(inputs, 1)?, inputs.get(2).copied())?),
        Op::MatMul => one(x.f_matmul(arg(inputs, 1)?)?),
        Op::Conv2d(attrs) => one(conv2d(attrs, x, arg(inputs, 1)?, inputs.get(2).copied())?),
        Op::MaxPool2d(p) => one(x.f_max_pool2d(
            ints(&p.kernel),
            ints(&p.stride),
            ints(&p.padding),
            [1i64, 1],
            p.ceil_mode,
        )?),
        Op::AvgPool2d(p) => one(avg_pool2d(p, x)?),
        Op::Flatten { axis } => one(flatten(x, *axis)?),
        Op::Reshape { shape } => one(reshape(x, shape)?),
        Op::Transpose { perm } => {
            let perm: Vec<i64> = perm.iter().map(|&p| p as i64).collect();
            one(x.f_permute(perm.as_slice())?)
        }
        Op::Concat { axis } => one(Tensor::f_cat(inputs, *axis as i64)?),
        Op::Unary(op) => one(unary(*op, x)?),
        Op::Softmax { axis } => one(x.f_softmax(*axis, None::<Kind>)?),
        Op::LogSoftmax { axis } => one(x.f_log_softmax(*axis, None::<Kind>)?),
        Op::Dropout { p } => match mode {
            // The mask comes from the harness (framework RNGs cannot be aligned), so this is
            // what `nn.Dropout` computes once its Bernoulli mask is drawn.
            Mode::Training => one(x.f_mul(arg(inputs, 1)?)?.f_mul_scalar(1.0 / (1.0 - p))?),
            Mode::Inference => one(x.shallow_clone()),
        },
        Op::Lstm(attrs) => lstm(attrs, inputs, mode),
        Op::Binary(op) => one(binary(*op, x, arg(inputs, 1)?)?),
        Op::Loss(op) => one(loss(*op, inputs)?),
    }
}

fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor, TchError> {
    match op {
        UnaryOp::Relu => x.f_relu(),
        UnaryOp::Sigmoid => x.f_sigmoid(),
        UnaryOp::Tanh => x.f_tanh(),
        UnaryOp::Exp => x.f_exp(),
        UnaryOp::Scale { factor } => x.f_mul_scalar(factor),
    }
}

fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor, TchError> {
    match op {
        BinaryOp::Add => a.f_add(b),
        BinaryOp::Sub => a.f_sub(b),
        BinaryOp::Mul => a.f_mul(b),
    }
}

fn loss(op: LossOp, inputs: &[&Tensor]) -> Result<Tensor, TchError> {
    let x = arg(inputs, 0)?;
    match op {
        LossOp::Mse => x.f_mse_loss(arg(inputs, 1)?, Reduction::Mean),
        LossOp::CrossEntropy => x.f_cross_entropy_loss::<&Tensor>(
            arg(inputs, 1)?,
            None,
            Reduction::Mean,
            // The IR has no ignored label: with PyTorch's -100, a label of -100 would be
            // skipped silently instead of being reported out of range.
            i64::MIN,
            0.0,
        ),
        LossOp::BinaryCrossEntropy => {
            x.f_binary_cross_entropy::<&Tensor>(arg(inputs, 1)?, None, Reduction::Mean)
        }
        LossOp::BinaryCrossEntropyWithLogits => x.f_binary_cross_entropy_with_logits::<&Tensor>(
            arg(inputs, 1)?,
            None,
            None,
            Reduction::Mean,
        ),
        LossOp::VaeElbo => vae_elbo(inputs),
    }
}

/// Input `i`, or an error if the node has fewer (shape inference makes this unreachable for a
/// validated model; the error keeps a hand-built one from panicking).
fn arg<'a>(inputs: &[&'a Tensor], i: usize) -> Result<&'a Tensor, TchError> {
    inputs
        .get(i)
        .copied()
        .ok_or_else(|| TchError::Shape(format!("missing input {i}")))
}

fn ints(pair: &[usize; 2]) -> [i64; 2] {
    [pair[0] as i64, pair[1] as i64]
}

/// Keeps the dims before `axis` and flattens the rest into one. `flatten(axis, -1)` rather
/// than a reshape to the leading sizes, which a trace would keep as constants (the batch
/// among them); the IR allows `axis == rank` (a trailing dim of 1), which `flatten` rejects.
fn flatten(x: &Tensor, axis: usize) -> Result<Tensor, TchError> {
    let axis = i64::try_from(axis).map_err(|_| TchError::Shape(format!("axis {axis}")))?;
    if axis < x.dim() as i64 {
        x.f_flatten(axis, -1)
    } else {
        x.f_unsqueeze(-1)
    }
}

/// ONNX Reshape: `0` copies the input dim at that position; libtorch infers the one `-1`.
/// A leading `0` copies the batch (the IR's first dim), so it becomes `-1` rather than the
/// batch size, which a trace would bake in; a `-1` elsewhere is then resolved here from the
/// per-sample size, which does not depend on the batch.
fn reshape(x: &Tensor, shape: &[i64]) -> Result<Tensor, TchError> {
    let size = x.size();
    let mut target: Vec<i64> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| match d {
            0 => size.get(i).copied().unwrap_or(0),
            d => d,
        })
        .collect();
    if let (Some(0), Some(&rows)) = (shape.first(), size.first()) {
        if let Some(j) = shape.iter().rposition(|&d| d == -1) {
            let known: i64 = target
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != 0 && i != j)
                .map(|(_, &d)| d)
                .product();
            let per_sample = if rows > 0 { x.numel() as i64 / rows } else { 0 };
            // An indivisible size is left for libtorch's reshape to report.
            target[j] = if known > 0 { per_sample / known } else { -1 };
        }
        target[0] = -1;
    }
    x.f_reshape(target.as_slice())
}

fn conv2d(
    attrs: &Conv2d,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor, TchError> {
    x.f_conv2d(
        weight,
        bias,
        ints(&attrs.stride),
        ints(&attrs.padding),
        ints(&attrs.dilation),
        attrs.groups as i64,
    )
}

fn avg_pool2d(p: &Pool2d, x: &Tensor) -> Result<Tensor, TchError> {
    x.f_avg_pool2d(
        ints(&p.kernel),
        ints(&p.stride),
        ints(&p.padding),
        p.ceil_mode,
        p.count_include_pad,
        None::<i64>,
    )
}

/// `nn.LSTM` with one layer and zero initial state: libtorch's `lstm` on the flat parameter
/// list in PyTorch's order (`w_ih, w_hh, b_ih, b_hh`, then the `_reverse` four). A reverse-only
/// layer has no libtorch flag: it reads the sequence flipped in time and flips Y back; Y_h and
/// Y_c are then the states after the first time step, as the IR defines them.
fn lstm(attrs: &Lstm, inputs: &[&Tensor], mode: Mode) -> Result<Vec<Tensor>, TchError> {
    let x = arg(inputs, 0)?;
    let time = if attrs.batch_first { 1 } else { 0 };
    let dirs = attrs.direction.count() as i64;
    // The zero state [dirs, batch, hidden], made `zeros_like` the first feature of the first
    // time step ([batch, 1]) and expanded, not from the batch size read here: a traced module
    // then builds it for any batch.
    let zeros = x
        .f_select(time, 0)?
        .f_narrow(1, 0, 1)?
        .f_zeros_like()?
        .f_expand([dirs, -1, attrs.hidden as i64], false)?
        .f_contiguous()?;
    let hx = [&zeros, &zeros];
    let params = inputs.get(1..).unwrap_or_default();
    let reverse = attrs.direction == Direction::Reverse;
    let seq = if reverse {
        x.f_flip([time])?
    } else {
        x.shallow_clone()
    };
    let (y, h, c) = seq.f_lstm(
        &hx,
        params,
        true,
        1,
        0.0,
        mode == Mode::Training,
        attrs.direction == Direction::Bidirectional,
        attrs.batch_first,
    )?;
    let y = if reverse { y.f_flip([time])? } else { y };
    Ok(vec![y, h, c])
}

/// The VAE's negative ELBO per sample: `(BCE(recon, x, sum) - 0.5 * sum(1 + logvar - mu^2 -
/// exp(logvar))) / N`, PyTorch's VAE example written with libtorch's own BCE.
fn vae_elbo(inputs: &[&Tensor]) -> Result<Tensor, TchError> {
    let (recon, mu, logvar, x) = (
        arg(inputs, 0)?,
        arg(inputs, 1)?,
        arg(inputs, 2)?,
        arg(inputs, 3)?,
    );
    let bce = recon.f_binary_cross_entropy::<&Tensor>(x, None, Reduction::Sum)?;
    let kl = logvar
        .f_sub(&mu.f_square()?)?
        .f_sub(&logvar.f_exp()?)?
        .f_add_scalar(1.0)?
        .f_sum(None::<Kind>)?
        .f_mul_scalar(-0.5)?;
    let n = recon.size().first().copied().unwrap_or(1).max(1);
    bce.f_add(&kl)?.f_div_scalar(n as f64)
}
