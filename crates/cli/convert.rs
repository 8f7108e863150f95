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
use dlbench_core::{Graph, Model};
use dlbench_formats::onnx::export_onnx;
use dlbench_formats::pytorch::{export_state_dict, import_state_dict};
use dlbench_spec::Spec;

/// The formats `convert` knows, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// dlbench's `.safetensors`: weights plus the graph.
    Native,
    /// `torch.save(model.state_dict(), path)`.
    StateDict,
    /// A traced TorchScript module, as `torch.jit.trace(model, x).save(path)` writes it.
    TorchScript,
    /// An ONNX model (opset 17, symbolic batch), written only for now.
    Onnx,
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Some(Format::Native),
        Some("pt" | "pth") => Some(Format::StateDict),
        Some("ts" | "torchscript") => Some(Format::TorchScript),
        Some("onnx") => Some(Format::Onnx),
        _ => None,
    }
}

const SUPPORTED: &str = "dlbench converts a native model (.safetensors) to a PyTorch state_dict \
                         (.pt, .pth), a state_dict to a native model with --like \
                         SPEC_OR_MODEL giving the graph, and either to TorchScript (.ts, \
                         .torchscript) or to ONNX (.onnx); reading ONNX is not supported yet";

/// The graph of a spec (.yaml, .yml) or of a native model (.safetensors).
fn graph_of(path: &Path) -> anyhow::Result<Graph> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Ok(Spec::load(path)?.build_graph()?),
        Some("safetensors") => Ok(Model::load(path)?.graph),
        _ => bail!(
            "--like {}: expected a spec (.yaml, .yml) or a native model (.safetensors)",
            path.display()
        ),
    }
}

/// A native model, which holds its own graph: `--like` is refused rather than ignored.
fn read_native(input: &Path, like: Option<&Path>) -> anyhow::Result<Model> {
    if let Some(like) = like {
        bail!(
            "--like {} is for reading a state_dict; {} already holds its graph",
            like.display(),
            input.display()
        );
    }
    Ok(Model::load(input)?)
}

/// A state_dict's weights in the graph that `--like` names.
fn read_state_dict(input: &Path, output: &Path, like: Option<&Path>) -> anyhow::Result<Model> {
    let Some(like) = like else {
        bail!(
            "converting {} to {} needs --like SPEC_OR_MODEL: a state_dict holds weights only, \
             the graph comes from a spec (.yaml) or a native model (.safetensors)",
            input.display(),
            output.display()
        );
    };
    let graph = graph_of(like)?;
    import_state_dict(graph, input).with_context(|| {
        format!(
            "loading {} into the graph of {}",
            input.display(),
            like.display()
        )
    })
}

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

pub fn convert(input: &Path, output: &Path, like: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (from, to) = (format_of(input), format_of(output));
    let model = match (from, to) {
        (Some(Format::Native), Some(Format::StateDict)) => {
            let model = read_native(input, like)?;
            export_state_dict(&model, output)
                .with_context(|| format!("writing {}", output.display()))?;
            model
        }
        (Some(Format::StateDict), Some(Format::Native)) => {
            let model = read_state_dict(input, output, like)?;
            model.save(output)?;
            model
        }
        (Some(Format::Native), Some(Format::TorchScript)) => {
            write_torchscript(output, || read_native(input, like))?
        }
        (Some(Format::StateDict), Some(Format::TorchScript)) => {
            write_torchscript(output, || read_state_dict(input, output, like))?
        }
        (Some(Format::Native), Some(Format::Onnx)) => {
            write_onnx(output, read_native(input, like)?)?
        }
        (Some(Format::StateDict), Some(Format::Onnx)) => {
            write_onnx(output, read_state_dict(input, output, like)?)?
        }
        _ => bail!(
            "cannot convert {} to {}: {SUPPORTED}",
            input.display(),
            output.display()
        ),
    };
    eprintln!(
        "wrote {} ({} tensors, {} parameters)",
        output.display(),
        model.graph.params.len(),
        model.parameter_count()
    );
    Ok(ExitCode::SUCCESS)
}
