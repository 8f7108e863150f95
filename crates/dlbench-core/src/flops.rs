//! Floating-point operations per sample, node by node, as `inspect` reports them. A multiply-add
//! counts as two operations; element-wise ops count one per output element (transcendentals
//! too), so the totals compare workloads rather than predict time. Counts saturate at
//! `u64::MAX` rather than wrap: a crafted graph must not report a small count.

use crate::error::Result;
use crate::ir::{Graph, LossOp, Node, Op, ValueInfo};

/// Operations of one node for a batch of one, given its input and output types.
pub fn node_flops(node: &Node, inputs: &[&ValueInfo], outputs: &[&ValueInfo]) -> u64 {
    let numel = |v: &ValueInfo| v.numel_per_sample() as u64;
    let out = outputs.first().map(|v| numel(v)).unwrap_or(0);
    let dim = |v: &ValueInfo, i: usize| v.resolve(1)[i] as u64;
    let mul = |factors: &[u64]| factors.iter().fold(1u64, |p, &f| p.saturating_mul(f));
    let bias = |present: bool| u64::from(present);
    match &node.op {
        Op::Dense => {
            let fan_in = *inputs[0].resolve(1).last().unwrap_or(&0) as u64;
            mul(&[
                out,
                mul(&[2, fan_in]).saturating_add(bias(inputs.len() == 3)),
            ])
        }
        Op::MatMul => {
            let a = inputs[0];
            mul(&[out, 2, dim(a, a.shape.len() - 1)])
        }
        Op::Conv2d(_) => {
            let w: Vec<u64> = inputs[1].resolve(1).iter().map(|&d| d as u64).collect();
            let per_output = mul(&[2, w[1], w[2], w[3]]).saturating_add(bias(inputs.len() == 3));
            mul(&[out, per_output])
        }
        Op::MaxPool2d(p) | Op::AvgPool2d(p) => mul(&[out, p.kernel[0] as u64, p.kernel[1] as u64]),
        Op::Lstm(attrs) => {
            let x = inputs[0].resolve(1);
            let steps = if attrs.batch_first { x[1] } else { x[0] } as u64;
            let (h, i) = (attrs.hidden as u64, x[2] as u64);
            // Per step and direction: two GEMVs into 4H gates, 2 bias adds, ~10 ops of gate math per unit.
            let per_step = mul(&[8, h, i.saturating_add(h)])
                .saturating_add(mul(&[8, h]))
                .saturating_add(mul(&[10, h]));
            mul(&[steps, per_step, attrs.direction.count() as u64])
        }
        Op::Flatten { .. } | Op::Reshape { .. } | Op::Transpose { .. } | Op::Concat { .. } => 0,
        Op::Unary(_) => out,
        Op::Softmax { .. } | Op::LogSoftmax { .. } => mul(&[4, out]),
        Op::Dropout { .. } | Op::Binary(_) => out,
        Op::Loss(loss) => match loss {
            LossOp::Mse
            | LossOp::BinaryCrossEntropy
            | LossOp::BinaryCrossEntropyWithLogits
            | LossOp::CrossEntropy => mul(&[4, numel(inputs[0])]),
            LossOp::VaeElbo => {
                mul(&[4, numel(inputs[0])]).saturating_add(mul(&[4, numel(inputs[1])]))
            }
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
