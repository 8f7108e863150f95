//! `dlbench convert IN OUT [--like SPEC_OR_MODEL]`: moves a model between the native format
//! (`.safetensors` with the graph), ONNX (`.onnx`; written at opset 17) and PyTorch
//! `state_dict` files (`.pt`, `.pth`) in every direction, and exports it to TorchScript (`.ts`,
//! `.torchscript`). The file extensions say which way; a state_dict holds weights only, so
//! reading one needs the graph from `--like` (a spec or a model file).
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

/// Traces `model` with libtorch and saves the TorchScript module.
#[cfg(feature = "tch")]
fn write_torchscript(output: &Path, model: &Model) -> anyhow::Result<()> {
    dlbench_tch::export_torchscript(model, output)
        .with_context(|| format!("writing {}", output.display()))
}

/// Without libtorch there is nothing to trace with: a usage error saying how to build it in.
#[cfg(not(feature = "tch"))]
fn write_torchscript(output: &Path, _model: &Model) -> anyhow::Result<()> {
    bail!(
        "writing TorchScript ({}) needs a dlbench built with libtorch; {}",
        output.display(),
        crate::registry::TCH_RECIPE
    )
}

const SUPPORTED: &str = "dlbench reads native models (.safetensors), ONNX models (.onnx) and \
                         PyTorch state_dicts (.pt, .pth, with --like SPEC_OR_MODEL giving the \
                         graph), and writes those and TorchScript (.ts, .torchscript)";

/// The environment variable that makes `convert` write a wrong model on purpose (the first
/// weight's first element plus its value), so that tests can show the verification catches a
/// conversion that changed the numbers. Not for users.
pub const TAMPER_VARIABLE: &str = "DLBENCH_TEST_TAMPER_CONVERSION";

/// The model with its first weight's first element moved by `DLBENCH_TEST_TAMPER_CONVERSION`.
fn tampered(mut model: Model) -> anyhow::Result<Model> {
    let Ok(text) = std::env::var(TAMPER_VARIABLE) else {
        return Ok(model);
    };
    let delta: f64 = text
        .parse()
        .with_context(|| format!("{TAMPER_VARIABLE}={text} is not a number"))?;
    if let Some(weight) = model.weights.values_mut().next() {
        let mut values = weight.to_f64_vec();
        if let Some(first) = values.first_mut() {
            *first += delta;
        }
        *weight =
            dlbench_core::Tensor::f64(weight.shape().to_vec(), values)?.to_dtype(weight.dtype());
    }
    Ok(model)
}

pub fn convert(
    input: &Path,
    output: &Path,
    options: &ModelOptions,
    verify: bool,
) -> anyhow::Result<ExitCode> {
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
    let source = load_model(input, options)?;
    let model = tampered(source.clone())?;
    match to {
        Format::Native => model.save(output)?,
        Format::StateDict => export_state_dict(&model, output)
            .with_context(|| format!("writing {}", output.display()))?,
        Format::TorchScript => write_torchscript(output, &model)?,
        Format::Onnx => {
            export_onnx(&model, output).with_context(|| format!("writing {}", output.display()))?
        }
    }
    eprintln!(
        "wrote {} ({} tensors, {} parameters)",
        output.display(),
        model.graph.params.len(),
        model.parameter_count()
    );
    if verify {
        crate::verify::verify(&source, output, to)?;
    }
    Ok(ExitCode::SUCCESS)
}
