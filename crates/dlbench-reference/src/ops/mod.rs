//! One op family per file; this module dispatches a [`Node`] to its family. Inputs are
//! validated by shape inference before they get here, so the families index without checks;
//! what only the data can break (a label out of range) comes back as an error naming the node.

mod activation;
mod conv;
mod elementwise;
mod layout;
mod linear;
mod loss;
mod lstm;
mod pool;

use dlbench_core::{Error, Mode, Node, Op, Result, Tensor};

fn node_error(node: &Node) -> impl Fn(String) -> Error + '_ {
    move |message| Error::node(&node.name, node.op.name(), message)
}

/// The node's outputs from its inputs, all f64 (labels i64).
pub fn forward(node: &Node, inputs: &[&Tensor], mode: Mode) -> Result<Vec<Tensor>> {
    let x = inputs[0];
    let one = |t: Tensor| vec![t];
    Ok(match &node.op {
        Op::Dense => one(linear::dense(x, inputs[1], inputs.get(2).copied())),
        Op::MatMul => one(linear::matmul(x, inputs[1])),
        Op::Conv2d(attrs) => one(conv::conv2d(attrs, x, inputs[1], inputs.get(2).copied())),
        Op::MaxPool2d(p) => one(pool::max_pool2d(p, x)),
        Op::AvgPool2d(p) => one(pool::avg_pool2d(p, x)),
        Op::Flatten { axis } => one(layout::flatten(*axis, x)),
        Op::Reshape { shape } => one(layout::reshape(shape, x)),
        Op::Transpose { perm } => one(layout::transpose(perm, x)),
        Op::Concat { axis } => one(layout::concat(*axis, inputs)),
        Op::Unary(op) => one(activation::unary(*op, x)),
        Op::Softmax { axis } => one(activation::softmax(*axis, x, false)),
        Op::LogSoftmax { axis } => one(activation::softmax(*axis, x, true)),
        Op::Dropout { p } => one(activation::dropout(*p, x, inputs[1], mode)),
        Op::Lstm(attrs) => lstm::lstm(attrs, inputs).to_vec(),
        Op::Binary(op) => one(elementwise::binary(*op, x, inputs[1])),
        Op::Loss(op) => one(loss::loss(*op, inputs).map_err(node_error(node))?),
    })
}

/// Gradients with respect to each input, given the inputs, the outputs of [`forward`] and the
/// gradients flowing into each output (`None`: that output does not reach the loss). An input
/// gets `None` when it is not differentiable (labels, dropout masks).
pub fn backward(
    node: &Node,
    inputs: &[&Tensor],
    outputs: &[&Tensor],
    output_grads: &[Option<&Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let x = inputs[0];
    let Some(dy) = output_grads.iter().flatten().next().copied() else {
        return Ok(vec![None; inputs.len()]);
    };
    let some = |ts: Vec<Tensor>| ts.into_iter().map(Some).collect::<Vec<_>>();
    Ok(match &node.op {
        Op::Dense => {
            let (dx, dw, db) = linear::dense_backward(x, inputs[1], inputs.len() == 3, dy);
            let mut grads = vec![Some(dx), Some(dw)];
            grads.extend(db.map(Some));
            grads
        }
        Op::MatMul => {
            let (da, db) = linear::matmul_backward(x, inputs[1], dy);
            vec![Some(da), Some(db)]
        }
        Op::Conv2d(attrs) => {
            let (dx, dw, db) = conv::conv2d_backward(attrs, x, inputs[1], inputs.len() == 3, dy);
            let mut grads = vec![Some(dx), Some(dw)];
            grads.extend(db.map(Some));
            grads
        }
        Op::MaxPool2d(p) => vec![Some(pool::max_pool2d_backward(p, x, dy))],
        Op::AvgPool2d(p) => vec![Some(pool::avg_pool2d_backward(p, x, dy))],
        Op::Flatten { .. } | Op::Reshape { .. } => vec![Some(layout::reshape_like(dy, x))],
        Op::Transpose { perm } => vec![Some(layout::transpose_backward(perm, dy))],
        Op::Concat { axis } => some(layout::concat_backward(*axis, inputs, dy)),
        Op::Unary(op) => vec![Some(activation::unary_backward(*op, x, outputs[0], dy))],
        Op::Softmax { axis } => vec![Some(activation::softmax_backward(
            *axis, outputs[0], dy, false,
        ))],
        Op::LogSoftmax { axis } => vec![Some(activation::softmax_backward(
            *axis, outputs[0], dy, true,
        ))],
        Op::Dropout { p } => vec![Some(activation::dropout_backward(*p, inputs[1], dy)), None],
        Op::Lstm(attrs) => {
            let grads = [output_grads[0], output_grads[1], output_grads[2]];
            some(lstm::lstm_backward(attrs, inputs, grads))
        }
        Op::Binary(op) => {
            let (da, db) = elementwise::binary_backward(*op, x, inputs[1], dy);
            vec![Some(da), Some(db)]
        }
        Op::Loss(op) => {
            let dloss = dy.as_f64().expect("f64 gradient")[0];
            loss::loss_backward(*op, inputs, dloss).map_err(node_error(node))?
        }
    })
}
