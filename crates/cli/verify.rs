//! The check every `dlbench convert` ends with: the file just written is read back (as any
//! user of its format would read it), and the source model and the written one run on the f64
//! reference with the same seeded batch. The largest difference per output is printed; beyond
//! the agreement tolerance (the specs' default, `atol + rtol * |source|`) the conversion has
//! failed, exit code 1.

use std::path::Path;

use anyhow::Context;
use dlbench_core::init::Init;
use dlbench_core::{Backend, DType, InputRole, Mode, Model, PrepareOptions, Tensor, Values};
use dlbench_reference::ReferenceBackend;
use dlbench_spec::AgreementSpec;

use crate::load::Format;
use crate::Failure;

/// The batch size verification runs at: more than one, so a batch dim fixed by mistake shows.
const BATCH: usize = 2;
/// The seed of the verification batch.
const SEED: u64 = 20_241_206;

/// One batch for every input of `model`'s graph: data and noise uniform in [-1, 1) from
/// [`SEED`], dropout masks all ones (inference ignores them), targets zero.
fn seeded_batch(model: &Model) -> anyhow::Result<Values> {
    model
        .graph
        .inputs
        .iter()
        .map(|input| {
            let info = &input.value;
            let shape = info.resolve(BATCH);
            let tensor = match (input.role, info.dtype) {
                (InputRole::DropoutMask { .. }, dtype) => {
                    Init::Ones.sample(&info.name, shape, SEED)?.to_dtype(dtype)
                }
                (_, DType::I64) => Tensor::zeros(DType::I64, shape),
                (InputRole::Target, dtype) => Tensor::zeros(dtype, shape),
                (InputRole::Data | InputRole::Normal, dtype) => Init::Uniform { bound: 1.0 }
                    .sample(&info.name, shape, SEED)?
                    .to_dtype(dtype),
            };
            Ok((info.name.clone(), tensor))
        })
        .collect()
}

/// `model`'s outputs for `inputs` on the f64 reference, in the graph's output order.
fn reference_outputs(model: &Model, inputs: &Values) -> anyhow::Result<Vec<Tensor>> {
    let mut session = ReferenceBackend.prepare(model, &PrepareOptions::default())?;
    session.load(inputs)?;
    session.forward(Mode::Inference)?;
    let mut outputs = session.outputs()?;
    Ok(model
        .graph
        .outputs
        .iter()
        .filter_map(|name| outputs.remove(name))
        .collect())
}

/// The outputs of the file just written, read back as its format is read.
fn written_outputs(
    source: &Model,
    path: &Path,
    format: Format,
    inputs: &Values,
) -> anyhow::Result<Vec<Tensor>> {
    let written = match format {
        Format::Native => Model::load(path)?,
        Format::Onnx => dlbench_formats::onnx::import_onnx(path)?,
        // Written under the graph's own names, so read back by name into the same graph.
        Format::StateDict => {
            let mapping = dlbench_formats::matching::Mapping::default();
            dlbench_formats::pytorch::import_state_dict(source.graph.clone(), path, &mapping)?.0
        }
        Format::TorchScript => return torchscript_outputs(source, path, inputs),
    };
    reference_outputs(&written, inputs)
}

#[cfg(feature = "tch")]
fn torchscript_outputs(
    source: &Model,
    path: &Path,
    inputs: &Values,
) -> anyhow::Result<Vec<Tensor>> {
    Ok(dlbench_tch::run_torchscript(path, &source.graph, inputs)?)
}

#[cfg(not(feature = "tch"))]
fn torchscript_outputs(_: &Model, path: &Path, _: &Values) -> anyhow::Result<Vec<Tensor>> {
    anyhow::bail!(
        "{}: reading TorchScript back needs libtorch",
        path.display()
    )
}

/// Reads `path` back and compares it with `source`; prints the table, fails (exit 1) on
/// disagreement.
pub fn verify(source: &Model, path: &Path, format: Format) -> anyhow::Result<()> {
    let inputs = seeded_batch(source)?;
    let want = reference_outputs(source, &inputs).context("running the source model")?;
    let got = written_outputs(source, path, format, &inputs)
        .with_context(|| format!("reading back and running {}", path.display()))?;
    let tolerance = AgreementSpec::default();
    if got.len() != want.len() {
        return Err(Failure(format!(
            "verification failed: {} has {} outputs, the source {}",
            path.display(),
            got.len(),
            want.len()
        ))
        .into());
    }
    let how = match format {
        Format::TorchScript => "libtorch",
        Format::Native | Format::Onnx | Format::StateDict => "the f64 reference",
    };
    eprintln!(
        "verifying: {} read back and run on {how}, the source on the f64 reference, a seeded \
         batch of {BATCH}",
        path.display()
    );
    eprintln!("  {:<24} {:>16}", "output", "max |difference|");
    let mut failed = Vec::new();
    for ((name, want), got) in source.graph.outputs.iter().zip(&want).zip(&got) {
        let (a, b) = (want.to_f64_vec(), got.to_f64_vec());
        let shapes_agree = want.shape() == got.shape();
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(
                0.0,
                |m: f64, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
            );
        let within = shapes_agree
            && a.iter()
                .zip(&b)
                .all(|(x, y)| (x - y).abs() <= tolerance.atol + tolerance.rtol * x.abs());
        let shown = match shapes_agree {
            true => format!("{worst:.3e}"),
            false => format!("shape {:?} != {:?}", got.shape(), want.shape()),
        };
        eprintln!(
            "  {name:<24} {shown:>16}{}",
            if within { "" } else { "  DISAGREES" }
        );
        if !within {
            failed.push(name.as_str());
        }
    }
    if !failed.is_empty() {
        // A file that does not compute what its source does must not pass for a conversion.
        let removed = match std::fs::remove_file(path) {
            Ok(()) => "; the file is removed",
            Err(_) => "; the file could not be removed",
        };
        return Err(Failure(format!(
            "verification failed: {} disagrees with its source on {} beyond atol {:e} + rtol \
             {:e}{removed}",
            path.display(),
            failed.join(", "),
            tolerance.atol,
            tolerance.rtol,
        ))
        .into());
    }
    eprintln!(
        "verified: every output within atol {:e} + rtol {:e}",
        tolerance.atol, tolerance.rtol
    );
    Ok(())
}
