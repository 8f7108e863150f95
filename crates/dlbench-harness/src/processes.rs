//! `dlbench run --processes N`: one backend x device x thread count measured in N worker
//! processes, interleaved in time with the other configurations' (pyperf's method: a process's
//! memory layout, the core it lands on and the frequency state it starts in are effects that no
//! interval taken inside one process can see).
//!
//! The first process of a configuration does everything (agreement, training, timing); the
//! others only time, with a share of the timing budget ([`share`]), since agreement and the
//! loss trajectory are deterministic. [`merge`] folds the N records into one whose timings
//! carry each sample's process, so that its intervals resample processes, then rounds.

use dlbench_spec::BenchmarkSpec;

use crate::results::{InferenceRecord, RunRecord, Status, TrainingRecord};
use crate::stats::{median, summarize_processes};

/// Which of the N processes of a configuration a worker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// From 0; process 0 checks agreement, the others only time.
    pub index: usize,
    /// N, at least 1.
    pub of: usize,
}

impl Default for Share {
    fn default() -> Self {
        Share { index: 0, of: 1 }
    }
}

impl Share {
    /// True for the processes after the first: agreement was checked by process 0.
    pub fn timing_only(self) -> bool {
        self.index > 0
    }
}

/// One process's part of the inference budget: the time and samples divided by the processes,
/// at least two rounds each (a process of one round cannot show drift within it) and the full
/// warm-up (every process starts cold).
pub fn share(budget: &BenchmarkSpec, processes: usize) -> BenchmarkSpec {
    let n = processes.max(1);
    if n == 1 {
        return budget.clone();
    }
    BenchmarkSpec {
        warmup_s: budget.warmup_s,
        min_samples: budget.min_samples.div_ceil(n).max(2),
        budget_s: budget.budget_s / n as f64,
        rounds: budget.rounds.div_ceil(n).max(2),
    }
}

/// Folds the records of one configuration's processes (process 0 first) into one. The first
/// gives the agreement, losses and metrics; the timings of all are pooled, each sample tagged
/// with its process; peak RSS is the largest, preparation the median. A later process that
/// failed makes the configuration failed, naming it, with the others' timings kept.
pub fn merge(records: Vec<RunRecord>) -> RunRecord {
    let n = records.len();
    let mut records = records.into_iter();
    let Some(mut merged) = records.next() else {
        panic!("merge needs the first process's record");
    };
    let rest: Vec<RunRecord> = records.collect();
    if rest.is_empty() {
        return merged;
    }
    for (k, other) in rest.iter().enumerate() {
        if other.status != Status::Ok && merged.status == Status::Ok {
            merged.status = Status::Failed;
            merged.error = Some(format!(
                "process {} of {n}: {}",
                k + 2,
                other.error.as_deref().unwrap_or("failed")
            ));
        }
    }
    let all: Vec<&RunRecord> = std::iter::once(&merged).chain(&rest).collect();
    let training = merge_training(&all);
    let inference = merge_inference(&all);
    let peak_rss_bytes = all.iter().filter_map(|r| r.peak_rss_bytes).max();
    let prepares: Vec<f64> = all.iter().filter_map(|r| r.prepare_ns).collect();
    merged.prepare_ns = (!prepares.is_empty()).then(|| median(&prepares));
    merged.peak_rss_bytes = peak_rss_bytes;
    merged.training = training;
    merged.inference = inference;
    merged.notes.push(format!(
        "timed in {n} worker processes, interleaved with the other runs; intervals resample \
         processes, then rounds"
    ));
    merged
}

fn merge_training(all: &[&RunRecord]) -> Option<TrainingRecord> {
    let mut merged = all[0].training.clone()?;
    let (mut raw, mut round, mut process) = (Vec::new(), Vec::new(), Vec::new());
    let mut times_to_quality = Vec::new();
    for (p, training) in all
        .iter()
        .enumerate()
        .filter_map(|(p, r)| Some((p, r.training.as_ref()?)))
    {
        raw.extend_from_slice(&training.raw_step_ns);
        round.extend(rounds_of(
            &training.raw_step_round,
            training.raw_step_ns.len(),
        ));
        process.extend(std::iter::repeat_n(p, training.raw_step_ns.len()));
        times_to_quality.extend(training.time_to_quality_s);
    }
    merged.step_time = summarize_processes(&raw, &process, &round);
    merged.step_median_ns = merged.step_time.median_ns;
    // Training is deterministic, so every process meets the target at the same step or none
    // does; its time varies with the machine like any other timing.
    if !times_to_quality.is_empty() {
        merged.time_to_quality_s = Some(median(&times_to_quality));
    }
    merged.raw_step_ns = raw;
    merged.raw_step_round = round;
    merged.raw_step_process = process;
    Some(merged)
}

fn merge_inference(all: &[&RunRecord]) -> Vec<InferenceRecord> {
    let first = &all[0].inference;
    first
        .iter()
        .map(|one| {
            let mut merged = one.clone();
            let (mut raw, mut round, mut process) = (Vec::new(), Vec::new(), Vec::new());
            for (p, record) in all.iter().enumerate() {
                if let Some(same) = record.inference.iter().find(|i| i.batch == one.batch) {
                    raw.extend_from_slice(&same.raw_ns);
                    round.extend(rounds_of(&same.raw_round, same.raw_ns.len()));
                    process.extend(std::iter::repeat_n(p, same.raw_ns.len()));
                }
            }
            merged.summary = summarize_processes(&raw, &process, &round);
            merged.throughput_per_s = merged.batch as f64 / (merged.summary.median_ns * 1e-9);
            merged.raw_ns = raw;
            merged.raw_round = round;
            merged.raw_process = process;
            merged
        })
        .collect()
}

/// The rounds of `n` samples: as recorded, or all in round 0 for a record without them.
fn rounds_of(recorded: &[usize], n: usize) -> Vec<usize> {
    if recorded.len() == n {
        recorded.to_vec()
    } else {
        vec![0; n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::summarize;
    use dlbench_core::Device;

    fn timed(step_ns: f64, latency_ns: f64, rss: u64) -> RunRecord {
        let mut record =
            RunRecord::without_results("native", Device::Cpu, 1, Status::Ok, String::new());
        record.error = None;
        record.peak_rss_bytes = Some(rss);
        let steps = vec![step_ns, step_ns + 1.0, step_ns + 2.0, step_ns + 3.0];
        record.training = Some(TrainingRecord {
            batch: 32,
            steps: 4,
            step_median_ns: step_ns,
            step_time: summarize(&steps, &[0, 0, 1, 1]),
            losses: vec![0.7, 0.6, 0.5, 0.4],
            metrics: Default::default(),
            confusion: Default::default(),
            time_to_quality_s: Some(step_ns / 1e9),
            raw_step_ns: steps,
            raw_step_round: vec![0, 0, 1, 1],
            raw_step_process: Vec::new(),
        });
        record.inference = vec![InferenceRecord {
            batch: 8,
            summary: summarize(&[latency_ns, latency_ns], &[0, 1]),
            throughput_per_s: 0.0,
            iterations_per_sample: 1,
            raw_ns: vec![latency_ns, latency_ns],
            raw_round: vec![0, 1],
            raw_process: Vec::new(),
        }];
        record
    }

    #[test]
    fn the_timings_of_every_process_are_pooled_and_tagged() {
        let merged = merge(vec![
            timed(100.0, 10.0, 5),
            timed(200.0, 20.0, 9),
            timed(300.0, 30.0, 7),
        ]);
        assert_eq!(merged.status, Status::Ok);
        let training = merged.training.unwrap();
        assert_eq!(training.raw_step_ns.len(), 12);
        assert_eq!(
            training.raw_step_process,
            [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
        );
        assert_eq!(
            training.raw_step_round,
            [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1]
        );
        assert_eq!(training.step_time.processes, 3);
        assert_eq!(training.step_time.rounds, 6);
        assert_eq!(training.step_median_ns, 201.5);
        assert_eq!(training.losses, [0.7, 0.6, 0.5, 0.4], "the first process's");
        assert_eq!(training.time_to_quality_s, Some(200.0 / 1e9));
        let inference = &merged.inference[0];
        assert_eq!(inference.raw_process, [0, 0, 1, 1, 2, 2]);
        assert_eq!(inference.summary.median_ns, 20.0);
        assert_eq!(inference.throughput_per_s, 8.0 / 20e-9);
        assert_eq!(merged.peak_rss_bytes, Some(9));
        assert!(merged
            .notes
            .iter()
            .any(|n| n.contains("3 worker processes")));
    }

    #[test]
    fn a_later_process_that_failed_fails_the_configuration() {
        let mut crashed = RunRecord::without_results(
            "native",
            Device::Cpu,
            1,
            Status::Failed,
            "killed by SIGSEGV".into(),
        );
        crashed.peak_rss_bytes = None;
        let merged = merge(vec![timed(100.0, 10.0, 5), crashed]);
        assert_eq!(merged.status, Status::Failed);
        assert_eq!(
            merged.error.as_deref(),
            Some("process 2 of 2: killed by SIGSEGV")
        );
        assert_eq!(merged.training.unwrap().raw_step_ns.len(), 4, "kept");
    }

    #[test]
    fn one_process_is_left_as_it_is() {
        let one = timed(100.0, 10.0, 5);
        assert_eq!(merge(vec![one.clone()]), one);
    }

    #[test]
    fn each_process_gets_its_share_of_the_budget() {
        let budget = BenchmarkSpec {
            warmup_s: 0.5,
            min_samples: 10,
            budget_s: 3.0,
            rounds: 10,
        };
        assert_eq!(share(&budget, 1), budget);
        let each = share(&budget, 4);
        assert_eq!(
            (each.warmup_s, each.min_samples, each.budget_s, each.rounds),
            (0.5, 3, 0.75, 3)
        );
        let many = share(&budget, 20);
        assert_eq!((many.min_samples, many.rounds), (2, 2));
    }
}
