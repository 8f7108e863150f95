//! The lowering: each IR op to candle's own op, run eagerly in f32. candle's autograd
//! (`Tensor::backward`) differentiates whatever these functions record, so there is no
//! hand-written backward here. The crate docs' table says which candle op each IR op becomes
//! and where the rest is composed from candle tensor ops, and why.

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::rnn::{LSTMConfig, LSTMState, LSTM, RNN};
use dlbench_core::ir::{Conv2d, Lstm, Pool2d};
use dlbench_core::{BinaryOp, Error, LossOp, Mode, Node, Op, Result, UnaryOp};

use crate::NAME;

type CResult<T> = std::result::Result<T, candle_core::Error>;

/// The node's outputs from its inputs (in the op's documented input order). Shapes and arity
/// were checked by shape inference when the model was built; what only the data can break
/// (a label out of range, a probability outside [0, 1]) comes back as an error naming the node.
pub(crate) fn forward(node: &Node, inputs: &[&Tensor], mode: Mode) -> Result<Vec<Tensor>> {
    lower(&node.op, inputs, mode).map_err(|e| Error::Backend {
        backend: NAME.to_string(),
        message: format!("node `{}` ({}): {e}", node.name, node.op.name()),
    })
}

/// What of `op` this backend composes from candle tensor ops rather than running candle's own
/// op (see the crate docs' table), in a session that trains (`training`) or only infers; `None`
/// where candle's op runs as it is. The results record keeps these beside the timings.
pub(crate) fn composed(op: &Op, training: bool) -> Option<String> {
    let pooled = |p: &Pool2d| p.padding != [0, 0] || p.ceil_mode;
    match op {
        Op::Conv2d(a) => (a.padding[0] != a.padding[1]
            || a.stride[0] != a.stride[1]
            || a.dilation[0] != a.dilation[1])
            .then(|| {
                "unequal per-axis padding, stride or dilation composed around candle's conv2d"
                    .into()
            }),
        Op::MaxPool2d(p) if training => Some(
            "training forward composed (gathered windows, argmax) so that the backward is \
             PyTorch's: candle's scales the gradient by 1/(kh*kw) and lacks kernel != stride"
                .into(),
        ),
        Op::MaxPool2d(p) => {
            pooled(p).then(|| "padding or ceil mode composed (-inf padding)".into())
        }
        Op::AvgPool2d(p) if training && p.kernel != p.stride => Some(
            "training forward composed (gathered windows summed): candle's backward lacks \
             kernel != stride"
                .into(),
        ),
        Op::AvgPool2d(p) => (pooled(p) || !p.count_include_pad && p.padding != [0, 0]).then(|| {
            "padding, ceil mode or divisor composed (zero padding, a [Ho, Wo] factor)".into()
        }),
        Op::Unary(UnaryOp::Relu) if training => {
            Some("candle's relu: its gradient at exactly 0 is 1 (PyTorch's is 0)".into())
        }
        Op::Loss(LossOp::BinaryCrossEntropy) => {
            Some("composed: candle-nn has no BCE on probabilities".into())
        }
        Op::Loss(LossOp::BinaryCrossEntropyWithLogits) => Some(
            "composed (stable formula): candle-nn's binary_cross_entropy_with_logit is NaN for \
             logits past about ±17"
                .into(),
        ),
        Op::Loss(LossOp::VaeElbo) => Some("composed from candle tensor ops (BCE sum + KL)".into()),
        Op::Dense
        | Op::MatMul
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Concat { .. }
        | Op::Unary(_)
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Dropout { .. }
        | Op::Lstm(_)
        | Op::Binary(_)
        | Op::Loss(LossOp::Mse | LossOp::CrossEntropy) => None,
    }
}

fn lower(op: &Op, inputs: &[&Tensor], mode: Mode) -> CResult<Vec<Tensor>> {
    let x = arg(inputs, 0)?;
    let one = |t: Tensor| Ok(vec![t]);
    match op {
        // candle-nn's Linear keeps the weight as [out, in], the IR's layout.
        Op::Dense => {
            let linear =
                candle_nn::Linear::new(arg(inputs, 1)?.clone(), inputs.get(2).cloned().cloned());
            one(dense(&linear, &x.contiguous()?)?)
        }
        // Contiguous operands: see `dense`.
        Op::MatMul => one(x
            .contiguous()?
            .broadcast_matmul(&arg(inputs, 1)?.contiguous()?)?),
        Op::Conv2d(attrs) => one(conv2d(attrs, x, arg(inputs, 1)?, inputs.get(2).copied())?),
        Op::MaxPool2d(p) => one(max_pool2d(p, x, mode)?),
        Op::AvgPool2d(p) => one(avg_pool2d(p, x, mode)?),
        Op::Flatten { axis } => one(flatten(x, *axis)?),
        Op::Reshape { shape } => one(reshape(x, shape)?),
        Op::Transpose { perm } => one(x.permute(perm.as_slice())?),
        Op::Concat { axis } => {
            let all: Vec<&Tensor> = inputs.to_vec();
            one(Tensor::cat(&all, *axis)?)
        }
        Op::Unary(op) => one(unary(*op, x)?),
        Op::Softmax { axis } => one(candle_nn::ops::softmax(x, axis_index(x, *axis)?)?),
        Op::LogSoftmax { axis } => one(candle_nn::ops::log_softmax(x, axis_index(x, *axis)?)?),
        Op::Dropout { p } => match mode {
            // The mask comes from the harness (framework RNGs cannot be aligned), so this is
            // what `nn.Dropout` computes once its Bernoulli mask is drawn.
            Mode::Training => one(x.mul(arg(inputs, 1)?)?.affine(1.0 / (1.0 - p), 0.0)?),
            Mode::Inference => one(x.clone()),
        },
        Op::Lstm(attrs) => lstm(attrs, inputs),
        Op::Binary(op) => one(binary(*op, x, arg(inputs, 1)?)?),
        Op::Loss(op) => one(loss(*op, inputs)?),
    }
}

/// `linear` on a contiguous `x` of any rank. The input is made contiguous first: on a strided
/// input (a transposed value) `Linear` multiplies by a batch-broadcast weight, and candle
/// 0.11.1's CPU matmul folds the batches of such a product into one gemm assuming the lhs rows
/// are adjacent, which a transposed lhs breaks: the result is silently wrong
/// (huggingface/candle#3744, fix proposed in #3758; tests/backend.rs shows it). `Linear`
/// takes inputs of rank 2 to 4; a higher rank goes through it flattened to rank 2.
fn dense(linear: &candle_nn::Linear, x: &Tensor) -> CResult<Tensor> {
    if x.rank() <= 4 {
        return linear.forward(x);
    }
    let dims = x.dims().to_vec();
    let y = linear.forward(&x.flatten_to(x.rank() - 2)?)?;
    let mut out = dims[..dims.len() - 1].to_vec();
    out.push(y.dim(1)?);
    y.reshape(out)
}

/// Input `i`, or an error if the node has fewer (shape inference makes this unreachable for a
/// validated model; the error keeps a hand-built one from panicking).
fn arg<'a>(inputs: &[&'a Tensor], i: usize) -> CResult<&'a Tensor> {
    match inputs.get(i) {
        Some(t) => Ok(t),
        None => candle_core::bail!("missing input {i}"),
    }
}

/// A possibly negative axis as an index into `x`'s dims.
fn axis_index(x: &Tensor, axis: i64) -> CResult<usize> {
    let rank = x.rank() as i64;
    let resolved = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&resolved) {
        candle_core::bail!("axis {axis} is out of range for rank {rank}")
    }
    Ok(resolved as usize)
}

fn unary(op: UnaryOp, x: &Tensor) -> CResult<Tensor> {
    match op {
        UnaryOp::Relu => x.relu(),
        UnaryOp::Sigmoid => candle_nn::ops::sigmoid(x),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Scale { factor } => x.affine(factor, 0.0),
    }
}

/// numpy broadcasting (candle aligns the shapes from the right).
fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> CResult<Tensor> {
    match op {
        BinaryOp::Add => a.broadcast_add(b),
        BinaryOp::Sub => a.broadcast_sub(b),
        BinaryOp::Mul => a.broadcast_mul(b),
    }
}

/// Keeps the dims before `axis` and flattens the rest into one; the IR allows `axis == rank`
/// (a trailing dim of 1).
fn flatten(x: &Tensor, axis: usize) -> CResult<Tensor> {
    if axis < x.rank() {
        x.flatten_from(axis)
    } else {
        x.unsqueeze(x.rank())
    }
}

/// ONNX Reshape: `0` copies the input dim at that position, one `-1` takes the rest.
fn reshape(x: &Tensor, shape: &[i64]) -> CResult<Tensor> {
    let dims = x.dims();
    let mut target = Vec::with_capacity(shape.len());
    let mut hole = None;
    for (i, &d) in shape.iter().enumerate() {
        match d {
            0 => match dims.get(i) {
                Some(&n) => target.push(n),
                None => candle_core::bail!("shape {shape:?}: no input dim {i} to copy"),
            },
            -1 if hole.is_none() => {
                hole = Some(i);
                target.push(1);
            }
            d if d > 0 => target.push(d as usize),
            d => candle_core::bail!("shape {shape:?}: bad dim {d}"),
        }
    }
    if let Some(i) = hole {
        let known: usize = target.iter().product();
        let total = x.elem_count();
        if known == 0 || !total.is_multiple_of(known) {
            candle_core::bail!("cannot reshape {dims:?} to {shape:?}")
        }
        target[i] = total / known;
    }
    x.reshape(target)
}

/// Every `step`-th index of `0..len`: the rows (or columns) a stride keeps.
fn strided(len: usize, step: usize, device: &Device) -> CResult<Tensor> {
    let ids: Vec<u32> = (0..len).step_by(step).map(|i| i as u32).collect();
    Tensor::from_vec(ids, (len.div_ceil(step),), device)
}

/// `kernel` with `dilation - 1` zeros between its taps along `dim`.
fn dilate(kernel: &Tensor, dim: usize, dilation: usize) -> CResult<Tensor> {
    let taps = kernel.dim(dim)?;
    if dilation == 1 || taps <= 1 {
        return Ok(kernel.clone());
    }
    // [.., taps, ..] -> [.., taps, dilation, ..] with zeros after each tap, merged and cut
    // back to (taps - 1) * dilation + 1.
    let spread = kernel.unsqueeze(dim + 1)?;
    let spread = spread.pad_with_zeros(dim + 1, 0, dilation - 1)?;
    let mut merged: Vec<usize> = kernel.dims().to_vec();
    merged[dim] = taps * dilation;
    spread
        .reshape(merged)?
        .narrow(dim, 0, (taps - 1) * dilation + 1)
}

fn conv2d(attrs: &Conv2d, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> CResult<Tensor> {
    let [ph, pw] = attrs.padding;
    let [sh, sw] = attrs.stride;
    let [dh, dw] = attrs.dilation;
    // Equal attributes go to candle's conv2d as they are; unequal ones are composed.
    let (x, padding) = if ph == pw {
        (x.clone(), ph)
    } else {
        (x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?, 0)
    };
    let (weight, dilation) = if dh == dw {
        (weight.clone(), dh)
    } else {
        (dilate(&dilate(weight, 2, dh)?, 3, dw)?, 1)
    };
    let stride = if sh == sw { sh } else { 1 };
    let mut y = x.conv2d(&weight, padding, stride, dilation, attrs.groups)?;
    if sh != sw {
        let device = y.device().clone();
        let rows = strided(y.dim(2)?, sh, &device)?;
        let cols = strided(y.dim(3)?, sw, &device)?;
        y = y.index_select(&rows, 2)?.index_select(&cols, 3)?;
    }
    match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?),
        None => Ok(y),
    }
}

/// The geometry of a pool along one axis, as PyTorch computes it.
#[derive(Debug, Clone, Copy)]
struct Axis {
    /// Input size.
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    /// Output size.
    out: usize,
}

impl Axis {
    fn new(size: usize, kernel: usize, stride: usize, padding: usize, ceil: bool) -> CResult<Axis> {
        let padded = size + 2 * padding;
        if padded < kernel || stride == 0 {
            candle_core::bail!("pool window {kernel} (stride {stride}) does not fit {padded}")
        }
        let span = padded - kernel;
        let mut out = if ceil {
            span.div_ceil(stride)
        } else {
            span / stride
        } + 1;
        // PyTorch: the last window must start inside the input or its left padding.
        if ceil && (out - 1) * stride >= size + padding {
            out -= 1;
        }
        Ok(Axis {
            size,
            kernel,
            stride,
            padding,
            out,
        })
    }

    /// Trailing padding beyond `padding` that ceil mode's last window reads.
    fn extra(&self) -> usize {
        ((self.out - 1) * self.stride + self.kernel).saturating_sub(self.size + 2 * self.padding)
    }

    /// The padded length the windows cover: the input, its padding and ceil mode's extra,
    /// less any rows that floor mode drops.
    fn used(&self) -> usize {
        (self.out - 1) * self.stride + self.kernel
    }

    /// Window `o`'s divisor: its cells within the padded input (`count_include_pad`) or
    /// within the input alone.
    fn count(&self, o: usize, include_pad: bool) -> usize {
        let start = o * self.stride;
        let end = start + self.kernel;
        let (lo, hi) = if include_pad {
            (0, self.size + 2 * self.padding)
        } else {
            (self.padding, self.padding + self.size)
        };
        end.min(hi).saturating_sub(start.max(lo))
    }
}

fn pool_axes(p: &Pool2d, x: &Tensor) -> CResult<(Axis, Axis)> {
    let (_, _, h, w) = x.dims4()?;
    Ok((
        Axis::new(h, p.kernel[0], p.stride[0], p.padding[0], p.ceil_mode)?,
        Axis::new(w, p.kernel[1], p.stride[1], p.padding[1], p.ceil_mode)?,
    ))
}

/// `x` padded with `value` along `dim`: `left` before, `right` after.
fn pad_with(x: &Tensor, dim: usize, left: usize, right: usize, value: f32) -> CResult<Tensor> {
    if value == 0.0 {
        return x.pad_with_zeros(dim, left, right);
    }
    let mut parts = Vec::with_capacity(3);
    let mut dims = x.dims().to_vec();
    let block = |n: usize, dims: &mut Vec<usize>| {
        dims[dim] = n;
        Tensor::full(value, dims.as_slice(), x.device())?.to_dtype(x.dtype())
    };
    if left > 0 {
        parts.push(block(left, &mut dims)?);
    }
    parts.push(x.clone());
    if right > 0 {
        parts.push(block(right, &mut dims)?);
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    Tensor::cat(&refs, dim)
}

/// `x` with each axis padded by `value` (and ceil mode's extra at the end) and cut to what the
/// windows read, so that candle's floor-mode pool of the result has PyTorch's output size.
fn pad_for_pool(x: &Tensor, (h, w): (Axis, Axis), value: f32) -> CResult<Tensor> {
    let x = pad_with(x, 2, h.padding, h.padding + h.extra(), value)?;
    let x = pad_with(&x, 3, w.padding, w.padding + w.extra(), value)?;
    let x = if x.dim(2)? > h.used() {
        x.narrow(2, 0, h.used())?
    } else {
        x
    };
    if x.dim(3)? > w.used() {
        x.narrow(3, 0, w.used())
    } else {
        Ok(x)
    }
}

/// The windows of a padded `[N, C, Hp, Wp]` input as `[N, C, Ho, Wo, kh * kw]`, each window's
/// cells in row-major order, gathered with `index_select` (whose backward is `index_add`).
fn windows(x: &Tensor, (h, w): (Axis, Axis)) -> CResult<Tensor> {
    let (n, c, hp, wp) = x.dims4()?;
    let k = h.kernel * w.kernel;
    let mut ids = Vec::with_capacity(h.out * w.out * k);
    for oh in 0..h.out {
        for ow in 0..w.out {
            for ki in 0..h.kernel {
                for kj in 0..w.kernel {
                    ids.push(((oh * h.stride + ki) * wp + ow * w.stride + kj) as u32);
                }
            }
        }
    }
    let ids = Tensor::from_vec(ids, (h.out * w.out * k,), x.device())?;
    x.reshape((n, c, hp * wp))?
        .index_select(&ids, 2)?
        .reshape((n, c, h.out, w.out, k))
}

/// Max pooling, padding -inf. Inference: candle's `max_pool2d_with_stride` on the padded input.
/// Training: each window's first maximum, picked with `argmax` and read with `gather`, so that
/// the gradient goes to that one cell (see the module docs).
fn max_pool2d(p: &Pool2d, x: &Tensor, mode: Mode) -> CResult<Tensor> {
    let axes = pool_axes(p, x)?;
    let padded = pad_for_pool(x, axes, f32::NEG_INFINITY)?;
    match mode {
        Mode::Inference => {
            padded.max_pool2d_with_stride((p.kernel[0], p.kernel[1]), (p.stride[0], p.stride[1]))
        }
        Mode::Training => {
            let cells = windows(&padded, axes)?;
            let first = cells.argmax_keepdim(D::Minus1)?;
            cells.gather(&first, D::Minus1)?.squeeze(D::Minus1)
        }
    }
}

/// Average pooling, padding zeros. candle's `avg_pool2d_with_stride` on the padded input in
/// inference, and in training where the kernel equals the stride (the one case candle's
/// backward covers); otherwise the sum of the gathered windows. Divisors other than
/// `kh * kw` are applied as a constant `[Ho, Wo]` factor.
fn avg_pool2d(p: &Pool2d, x: &Tensor, mode: Mode) -> CResult<Tensor> {
    let (h, w) = pool_axes(p, x)?;
    let padded = pad_for_pool(x, (h, w), 0.0)?;
    let window = (h.kernel * w.kernel) as f64;
    let candle_pool = mode == Mode::Inference || p.kernel == p.stride;
    let y = if candle_pool {
        padded.avg_pool2d_with_stride((p.kernel[0], p.kernel[1]), (p.stride[0], p.stride[1]))?
    } else {
        windows(&padded, (h, w))?
            .sum(D::Minus1)?
            .affine(1.0 / window, 0.0)?
    };
    // y is the window's sum over kh * kw; rescale where PyTorch divides by another count.
    let mut factor = Vec::with_capacity(h.out * w.out);
    let mut uniform = true;
    for oh in 0..h.out {
        for ow in 0..w.out {
            let count = h.count(oh, p.count_include_pad) * w.count(ow, p.count_include_pad);
            let f = if count == 0 {
                0.0
            } else {
                window / count as f64
            };
            uniform &= f == 1.0;
            factor.push(f as f32);
        }
    }
    if uniform {
        return Ok(y);
    }
    let factor = Tensor::from_vec(factor, (1, 1, h.out, w.out), y.device())?.to_dtype(y.dtype())?;
    y.broadcast_mul(&factor)
}

/// `nn.LSTM` with one layer and zero initial state, run by candle-nn's `LSTM` cell (which takes
/// PyTorch's weight names and layout, gates i, f, g, o): our four weights per direction are
/// handed to it through a `VarBuilder` under PyTorch's names, and the sequence is stepped
/// forward, or backward for the reverse direction. Y_h and Y_c are each direction's last
/// state (for the reverse direction, the state after time step 0).
fn lstm(attrs: &Lstm, inputs: &[&Tensor]) -> CResult<Vec<Tensor>> {
    let x = arg(inputs, 0)?;
    let time = if attrs.batch_first { 1 } else { 0 };
    let steps = x.dim(time)?;
    let batch = x.dim(1 - time)?;
    let features = x.dim(2)?;
    let mut ys = Vec::new();
    let mut hs = Vec::new();
    let mut cs = Vec::new();
    for d in 0..attrs.direction.count() {
        let reversed = attrs.reversed(d);
        let (suffix, direction) = if d == 1 {
            ("_reverse", candle_nn::rnn::Direction::Backward)
        } else {
            ("", candle_nn::rnn::Direction::Forward)
        };
        let mut weights = HashMap::new();
        for (j, name) in ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
            .iter()
            .enumerate()
        {
            weights.insert(
                format!("{name}{suffix}"),
                arg(inputs, 1 + 4 * d + j)?.clone(),
            );
        }
        let vb = candle_nn::VarBuilder::from_tensors(weights, x.dtype(), x.device());
        let config = LSTMConfig {
            direction,
            ..LSTMConfig::default()
        };
        let cell: LSTM = candle_nn::rnn::lstm(features, attrs.hidden, config, vb)?;
        let mut state: LSTMState = cell.zero_state(batch)?;
        let mut outputs = vec![None; steps];
        let order: Vec<usize> = if reversed {
            (0..steps).rev().collect()
        } else {
            (0..steps).collect()
        };
        for t in order {
            let input = x.narrow(time, t, 1)?.squeeze(time)?.contiguous()?;
            state = cell.step(&input, &state)?;
            outputs[t] = Some(state.h.clone());
        }
        let outputs: Vec<Tensor> = outputs.into_iter().flatten().collect();
        ys.push(Tensor::stack(&outputs, time)?);
        hs.push(state.h);
        cs.push(state.c);
    }
    let y = Tensor::cat(&ys, 2)?;
    Ok(vec![y, Tensor::stack(&hs, 0)?, Tensor::stack(&cs, 0)?])
}

fn loss(op: LossOp, inputs: &[&Tensor]) -> CResult<Tensor> {
    let x = arg(inputs, 0)?;
    match op {
        LossOp::Mse => candle_nn::loss::mse(x, arg(inputs, 1)?),
        LossOp::CrossEntropy => {
            let labels = arg(inputs, 1)?;
            check_labels(labels, x.dim(1)?)?;
            candle_nn::loss::cross_entropy(x, labels)
        }
        LossOp::BinaryCrossEntropy => {
            bce_sum(x, arg(inputs, 1)?)?.affine(1.0 / x.elem_count() as f64, 0.0)
        }
        LossOp::BinaryCrossEntropyWithLogits => bce_with_logits(x, arg(inputs, 1)?),
        LossOp::VaeElbo => vae_elbo(inputs),
    }
}

/// Labels must index a class: candle's `gather` would read out of bounds or fail without
/// saying which label.
fn check_labels(labels: &Tensor, classes: usize) -> CResult<()> {
    let values = labels
        .to_dtype(DType::I64)?
        .flatten_all()?
        .to_vec1::<i64>()?;
    if let Some(bad) = values
        .iter()
        .find(|&&l| l < 0 || l as u64 >= classes as u64)
    {
        candle_core::bail!("label {bad} is out of range for {classes} classes")
    }
    Ok(())
}

/// `-sum(t log p + (1 - t) log(1 - p))` with each log clamped at -100 (PyTorch's `BCELoss`),
/// composed (candle-nn has no BCE on probabilities). A probability outside [0, 1] is an error,
/// as in PyTorch.
fn bce_sum(p: &Tensor, t: &Tensor) -> CResult<Tensor> {
    let lo = p
        .flatten_all()?
        .min(0)?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    let hi = p
        .flatten_all()?
        .max(0)?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    if p.elem_count() > 0 && !(lo >= 0.0 && hi <= 1.0) {
        candle_core::bail!("probabilities must be in [0, 1]; found values in [{lo}, {hi}]")
    }
    let log_p = clamped_log(p)?;
    let log_q = clamped_log(&p.affine(-1.0, 1.0)?)?;
    let q_t = t.affine(-1.0, 1.0)?;
    (t.mul(&log_p)? + q_t.mul(&log_q)?)?.sum_all()?.neg()
}

/// `max(log(p), -100)`. The argument is first raised to the smallest positive f32, so that
/// where the clamp holds (its gradient is zero there) the log's backward divides that zero by
/// a positive number rather than by 0, which would make it NaN.
fn clamped_log(p: &Tensor) -> CResult<Tensor> {
    p.maximum(f64::from(f32::from_bits(1)))?
        .log()?
        .maximum(-100f64)
}

/// `mean(max(x, 0) - x t + log(1 + e^-|x|))`: PyTorch's stable form, composed. candle-nn's
/// `binary_cross_entropy_with_logit` goes through `log(sigmoid(x))` and is not finite for
/// large logits (tests/backend.rs shows it).
fn bce_with_logits(x: &Tensor, t: &Tensor) -> CResult<Tensor> {
    let soft = x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    (x.relu()? - x.mul(t)?)?.add(&soft)?.mean_all()
}

/// The VAE's negative ELBO per sample: `(BCE(recon, x, sum) - 0.5 * sum(1 + logvar - mu^2 -
/// exp(logvar))) / N`, PyTorch's VAE example.
fn vae_elbo(inputs: &[&Tensor]) -> CResult<Tensor> {
    let (recon, mu, logvar, x) = (
        arg(inputs, 0)?,
        arg(inputs, 1)?,
        arg(inputs, 2)?,
        arg(inputs, 3)?,
    );
    let bce = bce_sum(recon, x)?;
    let kl = logvar
        .sub(&mu.sqr()?)?
        .sub(&logvar.exp()?)?
        .affine(1.0, 1.0)?
        .sum_all()?
        .affine(-0.5, 0.0)?;
    let n = recon.dims().first().copied().unwrap_or(1).max(1);
    bce.add(&kl)?.affine(1.0 / n as f64, 0.0)
}
