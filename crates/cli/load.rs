//! Reading a model or a graph from any file dlbench knows, by extension, for every command that
//! takes one (`inspect`, `convert`, `predict`): a native model (`.safetensors`, graph and
//! weights), a PyTorch state_dict (`.pt`, `.pth`, weights only: the graph comes from `--like`)
//! and a spec (`.yaml`, `.yml`, a graph with seeded weights).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use dlbench_core::{Graph, Model};
use dlbench_formats::matching::{Mapping, MatchedBy};
use dlbench_formats::pytorch::import_state_dict;
use dlbench_spec::Spec;

/// The kinds of model file, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// dlbench's `.safetensors`: weights plus the graph.
    Native,
    /// `torch.save(model.state_dict(), path)`.
    StateDict,
    /// A traced TorchScript module, as `torch.jit.trace(model, x).save(path)` writes it.
    TorchScript,
    /// An ONNX model.
    Onnx,
}

impl Format {
    /// The format a file name says; `None` for an extension dlbench does not know.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => Some(Format::Native),
            Some("pt" | "pth") => Some(Format::StateDict),
            Some("ts" | "torchscript") => Some(Format::TorchScript),
            Some("onnx") => Some(Format::Onnx),
            _ => None,
        }
    }
}

/// How to read a model file, shared by every command that reads one.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ModelOptions {
    /// Reading a state_dict: the spec (.yaml), native model (.safetensors) or ONNX model
    /// (.onnx) whose graph the weights belong to.
    #[arg(long, value_name = "SPEC_OR_MODEL")]
    pub like: Option<PathBuf>,
    /// Reading a state_dict whose names differ from the graph's: the file's tensor OLD goes to
    /// the graph's parameter NEW. Repeatable. Tensors are otherwise matched by identical name,
    /// then by position, which is refused where tensors of equal shape would be told apart by
    /// their order alone.
    #[arg(long = "map", value_name = "OLD=NEW")]
    pub map: Vec<String>,
    /// Like --map, from a file: one OLD=NEW per line, `#` starts a comment, blank lines are
    /// ignored.
    #[arg(long = "map-file", value_name = "FILE")]
    pub map_file: Option<PathBuf>,
}

/// The graph of a spec (.yaml, .yml; built without initialising any weight, so a model too
/// large to train is still refused by the memory limits at no cost) or of a model file that
/// holds one.
pub fn load_graph(path: &Path) -> anyhow::Result<Graph> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => Ok(Spec::load(path)?.build_graph()?),
        _ => match Format::of(path) {
            Some(Format::Native) => Ok(Model::load(path)?.graph),
            Some(Format::Onnx) => Ok(read_onnx(path)?.graph),
            _ => bail!(
                "{}: expected a spec (.yaml, .yml), a native model (.safetensors) or an ONNX \
                 model (.onnx)",
                path.display()
            ),
        },
    }
}

/// A model from a file that holds weights: a native model or an ONNX file (their own graph;
/// `--like` is refused rather than ignored), or a state_dict (the graph from `like`).
pub fn load_model(path: &Path, options: &ModelOptions) -> anyhow::Result<Model> {
    match Format::of(path) {
        Some(Format::Native) => {
            refuse_state_dict_options(path, options)?;
            Ok(Model::load(path)?)
        }
        Some(Format::Onnx) => {
            refuse_state_dict_options(path, options)?;
            read_onnx(path)
        }
        Some(Format::StateDict) => read_state_dict(path, options),
        Some(Format::TorchScript) => bail!(
            "{}: dlbench writes TorchScript but does not read it; read the model from its \
             native, ONNX or state_dict file",
            path.display()
        ),
        None => bail!(
            "{}: expected a native model (.safetensors), an ONNX model (.onnx) or a PyTorch \
             state_dict (.pt, .pth) with --like",
            path.display()
        ),
    }
}

/// A model file that holds its own graph and names its weights: the options for reading a
/// state_dict are refused rather than ignored.
fn refuse_state_dict_options(path: &Path, options: &ModelOptions) -> anyhow::Result<()> {
    if let Some(like) = &options.like {
        bail!(
            "--like {} is for reading a state_dict; {} already holds its graph",
            like.display(),
            path.display()
        );
    }
    if !options.map.is_empty() || options.map_file.is_some() {
        bail!(
            "--map and --map-file are for reading a state_dict; {} names its own weights",
            path.display()
        );
    }
    Ok(())
}

/// A state_dict's weights in the graph that `--like` names (a spec or a model file), matched
/// as `--map` / `--map-file` say, then by name, then by position; the pairs not matched by
/// name are shown on stderr.
fn read_state_dict(path: &Path, options: &ModelOptions) -> anyhow::Result<Model> {
    let Some(like) = options.like.as_deref() else {
        bail!(
            "reading {} needs --like SPEC_OR_MODEL: a state_dict holds weights only, the graph \
             comes from a spec (.yaml), a native model (.safetensors) or an ONNX model (.onnx)",
            path.display()
        );
    };
    let mut mapping = Mapping::from_args(&options.map)?;
    if let Some(file) = &options.map_file {
        mapping.extend(Mapping::read_file(file)?)?;
    }
    let graph = load_graph(like)?;
    let (model, matched) = import_state_dict(graph, path, &mapping).with_context(|| {
        format!(
            "loading {} into the graph of {}",
            path.display(),
            like.display()
        )
    })?;
    let by_name = matched.iter().filter(|m| m.how == MatchedBy::Name).count();
    if by_name < matched.len() {
        eprintln!(
            "{}: {by_name} of {} tensors matched by name; the others:",
            path.display(),
            matched.len()
        );
        for m in matched.iter().filter(|m| m.how != MatchedBy::Name) {
            eprintln!("  {} -> {} ({})", m.key, m.param, m.how);
        }
    }
    Ok(model)
}

fn read_onnx(path: &Path) -> anyhow::Result<Model> {
    Ok(dlbench_formats::onnx::import_onnx(path)?)
}
