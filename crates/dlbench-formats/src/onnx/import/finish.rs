//! The end of an import: the graph's outputs, names the file gives back to values the import
//! named, unused nodes and parameters dropped, and the model checked.

use std::collections::{HashMap, HashSet};

use dlbench_core::Model;

use super::value::Value;
use super::Importer;
use crate::onnx::proto::GraphProto;

impl Importer {
    /// The graph's outputs, unused nodes dropped, and the model checked.
    pub(super) fn finish(mut self, graph: &GraphProto) -> Result<Model, String> {
        self.restore_names();
        for output in &graph.output {
            let name = &output.name;
            match self.values.get(name) {
                Some(Value::Runtime(info)) => {
                    let ir = info.name.clone();
                    let out = self.output_under(&ir, name);
                    self.graph.outputs.push(out);
                }
                Some(Value::Const(_)) => {
                    return Err(format!(
                        "graph output `{name}` is a constant: it does not depend on the inputs, \
                         and a dlbench graph computes its outputs"
                    ))
                }
                None => return Err(format!("graph output `{name}` is not defined by any node")),
            }
        }
        self.prune();
        let model = Model::new(self.graph, self.weights).map_err(|e| e.to_string())?;
        Ok(model)
    }
    /// A node output the import named (an LSTM's `Y` in the IR's layout) takes the file's name
    /// for the same value where the file has one: the last ONNX value defined as it, the end of
    /// the layout changes that cancelled out (dlbench's export names it so).
    fn restore_names(&mut self) {
        let aliases = std::mem::take(&mut self.aliases);
        let mut renamed = HashSet::new();
        for (onnx, ir) in aliases.into_iter().rev() {
            let free = !self.infos.contains_key(&onnx);
            if !free || !self.internal.contains(&ir) || !renamed.insert(ir.clone()) {
                continue;
            }
            let Some(&node) = self.producers.get(&ir) else {
                continue;
            };
            self.rename_output(node, &ir, &onnx);
            for input in self
                .graph
                .nodes
                .iter_mut()
                .flat_map(|n| n.inputs.iter_mut())
            {
                if *input == ir {
                    input.clone_from(&onnx);
                }
            }
            for value in self.values.values_mut() {
                if let Value::Runtime(info) = value {
                    if info.name == ir {
                        info.name.clone_from(&onnx);
                    }
                }
            }
        }
    }
    /// The IR value `ir` as the graph output named `name`: renamed when a node defines it
    /// under another name (an `Identity` was folded away) and nothing else is called `name`.
    fn output_under(&mut self, ir: &str, name: &str) -> String {
        if ir == name || self.infos.contains_key(name) {
            return ir.to_string();
        }
        let producer = self
            .graph
            .nodes
            .iter()
            .position(|n| n.outputs.iter().any(|o| o == ir));
        let read_elsewhere = self.graph.outputs.iter().any(|o| o == ir)
            || self
                .graph
                .nodes
                .iter()
                .any(|n| n.inputs.iter().any(|i| i == ir));
        match producer {
            Some(node) if !read_elsewhere => {
                self.rename_output(node, ir, name);
                name.to_string()
            }
            _ => ir.to_string(),
        }
    }
    /// Drops nodes none of whose outputs is read, and parameters no node reads.
    fn prune(&mut self) {
        let mut read: HashSet<String> = self.graph.outputs.iter().cloned().collect();
        let mut keep = vec![false; self.graph.nodes.len()];
        for (i, node) in self.graph.nodes.iter().enumerate().rev() {
            if node.outputs.iter().any(|o| read.contains(o)) {
                keep[i] = true;
                read.extend(node.inputs.iter().cloned());
            }
        }
        let mut flags = keep.into_iter();
        self.graph.nodes.retain(|_| flags.next().unwrap_or(false));
        self.graph.params.retain(|p| read.contains(&p.value.name));
        // In the order the nodes read them, as a model built layer by layer declares them.
        let mut first_read: HashMap<&str, usize> = HashMap::new();
        for (k, input) in self.graph.nodes.iter().flat_map(|n| &n.inputs).enumerate() {
            first_read.entry(input.as_str()).or_insert(k);
        }
        let order: HashMap<String, usize> = first_read
            .into_iter()
            .map(|(name, k)| (name.to_string(), k))
            .collect();
        self.graph
            .params
            .sort_by_key(|p| order.get(&p.value.name).copied().unwrap_or(usize::MAX));
        let params: HashSet<&String> = self.graph.params.iter().map(|p| &p.value.name).collect();
        self.weights.retain(|k, _| params.contains(k));
    }
}
