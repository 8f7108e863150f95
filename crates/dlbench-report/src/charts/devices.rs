//! CPU against GPU: per backend that ran (and agrees) on two devices or more, a bar per device
//! of its training step and of its inference latency, in two panels of [`BarChart`].

use dlbench_core::Device;
use dlbench_harness::results::{Results, RunRecord};
use dlbench_harness::stats::Summary;

use super::bars::{Bar, BarChart, Panel, Series};
use super::{grouped, ok_runs, time_unit, Drawing, Figure};

/// The fastest of `runs` by `summary`: the best thread count of a backend on a device.
fn fastest<'a>(
    runs: &[&'a RunRecord],
    summary: impl Fn(&'a RunRecord) -> Option<&'a Summary>,
) -> Option<&'a Summary> {
    runs.iter()
        .filter_map(|&r| summary(r))
        .filter(|s| s.median_ns.is_finite())
        .min_by(|a, b| a.median_ns.total_cmp(&b.median_ns))
}

/// One panel of a backend-per-group, device-per-bar comparison, in a unit fitting `summaries`.
fn device_panel(
    title: String,
    what: &str,
    backends: &[String],
    devices: &[Device],
    summaries: &[Vec<Option<&Summary>>],
) -> Panel {
    let largest = summaries
        .iter()
        .flatten()
        .flatten()
        .map(|s| s.median_ns)
        .fold(0.0, f64::max);
    let (per_unit, unit) = time_unit(largest);
    Panel {
        title,
        value_desc: format!("{what} ({unit})"),
        unit,
        groups: backends.to_vec(),
        series: devices
            .iter()
            .enumerate()
            .map(|(d, device)| Series {
                name: device.to_string(),
                bars: summaries
                    .iter()
                    .map(|per_device| Bar::median(per_device[d]?, per_unit))
                    .collect(),
            })
            .collect(),
        missing: None,
    }
}

/// Backends that ran (and agree) on two devices or more: per backend, a bar per device of the
/// training step median and of inference latency at the largest batch all of them measured.
pub(super) fn by_device(results: &Results) -> Option<Drawing> {
    let by_backend = grouped(ok_runs(results).map(|(_, run)| (run.backend.clone(), run)));
    let by_backend: Vec<(String, Vec<&RunRecord>)> = by_backend
        .into_iter()
        .filter(|(_, runs)| runs.iter().any(|r| r.device != runs[0].device))
        .collect();
    let mut devices: Vec<Device> = Vec::new();
    for run in by_backend.iter().flat_map(|(_, runs)| runs) {
        if !devices.contains(&run.device) {
            devices.push(run.device);
        }
    }
    // The CPU first, then GPUs by ordinal.
    devices.sort_by_key(|d| match d {
        Device::Cpu => 0,
        Device::Cuda(i) => i + 1,
    });
    // (backend, device) -> its runs; empty where the backend did not run there.
    let cells: Vec<Vec<Vec<&RunRecord>>> = by_backend
        .iter()
        .map(|(_, runs)| {
            devices
                .iter()
                .map(|d| runs.iter().copied().filter(|r| r.device == *d).collect())
                .collect()
        })
        .collect();
    let backends: Vec<String> = by_backend.iter().map(|(b, _)| b.clone()).collect();
    let training: Vec<Vec<Option<&Summary>>> = cells
        .iter()
        .map(|row| {
            row.iter()
                .map(|runs| fastest(runs, |r| Some(&r.training.as_ref()?.step_time)))
                .collect()
        })
        .collect();
    // The largest batch every (backend, device) that ran inference measured.
    let measured: Vec<Vec<usize>> = cells
        .iter()
        .flatten()
        .map(|runs| {
            runs.iter()
                .flat_map(|r| r.inference.iter().map(|i| i.batch))
                .collect()
        })
        .filter(|batches: &Vec<usize>| !batches.is_empty())
        .collect();
    let common = measured
        .first()
        .and_then(|first| {
            first
                .iter()
                .filter(|b| measured.iter().all(|m| m.contains(b)))
                .max()
        })
        .copied();
    let mut panels = vec![device_panel(
        "training step (median, best thread count)".to_string(),
        "step time",
        &backends,
        &devices,
        &training,
    )];
    if let Some(batch) = common {
        let inference: Vec<Vec<Option<&Summary>>> = cells
            .iter()
            .map(|row| {
                row.iter()
                    .map(|runs| {
                        fastest(runs, |r| {
                            Some(&r.inference.iter().find(|i| i.batch == batch)?.summary)
                        })
                    })
                    .collect()
            })
            .collect();
        panels.push(device_panel(
            format!("inference at batch {batch} (median, best thread count)"),
            "latency per pass",
            &backends,
            &devices,
            &inference,
        ));
    }
    panels.retain(Panel::has_bars);
    (!panels.is_empty()).then(|| Drawing {
        title: format!("{}: CPU against GPU, per backend", results.spec.name),
        note: None,
        figure: Figure::Bars(BarChart {
            horizontal: false,
            panels,
        }),
    })
}
