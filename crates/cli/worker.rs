//! `dlbench worker`: the hidden subcommand `dlbench run` starts once per backend x device x
//! thread count. It runs one backend of this binary's registry and speaks the worker protocol
//! on stdout (see `dlbench_harness::worker`); people do not call it. Its command line is
//! written and read in one place, `dlbench_harness::worker::WorkerRequest`: clap only hands
//! the arguments over.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Args;
use dlbench_core::Backend;
use dlbench_harness::worker::{serve, watch_parent, WorkerRequest};

use crate::registry;

/// The arguments after `worker`, unparsed: `WorkerRequest::parse` reads them.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct WorkerArgs {
    /// `--spec PATH --backend NAME --device D --threads N [--quick]`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

pub fn worker(args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    // A worker whose `dlbench run` was killed must not run on alone.
    watch_parent();
    let request = WorkerRequest::parse(args.args.iter().cloned())?;
    let backends = registry::backends();
    let registry: Vec<&dyn Backend> = backends.iter().map(|b| b.as_ref()).collect();
    serve(&request, &registry, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}
