//! Builds the inputs of one batch: the data, the target, and the noise inputs (dropout masks,
//! the VAE's epsilon), which come from the counter-based RNG so every backend sees the same.

use std::collections::BTreeMap;

use dlbench_core::rng::Stream;
use dlbench_core::{Error, Graph, InputRole, Result, Tensor, Values};

/// Which randomness a batch draws from: training step `n`, or evaluation batch `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Training step `n`: noise from the streams `train/<input>`, sub-stream `n`.
    Train(u32),
    /// Evaluation batch `n`: noise from the streams `eval/<input>`, sub-stream `n`.
    Eval(u32),
}

/// The inputs of `graph` for one batch of `features` (and `targets`, if the graph has a
/// target input).
pub fn batch_inputs(
    graph: &Graph,
    features: &Tensor,
    targets: Option<&Tensor>,
    seed: u64,
    phase: Phase,
) -> Result<Values> {
    batch_inputs_given(graph, features, targets, &BTreeMap::new(), seed, phase)
}

/// [`batch_inputs`], with the noise inputs named in `given` taken from it (values recorded
/// elsewhere, one row per sample of the batch) instead of generated.
pub fn batch_inputs_given(
    graph: &Graph,
    features: &Tensor,
    targets: Option<&Tensor>,
    given: &BTreeMap<String, Tensor>,
    seed: u64,
    phase: Phase,
) -> Result<Values> {
    let batch = *features
        .shape()
        .first()
        .ok_or_else(|| Error::invalid("features must have a batch dimension"))?;
    let (stream_prefix, sub) = match phase {
        Phase::Train(step) => ("train", step),
        Phase::Eval(batch) => ("eval", batch),
    };
    let mut values = Values::new();
    let mut data_inputs = 0;
    for input in &graph.inputs {
        let info = &input.value;
        let shape = info.resolve(batch);
        let n: usize = shape.iter().product();
        let stream = || Stream::new(seed, &format!("{stream_prefix}/{}", info.name), sub);
        let tensor = match (input.role, given.get(&info.name)) {
            (InputRole::DropoutMask { .. } | InputRole::Normal, Some(values)) => {
                if values.shape() != shape.as_slice() {
                    return Err(Error::invalid(format!(
                        "input `{}`: the data gives {:?} for this batch, the graph takes {:?}",
                        info.name,
                        values.shape(),
                        shape
                    )));
                }
                values.to_dtype(info.dtype)
            }
            (role, _) => match role {
                InputRole::Data => {
                    data_inputs += 1;
                    features.to_dtype(info.dtype)
                }
                InputRole::Target => targets
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "input `{}` needs training targets, and the dataset has none",
                            info.name
                        ))
                    })?
                    .to_dtype(info.dtype)
                    .reshape(shape)?,
                InputRole::DropoutMask { p } => {
                    Tensor::f64(shape, stream().keep_mask(n, p))?.to_dtype(info.dtype)
                }
                InputRole::Normal => {
                    Tensor::f64(shape, stream().normal_vec(n))?.to_dtype(info.dtype)
                }
            },
        };
        values.insert(info.name.clone(), tensor);
    }
    if data_inputs != 1 {
        return Err(Error::invalid(format!(
            "graph `{}` has {data_inputs} data inputs; dlbench feeds exactly one",
            graph.name
        )));
    }
    Ok(values)
}
