//! Noise versus change: every median of one record against the same median of another (or of
//! another backend in the same record), as a ratio with its bootstrap interval and a verdict.
//!
//! A verdict of `faster` or `slower` needs both: the 95% interval of the ratio excludes 1 (the
//! difference is beyond the measurements' own noise) and the ratio is beyond the threshold
//! (the difference is big enough to matter on a machine whose state drifts by a few percent).
//! Two records are only compared when the machine was the same and as fast: the same CPU, and
//! machine-speed probes ([`crate::probe`]) that agree; otherwise each change reads `machine
//! changed: not comparable` rather than a false verdict.

use std::fmt;

use dlbench_core::Device;

use crate::bootstrap::{ratio_ci95, Clusters};
use crate::results::{Results, RunRecord, Status};

/// The change below which a difference is not called one, whatever its interval: 5%.
pub const DEFAULT_THRESHOLD: f64 = 0.05;

/// What a change comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Takes less time, beyond noise and threshold.
    Faster,
    /// Takes more time, beyond noise and threshold.
    Slower,
    /// Within noise or within the threshold.
    NoSignificantChange,
    /// The machine itself was in another state (or another machine): no verdict.
    MachineChanged,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::NoSignificantChange => "no significant change",
            Verdict::MachineChanged => "machine changed: not comparable",
        })
    }
}

/// One median against its counterpart.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The run measured in the newer record (or the backend compared with the baseline).
    pub backend: String,
    /// Its device.
    pub device: Device,
    /// Its thread count.
    pub threads: usize,
    /// What was timed: `training step` or `inference batch N`.
    pub measure: String,
    /// The baseline's median, nanoseconds (old record, or the baseline backend).
    pub old_ns: f64,
    /// The compared median, nanoseconds.
    pub new_ns: f64,
    /// `new_ns / old_ns`: above 1 is slower.
    pub ratio: f64,
    /// 95% bootstrap interval of the ratio; `None` with fewer than two samples on a side.
    pub ratio_ci95: Option<[f64; 2]>,
    /// What it comes to.
    pub verdict: Verdict,
}

/// Whether two records' machine was the same and as fast.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MachineCheck {
    /// Why the records are not comparable; `None` when they are.
    pub changed: Option<String>,
    /// The probe's median in the newer record over the older's, with its interval.
    pub probe_ratio: Option<(f64, [f64; 2])>,
    /// What could not be checked, and caveats.
    pub notes: Vec<String>,
}

/// Every change found, and the machine check behind the verdicts.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// What was compared with what, in words.
    pub title: String,
    /// The machine check.
    pub machine: MachineCheck,
    /// One per median found on both sides, in the newer record's order.
    pub changes: Vec<Change>,
    /// Measurements on one side only.
    pub unmatched: Vec<String>,
}

/// One timed measurement of a run: its name and its samples, grouped for the bootstrap.
struct Measurement {
    name: String,
    median_ns: f64,
    clusters: Clusters,
}

fn measurements(run: &RunRecord) -> Vec<Measurement> {
    if run.status != Status::Ok {
        return Vec::new();
    }
    let mut all = Vec::new();
    if let Some(t) = run.training.as_ref().filter(|t| !t.raw_step_ns.is_empty()) {
        all.push(Measurement {
            name: "training step".to_string(),
            median_ns: t.step_time.median_ns,
            clusters: Clusters::new(&t.raw_step_ns, &t.raw_step_process, &t.raw_step_round),
        });
    }
    for i in run.inference.iter().filter(|i| !i.raw_ns.is_empty()) {
        all.push(Measurement {
            name: format!("inference batch {}", i.batch),
            median_ns: i.summary.median_ns,
            clusters: Clusters::new(&i.raw_ns, &i.raw_process, &i.raw_round),
        });
    }
    all
}

fn verdict(ratio: f64, ci: Option<[f64; 2]>, threshold: f64) -> Verdict {
    match ci {
        Some([lo, _]) if lo > 1.0 && ratio > 1.0 + threshold => Verdict::Slower,
        Some([_, hi]) if hi < 1.0 && ratio < 1.0 / (1.0 + threshold) => Verdict::Faster,
        _ => Verdict::NoSignificantChange,
    }
}

/// How two runs are compared: two records (before and after), or two backends of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pairing {
    /// Two records: their processes ran at different times, so each record's own drift is
    /// checked.
    Records,
    /// Two backends of one `--processes` run: process `k` of each is drawn together.
    Backends,
}

/// The later half of a record's processes against the earlier half, when they differ as a
/// change would: the machine changed during that run (a state of half a minute, say, that the
/// probe's workload did not feel), and a ratio across records would blame the code for it.
fn drift(clusters: &Clusters, threshold: f64) -> Option<String> {
    let (earlier, later) = clusters.halves()?;
    let ratio = later.median() / earlier.median();
    let ci = ratio_ci95(&earlier, &later, false)?;
    (verdict(ratio, Some(ci), threshold) != Verdict::NoSignificantChange).then(|| {
        format!(
            "its later processes took {ratio:.2}x as long as its earlier ones [{:.2}, {:.2}]",
            ci[0], ci[1]
        )
    })
}

/// The changes of run `new` against run `old`, measurement by measurement. A measurement that
/// drifted within either record gets no verdict, and a note saying why.
fn compare_runs(
    old: &RunRecord,
    new: &RunRecord,
    pairing: Pairing,
    threshold: f64,
    unmatched: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Vec<Change> {
    let olds = measurements(old);
    let news = measurements(new);
    for o in olds
        .iter()
        .filter(|o| !news.iter().any(|n| n.name == o.name))
    {
        unmatched.push(format!("{}: {} only in the baseline", label(old), o.name));
    }
    news.into_iter()
        .filter_map(|n| {
            let Some(o) = olds.iter().find(|o| o.name == n.name) else {
                unmatched.push(format!("{}: {} has no baseline", label(new), n.name));
                return None;
            };
            let ratio = n.median_ns / o.median_ns;
            let ci = ratio_ci95(&o.clusters, &n.clusters, pairing == Pairing::Backends);
            let mut verdict = verdict(ratio, ci, threshold);
            if pairing == Pairing::Records {
                for (side, clusters) in [("old", &o.clusters), ("new", &n.clusters)] {
                    if let Some(why) = drift(clusters, threshold) {
                        notes.push(format!(
                            "{} {} in the {side} record: {why}; the machine changed during \
                             that run",
                            label(new),
                            n.name
                        ));
                        verdict = Verdict::MachineChanged;
                    }
                }
            }
            Some(Change {
                backend: new.backend.clone(),
                device: new.device,
                threads: new.threads,
                measure: n.name,
                old_ns: o.median_ns,
                new_ns: n.median_ns,
                ratio,
                ratio_ci95: ci,
                verdict,
            })
        })
        .collect()
}

fn same_configuration(a: &RunRecord, b: &RunRecord) -> bool {
    (a.backend.as_str(), a.device, a.threads) == (b.backend.as_str(), b.device, b.threads)
}

fn label(run: &RunRecord) -> String {
    crate::configuration::label(&run.backend, run.device, run.threads)
}

fn one_process_note(records: &[&Results]) -> Option<String> {
    let single = records.iter().flat_map(|r| &r.runs).any(|run| {
        run.training
            .as_ref()
            .is_some_and(|t| t.step_time.processes < 2)
            || run.inference.iter().any(|i| i.summary.processes < 2)
    });
    single.then(|| {
        "some measurements come from one process: the intervals cannot see how processes \
         differ (memory layout, core, frequency state); `dlbench run --processes 10` can"
            .to_string()
    })
}

/// Every run of `new` against the same backend, device and thread count in `old`.
pub fn between_records(old: &Results, new: &Results, threshold: f64) -> Changes {
    let mut machine = check_machine(old, new, threshold);
    let mut unmatched = Vec::new();
    let mut changes = Vec::new();
    for n in &new.runs {
        match old.runs.iter().find(|o| same_configuration(o, n)) {
            Some(o) => changes.extend(compare_runs(
                o,
                n,
                Pairing::Records,
                threshold,
                &mut unmatched,
                &mut machine.notes,
            )),
            None => unmatched.push(format!("{}: not in the old record", label(n))),
        }
    }
    for o in &old.runs {
        if !new.runs.iter().any(|n| same_configuration(o, n)) {
            unmatched.push(format!("{}: not in the new record", label(o)));
        }
    }
    if machine.changed.is_some() {
        for change in &mut changes {
            change.verdict = Verdict::MachineChanged;
        }
    }
    machine.notes.extend(one_process_note(&[old, new]));
    Changes {
        title: format!("{} (new) against {} (old)", describe(new), describe(old)),
        machine,
        changes,
        unmatched,
    }
}

/// Every other backend of `results` against `baseline` on the same device and thread count.
/// The runs were measured in one sitting (and, with `--processes`, interleaved), so no probe
/// is needed and process `k` of each is paired with process `k` of the baseline.
pub fn between_backends(
    results: &Results,
    baseline: &str,
    threshold: f64,
) -> Result<Changes, String> {
    if !results.runs.iter().any(|r| r.backend == baseline) {
        let names: Vec<&str> = results.runs.iter().map(|r| r.backend.as_str()).collect();
        return Err(format!(
            "--baseline `{baseline}` is not in the record, which has {}",
            names.join(", ")
        ));
    }
    let mut unmatched = Vec::new();
    let mut changes = Vec::new();
    for run in results.runs.iter().filter(|r| r.backend != baseline) {
        let base = results
            .runs
            .iter()
            .find(|b| b.backend == baseline && (b.device, b.threads) == (run.device, run.threads));
        match base {
            Some(b) => changes.extend(compare_runs(
                b,
                run,
                Pairing::Backends,
                threshold,
                &mut unmatched,
                &mut Vec::new(),
            )),
            None => unmatched.push(format!("{}: no {baseline} run beside it", label(run))),
        }
    }
    Ok(Changes {
        title: format!("each backend against {baseline}, {}", describe(results)),
        machine: MachineCheck {
            notes: one_process_note(&[results]).into_iter().collect(),
            ..MachineCheck::default()
        },
        changes,
        unmatched,
    })
}

fn describe(results: &Results) -> String {
    let git = results
        .environment
        .git
        .as_deref()
        .unwrap_or("no git commit");
    format!("{} at {git}", results.spec.name)
}

/// Whether `old` and `new` were taken on the same machine in the same state.
pub fn check_machine(old: &Results, new: &Results, threshold: f64) -> MachineCheck {
    let mut check = MachineCheck::default();
    let (a, b) = (&old.environment, &new.environment);
    if (&a.cpu, a.cores) != (&b.cpu, b.cores) {
        check.changed = Some(format!(
            "another machine: {} with {} cores, then {} with {}",
            a.cpu, a.cores, b.cpu, b.cores
        ));
        return check;
    }
    let (Some(p), Some(q)) = (&old.probe, &new.probe) else {
        check.notes.push(
            "a record has no machine-speed probe: that the machine was as fast is not checked"
                .to_string(),
        );
        return check;
    };
    if p.workload != q.workload {
        check.notes.push(format!(
            "the machine-speed probes timed different workloads (`{}`, `{}`): not checked",
            p.workload, q.workload
        ));
        return check;
    }
    let ratio = q.summary.median_ns / p.summary.median_ns;
    let old_probe = Clusters::new(&p.raw_ns, &[], &p.raw_moment);
    let new_probe = Clusters::new(&q.raw_ns, &[], &q.raw_moment);
    let Some(ci) = ratio_ci95(&old_probe, &new_probe, false) else {
        check
            .notes
            .push("too few machine-speed probe timings: not checked".to_string());
        return check;
    };
    check.probe_ratio = Some((ratio, ci));
    if verdict(ratio, Some(ci), threshold) != Verdict::NoSignificantChange {
        check.changed = Some(format!(
            "the machine-speed probe took {ratio:.2}x as long [{:.2}, {:.2}]: the machine was \
             in another state",
            ci[0], ci[1]
        ));
    }
    check
}
