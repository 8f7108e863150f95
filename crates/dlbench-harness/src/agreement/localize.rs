//! Where a disagreement starts. Comparing intermediate values is not enough: once one node is
//! wrong, every node after it is wrong too. So each node is *replayed* alone on the backend,
//! fed the reference's values of its inputs: the first node whose own outputs then fall outside
//! tolerance introduced the error; the ones after it only propagated it.

use std::collections::BTreeSet;

use dlbench_core::{Error, Graph, Input, InputRole, Mode, Model, Node, Result, Values};

use super::compare;
use crate::configuration::Configuration;
use crate::results::Comparison;

/// The node that introduced a disagreement and its own error.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// The node's name in the graph.
    pub node: String,
    /// The node's op name (`dense`, `lstm`...).
    pub op: String,
    /// Its outputs on reference inputs against the reference's outputs (all outputs together).
    pub comparison: Comparison,
}

/// What [`localize`] found: the first divergent node, if any, and what it could not replay.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Localization {
    /// The first node, in graph order, that exceeds tolerance on reference inputs; `None`
    /// when none does (the error accumulates) or none could be replayed.
    pub first: Option<Divergence>,
    /// Nodes that could not be replayed, and why; or why no node was found.
    pub notes: Vec<String>,
}

/// A model of the single node `node` of `model`: the node's inputs that are not parameters
/// become graph inputs (a graph input keeps its role, so dropout masks and noise stay masks
/// and noise; an intermediate value becomes a data input of its inferred type), its parameters
/// keep the model's weights, and its outputs are the graph's outputs.
pub fn single_node_model(model: &Model, node: &Node) -> Result<Model> {
    let graph = &model.graph;
    let infos = graph.infer()?;
    let mut inputs = Vec::new();
    let mut params = Vec::new();
    let mut weights = Values::new();
    let mut seen = BTreeSet::new();
    // A node may read one value twice (`mul(x, x)`): declare it once.
    for name in node.inputs.iter().filter(|n| seen.insert(n.as_str())) {
        if let Some(param) = graph.param(name) {
            params.push(param.clone());
            let weight = model.weights.get(name).ok_or_else(|| {
                Error::invalid(format!("model `{}`: no weight `{name}`", graph.name))
            })?;
            weights.insert(name.clone(), weight.clone());
        } else if let Some(input) = graph.input(name) {
            inputs.push(input.clone());
        } else {
            let value = infos.get(name).cloned().ok_or_else(|| {
                Error::node(
                    &node.name,
                    node.op.name(),
                    format!("input `{name}` is not defined"),
                )
            })?;
            inputs.push(Input {
                value,
                role: InputRole::Data,
            });
        }
    }
    let single = Graph {
        name: format!("{}/{}", graph.name, node.name),
        inputs,
        params,
        nodes: vec![node.clone()],
        outputs: node.outputs.clone(),
    };
    Model::new(single, weights)
}

/// Replays each node of `model` in order on `config`, fed from `reference_values` (the
/// reference's graph inputs and intermediate values of the same batch), and stops at the first
/// whose outputs are outside `(rtol, atol)` of the reference's: a shape mismatch counts. A node
/// the backend cannot replay (an error) is noted and skipped.
pub fn localize(
    model: &Model,
    reference_values: &Values,
    config: Configuration,
    (rtol, atol): (f64, f64),
) -> Localization {
    let mut found = Localization::default();
    for node in &model.graph.nodes {
        let replayed = replay(model, node, reference_values, config, (rtol, atol));
        match replayed {
            Ok(c) if c.pass => {}
            Ok(comparison) => {
                found.first = Some(Divergence {
                    node: node.name.clone(),
                    op: node.op.name().to_string(),
                    comparison,
                });
                return found;
            }
            Err(e) => found.notes.push(format!(
                "node `{}` ({}) could not be replayed on {}: {e}",
                node.name,
                node.op.name(),
                config.name()
            )),
        }
    }
    found.notes.push(
        "no single node exceeds tolerance on reference inputs: the error accumulates across \
         nodes"
            .to_string(),
    );
    found
}

/// Runs `node` alone on reference inputs and compares all its outputs at once.
fn replay(
    model: &Model,
    node: &Node,
    reference_values: &Values,
    config: Configuration,
    (rtol, atol): (f64, f64),
) -> Result<Comparison> {
    let single = single_node_model(model, node)?;
    let lookup = |name: &str| {
        reference_values
            .get(name)
            .ok_or_else(|| Error::invalid(format!("the reference has no value `{name}`")))
    };
    let inputs = single
        .graph
        .inputs
        .iter()
        .map(|i| {
            Ok((
                i.value.name.clone(),
                lookup(&i.value.name)?.to_dtype(i.value.dtype),
            ))
        })
        .collect::<Result<Values>>()?;
    let mut session = config.prepare(&single, None)?;
    session.load(&inputs)?;
    session.forward(Mode::Inference)?;
    let outputs = session.outputs()?;
    let comparisons = node
        .outputs
        .iter()
        .map(|name| {
            let reference = lookup(name)?;
            Ok(match outputs.get(name) {
                Some(actual) => compare(actual, reference, rtol, atol),
                None => Comparison::incomparable(
                    reference.len(),
                    format!("the backend returned no output `{name}`"),
                ),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(merge(node, &comparisons))
}

/// The comparisons of a node's outputs as one: the worst figures, elements added up.
fn merge(node: &Node, comparisons: &[Comparison]) -> Comparison {
    let mut all = Comparison {
        max_abs: 0.0,
        max_rel: 0.0,
        max_ulp: 0,
        tolerance_used: 0.0,
        mismatched: 0,
        elements: 0,
        pass: true,
        problem: None,
    };
    for (name, c) in node.outputs.iter().zip(comparisons) {
        all.max_abs = all.max_abs.max(c.max_abs);
        all.max_rel = all.max_rel.max(c.max_rel);
        all.max_ulp = all.max_ulp.max(c.max_ulp);
        all.tolerance_used = all.tolerance_used.max(c.tolerance_used);
        all.mismatched += c.mismatched;
        all.elements += c.elements;
        all.pass &= c.pass;
        if let (None, Some(problem)) = (&all.problem, &c.problem) {
            all.problem = Some(format!("`{name}`: {problem}"));
        }
    }
    all
}
