//! `dlbench convert IN OUT [--like SPEC_OR_MODEL]`: moves a model between the native format
//! (`.safetensors` with the graph) and PyTorch `state_dict` files (`.pt`, `.pth`), and exports
//! it to TorchScript (`.ts`, `.torchscript`) and ONNX (`.onnx`, opset 17). The file extensions
//! say which way; a state_dict holds weights only, so reading one needs the graph from `--like`
//! (a spec or a native model).
//!
//! `.pt` always means a state_dict here, although PyTorch users also name TorchScript files
//! `.pt`: one extension, one format, so a file name never leaves the direction ambiguous.
//! TorchScript is written only, and only by a build with the `tch` feature (libtorch traces
//! the model); without it the command says how to build one.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use dlbench_core::Model;
use dlbench_formats::onnx::export_onnx;
use dlbench_formats::pytorch::export_state_dict;

use crate::load::{load_model, Format, ModelOptions};

/// Traces the model that `read` loads with libtorch and saves the TorchScript module.
#[cfg(feature = "tch")]
fn write_torchscript(
    output: &Path,
    read: impl FnOnce() -> anyhow::Result<Model>,
) -> anyhow::Result<Model> {
    let model = read()?;
    dlbench_tch::export_torchscript(&model, output)
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(model)
}

/// Without libtorch there is nothing to trace with: a usage error saying how to build it in,
/// before the input is even read.
#[cfg(not(feature = "tch"))]
fn write_torchscript(
    output: &Path,
    _read: impl FnOnce() -> anyhow::Result<Model>,
) -> anyhow::Result<Model> {
    bail!(
        "writing TorchScript ({}) needs a dlbench built with libtorch; {}",
        output.display(),
        crate::registry::TCH_RECIPE
    )
}

fn write_onnx(output: &Path, model: Model) -> anyhow::Result<Model> {
    export_onnx(&model, output).with_context(|| format!("writing {}", output.display()))?;
    Ok(model)
}

const SUPPORTED: &str = "dlbench converts a native model (.safetensors) to a PyTorch state_dict \
                         (.pt, .pth), a state_dict to a native model with --like \
                         SPEC_OR_MODEL giving the graph, and either to TorchScript (.ts, \
                         .torchscript) or to ONNX (.onnx); reading ONNX is not supported yet";

pub fn convert(input: &Path, output: &Path, options: &ModelOptions) -> anyhow::Result<ExitCode> {
    let (Some(from), Some(to)) = (Format::of(input), Format::of(output)) else {
        bail!(
            "cannot convert {} to {}: {SUPPORTED}",
            input.display(),
            output.display()
        );
    };
    if from == Format::TorchScript {
        bail!(
            "cannot convert {} to {}: {SUPPORTED}",
            input.display(),
            output.display()
        );
    }
    let read = || load_model(input, options);
    let model = match to {
        Format::Native => {
            let model = read()?;
            model.save(output)?;
            model
        }
        Format::StateDict => {
            let model = read()?;
            export_state_dict(&model, output)
                .with_context(|| format!("writing {}", output.display()))?;
            model
        }
        Format::TorchScript => write_torchscript(output, read)?,
        Format::Onnx => write_onnx(output, read()?)?,
    };
    eprintln!(
        "wrote {} ({} tensors, {} parameters)",
        output.display(),
        model.graph.params.len(),
        model.parameter_count()
    );
    Ok(ExitCode::SUCCESS)
}
