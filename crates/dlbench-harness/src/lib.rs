//! dlbench-harness: training and evaluation runs in worker processes, agreement checks, timing statistics and the
//! `dlbench.results/v1` record. It sees backends only through the `dlbench-core` traits; the
//! binary owns the registry of backends and hands it in.
//!
//! Dependencies inside the crate point one way, from the top down: [`run`] (a whole spec)
//! starts [`worker`]s or calls [`backend_run`] (one [`Configuration`](configuration::Configuration)),
//! which uses [`agreement`] and [`measure`]; at the bottom are what they all share:
//! [`configuration`], [`registry`], [`observer`], [`results`], [`stats`] and [`environment`].

pub mod agreement;
pub mod backend_run;
pub mod bootstrap;
pub mod compare;
pub mod configuration;
pub mod environment;
pub mod measure;
pub mod observer;
pub mod plan;
pub mod probe;
pub mod processes;
pub mod registry;
pub mod results;
pub mod run;
pub mod stats;
pub mod worker;

use dlbench_spec::SpecError;

/// Why a harness command could not run at all (a failing backend is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The spec is wrong: the user must fix it (exit code 2).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The command line asks for something impossible (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The model or data cannot be used as given (exit code 2).
    #[error(transparent)]
    Core(#[from] dlbench_core::Error),
}
