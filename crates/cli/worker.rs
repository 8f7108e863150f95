//! `dlbench worker`: the hidden subcommand `dlbench run` starts once per backend x device x
//! thread count. It runs one backend of this binary's registry and speaks the worker protocol
//! on stdout (see `dlbench_harness::worker`); people do not call it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use dlbench_core::{Backend, Device};
use dlbench_harness::worker::{serve, WorkerRequest};

use crate::registry;

/// The arguments `dlbench_harness::worker::WorkerRequest::args` writes.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The spec file.
    #[arg(long)]
    spec: PathBuf,
    /// The backend to run, by name.
    #[arg(long)]
    backend: String,
    /// The device (cpu, cuda:N).
    #[arg(long)]
    device: Device,
    /// The thread count.
    #[arg(long)]
    threads: usize,
    /// The `--quick` budget.
    #[arg(long)]
    quick: bool,
}

pub fn worker(args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let request = WorkerRequest {
        spec: args.spec.clone(),
        backend: args.backend.clone(),
        device: args.device,
        threads: args.threads,
        quick: args.quick,
    };
    let backends = registry::backends();
    let registry: Vec<&dyn Backend> = backends.iter().map(|b| b.as_ref()).collect();
    serve(&request, &registry, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}
