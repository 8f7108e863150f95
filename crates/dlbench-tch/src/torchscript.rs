//! TorchScript export: a model's inference-mode forward pass traced by libtorch's tracer and
//! saved as a TorchScript archive that `torch.jit.load` (Python) and `torch::jit::load` (C++)
//! run with no dlbench and no Python model code.
//!
//! The trace records the session's own node-by-node walk ([`run_nodes`] over the lowering in
//! `ops.rs`), so the exported module computes exactly what [`crate::TchSession`] computes.
//! The weights are not arguments: the tracer bakes them into the module as constants, on the
//! CPU (constants are not parameters, so `module.to("cuda")` does not move them).
//!
//! The traced module's `forward` takes [`traced_inputs`] in graph order: the data inputs and
//! the noise inputs (the VAE's `eps`), never a training target nor a dropout mask (dropout is
//! the identity in inference mode, so a graph with dropout exports a module with no mask
//! argument, as an `nn.Dropout` in `eval()` takes none). It returns the graph's single output
//! as a tensor, or a tuple of them in the graph's order when there are several (the VAE's
//! `recon, mu, logvar`). It is traced at batch 1, and runs at any batch size: the lowering
//! passes no size read from the batch dim (see `ops.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use dlbench_core::{DType, Error, Graph, Input, InputRole, Mode, Model, Result, ValueInfo};
use tch::{Kind, Tensor};

use crate::convert::{self, torch_error};
use crate::session::{run_nodes, DeviceValues};

/// The batch size the module is traced at. Any batch works afterwards; 1 is the smallest
/// example and the one a size-specialising op would betray first in the tests.
const TRACE_BATCH: usize = 1;

/// The graph inputs a traced module's `forward` takes, in graph order: data and noise.
/// Targets feed the loss, which is not exported; dropout masks are unused in inference mode.
pub fn traced_inputs(graph: &Graph) -> Vec<&Input> {
    graph
        .inputs
        .iter()
        .filter(|input| matches!(input.role, InputRole::Data | InputRole::Normal))
        .collect()
}

/// Traces `model`'s inference forward pass on the CPU (see the module documentation) and
/// saves it to `path` as a TorchScript archive, atomically: through a temporary file in the
/// same folder, renamed over `path` once complete, so a failure leaves no partial file.
pub fn export_torchscript(model: &Model, path: &Path) -> Result<()> {
    let module = trace(model)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::file(path, "not a file path"))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The module writes the file itself (there are no bytes for `write_atomically`).
    let tmp = dir.join(format!(".{}.tmp", file_name.to_string_lossy()));
    if let Err(e) = module.save(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Traces the model into a module in eval mode, on the CPU.
fn trace(model: &Model) -> Result<crate::ffi::Module> {
    model.validate()?;
    let graph = &model.graph;
    let infos = graph.infer()?;
    let on = tch::Device::Cpu;
    // Plain tensors, not requiring grad: the tracer refuses to bake a tensor that requires
    // grad into the module as a constant.
    let mut params = DeviceValues::new();
    for param in &graph.params {
        let name = &param.value.name;
        let weight = model
            .weights
            .get(name)
            .ok_or_else(|| Error::invalid(format!("no weight for parameter `{name}`")))?;
        params.insert(name.clone(), convert::to_torch(weight, on)?);
    }
    let traced = traced_inputs(graph);
    let examples = traced
        .iter()
        .map(|input| example(input, on))
        .collect::<Result<Vec<_>>>()?;
    let mut inputs = DeviceValues::new();
    for (input, tensor) in traced.iter().zip(&examples) {
        // The same tensor (shared storage), so the tracer knows it as the argument.
        inputs.insert(input.value.name.clone(), tensor.shallow_clone());
    }
    // The inputs the module does not take still need a value for the walk; inference mode
    // never reads them, so they are not recorded (a target has no reader outside the loss).
    for input in graph.inputs.iter().filter(|&i| !traced.contains(&i)) {
        inputs.insert(input.value.name.clone(), example(input, on)?);
    }
    let _no_grad = tch::no_grad_guard();
    let tracing = crate::ffi::Tracing::start(&identifier(&graph.name, "m_"), &examples)?;
    // On an error the trace is dropped, which abandons it.
    let outputs = outputs(graph, &infos, &inputs, &params)?;
    // Named after the graph inputs, as `torch.jit.trace` names them after Python's arguments;
    // `self` is the module's own first argument.
    let arg_names: Vec<String> = traced
        .iter()
        .map(|input| match identifier(&input.value.name, "input_") {
            id if id == "self" => "self_".to_string(),
            id => id,
        })
        .collect();
    let module = tracing.end("forward", &arg_names, &outputs)?;
    module.set_eval()?;
    Ok(module)
}

/// The graph's outputs, in order, from one inference-mode walk.
fn outputs(
    graph: &Graph,
    infos: &BTreeMap<String, ValueInfo>,
    inputs: &DeviceValues,
    params: &DeviceValues,
) -> Result<Vec<Tensor>> {
    let values = run_nodes(graph, infos, inputs, params, TRACE_BATCH, Mode::Inference)?;
    graph
        .outputs
        .iter()
        .map(|name| {
            values
                .get(name)
                .or_else(|| inputs.get(name))
                .or_else(|| params.get(name))
                .map(Tensor::shallow_clone)
                .ok_or_else(|| Error::invalid(format!("output `{name}` is not defined")))
        })
        .collect()
}

/// A batch-1 example for `input`: zeros (the trace records ops, not values), f32 or i64.
fn example(input: &Input, on: tch::Device) -> Result<Tensor> {
    let shape = convert::dims(&input.value.resolve(TRACE_BATCH))?;
    let kind = match input.value.dtype {
        DType::I64 => Kind::Int64,
        DType::F32 | DType::F64 => Kind::Float,
    };
    Tensor::f_zeros(shape.as_slice(), (kind, on)).map_err(torch_error("making an example input"))
}

/// `name` as a TorchScript identifier (the module's class name, the method's argument
/// names): characters other than ASCII letters, digits and `_` become `_`, and `prefix` goes
/// before a name that does not start with a letter.
fn identifier(name: &str, prefix: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        id.insert_str(0, prefix);
    }
    id
}

/// Loads a TorchScript archive with libtorch (`torch::jit::load`, as `CModule::load`) and runs
/// its `forward` on the CPU with `graph`'s [`traced_inputs`] taken from `inputs`; returns its
/// outputs in order. What `dlbench convert` runs to check a TorchScript file it wrote.
pub fn run_torchscript(
    path: &Path,
    graph: &Graph,
    inputs: &dlbench_core::Values,
) -> Result<Vec<dlbench_core::Tensor>> {
    let module = tch::CModule::load(path).map_err(torch_error("loading"))?;
    let args = traced_inputs(graph)
        .into_iter()
        .map(|input| {
            let value = inputs.get(&input.value.name).ok_or_else(|| {
                Error::invalid(format!("input `{}` is missing", input.value.name))
            })?;
            convert::to_torch(value, tch::Device::Cpu).map(tch::IValue::Tensor)
        })
        .collect::<Result<Vec<_>>>()?;
    let output = module.forward_is(&args).map_err(torch_error("running"))?;
    let tensors = match output {
        tch::IValue::Tensor(t) => vec![t],
        tch::IValue::Tuple(items) | tch::IValue::GenericList(items) => items
            .into_iter()
            .map(|item| match item {
                tch::IValue::Tensor(t) => Ok(t),
                other => Err(Error::invalid(format!(
                    "{}: an output is {other:?}, not a tensor",
                    path.display()
                ))),
            })
            .collect::<Result<Vec<_>>>()?,
        other => {
            return Err(Error::invalid(format!(
                "{}: forward returned {other:?}, not tensors",
                path.display()
            )))
        }
    };
    tensors.iter().map(convert::to_host).collect()
}
