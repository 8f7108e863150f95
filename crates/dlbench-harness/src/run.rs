//! `dlbench run`: every backend x device x thread count of a spec, each in its own run, gathered
//! into one results record. A backend that fails becomes a failed run; the others are kept.
//! Each run happens in this process or in its own worker processes ([`Isolation`]); with
//! `--processes N`, in N worker processes each, interleaved in time (see [`crate::processes`]).
//! The machine-speed probe ([`crate::probe`]) is taken before every run and at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use dlbench_core::{Backend, Device};

use crate::backend_run::run_contained;
use crate::configuration::Configuration;
use crate::environment::Environment;
use crate::observer::Observer;
use crate::plan::Plan;
use crate::probe::Probe;
use crate::processes::{merge, Share};
use crate::registry::{self, not_built_message};
use crate::results::{Results, RunRecord, SpecInfo, Status, SCHEMA};
use crate::worker::{run_worker, WorkerRequest};
use crate::HarnessError;
use dlbench_spec::workload::Workload;
use dlbench_spec::Spec;

/// Command-line overrides of the spec.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--backends`: replaces the spec's `backends`.
    pub backends: Option<Vec<String>>,
    /// `--devices`: replaces the spec's `devices`.
    pub devices: Option<Vec<Device>>,
    /// `--threads`: replaces the spec's `threads`.
    pub threads: Option<Vec<usize>>,
    /// A small budget for CI and first looks: at most
    /// [`QUICK_STEPS`](dlbench_spec::workload::QUICK_STEPS) training steps and short timing budgets.
    pub quick: bool,
    /// Where each backend run happens; in this process by default.
    pub isolation: Isolation,
    /// Backends dlbench knows of that this build lacks (`tch` without its feature, planned
    /// frameworks): asked for, they are recorded as unsupported; any other name is refused.
    pub planned_backends: Vec<String>,
    /// The devices of this machine; `None` detects them ([`crate::environment::devices`]).
    pub devices_present: Option<Vec<Device>>,
    /// `--processes`: worker processes per backend x device x thread count, interleaved in
    /// time; `None` for one. More than one needs [`Isolation::Process`].
    pub processes: Option<usize>,
}

/// Where each backend x device x thread count runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Isolation {
    /// In the calling process, one after another: no binary needed (library tests), but an
    /// abort, segfault or hang ends the whole run, thread pools are shared, and peak RSS covers
    /// the whole process.
    #[default]
    InProcess,
    /// Each in its own worker process (see [`crate::worker`]): `exe` is a dlbench binary whose
    /// `worker` subcommand serves the request; a worker still running after `timeout` is
    /// killed and recorded as timed out.
    Process {
        /// The dlbench binary to start as `exe worker ...`.
        exe: PathBuf,
        /// Wall-clock limit per worker (`--timeout`).
        timeout: Duration,
    },
}

/// Runs `spec` on the backends it names (or `options.backends`), using those in `registry`.
pub fn run(
    spec: &Spec,
    registry: &[&dyn Backend],
    options: &RunOptions,
    observer: &mut dyn Observer,
) -> Result<Results, HarnessError> {
    let Plan {
        backends,
        devices,
        threads,
    } = Plan::new(spec, registry, options)?;
    let work = Workload::prepare(spec.clone(), options.quick)?;
    // Workers read the spec again; an absolute path keeps that independent of their directory.
    let spec_path = std::fs::canonicalize(&spec.path).unwrap_or_else(|_| spec.path.clone());

    let mut versions =
        BTreeMap::from([("dlbench".to_string(), env!("CARGO_PKG_VERSION").to_string())]);
    let mut configurations: Vec<(&String, Device, usize)> = Vec::new();
    for name in &backends {
        for &device in &devices {
            configurations.extend(threads.iter().map(|&n| (name, device, n)));
        }
    }
    for name in &backends {
        if let Some(b) = registry::find(registry, name) {
            versions.insert(b.name().to_string(), b.version());
        }
    }
    let processes = options.processes.unwrap_or(1);
    let mut probe = Probe::new();
    // Round p runs process p of every configuration, so that each configuration's processes
    // are spread over the whole run and side by side with every other configuration's.
    let mut records: Vec<Vec<RunRecord>> = vec![Vec::new(); configurations.len()];
    for index in 0..processes {
        for (&(name, device, n), done) in configurations.iter().zip(&mut records) {
            if index > 0 && !worth_timing_again(&done[0]) {
                continue;
            }
            probe.take();
            let share = Share {
                index,
                of: processes,
            };
            let record = match registry::find(registry, name) {
                None => RunRecord::without_results(
                    name,
                    device,
                    n,
                    Status::Unsupported,
                    not_built_message(name, registry),
                ),
                Some(b) => match &options.isolation {
                    Isolation::InProcess => in_process(
                        &work,
                        Configuration::new(b, device, n),
                        registry::reference(registry),
                        observer,
                    ),
                    Isolation::Process { exe, timeout } => {
                        let request = WorkerRequest {
                            spec: spec_path.clone(),
                            backend: name.clone(),
                            device,
                            threads: n,
                            quick: options.quick,
                            share,
                        };
                        run_worker(exe, *timeout, &request, observer)
                    }
                },
            };
            done.push(record);
        }
    }
    probe.take();
    Ok(Results {
        schema: SCHEMA.to_string(),
        spec: spec_info(&work)?,
        environment: Environment::capture(versions),
        runs: records.into_iter().map(merge).collect(),
        probe: probe.finish(),
    })
}

/// Whether the later processes of a configuration have anything to time: not after its first
/// failed, was unsupported or disagreed (and so was not timed).
fn worth_timing_again(first: &RunRecord) -> bool {
    first.status == Status::Ok && (first.training.is_some() || !first.inference.is_empty())
}

/// One run in this process; its peak RSS is the whole process's, which the record says.
fn in_process(
    work: &Workload,
    config: Configuration,
    reference: Option<&dyn Backend>,
    observer: &mut dyn Observer,
) -> RunRecord {
    let mut record = run_contained(work, config, reference.into(), observer);
    if record.peak_rss_bytes.is_some() {
        record
            .notes
            .push("in-process run: peak RSS covers the whole dlbench process".into());
    }
    record
}

fn spec_info(work: &Workload) -> Result<SpecInfo, HarnessError> {
    let spec = &work.spec;
    let flops = dlbench_core::flops::graph_flops(&work.model.graph)?;
    Ok(SpecInfo {
        name: spec.name.clone(),
        path: spec.path.display().to_string(),
        seed: spec.seed,
        parameters: work.model.parameter_count(),
        flops_per_sample: flops.iter().sum(),
        loss: serde_json::to_value(spec.train.loss)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        optimizer: spec.train.optimizer.name().to_string(),
        batch_size: work.batch_size,
        train_samples: work.train.len(),
        validation_samples: work.validation.len(),
        test_samples: work.test.len(),
        cleaning: work.cleaning.clone(),
    })
}
