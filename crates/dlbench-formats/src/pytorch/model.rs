//! Between a dlbench [`Model`] and a state_dict: dlbench's layouts are PyTorch's (Dense
//! `[out, in]`, Conv OIHW, LSTM gates i, f, g, o with two biases), so weights move unchanged;
//! only the names may differ.

use std::path::Path;

use dlbench_core::{Graph, Model, Tensor, Values};

use super::state_dict::{read_state_dict, write_state_dict};
use crate::error::{Error, Result};

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
/// tensors are matched.
pub fn import_state_dict(graph: Graph, path: &Path) -> Result<Model> {
    let tensors = read_state_dict(path)?;
    let weights = weights_from_state_dict(&graph, tensors, path)?;
    Ok(Model::new(graph, weights)?)
}

/// Matches a state_dict's tensors to `graph`'s parameters.
///
/// When the file's names are exactly the parameter names (a file dlbench wrote), by name.
/// Otherwise (a PyTorch module says `0.weight` or `lstm.weight_ih_l0` where dlbench says
/// `dense_1.weight` or `lstm.w_ih`) by position: the i-th tensor goes to the i-th parameter,
/// which holds when the module declares its layers in the graph's order. Each tensor's shape
/// must equal its parameter's; floats are converted to the parameter's float dtype, as
/// PyTorch's `load_state_dict` copies. `path` names the file in errors.
pub fn weights_from_state_dict(
    graph: &Graph,
    tensors: Vec<(String, Tensor)>,
    path: &Path,
) -> Result<Values> {
    let params = &graph.params;
    let by_name = tensors.len() == params.len()
        && params
            .iter()
            .all(|p| tensors.iter().any(|(k, _)| *k == p.value.name));
    if !by_name && tensors.len() != params.len() {
        return Err(Error::file(
            path,
            format!(
                "holds {} tensors ({}), graph `{}` has {} parameters ({}): the names differ, so \
                 tensors are matched by position, which needs as many of each",
                tensors.len(),
                listing(tensors.iter().map(|(k, _)| k.as_str())),
                graph.name,
                params.len(),
                listing(params.iter().map(|p| p.value.name.as_str())),
            ),
        ));
    }
    let mut pairs: Vec<(&dlbench_core::Param, String, Tensor)> = Vec::new();
    if by_name {
        let mut tensors = tensors;
        for param in params {
            let at = tensors
                .iter()
                .position(|(k, _)| *k == param.value.name)
                .ok_or_else(|| Error::tensor(path, &param.value.name, "is missing"))?;
            let (key, tensor) = tensors.swap_remove(at);
            pairs.push((param, key, tensor));
        }
    } else {
        for (param, (key, tensor)) in params.iter().zip(tensors) {
            pairs.push((param, key, tensor));
        }
    }
    let mut weights = Values::new();
    for (param, key, tensor) in pairs {
        let name = &param.value.name;
        let expected = param.value.resolve(1);
        if tensor.shape() != expected {
            return Err(Error::tensor(
                path,
                &key,
                format!(
                    "is {:?} but parameter `{name}` of graph `{}` is {expected:?}",
                    tensor.shape(),
                    graph.name
                ),
            ));
        }
        let dtype = param.value.dtype;
        let tensor = if tensor.dtype() == dtype {
            tensor
        } else if tensor.dtype().is_float() && dtype.is_float() {
            tensor.to_dtype(dtype)
        } else {
            return Err(Error::tensor(
                path,
                &key,
                format!(
                    "is {} but parameter `{name}` of graph `{}` is {dtype}",
                    tensor.dtype(),
                    graph.name
                ),
            ));
        };
        weights.insert(name.clone(), tensor);
    }
    Ok(weights)
}

/// The first names of a list, for an error message.
fn listing<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let shown: Vec<String> = names.iter().take(6).map(|n| format!("`{n}`")).collect();
    match names.len() {
        0 => "none".to_string(),
        n if n > shown.len() => format!("{}, ...", shown.join(", ")),
        _ => shown.join(", "),
    }
}
