//! The shared node walk with a stand-in framework whose values are only their shapes: a
//! lowering that returns the wrong shape or the wrong number of outputs is caught at the node
//! that did it, and a value nobody defined is named.

use std::collections::BTreeMap;

use dlbench_core::interpret::{run_nodes, Lowering, Named, Sources};
use dlbench_core::{Error, GraphBuilder, Node, Op, Result, UnaryOp};

/// A framework whose tensors are their dims; it adds `extra` to the first dim of every result
/// and returns `outputs_more` extra results, to break on purpose.
struct Shapes {
    extra: usize,
    outputs_more: usize,
    lowered: Vec<String>,
}

impl Lowering for Shapes {
    type Value = Vec<usize>;

    fn framework(&self) -> &str {
        "shapes"
    }

    fn dims(&self, value: &Vec<usize>) -> Vec<usize> {
        value.clone()
    }

    fn lower(&mut self, node: &Node, inputs: &[&Vec<usize>]) -> Result<Vec<Vec<usize>>> {
        self.lowered.push(node.name.clone());
        let mut y = inputs[0].clone();
        y[0] += self.extra;
        Ok(vec![y; 1 + self.outputs_more])
    }
}

fn walk(
    extra: usize,
    outputs_more: usize,
    inputs: &Named<Vec<usize>>,
) -> (Result<Named<Vec<usize>>>, Vec<String>) {
    let mut b = GraphBuilder::new("two_relus");
    b.data_input("x", &[3]).unwrap();
    let h = b
        .op(Some("first"), Op::Unary(UnaryOp::Relu), &["x"])
        .unwrap();
    let y = b
        .op(Some("second"), Op::Unary(UnaryOp::Tanh), &[&h])
        .unwrap();
    let graph = b.finish(&[&y]).unwrap();
    let infos = graph.infer().unwrap();
    let params = BTreeMap::new();
    let mut lowering = Shapes {
        extra,
        outputs_more,
        lowered: Vec::new(),
    };
    let sources = Sources {
        inputs,
        params: &params,
    };
    let result = run_nodes(&graph, &infos, 4, sources, &mut lowering);
    (result, lowering.lowered)
}

fn batch() -> Named<Vec<usize>> {
    Named::from([("x".to_string(), vec![4, 3])])
}

#[test]
fn every_node_runs_in_order_and_every_value_is_kept() {
    let (values, lowered) = walk(0, 0, &batch());
    let values = values.unwrap();
    assert_eq!(lowered, ["first", "second"]);
    assert_eq!(values.len(), 2);
    assert!(values.values().all(|v| v == &[4, 3]));
}

#[test]
fn a_result_of_the_wrong_shape_is_caught_at_its_node() {
    let (result, lowered) = walk(1, 0, &batch());
    match result {
        Err(Error::Node { node, message, .. }) => {
            assert_eq!(node, "first");
            assert!(
                message.contains("shapes returned") && message.contains("[5, 3]"),
                "{message}"
            );
        }
        other => panic!("expected a node error, got {other:?}"),
    }
    // It stopped there.
    assert_eq!(lowered, ["first"]);
}

#[test]
fn the_wrong_number_of_outputs_is_caught_at_its_node() {
    match walk(0, 1, &batch()).0 {
        Err(Error::Node { node, message, .. }) => {
            assert_eq!(node, "first");
            assert!(
                message.contains("returned 2 outputs, expected 1"),
                "{message}"
            );
        }
        other => panic!("expected a node error, got {other:?}"),
    }
}

#[test]
fn a_value_nobody_defined_is_named() {
    let (result, lowered) = walk(0, 0, &Named::new());
    let message = result.unwrap_err().to_string();
    assert!(message.contains("value `x` is not defined"), "{message}");
    assert!(lowered.is_empty());
}
