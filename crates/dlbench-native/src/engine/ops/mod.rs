//! One op family per file, mirroring [`crate::reference::ops`] in f32; this module dispatches a
//! [`Node`] to its family. Inputs were validated by shape inference and by the session's batch
//! check before they get here, so the families index without checks; what only the data can
//! break (a label out of range, a probability outside [0, 1]) comes back as an error naming
//! the node.

mod activation;
mod conv;
mod elementwise;
mod layout;
mod linear;
mod loss;
mod lstm;
mod pool;

use dlbench_core::{Error, Mode, Node, Op, Result};

/// A value of the engine: a row-major f32 buffer and its shape. Class labels (the graph's i64
/// inputs) keep their integers in `labels` and leave `data` empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buf {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub labels: Vec<i64>,
}

impl Buf {
    /// A float value; `data.len()` must be the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Buf {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Buf {
            shape,
            data,
            labels: Vec::new(),
        }
    }

    /// A label value (i64 class indices).
    pub fn labels(shape: Vec<usize>, labels: Vec<i64>) -> Buf {
        Buf {
            shape,
            data: Vec::new(),
            labels,
        }
    }
}

/// The gradient of each input of a node (`None`: not differentiable, or not wanted).
pub type Grads = Vec<Option<Vec<f32>>>;

/// What a forward pass keeps for its backward pass beyond the node's inputs and outputs.
#[derive(Debug, Default)]
pub enum Saved {
    #[default]
    Nothing,
    /// Per direction: the activated gates and the states of every step.
    Lstm(Vec<lstm::Trace>),
    /// Max pooling over whole windows: where each window's maximum is (`kernels::pool`).
    PoolArgmax(Vec<u8>),
}

/// Settings every kernel call shares.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub mode: Mode,
    /// Threads handed to `sgemm`.
    pub threads: usize,
}

fn node_error(node: &Node) -> impl Fn(String) -> Error + '_ {
    move |message| Error::node(&node.name, node.op.name(), message)
}

/// The node's outputs from its inputs; `out_shapes` are the inferred output shapes at this
/// batch size (Flatten and Reshape take theirs from there).
pub fn forward(
    node: &Node,
    inputs: &[&Buf],
    out_shapes: &[Vec<usize>],
    ctx: Ctx,
) -> Result<(Vec<Buf>, Saved)> {
    let x = inputs[0];
    let threads = ctx.threads;
    let one = |b: Buf| (vec![b], Saved::Nothing);
    Ok(match &node.op {
        Op::Dense => one(linear::dense(x, inputs[1], inputs.get(2).copied(), threads)),
        Op::MatMul => one(linear::matmul(x, inputs[1], threads)),
        Op::Conv2d(attrs) => one(conv::conv2d(
            attrs,
            x,
            inputs[1],
            inputs.get(2).copied(),
            threads,
        )),
        Op::MaxPool2d(p) => {
            let (y, saved) = pool::max_pool2d(p, x, ctx.mode == Mode::Training);
            (vec![y], saved)
        }
        Op::AvgPool2d(p) => one(pool::avg_pool2d(p, x)),
        Op::Flatten { .. } | Op::Reshape { .. } => one(layout::reshape(&out_shapes[0], x)),
        Op::Transpose { perm } => one(layout::transpose(perm, x)),
        Op::Concat { axis } => one(layout::concat(*axis, inputs)),
        Op::Relu | Op::Sigmoid | Op::Tanh | Op::Exp | Op::Scale { .. } => {
            one(activation::unary(&node.op, x))
        }
        Op::Softmax { axis } => one(activation::softmax(*axis, x, false)),
        Op::LogSoftmax { axis } => one(activation::softmax(*axis, x, true)),
        Op::Dropout { p } => one(activation::dropout(*p, x, inputs[1], ctx.mode)),
        Op::Lstm(attrs) => {
            let (outputs, traces) = lstm::lstm(attrs, inputs, threads);
            (outputs.to_vec(), Saved::Lstm(traces))
        }
        Op::Add | Op::Sub | Op::Mul => one(elementwise::binary(&node.op, x, inputs[1])),
        Op::MseLoss
        | Op::CrossEntropyLoss
        | Op::BceLoss
        | Op::BceWithLogitsLoss
        | Op::VaeElboLoss => one(loss::loss(&node.op, inputs).map_err(node_error(node))?),
    })
}

/// Gradients with respect to each input, given the inputs, the outputs and saved state of
/// [`forward`], and the gradients flowing into each output (`None`: that output does not
/// reach the loss). An input gets `None` when it is not differentiable (labels, dropout
/// masks) or when `need` says nobody wants its gradient (a data input), which saves work.
pub fn backward(
    node: &Node,
    inputs: &[&Buf],
    outputs: &[&Buf],
    output_grads: &[Option<&[f32]>],
    need: &[bool],
    saved: &Saved,
    threads: usize,
) -> Result<Grads> {
    let x = inputs[0];
    let Some(dy) = output_grads.iter().flatten().next().copied() else {
        return Ok(vec![None; inputs.len()]);
    };
    let some = |vs: Vec<Vec<f32>>| vs.into_iter().map(Some).collect::<Vec<_>>();
    Ok(match &node.op {
        Op::Dense => {
            let (dx, dw, db) =
                linear::dense_backward(x, inputs[1], inputs.len() == 3, dy, need[0], threads);
            let mut grads = vec![dx, Some(dw)];
            grads.extend(db.map(Some));
            grads
        }
        Op::MatMul => {
            let (da, db) = linear::matmul_backward(x, inputs[1], dy, need[0], threads);
            vec![da, Some(db)]
        }
        Op::Conv2d(attrs) => {
            let (dx, dw, db) =
                conv::conv2d_backward(attrs, x, inputs[1], inputs.len() == 3, dy, need[0], threads);
            let mut grads = vec![dx, Some(dw)];
            grads.extend(db.map(Some));
            grads
        }
        Op::MaxPool2d(p) => vec![Some(pool::max_pool2d_backward(p, x, dy, saved))],
        Op::AvgPool2d(p) => vec![Some(pool::avg_pool2d_backward(p, x, dy))],
        Op::Flatten { .. } | Op::Reshape { .. } => vec![Some(dy.to_vec())],
        Op::Transpose { perm } => vec![Some(layout::transpose_backward(
            perm,
            &outputs[0].shape,
            dy,
        ))],
        Op::Concat { axis } => some(layout::concat_backward(*axis, inputs, dy)),
        Op::Relu | Op::Sigmoid | Op::Tanh | Op::Exp | Op::Scale { .. } => {
            vec![Some(activation::unary_backward(
                &node.op, x, outputs[0], dy,
            ))]
        }
        Op::Softmax { axis } => vec![Some(activation::softmax_backward(
            *axis, outputs[0], dy, false,
        ))],
        Op::LogSoftmax { axis } => vec![Some(activation::softmax_backward(
            *axis, outputs[0], dy, true,
        ))],
        Op::Dropout { p } => vec![Some(activation::dropout_backward(*p, inputs[1], dy)), None],
        Op::Lstm(attrs) => {
            let Saved::Lstm(traces) = saved else {
                return Err(node_error(node)(
                    "backward found no saved forward state".to_string(),
                ));
            };
            let grads = [output_grads[0], output_grads[1], output_grads[2]];
            lstm::lstm_backward(attrs, inputs, traces, grads, need[0], threads)
        }
        Op::Add | Op::Sub | Op::Mul => {
            let (da, db) = elementwise::binary_backward(&node.op, x, inputs[1], dy);
            vec![Some(da), Some(db)]
        }
        Op::MseLoss
        | Op::CrossEntropyLoss
        | Op::BceLoss
        | Op::BceWithLogitsLoss
        | Op::VaeElboLoss => {
            loss::loss_backward(&node.op, inputs, dy[0], need).map_err(node_error(node))?
        }
    })
}
