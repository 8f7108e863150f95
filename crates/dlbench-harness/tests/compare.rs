//! Noise versus change on synthetic records whose truth is known: a run slowed by 10% is
//! `slower`, its unslowed twin `no significant change`, a machine in another state `machine
//! changed: not comparable`.

use std::collections::BTreeMap;

use dlbench_core::rng::Stream;
use dlbench_core::Device;
use dlbench_harness::compare::{between_backends, between_records, Verdict, DEFAULT_THRESHOLD};
use dlbench_harness::environment::Environment;
use dlbench_harness::probe::{SpeedProbe, WORKLOAD};
use dlbench_harness::results::{
    InferenceRecord, Results, RunRecord, SpecInfo, Status, TrainingRecord, SCHEMA,
};
use dlbench_harness::stats::{summarize, summarize_processes};

/// Samples around `ns`, in 8 processes of 3 rounds of 10, with 3% noise that differs between
/// processes too; seeded by `seed`.
fn samples(ns: f64, seed: u64) -> (Vec<f64>, Vec<usize>, Vec<usize>) {
    let mut noise = Stream::new(seed, "noise", 0);
    let (mut raw, mut process, mut round) = (Vec::new(), Vec::new(), Vec::new());
    for p in 0..8 {
        let state = 1.0 + 0.02 * noise.uniform();
        for r in 0..3 {
            for _ in 0..10 {
                raw.push(ns * state * (1.0 + 0.03 * noise.uniform()));
                process.push(p);
                round.push(r);
            }
        }
    }
    (raw, process, round)
}

/// A run whose training step takes about `step_ns` and batch-1 inference about `step_ns / 10`.
fn run(backend: &str, step_ns: f64, seed: u64) -> RunRecord {
    let mut record = RunRecord::without_results(backend, Device::Cpu, 1, Status::Ok, String::new());
    record.error = None;
    let (raw, process, round) = samples(step_ns, seed);
    let step_time = summarize_processes(&raw, &process, &round);
    record.training = Some(TrainingRecord {
        batch: 32,
        steps: raw.len(),
        step_median_ns: step_time.median_ns,
        step_time,
        losses: vec![0.5; raw.len()],
        metrics: BTreeMap::new(),
        confusion: Default::default(),
        time_to_quality_s: None,
        raw_step_ns: raw,
        raw_step_round: round,
        raw_step_process: process,
    });
    let (raw, process, round) = samples(step_ns / 10.0, seed + 100);
    let summary = summarize_processes(&raw, &process, &round);
    record.inference = vec![InferenceRecord {
        batch: 1,
        throughput_per_s: 1e9 / summary.median_ns,
        summary,
        iterations_per_sample: 1,
        raw_ns: raw,
        raw_round: round,
        raw_process: process,
    }];
    record
}

/// A record of `runs` whose machine-speed probe took about `probe_ns`.
fn record(runs: Vec<RunRecord>, probe_ns: Option<f64>, seed: u64) -> Results {
    let probe = probe_ns.map(|ns| {
        let mut noise = Stream::new(seed, "probe", 0);
        let raw: Vec<f64> = (0..50)
            .map(|_| ns * (1.0 + 0.01 * noise.uniform()))
            .collect();
        let moment: Vec<usize> = (0..50).map(|i| i / 5).collect();
        SpeedProbe {
            workload: WORKLOAD.to_string(),
            summary: summarize(&raw, &moment),
            raw_ns: raw,
            raw_moment: moment,
        }
    });
    Results {
        schema: SCHEMA.to_string(),
        spec: SpecInfo {
            name: "mlp".into(),
            path: "specs/mlp.yaml".into(),
            seed: 0,
            parameters: 431,
            flops_per_sample: 862,
            loss: "binary_cross_entropy".into(),
            optimizer: "adam".into(),
            batch_size: 32,
            train_samples: 455,
            validation_samples: 114,
            test_samples: 0,
            cleaning: Vec::new(),
        },
        environment: Environment::capture(BTreeMap::new()),
        runs,
        probe,
    }
}

fn verdicts(changes: &dlbench_harness::compare::Changes, backend: &str) -> Vec<Verdict> {
    changes
        .changes
        .iter()
        .filter(|c| c.backend == backend)
        .map(|c| c.verdict)
        .collect()
}

#[test]
fn a_ten_percent_slower_twin_is_slower_and_an_equal_twin_is_not() {
    let results = record(
        vec![
            run("twin", 1e6, 1),
            run("twin-copy", 1e6, 2),
            run("twin-slowed", 1.1e6, 3),
        ],
        Some(1e6),
        1,
    );
    let changes = between_backends(&results, "twin", DEFAULT_THRESHOLD).unwrap();
    assert_eq!(
        verdicts(&changes, "twin-copy"),
        [Verdict::NoSignificantChange; 2]
    );
    assert_eq!(verdicts(&changes, "twin-slowed"), [Verdict::Slower; 2]);
    let slowed = changes
        .changes
        .iter()
        .find(|c| c.backend == "twin-slowed")
        .unwrap();
    let [lo, hi] = slowed.ratio_ci95.unwrap();
    assert!(lo < 1.1 && 1.1 < hi && lo > 1.05, "[{lo}, {hi}]");
    assert_eq!(slowed.measure, "training step");
    assert!(changes.unmatched.is_empty(), "{:?}", changes.unmatched);

    let error = between_backends(&results, "torch", DEFAULT_THRESHOLD).unwrap_err();
    assert!(
        error.contains("`torch` is not in the record, which has twin, twin-copy"),
        "{error}"
    );
}

#[test]
fn records_of_one_machine_state_give_verdicts() {
    let old = record(
        vec![run("native", 1e6, 1), run("tch", 2e6, 2)],
        Some(1e6),
        1,
    );
    let new = record(
        vec![run("native", 0.8e6, 3), run("tch", 2e6, 4)],
        Some(1e6),
        2,
    );
    let changes = between_records(&old, &new, DEFAULT_THRESHOLD);
    assert_eq!(changes.machine.changed, None);
    let (ratio, [lo, hi]) = changes.machine.probe_ratio.unwrap();
    assert!(lo < ratio && ratio < hi && lo < 1.0 && 1.0 < hi);
    assert_eq!(verdicts(&changes, "native"), [Verdict::Faster; 2]);
    assert_eq!(verdicts(&changes, "tch"), [Verdict::NoSignificantChange; 2]);
    // Within the threshold, a difference the intervals resolve is still no change.
    let a_little = record(vec![run("native", 1.02e6, 1)], Some(1e6), 2);
    let small = between_records(&old, &a_little, DEFAULT_THRESHOLD);
    assert_eq!(
        verdicts(&small, "native"),
        [Verdict::NoSignificantChange; 2]
    );
    assert_eq!(small.unmatched, ["tch cpu x1: not in the new record"]);
}

#[test]
fn a_machine_in_another_state_gives_no_verdict() {
    let old = record(vec![run("native", 1e6, 1)], Some(1e6), 1);
    // Everything 40% slower, the probe too: the machine, not the code.
    let new = record(vec![run("native", 1.4e6, 2)], Some(1.4e6), 2);
    let changes = between_records(&old, &new, DEFAULT_THRESHOLD);
    let why = changes.machine.changed.as_deref().unwrap();
    assert!(why.contains("probe took 1.40x as long"), "{why}");
    assert_eq!(verdicts(&changes, "native"), [Verdict::MachineChanged; 2]);
    assert_eq!(
        Verdict::MachineChanged.to_string(),
        "machine changed: not comparable"
    );

    let mut elsewhere = record(vec![run("native", 1e6, 2)], Some(1e6), 2);
    elsewhere.environment.cpu = "another CPU".into();
    let changes = between_records(&old, &elsewhere, DEFAULT_THRESHOLD);
    assert!(changes
        .machine
        .changed
        .as_ref()
        .unwrap()
        .contains("another machine"));
    assert_eq!(verdicts(&changes, "native"), [Verdict::MachineChanged; 2]);
}

#[test]
fn without_probes_the_verdicts_say_what_was_not_checked() {
    let old = record(vec![run("native", 1e6, 1)], None, 1);
    let new = record(
        vec![run("native", 1.2e6, 2), run("tch", 1e6, 3)],
        Some(1e6),
        2,
    );
    let changes = between_records(&old, &new, DEFAULT_THRESHOLD);
    assert_eq!(changes.machine.changed, None);
    assert!(changes.machine.notes[0].contains("no machine-speed probe"));
    assert_eq!(verdicts(&changes, "native"), [Verdict::Slower; 2]);
    assert_eq!(changes.unmatched, ["tch cpu x1: not in the old record"]);
}

#[test]
fn a_record_whose_later_processes_slowed_gives_no_verdict_for_that_measurement() {
    let old = record(vec![run("native", 1e6, 1)], Some(1e6), 1);
    // Halfway through the new run the machine slowed training by 40% (the probe did not feel
    // it): the later processes' steps are slower, its inference is not.
    let mut drifted = run("native", 1e6, 2);
    let training = drifted.training.as_mut().unwrap();
    for (ns, p) in training
        .raw_step_ns
        .iter_mut()
        .zip(&training.raw_step_process)
    {
        if *p >= 4 {
            *ns *= 1.4;
        }
    }
    let step_time = summarize_processes(
        &training.raw_step_ns,
        &training.raw_step_process,
        &training.raw_step_round,
    );
    training.step_median_ns = step_time.median_ns;
    training.step_time = step_time;
    let new = record(vec![drifted], Some(1e6), 2);
    let changes = between_records(&old, &new, DEFAULT_THRESHOLD);
    assert_eq!(changes.machine.changed, None);
    assert_eq!(
        verdicts(&changes, "native"),
        [Verdict::MachineChanged, Verdict::NoSignificantChange]
    );
    assert!(
        changes.machine.notes.iter().any(|n| n.contains(
            "native cpu x1 training step in the new record: its later processes took 1.3"
        )),
        "{:?}",
        changes.machine.notes
    );
    // A change that held the whole run keeps its verdict.
    let slower = record(vec![run("native", 1.4e6, 2)], Some(1e6), 2);
    let changes = between_records(&old, &slower, DEFAULT_THRESHOLD);
    assert_eq!(verdicts(&changes, "native"), [Verdict::Slower; 2]);
}
