//! `dlbench convert IN OUT [--like SPEC_OR_MODEL]`: moves a model between the native format
//! (`.safetensors` with the graph) and PyTorch `state_dict` files (`.pt`, `.pth`). The file
//! extensions say which way; a state_dict holds weights only, so reading one needs the graph
//! from `--like` (a spec or a native model).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use dlbench_core::{Graph, Model};
use dlbench_formats::pytorch::{export_state_dict, import_state_dict};
use dlbench_harness::spec::Spec;

/// The formats `convert` knows, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// dlbench's `.safetensors`: weights plus the graph.
    Native,
    /// `torch.save(model.state_dict(), path)`.
    StateDict,
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Some(Format::Native),
        Some("pt" | "pth") => Some(Format::StateDict),
        _ => None,
    }
}

const SUPPORTED: &str = "dlbench converts a native model (.safetensors) to a PyTorch state_dict \
                         (.pt, .pth), and a state_dict to a native model with --like \
                         SPEC_OR_MODEL giving the graph";

/// The graph of a spec (.yaml, .yml) or of a native model (.safetensors).
fn graph_of(path: &Path) -> anyhow::Result<Graph> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Ok(Spec::load(path)?.build_model()?.graph),
        Some("safetensors") => Ok(Model::load(path)?.graph),
        _ => bail!(
            "--like {}: expected a spec (.yaml, .yml) or a native model (.safetensors)",
            path.display()
        ),
    }
}

pub fn convert(input: &Path, output: &Path, like: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (from, to) = (format_of(input), format_of(output));
    let model = match (from, to) {
        (Some(Format::Native), Some(Format::StateDict)) => {
            if let Some(like) = like {
                bail!(
                    "--like {} is for reading a state_dict; {} already holds its graph",
                    like.display(),
                    input.display()
                );
            }
            let model = Model::load(input)?;
            export_state_dict(&model, output)
                .with_context(|| format!("writing {}", output.display()))?;
            model
        }
        (Some(Format::StateDict), Some(Format::Native)) => {
            let Some(like) = like else {
                bail!(
                    "converting {} to {} needs --like SPEC_OR_MODEL: a state_dict holds weights \
                     only, the graph comes from a spec (.yaml) or a native model (.safetensors)",
                    input.display(),
                    output.display()
                );
            };
            let graph = graph_of(like)?;
            let model = import_state_dict(graph, input).with_context(|| {
                format!(
                    "loading {} into the graph of {}",
                    input.display(),
                    like.display()
                )
            })?;
            model.save(output)?;
            model
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
