//! The order nodes are imported in: each after the producers of its inputs. ONNX requires
//! files to be sorted so; one that is not is sorted here, and one with a cycle refused.

use std::collections::HashMap;

use super::attrs::At;
use crate::onnx::proto::{GraphProto, NodeProto};

/// The nodes in an order where each comes after the producers of its inputs (ONNX requires
/// it; a file that breaks it is sorted, and one with a cycle refused, naming a node on it).
pub(super) fn sorted(graph: &GraphProto) -> Result<Vec<(usize, &NodeProto)>, String> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if producer.insert(out, i).is_some() {
                let at = At::new(node, i, 0);
                return Err(format!(
                    "node `{}` ({}): value `{out}` is defined twice",
                    at.name, node.op_type
                ));
            }
        }
    }
    // Iterative depth-first order: 0 unvisited, 1 on the stack, 2 done.
    let mut state = vec![0u8; graph.node.len()];
    let mut order = Vec::with_capacity(graph.node.len());
    for root in 0..graph.node.len() {
        let mut stack = vec![(root, 0usize)];
        while let Some((i, next)) = stack.pop() {
            if next == 0 {
                match state[i] {
                    2 => continue,
                    1 => {
                        let at = At::new(&graph.node[i], i, 0);
                        return Err(format!(
                            "the graph has a cycle through node `{}` ({})",
                            at.name, graph.node[i].op_type
                        ));
                    }
                    _ => state[i] = 1,
                }
            }
            let inputs = &graph.node[i].input;
            match inputs[next..]
                .iter()
                .position(|v| producer.get(v.as_str()).is_some_and(|&p| state[p] != 2))
            {
                Some(k) => {
                    let p = producer[inputs[next + k].as_str()];
                    if state[p] == 1 {
                        let at = At::new(&graph.node[p], p, 0);
                        return Err(format!(
                            "the graph has a cycle through node `{}` ({})",
                            at.name, graph.node[p].op_type
                        ));
                    }
                    stack.push((i, next + k + 1));
                    stack.push((p, 0));
                }
                None => {
                    state[i] = 2;
                    order.push((i, &graph.node[i]));
                }
            }
        }
    }
    Ok(order)
}
