//! What a run will do, checked before any work starts: every backend named is one this build
//! has or knows of, every device exists on this machine, every thread count can be started.
//! A mistake here is a usage error (exit code 2) naming the flag or spec field, found in
//! milliseconds rather than after an hour of other backends' runs.

use dlbench_core::limits::Limits;
use dlbench_core::{Backend, Device};

use crate::registry::every_backend;
use crate::run::RunOptions;
use crate::HarnessError;
use dlbench_spec::Spec;

/// The backends, devices and thread counts of a run, each checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Backend names, in order: built in, or known but not built (recorded as unsupported).
    pub backends: Vec<String>,
    /// Devices that exist on this machine.
    pub devices: Vec<Device>,
    /// Positive thread counts within [`Limits::threads`].
    pub threads: Vec<usize>,
}

impl Plan {
    /// The plan of `spec` with the command line's `options`, or a usage error naming the flag
    /// (`--backends`, `--device`, `--threads`) or the spec field at fault.
    pub fn new(
        spec: &Spec,
        registry: &[&dyn Backend],
        options: &RunOptions,
    ) -> Result<Plan, HarnessError> {
        let spec_field = |field: &str| format!("{}: {field}", spec.path.display());
        let (backends, backends_from) = match (&options.backends, spec.backends.is_empty()) {
            (Some(chosen), _) => (chosen.clone(), "--backends".to_string()),
            (None, false) => (spec.backends.clone(), spec_field("backends")),
            (None, true) => (every_backend(registry), "this build".to_string()),
        };
        let (devices, devices_from) = match &options.devices {
            Some(chosen) => (chosen.clone(), "--device".to_string()),
            None => (spec.devices.clone(), spec_field("devices")),
        };
        let (threads, threads_from) = match &options.threads {
            Some(chosen) => (chosen.clone(), "--threads".to_string()),
            None => (spec.threads.clone(), spec_field("threads")),
        };
        let usage = |from: &str, message: String| HarnessError::Usage(format!("{from}: {message}"));

        if backends.is_empty() && options.backends.is_none() && spec.backends.is_empty() {
            return Err(usage(
                &backends_from,
                "this build has no backend to compare but the f64 reference, which names no \
                 backend by default; give `--backends reference` to run it"
                    .to_string(),
            ));
        }
        if backends.is_empty() || backends.iter().any(|b| b.trim().is_empty()) {
            return Err(usage(
                &backends_from,
                format!("{backends:?} names no backend; give names such as `reference,native`"),
            ));
        }
        let built: Vec<&str> = registry.iter().map(|b| b.name()).collect();
        let known = |name: &str| {
            built.contains(&name) || options.planned_backends.iter().any(|p| p == name)
        };
        if let Some(unknown) = backends.iter().find(|b| !known(b)) {
            let mut names: Vec<&str> = built.clone();
            names.extend(options.planned_backends.iter().map(String::as_str));
            return Err(usage(
                &backends_from,
                format!(
                    "unknown backend `{unknown}`; the backends are {} (`dlbench list` says \
                     which are built in)",
                    names.join(", ")
                ),
            ));
        }

        let present = options
            .devices_present
            .clone()
            .unwrap_or_else(crate::environment::devices);
        if devices.is_empty() {
            return Err(usage(&devices_from, "no device given".to_string()));
        }
        if let Some(missing) = devices.iter().find(|d| !present.contains(d)) {
            let have: Vec<String> = present.iter().map(Device::to_string).collect();
            return Err(usage(
                &devices_from,
                format!(
                    "device `{missing}` does not exist on this machine, which has {}",
                    have.join(", ")
                ),
            ));
        }

        match (options.processes, &options.isolation) {
            (Some(0), _) => return Err(usage("--processes", "give at least 1".to_string())),
            (Some(n), crate::run::Isolation::InProcess) if n > 1 => {
                return Err(usage(
                    "--processes",
                    format!("{n} processes need worker processes; this run is in-process"),
                ))
            }
            _ => {}
        }
        let limits = Limits::from_env()?;
        if threads.is_empty() || threads.contains(&0) {
            return Err(usage(
                &threads_from,
                format!("{threads:?}: give positive thread counts"),
            ));
        }
        for &n in &threads {
            limits.check_threads(&threads_from, n)?;
        }
        Ok(Plan {
            backends,
            devices,
            threads,
        })
    }
}
