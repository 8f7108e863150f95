//! The node-by-node walk that every eager framework adapter runs (libtorch, candle, burn): each
//! node's inputs looked up by name, the framework's lowering called, and every result checked
//! against shape inference before it spreads. The adapters differ only in their value type and
//! their lowering, which they pass in; a framework with a compiled plan (tract) does not walk.

use std::collections::BTreeMap;

use crate::{Error, Graph, Node, Result, ValueInfo};

/// A framework's tensors on its device, by value name.
pub type Named<V> = BTreeMap<String, V>;

/// The values a pass reads: the loaded batch and the parameters, as the framework holds them.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a, V> {
    /// The loaded graph inputs.
    pub inputs: &'a Named<V>,
    /// The parameters.
    pub params: &'a Named<V>,
}

impl<'a, V> Sources<'a, V> {
    /// `name` among `values` (a pass's node outputs), then the inputs, then the parameters.
    pub fn lookup<'b>(&self, name: &str, values: &'b Named<V>) -> Result<&'b V>
    where
        'a: 'b,
    {
        values
            .get(name)
            .or_else(|| self.inputs.get(name))
            .or_else(|| self.params.get(name))
            .ok_or_else(|| Error::invalid(format!("value `{name}` is not defined")))
    }
}

/// What the walk needs to know of a framework: its name for messages, the dims of one of its
/// values, and its lowering of one node.
pub trait Lowering {
    /// The framework's tensor type.
    type Value;

    /// The framework's name, as messages say it ("libtorch returned `y` of shape ...").
    fn framework(&self) -> &str;

    /// The dims of `value` (read without waiting for the device).
    fn dims(&self, value: &Self::Value) -> Vec<usize>;

    /// The outputs of `node` from its inputs, in the op's documented order.
    fn lower(&mut self, node: &Node, inputs: &[&Self::Value]) -> Result<Vec<Self::Value>>;
}

/// Runs every node of `graph` in order with `lowering` and returns every value it produced.
/// `infos` is the graph's inferred types: each result must have its inferred shape at `batch`.
pub fn run_nodes<L: Lowering>(
    graph: &Graph,
    infos: &BTreeMap<String, ValueInfo>,
    batch: usize,
    sources: Sources<'_, L::Value>,
    lowering: &mut L,
) -> Result<Named<L::Value>> {
    let mut values = Named::new();
    for node in &graph.nodes {
        let args = node
            .inputs
            .iter()
            .map(|name| sources.lookup(name, &values))
            .collect::<Result<Vec<_>>>()?;
        let outputs = lowering.lower(node, &args)?;
        if outputs.len() != node.outputs.len() {
            return Err(Error::node(
                &node.name,
                node.op.name(),
                format!(
                    "lowering returned {} outputs, expected {}",
                    outputs.len(),
                    node.outputs.len()
                ),
            ));
        }
        for (name, value) in node.outputs.iter().zip(outputs) {
            let info = infos
                .get(name)
                .ok_or_else(|| Error::invalid(format!("value `{name}` has no inferred type")))?;
            let expected = info.resolve(batch);
            let dims = lowering.dims(&value);
            if dims != expected {
                return Err(Error::node(
                    &node.name,
                    node.op.name(),
                    format!(
                        "{} returned `{name}` of shape {dims:?}, expected {expected:?}",
                        lowering.framework()
                    ),
                ));
            }
            values.insert(name.clone(), value);
        }
    }
    Ok(values)
}
