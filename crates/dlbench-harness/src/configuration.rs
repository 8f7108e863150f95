//! The measured configuration: one backend on one device with one thread count. It is the
//! unit that `dlbench run` runs (each in its own worker process), checks against the reference
//! and times; [`Configuration`] carries it through the harness as one value.

use std::fmt;

use dlbench_core::{Backend, Device, Model, PrepareOptions, Result, Session, TrainingConfig};

use crate::results::{RunRecord, Status};

/// One backend on one device with one thread count: what a run record, an agreement check and
/// a timing are of.
#[derive(Clone, Copy)]
pub struct Configuration<'a> {
    /// The framework measured.
    pub backend: &'a dyn Backend,
    /// Where it computes ([`PrepareOptions::device`]).
    pub device: Device,
    /// Intra-op threads it may use ([`PrepareOptions::threads`]).
    pub threads: usize,
}

impl<'a> Configuration<'a> {
    /// `backend` on `device` with `threads` threads.
    pub fn new(backend: &'a dyn Backend, device: Device, threads: usize) -> Self {
        Configuration {
            backend,
            device,
            threads,
        }
    }

    /// How the agreement oracle `reference` runs: on the CPU, with one thread.
    pub fn oracle(reference: &'a dyn Backend) -> Self {
        Configuration::new(reference, Device::Cpu, 1)
    }

    /// The backend's name.
    pub fn name(&self) -> &'static str {
        self.backend.name()
    }

    /// `backend device xthreads`, as progress labels and failure lines name a run.
    pub fn label(&self) -> String {
        label(self.name(), self.device, self.threads)
    }

    /// The options that prepare a session in this configuration, for training with `training`
    /// or (`None`) for inference.
    pub fn options(&self, training: Option<TrainingConfig>) -> PrepareOptions {
        PrepareOptions {
            device: self.device,
            threads: self.threads,
            training,
        }
    }

    /// A session of `model` in this configuration (see [`Configuration::options`]).
    pub fn prepare(
        &self,
        model: &Model,
        training: Option<TrainingConfig>,
    ) -> Result<Box<dyn Session>> {
        self.backend.prepare(model, &self.options(training))
    }

    /// A record of this configuration with `status` and `error` and no results yet.
    pub fn record(&self, status: Status, error: String) -> RunRecord {
        let mut record =
            RunRecord::without_results(self.name(), self.device, self.threads, status, error);
        record.kernels = self.backend.kernels();
        record
    }
}

impl fmt::Debug for Configuration<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Configuration")
            .field("backend", &self.name())
            .field("device", &self.device)
            .field("threads", &self.threads)
            .finish()
    }
}

/// `backend device xthreads`: how progress labels and failure lines name a configuration.
pub fn label(backend: &str, device: Device, threads: usize) -> String {
    format!("{backend} {device} x{threads}")
}
