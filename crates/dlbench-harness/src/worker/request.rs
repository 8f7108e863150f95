//! The worker's command line: [`WorkerRequest::args`] writes it for the orchestrator to start
//! a worker with.

use std::ffi::OsString;
use std::path::PathBuf;

use dlbench_core::Device;

use crate::configuration::label;

/// The subcommand of the dlbench binary that serves a [`WorkerRequest`].
pub const SUBCOMMAND: &str = "worker";

/// What one worker runs: the arguments of `dlbench worker`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRequest {
    /// The spec file; the worker reads it again, relative to the working directory it inherits.
    pub spec: PathBuf,
    /// The backend to run, by its name in the worker's registry.
    pub backend: String,
    /// The device (`cpu`, `cuda:N`).
    pub device: Device,
    /// The thread count.
    pub threads: usize,
    /// See [`RunOptions::quick`](crate::run::RunOptions::quick).
    pub quick: bool,
}

impl WorkerRequest {
    /// The worker's command line after the executable: `worker --spec PATH --backend NAME
    /// --device D --threads N [--quick]`, the [`SUBCOMMAND`] and then [`WorkerRequest::flags`].
    pub fn args(&self) -> Vec<OsString> {
        let mut args = vec![OsString::from(SUBCOMMAND)];
        args.extend(self.flags());
        args
    }

    /// The flags after the subcommand.
    pub fn flags(&self) -> Vec<OsString> {
        let mut flags: Vec<OsString> = vec![
            "--spec".into(),
            self.spec.clone().into(),
            "--backend".into(),
            self.backend.clone().into(),
            "--device".into(),
            self.device.to_string().into(),
            "--threads".into(),
            self.threads.to_string().into(),
        ];
        if self.quick {
            flags.push("--quick".into());
        }
        flags
    }

    /// `backend device xthreads`, as progress labels and failure lines name a run.
    pub fn label(&self) -> String {
        label(&self.backend, self.device, self.threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> WorkerRequest {
        WorkerRequest {
            spec: "specs/mlp.yaml".into(),
            backend: "reference".into(),
            device: Device::Cuda(1),
            threads: 4,
            quick: true,
        }
    }

    fn words(args: &[OsString]) -> String {
        let words: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        words.join(" ")
    }

    #[test]
    fn the_request_is_a_worker_command_line() {
        let expected = "worker --spec specs/mlp.yaml --backend reference --device cuda:1 \
                        --threads 4 --quick";
        assert_eq!(words(&request().args()), expected);
    }
}
