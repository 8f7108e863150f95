//! Between a dlbench [`Model`] and a state_dict: dlbench's layouts are PyTorch's (Dense
//! `[out, in]`, Conv OIHW, LSTM gates i, f, g, o with two biases), so weights move unchanged;
//! only the names may differ.

use std::path::Path;

use dlbench_core::{Graph, Model, Tensor};

use super::state_dict::{read_state_dict, write_state_dict};
use crate::error::{Error, Result};
use crate::matching::{match_weights, Mapping, Matched, WeightMatch};

/// Writes a model's weights as a state_dict, under dlbench's parameter names, in the graph's
/// parameter order (what `model.state_dict()` of the same PyTorch module would list).
pub fn export_state_dict(model: &Model, path: &Path) -> Result<()> {
    let tensors = model
        .graph
        .params
        .iter()
        .map(|p| {
            let name = &p.value.name;
            model
                .weights
                .get(name)
                .map(|t| (name.clone(), t.clone()))
                .ok_or_else(|| {
                    Error::Core(dlbench_core::Error::invalid(format!(
                        "model `{}`: no weight for parameter `{name}`",
                        model.graph.name
                    )))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    write_state_dict(path, &tensors)
}

/// Loads a state_dict file into `graph`'s parameters; see [`weights_from_state_dict`] for how
/// tensors are matched. Returns the model and the pairs used, in parameter order.
pub fn import_state_dict(
    graph: Graph,
    path: &Path,
    mapping: &Mapping,
) -> Result<(Model, Vec<Matched>)> {
    let tensors = read_state_dict(path)?;
    let WeightMatch { weights, mapping } = weights_from_state_dict(&graph, tensors, mapping, path)?;
    Ok((Model::new(graph, weights)?, mapping))
}

/// Matches a state_dict's tensors to `graph`'s parameters by [`crate::matching`]'s rule:
/// `mapping`'s explicit pairs first, then identical names (a file dlbench wrote has them all),
/// then position among the rest (a PyTorch module says `0.weight` or `lstm.weight_ih_l0`
/// where dlbench says `dense_1.weight` or `lstm.w_ih`; its layers in the graph's order put
/// them in place), refused when position alone would choose between tensors of equal shape.
/// Each tensor's shape must equal its parameter's; floats are converted to the parameter's
/// float dtype, as PyTorch's `load_state_dict` copies. `path` names the file in errors.
pub fn weights_from_state_dict(
    graph: &Graph,
    tensors: Vec<(String, Tensor)>,
    mapping: &Mapping,
    path: &Path,
) -> Result<WeightMatch> {
    match_weights(graph, tensors, mapping, path)
}
