//! `dlbench predict MODEL --input NAME=FILE.npy ... --out DIR`: runs a model once, in inference
//! mode, on one backend, and writes each graph output to `DIR/<file name>.npy` (NumPy's
//! `np.load` reads them), with a table of what was written on stdout.
//!
//! Every graph input must be given, noise and dropout masks included: dlbench does not invent
//! values a user did not ask for, so the outputs depend only on the files named. The inputs
//! are checked against the graph (names, shapes, dtypes) before any backend runs; such errors
//! are bad input (exit 2) and name the file. A backend that fails or panics while running is a
//! failure (exit 1).
//!
//! Output file names: graph output names may hold `/` or `:` (ONNX's `/fc/Gemm_output_0`), so
//! each character other than an ASCII letter, digit, `-`, `_` or `.` becomes `_`, a name that
//! would then start with `.` (or be empty) gets a leading `_`, and `.npy` is appended. Two
//! outputs whose file names are equal, ignoring case (as on macOS and Windows file systems),
//! are refused before anything runs, rather than one silently overwriting the other.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use dlbench_core::format::write_atomically;
use dlbench_core::limits::Limits;
use dlbench_core::{Backend, Device, Error, Graph, InputRole, Mode, Model, PrepareOptions, Values};
use dlbench_data::npy::{encode, read_npy_with};
use dlbench_harness::registry::{not_built_message, REFERENCE};

use crate::load::{load_model, ModelOptions};
use crate::{registry, Failure};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model: native (.safetensors), ONNX (.onnx), or a PyTorch state_dict (.pt, .pth)
    /// with --like.
    model: PathBuf,
    /// A graph input and the .npy file that holds it, batch dimension first. Give one for
    /// every graph input (`dlbench inspect` lists them), noise and dropout masks included.
    #[arg(long = "input", value_name = "NAME=FILE", value_parser = parse_input)]
    inputs: Vec<InputFile>,
    /// The backend to run (`dlbench list` shows this build's). The default, `reference`, is
    /// the f64 interpreter: the slowest and the most exact, and it writes f64 outputs; other
    /// backends write their own dtype (f32 for an f32 model).
    #[arg(long, default_value = REFERENCE)]
    backend: String,
    /// Where the backend computes: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// Intra-op CPU threads the backend may use (PyTorch's `torch.set_num_threads`).
    #[arg(long, default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    threads: usize,
    /// The folder for the outputs, one `<output name>.npy` each; created if missing.
    #[arg(long, short)]
    out: PathBuf,
    #[command(flatten)]
    model_options: ModelOptions,
}

/// One `--input NAME=FILE`.
#[derive(Debug, Clone)]
pub struct InputFile {
    name: String,
    path: PathBuf,
}

impl std::fmt::Display for InputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--input {}={}", self.name, self.path.display())
    }
}

/// Splits at the first `=`: graph input names hold no `=`, file names may.
fn parse_input(arg: &str) -> Result<InputFile, String> {
    match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok(InputFile {
            name: name.to_string(),
            path: PathBuf::from(path),
        }),
        _ => Err(format!(
            "expected NAME=FILE, a graph input and its .npy file (e.g. x=batch.npy), got `{arg}`"
        )),
    }
}

pub fn predict(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    // Usage first, then the files, then the run: nothing is computed for a call that cannot
    // succeed.
    let backends = registry::backends();
    let backend = pick_backend(&backends, args)?;
    let model = load_model(&args.model, &args.model_options)?;
    let files = output_files(&model.graph)?;
    let inputs = read_inputs(&model.graph, &args.inputs)?;
    let created = !args.out.is_dir();
    std::fs::create_dir_all(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let options = PrepareOptions {
        device: args.device,
        threads: args.threads,
        training: None,
    };
    let outputs = infer(backend, &model, &options, &inputs)
        .and_then(|values| write_outputs(&args.out, &model.graph, &files, values));
    let outputs = outputs.inspect_err(|_| {
        if created {
            // remove_dir removes only an empty folder: one made for nothing goes away.
            let _ = std::fs::remove_dir(&args.out);
        }
    })?;
    print_table(&model.graph, &files, &outputs);
    eprintln!(
        "wrote {} file(s) to {} ({} on {}, {} thread(s))",
        files.len(),
        args.out.display(),
        backend.name(),
        args.device,
        args.threads
    );
    Ok(ExitCode::SUCCESS)
}

/// The backend named by `--backend`, if this build has it and it can run inference on
/// `--device` with `--threads`; otherwise a usage error listing what is available.
fn pick_backend<'a>(
    backends: &'a [Box<dyn Backend>],
    args: &PredictArgs,
) -> anyhow::Result<&'a dyn Backend> {
    let all: Vec<&dyn Backend> = backends.iter().map(|b| b.as_ref()).collect();
    let Some(backend) = all.iter().copied().find(|b| b.name() == args.backend) else {
        let mut message = not_built_message(&args.backend, &all);
        // A planned backend (tch without its feature) comes with the recipe to build it in.
        if let Some((_, how)) = registry::not_built()
            .into_iter()
            .find(|(name, _)| *name == args.backend)
        {
            message.push_str(&format!(". {how}"));
        }
        bail!("--backend: {message}");
    };
    let devices = backend.capabilities().devices;
    if !devices.contains(&args.device) {
        let have: Vec<String> = devices.iter().map(Device::to_string).collect();
        bail!(
            "--device {}: backend `{}` cannot use it on this machine; it can use {}",
            args.device,
            backend.name(),
            have.join(", ")
        );
    }
    Limits::from_env()?.check_threads("--threads", args.threads)?;
    Ok(backend)
}

/// Each graph output's file name (see the module doc), refusing collisions and names too long
/// for a file system.
fn output_files(graph: &Graph) -> anyhow::Result<Vec<String>> {
    let mut files: Vec<String> = Vec::new();
    for name in &graph.outputs {
        let file = file_name(name);
        // 255 bytes is the limit of ext4, XFS, APFS and NTFS alike.
        if file.len() > 255 {
            bail!(
                "output `{name}`: its file name would be {} bytes, over the 255 a file system \
                 allows",
                file.len()
            );
        }
        if let Some(j) = files.iter().position(|f| f.eq_ignore_ascii_case(&file)) {
            let (first, earlier) = (&graph.outputs[j], &files[j]);
            let clash = match *earlier == file {
                true => format!("would both be written to {file}"),
                false => {
                    format!("would be written to {earlier} and {file}, one file on macOS, Windows")
                }
            };
            bail!(
                "outputs `{first}` and `{name}` {clash}: in file names each character other \
                 than A-Z, a-z, 0-9, `-`, `_` and `.` becomes `_`; predict refuses rather than \
                 overwrite one output with the other"
            );
        }
        files.push(file);
    }
    Ok(files)
}

/// `name` made safe as a file name, plus `.npy` (the rule of the module doc).
fn file_name(name: &str) -> String {
    let mut file: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect();
    // Not hidden, and never `.` or `..`.
    if file.is_empty() || file.starts_with('.') {
        file.insert(0, '_');
    }
    file + ".npy"
}

/// What an input is for, to say in a message that it is missing.
fn role(role: &InputRole) -> String {
    match role {
        InputRole::Data => "the model's data".into(),
        InputRole::Target => "the training target".into(),
        InputRole::DropoutMask { p } => format!(
            "a dropout keep-mask, p = {p}: 1 keeps, 0 drops; inference ignores it, but the graph \
             declares it, so an array of ones of its shape will do"
        ),
        InputRole::Normal => "standard normal noise, such as a VAE's epsilon; dlbench does not \
                              draw it for you, so the outputs depend only on the files"
            .into(),
    }
}

/// The batch: every graph input read from its file, checked against the graph, floats in the
/// graph's dtype (as the harness feeds them).
fn read_inputs(graph: &Graph, given: &[InputFile]) -> anyhow::Result<Values> {
    for (i, input) in given.iter().enumerate() {
        if let Some(first) = given[..i].iter().find(|g| g.name == input.name) {
            bail!("{input}: input `{}` is already given ({first})", input.name);
        }
        if graph.input(&input.name).is_none() {
            let known: Vec<&str> = graph.inputs.iter().map(|i| i.value.name.as_str()).collect();
            bail!(
                "{input}: the model has no input `{}`; its inputs are {}",
                input.name,
                known.join(", ")
            );
        }
    }
    let missing: Vec<String> = graph
        .inputs
        .iter()
        .filter(|i| !given.iter().any(|g| g.name == i.value.name))
        .map(|i| {
            let name = &i.value.name;
            let dims: Vec<String> = i.value.shape.iter().map(|d| d.to_string()).collect();
            format!(
                "input `{name}` ({} [{}], {}) is missing: pass --input {name}=FILE.npy",
                i.value.dtype,
                dims.join(", "),
                role(&i.role)
            )
        })
        .collect();
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    let limits = Limits::from_env()?;
    let mut values = Values::new();
    for input in given {
        let tensor = read_npy_with(&input.path, &limits).with_context(|| input.to_string())?;
        values.insert(input.name.clone(), tensor);
    }
    graph.check_batch(&values).map_err(|e| {
        // check_batch names the input first (`input `x`: ...`); say which file it came from.
        let message = e.to_string();
        let culprit = message
            .split('`')
            .skip(1)
            .step_by(2)
            .find_map(|name| given.iter().find(|g| g.name == name));
        match culprit {
            Some(input) => anyhow::anyhow!("{input}: {message}"),
            None => anyhow::anyhow!("{message}"),
        }
    })?;
    for input in &graph.inputs {
        let tensor = values.get_mut(&input.value.name).expect("checked above");
        if tensor.dtype().is_float() && tensor.dtype() != input.value.dtype {
            *tensor = tensor.to_dtype(input.value.dtype);
        }
    }
    Ok(values)
}

/// Prepares, loads, runs once in inference mode and reads the outputs. Any error or panic of
/// the backend is a [`Failure`]: the input was checked, so it is the backend's.
fn infer(
    backend: &dyn Backend,
    model: &Model,
    options: &PrepareOptions,
    inputs: &Values,
) -> Result<Values, Failure> {
    let run = || {
        let mut session = backend.prepare(model, options)?;
        session.load(inputs)?;
        session.forward(Mode::Inference)?;
        let outputs = session.outputs()?;
        match model
            .graph
            .outputs
            .iter()
            .find(|o| !outputs.contains_key(*o))
        {
            Some(name) => Err(Error::invalid(format!("it returned no output `{name}`"))),
            None => Ok(outputs),
        }
    };
    let failed = |why: String| {
        Failure(format!(
            "backend `{}` on {} failed: {why}",
            backend.name(),
            options.device
        ))
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(values)) => Ok(values),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(panic) => Err(failed(format!(
            "panicked: {}",
            (panic.downcast_ref::<String>().map(String::as_str))
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic")
        ))),
    }
}

/// Writes every output (all present: [`infer`] checked), each atomically; if one cannot be
/// written, the ones this call wrote are removed, so that `out` never holds a mix of this
/// call's outputs and older ones.
fn write_outputs(
    out: &Path,
    graph: &Graph,
    files: &[String],
    values: Values,
) -> Result<Values, Failure> {
    let mut written: Vec<PathBuf> = Vec::new();
    for (name, file) in graph.outputs.iter().zip(files) {
        let path = out.join(file);
        if let Err(why) = write_atomically(&path, &encode(&values[name])) {
            written.iter().for_each(|done| {
                let _ = std::fs::remove_file(done);
            });
            return Err(Failure(format!(
                "could not write output `{name}`: {why}; removed the {} file(s) this call had \
                 written",
                written.len()
            )));
        }
        written.push(path);
    }
    Ok(values)
}

/// One line per output, in graph order: name, file, dtype, shape.
fn print_table(graph: &Graph, files: &[String], values: &Values) {
    let mut rows = vec![["output", "file", "dtype", "shape"].map(String::from)];
    for (name, file) in graph.outputs.iter().zip(files) {
        let t = &values[name];
        let shape = format!("{:?}", t.shape());
        rows.push([name.clone(), file.clone(), t.dtype().to_string(), shape]);
    }
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let (a, b, c) = (width(0), width(1), width(2));
    for row in &rows {
        println!("{:<a$}  {:<b$}  {:<c$}  {}", row[0], row[1], row[2], row[3]);
    }
}
