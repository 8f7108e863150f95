//! The `dlbench` binary: a thin layer over the libraries. It parses the command line, owns the
//! registry of backends compiled in, and maps errors to exit codes: 0 all good, 1 a failed
//! backend (or disagreement), 2 bad input or usage.

mod compare;
mod convert;
mod inspect;
mod list;
mod load;
mod predict;
mod progress;
mod registry;
mod report;
mod run;
mod verify;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// dlbench: choose, trust and move between deep-learning frameworks, on evidence.
#[derive(Debug, Parser)]
#[command(name = "dlbench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the backends compiled into this build and the devices found.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Summarise a model, like Keras' `model.summary()`: each node's op, output shape,
    /// parameters and FLOPs, and the totals.
    Inspect {
        /// A spec (.yaml) or a native model (.safetensors).
        path: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Train, evaluate and benchmark a spec on its backends; write `results.json`.
    Run(run::RunArgs),
    /// Build a spec's model with its seeded initial weights and save it in the native format
    /// (.safetensors with the graph in its metadata).
    Init {
        spec: PathBuf,
        /// Where to write the model.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Convert a model between formats, by file extension: native (.safetensors), ONNX (.onnx)
    /// and PyTorch state_dicts (.pt, .pth; reading one needs `--like`) in every direction, and
    /// to TorchScript (.ts, .torchscript; needs the `tch` feature). The written file is read
    /// back and run against the source; a disagreement exits 1.
    Convert {
        /// The model to read.
        input: PathBuf,
        /// Where to write it.
        output: PathBuf,
        #[command(flatten)]
        model: load::ModelOptions,
        /// Skip reading the written file back and comparing its outputs with the source's.
        #[arg(long)]
        no_verify: bool,
    },
    /// Run a model once, in inference mode, on one backend: each graph input from a .npy file,
    /// each output written to `DIR/<output name>.npy`.
    Predict(predict::PredictArgs),
    /// Write a Markdown report (`DIR/index.md`) from one or more `results.json` records: the
    /// recommendation per use case, then each spec's runs and agreement. Runs nothing.
    Report(report::ReportArgs),
    /// Tell a real difference from noise: each median of NEW against OLD (two records of one
    /// spec), or each backend of one record against `--baseline`, with the ratio's interval
    /// and a verdict: faster, slower, no significant change, or (when the machine-speed probes
    /// disagree) machine changed: not comparable. Runs nothing.
    Compare(compare::CompareArgs),
    /// Run one backend of a spec and report on stdout, for `dlbench run` (internal).
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
}

/// An error that means dlbench ran but something failed (exit code 1), not bad input.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// Rust ignores SIGPIPE, so printing to a closed pipe (`dlbench inspect m.onnx | head`) would
/// panic; the default action ends the process quietly, as other command-line tools do.
#[cfg(unix)]
fn end_quietly_on_closed_pipes() {
    // SAFETY: called first in `main`, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn end_quietly_on_closed_pipes() {}

fn main() -> ExitCode {
    end_quietly_on_closed_pipes();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::List { json } => list::list(json),
        Command::Inspect { path, json } => inspect::inspect(&path, json),
        Command::Run(args) => run::run(&args),
        Command::Init { spec, out } => inspect::init(&spec, &out),
        Command::Convert {
            input,
            output,
            model,
            no_verify,
        } => convert::convert(&input, &output, &model, !no_verify),
        Command::Predict(args) => predict::predict(&args),
        Command::Report(args) => report::report(&args),
        Command::Compare(args) => compare::compare(&args),
        Command::Worker(args) => worker::worker(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if error.is::<Failure>() {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}
