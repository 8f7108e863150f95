//! Floating-point operations per sample, node by node, as `inspect` reports them. A multiply-add
//! counts as two operations; element-wise ops count one per output element (transcendentals
//! too), so the totals compare workloads rather than predict time.

use crate::error::Result;
use crate::ir::{Graph, LossOp, Node, Op, ValueInfo};

/// Operations of one node for a batch of one, given its input and output types.
pub fn node_flops(node: &Node, inputs: &[&ValueInfo], outputs: &[&ValueInfo]) -> u64 {
    let numel = |v: &ValueInfo| v.numel_per_sample() as u64;
    let out = outputs.first().map(|v| numel(v)).unwrap_or(0);
    let dim = |v: &ValueInfo, i: usize| v.resolve(1)[i] as u64;
    match &node.op {
        Op::Dense => {
            let fan_in = *inputs[0].resolve(1).last().unwrap_or(&0) as u64;
            out * (2 * fan_in + u64::from(inputs.len() == 3))
        }
        Op::MatMul => {
            let a = inputs[0];
            out * 2 * dim(a, a.shape.len() - 1)
        }
        Op::Conv2d(_) => {
            let w = inputs[1].resolve(1);
            let per_output = 2 * (w[1] * w[2] * w[3]) as u64 + u64::from(inputs.len() == 3);
            out * per_output
        }
        Op::MaxPool2d(p) | Op::AvgPool2d(p) => out * (p.kernel[0] * p.kernel[1]) as u64,
        Op::Lstm(attrs) => {
            let x = inputs[0].resolve(1);
            let steps = if attrs.batch_first { x[1] } else { x[0] } as u64;
            let (h, i) = (attrs.hidden as u64, x[2] as u64);
            // Per step and direction: two GEMVs into 4H gates, 2 bias adds, ~10 ops of gate math per unit.
            let per_step = 2 * 4 * h * (i + h) + 2 * 4 * h + 10 * h;
            steps * per_step * attrs.direction.count() as u64
        }
        Op::Flatten { .. } | Op::Reshape { .. } | Op::Transpose { .. } | Op::Concat { .. } => 0,
        Op::Unary(_) => out,
        Op::Softmax { .. } | Op::LogSoftmax { .. } => 4 * out,
        Op::Dropout { .. } | Op::Binary(_) => out,
        Op::Loss(loss) => match loss {
            LossOp::Mse
            | LossOp::BinaryCrossEntropy
            | LossOp::BinaryCrossEntropyWithLogits
            | LossOp::CrossEntropy => 4 * numel(inputs[0]),
            LossOp::VaeElbo => 4 * numel(inputs[0]) + 4 * numel(inputs[1]),
        },
    }
}

/// Per-node operations for a batch of one, in node order.
pub fn graph_flops(graph: &Graph) -> Result<Vec<u64>> {
    let values = graph.infer()?;
    Ok(graph
        .nodes
        .iter()
        .map(|node| {
            let ins: Vec<&ValueInfo> = node.inputs.iter().map(|n| &values[n]).collect();
            let outs: Vec<&ValueInfo> = node.outputs.iter().map(|n| &values[n]).collect();
            node_flops(node, &ins, &outs)
        })
        .collect())
}
