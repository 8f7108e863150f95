//! A record built in code with every kind of run a report must survive: the oracle, a fast
//! agreeing backend, a failed one, an unsupported one, an inference-only one, one that
//! disagrees, and one from an old record without `tolerance_used`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dlbench_core::Device;
use dlbench_harness::environment::Environment;
use dlbench_harness::results::{
    Agreement, AgreementCheck, InferenceRecord, Results, RunRecord, SpecInfo, Status,
    TrainingRecord, SCHEMA,
};
use dlbench_harness::stats::Summary;

use crate::{cells, render_markdown, verdict, Report, ReportError};

mod charts;

fn summary(median_ns: f64, ci: [f64; 2]) -> Summary {
    Summary {
        samples: 100,
        median_ns,
        p90_ns: median_ns * 1.1,
        p99_ns: median_ns * 1.2,
        mad_ns: median_ns * 0.01,
        median_ci95_ns: ci,
        rounds: 10,
        processes: 1,
    }
}

fn inference(batch: usize, median_ns: f64, ci: [f64; 2]) -> InferenceRecord {
    InferenceRecord {
        batch,
        summary: summary(median_ns, ci),
        throughput_per_s: batch as f64 / median_ns * 1e9,
        iterations_per_sample: 1,
        raw_ns: vec![median_ns],
        raw_round: vec![0],
        raw_process: Vec::new(),
    }
}

fn training(step_ns: f64, ci: [f64; 2]) -> TrainingRecord {
    TrainingRecord {
        batch: 32,
        steps: 10,
        step_median_ns: step_ns,
        step_time: summary(step_ns, ci),
        losses: vec![0.71, 0.4, 0.09],
        metrics: BTreeMap::from([
            ("val_accuracy".to_string(), 0.97),
            ("val_loss".to_string(), 0.09),
        ]),
        confusion: Default::default(),
        time_to_quality_s: None,
        raw_step_ns: vec![step_ns],
        raw_step_round: vec![0],
        raw_step_process: Vec::new(),
    }
}

fn check(tolerance_used: f64, pass: bool) -> AgreementCheck {
    AgreementCheck {
        max_abs: 1e-7,
        max_rel: 1e-6,
        max_ulp: 12,
        tolerance_used,
        pass,
        worst: Some("logits".to_string()),
        first_divergent_node: (!pass).then(|| "dense_1".to_string()),
        first_divergent_op: (!pass).then(|| "dense".to_string()),
        divergence: None,
        notes: Vec::new(),
        error: None,
    }
}

fn agreement(forward: f64, gradients: Option<f64>, pass: bool) -> Agreement {
    Agreement {
        forward: Some(check(forward, pass)),
        gradients: gradients.map(|t| check(t, true)),
        training: gradients.map(|t| check(t, true)),
        notes: Vec::new(),
    }
}

fn ok_run(backend: &str) -> RunRecord {
    let mut run = RunRecord::without_results(backend, Device::Cpu, 1, Status::Ok, String::new());
    run.error = None;
    run
}

fn record() -> Results {
    let mut reference = ok_run("reference");
    reference.inference = vec![
        inference(1, 20_000.0, [19_000.0, 21_000.0]),
        inference(32, 400_000.0, [390_000.0, 410_000.0]),
    ];
    reference.training = Some(training(900_000.0, [880_000.0, 920_000.0]));

    let mut native = ok_run("native");
    native.agreement = Some(agreement(0.31, Some(0.05), true));
    native.inference = vec![
        inference(1, 8_000.0, [7_900.0, 8_100.0]),
        inference(32, 100_000.0, [99_000.0, 101_000.0]),
    ];
    native.training = Some(training(300_000.0, [290_000.0, 310_000.0]));

    // Faster than anyone, but wrong: must not win a speed verdict.
    let mut wrong = ok_run("wrongfast");
    wrong.agreement = Some(agreement(3.2, None, false));
    wrong.inference = vec![inference(1, 1_000.0, [900.0, 1_100.0])];

    let mut inference_only = ok_run("tract");
    inference_only.agreement = Some(agreement(0.004, None, true));
    inference_only.inference = vec![inference(1, 9_000.0, [8_500.0, 9_500.0])];
    inference_only
        .notes
        .push("composed: tract has no fused BCE".to_string());

    // An old record: passes, but `tolerance_used` was not kept.
    let mut old = ok_run("candle");
    old.agreement = Some(agreement(f64::NAN, Some(f64::NAN), true));
    old.training = Some(training(600_000.0, [500_000.0, 700_000.0]));
    old.training
        .as_mut()
        .unwrap()
        .metrics
        .insert("val_mse".to_string(), f64::NAN);

    let failed = RunRecord::without_results(
        "burn",
        Device::Cpu,
        1,
        Status::Failed,
        "worker crashed | signal 11 while preparing the session, after a long while\n\
         stderr: segfault"
            .to_string(),
    );
    let unsupported = RunRecord::without_results(
        "tch",
        Device::Cpu,
        1,
        Status::Unsupported,
        "not in this build (feature `tch`)".to_string(),
    );
    Results {
        schema: SCHEMA.to_string(),
        spec: SpecInfo {
            name: "mlp".to_string(),
            path: "specs/mlp.yaml".to_string(),
            seed: 0,
            parameters: 431,
            flops_per_sample: 1102,
            loss: "binary_cross_entropy".to_string(),
            optimizer: "adam".to_string(),
            batch_size: 32,
            train_samples: 456,
            validation_samples: 113,
            test_samples: 0,
            cleaning: Vec::new(),
        },
        environment: Environment {
            cpu: "Test CPU 9000".to_string(),
            cpu_flags: vec!["avx2".to_string(), "fma".to_string()],
            cores: 2,
            os: "Linux".to_string(),
            rustc: "rustc 1.95.0".to_string(),
            versions: BTreeMap::from([("dlbench".to_string(), "0.1.0".to_string())]),
            git: None,
            isa_cap: None,
        },
        runs: vec![
            reference,
            native,
            wrong,
            inference_only,
            old,
            failed,
            unsupported,
        ],
        probe: None,
    }
}

fn rendered() -> String {
    let report = Report::new(vec![(PathBuf::from("out/results.json"), record())]).unwrap();
    render_markdown(&report)
}

/// The line of the recommendation that starts with `title`.
fn bullet<'a>(markdown: &'a str, title: &str) -> &'a str {
    markdown
        .lines()
        .find(|l| l.starts_with(&format!("- **{title}")))
        .unwrap_or_else(|| panic!("no bullet {title} in\n{markdown}"))
}

#[test]
fn every_kind_of_run_renders_with_marked_cells_and_no_raw_nan() {
    let md = rendered();
    for backend in [
        "reference",
        "native",
        "wrongfast",
        "tract",
        "candle",
        "burn",
        "tch",
    ] {
        assert!(
            md.contains(&format!("| {backend} |")),
            "{backend} row in\n{md}"
        );
    }
    assert!(!md.contains("NaN"), "raw NaN in\n{md}");
    assert!(md.contains("n/a (failed)"), "{md}");
    assert!(md.contains("n/a (unsupported)"), "{md}");
    assert!(md.contains("n/a (disagrees: not timed)"), "{md}");
    assert!(md.contains("pass (share not recorded)"), "{md}");
    assert!(md.contains("320% FAIL"), "{md}");
    assert!(md.contains("`dense_1` (dense) in forward"), "{md}");
    assert!(md.contains("<1%"), "{md}");
    // The failure's first line is in a note, with its pipe escaped; stderr lines are not.
    assert!(
        md.contains("**burn** failed: worker crashed \\| signal 11"),
        "{md}"
    );
    assert!(!md.contains("segfault"), "{md}");
    assert!(md.contains("(avx2, fma)"), "{md}");
}

#[test]
fn the_environment_line_says_which_kernels_ran_and_the_cap() {
    let mut results = record();
    results.environment.isa_cap = Some("avx2".to_string());
    for run in &mut results.runs {
        if run.backend == "native" {
            run.kernels = Some("avx2".to_string());
        }
    }
    let md = render_markdown(&Report::new(vec![(PathBuf::from("r.json"), results)]).unwrap());
    assert!(
        md.contains("native kernels: avx2, capped by DLBENCH_ISA=avx2;"),
        "{md}"
    );
    // Without kernels or a cap, the line does not mention them.
    assert!(!rendered().contains("kernels:") && !rendered().contains("DLBENCH_ISA"));
}

#[test]
fn every_table_row_has_as_many_cells_as_its_header() {
    let md = rendered();
    let mut expected = None;
    for line in md.lines() {
        if !line.starts_with('|') {
            expected = None;
            continue;
        }
        // Escaped pipes are inside cells, not between them.
        let cells = line.replace("\\|", "").matches('|').count();
        match expected {
            None => expected = Some(cells),
            Some(n) => assert_eq!(cells, n, "ragged row {line}\n{md}"),
        }
    }
}

#[test]
fn speed_verdicts_name_the_fastest_agreeing_backend_and_the_ratio() {
    let md = rendered();
    let latency = bullet(&md, "Lowest-latency inference (batch 1)");
    // wrongfast is faster but disagrees; tract at 9 us is the runner-up: 9000 / 8000.
    assert!(latency.contains("**native**"), "{latency}");
    assert!(latency.contains("1.12x faster than tract"), "{latency}");
    assert!(!latency.contains("wrongfast"), "{latency}");
    assert!(!latency.contains("not distinguishable"), "{latency}");

    // Only native measured batch 32 beside the reference, which is the oracle, not a
    // contender.
    let largest = bullet(&md, "Inference at batch 32");
    assert!(largest.contains("the only backend measured"), "{largest}");
    assert!(!largest.contains("than reference"), "{largest}");

    let training = bullet(&md, "Training throughput (batch 32)");
    assert!(training.contains("**native**"), "{training}");
    assert!(training.contains("2.00x faster than candle"), "{training}");
}

#[test]
fn overlapping_intervals_are_called_indistinguishable() {
    let mut results = record();
    let tract = results
        .runs
        .iter_mut()
        .find(|r| r.backend == "tract")
        .unwrap();
    tract.inference = vec![inference(1, 8_050.0, [7_950.0, 8_200.0])];
    let ranking = verdict::inference_ranking(&results, 1);
    assert_eq!(ranking[0].label, "native");
    let md = render_markdown(&Report::new(vec![(PathBuf::from("r.json"), results)]).unwrap());
    let latency = bullet(&md, "Lowest-latency inference (batch 1)");
    assert!(
        latency.contains("not distinguishable on this machine"),
        "{latency}"
    );
}

#[test]
fn fidelity_ranks_the_smallest_share_and_leaves_old_records_unranked() {
    let ranking = verdict::fidelity_ranking(&record());
    let labels: Vec<&str> = ranking.iter().map(|f| f.label.as_str()).collect();
    assert_eq!(labels, ["tract", "native", "candle"]);
    let md = rendered();
    let fidelity = bullet(&md, "Numerical fidelity");
    assert!(
        fidelity.contains("**tract**, worst error <1%"),
        "{fidelity}"
    );
    assert!(fidelity.contains("against 31% for native"), "{fidelity}");
    assert!(fidelity.contains("not ranked"), "{fidelity}");
    assert!(fidelity.contains("candle"), "{fidelity}");
}

#[test]
fn fidelity_compares_backends_on_the_checks_they_all_ran() {
    // An inference-only backend at 2% on forward, and one at 1% on forward but 50% on its
    // gradients: on the check both ran (forward), the second is the closer.
    let mut results = record();
    let mut forward_only = ok_run("forward-only");
    forward_only.agreement = Some(agreement(0.02, None, true));
    let mut trains = ok_run("trains");
    trains.agreement = Some(agreement(0.01, Some(0.5), true));
    results.runs = vec![forward_only, trains];
    let ranking = verdict::fidelity_ranking(&results);
    let labels: Vec<&str> = ranking.iter().map(|f| f.label.as_str()).collect();
    assert_eq!(labels, ["trains", "forward-only"]);
    assert_eq!(ranking[0].checks, ["forward"]);
    let text = verdict::recommendations(&results).join("\n");
    assert!(text.contains("compared on forward"), "{text}");
}

#[test]
fn portability_and_caveats_say_what_did_not_run_and_why() {
    let md = rendered();
    let portability = bullet(&md, "Portability");
    assert!(
        portability.contains("failed: burn (worker crashed"),
        "{portability}"
    );
    assert!(
        portability.contains("unsupported: tch (not in this build"),
        "{portability}"
    );
    assert!(portability.contains("disagree with the reference (not timed): wrongfast"));
    assert!(md.contains("Composed ops: tract (1)"), "{md}");
}

#[test]
fn several_records_get_a_summary_table_one_does_not() {
    assert!(!rendered().contains("Summary across specs"));
    let mut cnn = record();
    cnn.spec.name = "cnn".to_string();
    let report = Report::new(vec![
        (PathBuf::from("a.json"), record()),
        (PathBuf::from("b.json"), cnn),
    ])
    .unwrap();
    let md = render_markdown(&report);
    assert!(md.contains("## Summary across specs"), "{md}");
    assert!(
        md.contains("| mlp | 431 | 5 / 7 | native 8.0 us | native 300.0 us |"),
        "{md}"
    );
    assert!(md.contains("### Spec `cnn`"), "{md}");
}

#[test]
fn a_record_with_nothing_measured_still_renders() {
    let mut results = record();
    results.runs.retain(|r| r.status != Status::Ok);
    let md = render_markdown(&Report::new(vec![(PathBuf::from("r.json"), results)]).unwrap());
    assert!(
        md.contains("no backend that agrees with the reference measured it"),
        "{md}"
    );
    assert!(md.contains("ran and agree: none"), "{md}");
}

#[test]
fn no_records_and_unreadable_files_are_errors_naming_the_file() {
    assert!(matches!(
        Report::new(Vec::new()),
        Err(ReportError::NoRecords)
    ));
    let missing = PathBuf::from("/nonexistent/dlbench/results.json");
    let error = Report::read(std::slice::from_ref(&missing)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("/nonexistent/dlbench/results.json"),
        "{error}"
    );
}

#[test]
fn cells_never_show_raw_non_finite_numbers() {
    assert_eq!(cells::duration(f64::NAN), "n/a");
    assert_eq!(cells::interval([f64::NAN, 1.0]), "[interval n/a]");
    assert_eq!(cells::share(0.005), "<1%");
    assert_eq!(cells::share(3.2), "320%");
    assert_eq!(cells::share(10_000.0), "10000x");
    assert_eq!(cells::share(f64::INFINITY), "∞");
    assert_eq!(cells::number(f64::NEG_INFINITY), "-∞");
    assert_eq!(cells::first_line("\n  a|b  \nc", 10), "a|b");
    assert_eq!(cells::first_line("abcdefghijk", 3), "abc…");
    assert_eq!(cells::escape("a|b\nc"), "a\\|b c");
}

/// `record()` with the native backend's steps timed 10 times in each of 8 rounds,
/// around `step_ns` (a small spread, so that intervals are narrow but not empty).
fn record_with_native_steps(step_ns: f64) -> Results {
    let mut results = record();
    let native = results
        .runs
        .iter_mut()
        .find(|r| r.backend == "native")
        .unwrap();
    native.training = Some(training(step_ns, [step_ns * 0.99, step_ns * 1.01]));
    let training = native.training.as_mut().unwrap();
    let (mut raw, mut rounds) = (Vec::new(), Vec::new());
    for round in 0..8 {
        for sample in 0..10 {
            raw.push(step_ns * (1.0 + 0.002 * ((round * 10 + sample) % 7) as f64));
            rounds.push(round);
        }
    }
    training.raw_step_ns = raw;
    training.raw_step_round = rounds;
    results
}

#[test]
fn two_records_of_one_spec_get_a_changes_section_and_charts_of_their_own() {
    let report = Report::new(vec![
        (
            PathBuf::from("before.json"),
            record_with_native_steps(300e3),
        ),
        (PathBuf::from("after.json"), record_with_native_steps(450e3)),
    ])
    .unwrap();
    let names: Vec<&str> = report.records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["mlp", "mlp-2"]);
    let md = render_markdown(&report);
    assert!(md.contains("## Changes between runs of spec `mlp`"), "{md}");
    assert!(
        md.contains("### Changes: `after.json` against `before.json`"),
        "{md}"
    );
    let native_step = md
        .lines()
        .find(|l| l.starts_with("| native cpu x1 | training step"))
        .unwrap_or_else(|| panic!("no native row in\n{md}"));
    assert!(native_step.contains("1.500x"), "{native_step}");
    assert!(native_step.ends_with("**slower** |"), "{native_step}");
    // The second record's charts must not overwrite the first's.
    assert!(md.contains("charts/mlp-2-latency.svg"), "{md}");
    assert!(md.contains("charts/mlp-latency.svg"), "{md}");
    assert!(md.contains("### Spec `mlp` (`after.json`)"), "{md}");
}

#[test]
fn one_record_compares_its_backends_side_by_side_with_the_fastest() {
    let md = render_markdown(
        &Report::new(vec![(
            PathBuf::from("r.json"),
            record_with_native_steps(300e3),
        )])
        .unwrap(),
    );
    assert!(md.contains("### Side by side with `native`"), "{md}");
    assert!(!md.contains("Changes between runs"), "{md}");
}

#[test]
fn a_winner_is_measured_against_another_framework_not_itself_at_other_threads() {
    let mut results = record();
    let mut native_2 = results
        .runs
        .iter()
        .find(|r| r.backend == "native")
        .unwrap()
        .clone();
    native_2.threads = 2;
    native_2.training = Some(training(310_000.0, [300_000.0, 320_000.0]));
    results.runs.push(native_2);
    let mut tract_2 = results
        .runs
        .iter()
        .find(|r| r.backend == "tract")
        .unwrap()
        .clone();
    tract_2.threads = 2;
    results.runs.push(tract_2);
    let md = render_markdown(&Report::new(vec![(PathBuf::from("r.json"), results)]).unwrap());
    let line = bullet(&md, "Training throughput");
    assert!(
        line.contains("**native (cpu, 1 thread)**, 300.0 us") && line.contains("than candle"),
        "{line}"
    );
    let line = bullet(&md, "Numerical fidelity");
    assert!(
        line.contains("**tract (cpu, 1 thread)**") && line.contains("against 31% for native"),
        "{line}"
    );
}
