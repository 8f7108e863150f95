//! The charts: each planned when the record holds its data and only then, written as an SVG
//! that names what it draws and as a PNG, listed in the page and inlined in the HTML.

use std::path::PathBuf;

use dlbench_core::Device;
use dlbench_harness::results::{Results, RunRecord, Status};

use super::{agreement, inference, ok_run, record, training};
use crate::charts::{self, ChartKind};
use crate::{html, Report};

/// A fresh folder for one test's files.
fn out_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dlbench-report-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn kinds(results: &Results) -> Vec<ChartKind> {
    charts::planned(results, &results.spec.name)
        .iter()
        .map(|c| c.kind)
        .collect()
}

/// Writes the charts of `results`, checks that `kind` is among them with a PNG of substance,
/// and returns its SVG.
fn written(results: &Results, kind: ChartKind) -> String {
    let dir = out_dir(kind.suffix());
    let written = charts::write(results, &results.spec.name, &dir).unwrap();
    let chart = written
        .iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("{kind:?} is not planned: {written:?}"));
    assert_eq!(chart.stem, format!("mlp-{}", kind.suffix()));
    let png = std::fs::read(dir.join(format!("{}.png", chart.stem))).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}.png: {} bytes",
        chart.stem,
        png.len()
    );
    let svg = std::fs::read_to_string(dir.join(format!("{}.svg", chart.stem))).unwrap();
    assert!(svg.contains("<text"), "{}: no text", chart.stem);
    let _ = std::fs::remove_dir_all(&dir);
    svg
}

/// The text of every `<text>` element of `svg`, trimmed (plotters puts it on lines of its own).
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|element| {
            let (_, rest) = element.split_once('>')?;
            let (text, _) = rest.split_once("</text>")?;
            Some(text.trim().to_string())
        })
        .collect()
}

/// True when one text of `svg` is exactly `text`: a label, not part of a longer one.
fn labelled(svg: &str, text: &str) -> bool {
    texts(svg).iter().any(|t| t == text)
}

fn run_of<'a>(results: &'a mut Results, backend: &str) -> &'a mut RunRecord {
    results
        .runs
        .iter_mut()
        .find(|r| r.backend == backend)
        .unwrap()
}

/// An agreeing native run with training (`step_ns`) and inference at batch 1 and 32.
fn native(device: Device, threads: usize, step_ns: f64) -> RunRecord {
    let mut run = ok_run("native");
    run.device = device;
    run.threads = threads;
    run.agreement = Some(agreement(0.2, Some(0.1), true));
    run.inference = vec![
        inference(1, step_ns / 40.0, [step_ns / 41.0, step_ns / 39.0]),
        inference(32, step_ns / 3.0, [step_ns / 3.1, step_ns / 2.9]),
    ];
    run.training = Some(training(step_ns, [step_ns * 0.97, step_ns * 1.03]));
    run
}

/// [`record`] with the data of every chart: native at 1, 2 and 4 threads on the CPU and on a
/// GPU, one time to quality, a test confusion matrix, and peak memory (the reference's
/// in-process).
fn rich_record() -> Results {
    let mut results = record();
    results.runs.push(native(Device::Cpu, 2, 170_000.0));
    results.runs.push(native(Device::Cpu, 4, 100_000.0));
    results.runs.push(native(Device::Cuda(0), 1, 40_000.0));
    let native = run_of(&mut results, "native");
    let training = native.training.as_mut().unwrap();
    training.time_to_quality_s = Some(0.42);
    training
        .confusion
        .insert("test".to_string(), vec![vec![50, 7], vec![4, 53]]);
    for run in &mut results.runs {
        run.peak_rss_bytes = (run.status == Status::Ok).then_some(48 << 20);
    }
    run_of(&mut results, "reference")
        .notes
        .push("in-process run: peak RSS covers the whole dlbench process".to_string());
    results
}

#[test]
fn a_record_gets_the_charts_it_has_data_for_and_no_others() {
    use ChartKind::*;
    // One thread, one device, no time to quality, no memory figure.
    assert_eq!(
        kinds(&record()),
        [Latency, Throughput, StepTime, Loss, Agreement]
    );
    assert_eq!(kinds(&rich_record()), ChartKind::ALL);
    let mut nothing = record();
    for run in &mut nothing.runs {
        run.inference.clear();
        run.training = None;
    }
    assert_eq!(kinds(&nothing), [Agreement], "checked but not measured");
    for run in &mut nothing.runs {
        run.agreement = None;
    }
    assert!(kinds(&nothing).is_empty());
}

#[test]
fn latency_and_loss_draw_the_agreeing_backends() {
    for kind in [ChartKind::Latency, ChartKind::Loss] {
        let svg = written(&record(), kind);
        assert!(svg.contains("native"), "{kind:?}: no native");
        assert!(!svg.contains("wrongfast"), "{kind:?}: disagrees, not drawn");
    }
    let latency = written(&record(), ChartKind::Latency);
    assert!(
        latency.contains("tract"),
        "an inference-only backend has latency"
    );
}

#[test]
fn throughput_is_drawn_per_backend_that_measured_inference() {
    let svg = written(&record(), ChartKind::Throughput);
    for backend in ["native", "tract", "reference"] {
        assert!(svg.contains(backend), "{backend}");
    }
    assert!(
        !svg.contains("wrongfast"),
        "a backend that disagrees is not drawn"
    );
    assert!(svg.contains("samples per second"));
    let mut trains_only = record();
    for run in &mut trains_only.runs {
        run.inference.clear();
    }
    assert!(!kinds(&trains_only).contains(&ChartKind::Throughput));
}

#[test]
fn step_time_has_a_group_per_backend_and_a_bar_per_thread_count() {
    let svg = written(&record(), ChartKind::StepTime);
    for backend in ["native", "candle", "reference"] {
        assert!(
            labelled(&svg, backend),
            "{backend} group: {:?}",
            texts(&svg)
        );
    }
    let svg = written(&rich_record(), ChartKind::StepTime);
    for name in [
        "native (cpu)",
        "native (cuda:0)",
        "1 thread",
        "2 threads",
        "4 threads",
    ] {
        assert!(svg.contains(name), "{name} in\n{svg}");
    }
    let mut infers_only = record();
    for run in &mut infers_only.runs {
        run.training = None;
    }
    assert!(!kinds(&infers_only).contains(&ChartKind::StepTime));
}

#[test]
fn scaling_needs_two_thread_counts_of_a_backend_on_one_device() {
    let svg = written(&rich_record(), ChartKind::Scaling);
    assert!(labelled(&svg, "native"), "{:?}", texts(&svg));
    assert!(svg.contains("ideal (linear)"), "{svg}");
    assert!(!kinds(&record()).contains(&ChartKind::Scaling));
    // Two thread counts, but on two devices: nothing to compare.
    let mut apart = record();
    apart.runs.push(native(Device::Cuda(0), 2, 40_000.0));
    assert!(!kinds(&apart).contains(&ChartKind::Scaling));
    // Two thread counts of a backend that disagrees: not drawn.
    let mut wrong = record();
    let mut more = native(Device::Cpu, 2, 1_000.0);
    more.backend = "wrongfast".to_string();
    more.agreement = Some(agreement(3.2, None, false));
    let first = run_of(&mut wrong, "wrongfast");
    first.training = Some(training(2_000.0, [1_900.0, 2_100.0]));
    wrong.runs.push(more);
    assert!(!kinds(&wrong).contains(&ChartKind::Scaling));
}

#[test]
fn time_to_quality_is_drawn_when_a_run_met_the_target_and_names_those_that_did_not() {
    let results = rich_record();
    let svg = written(&results, ChartKind::TimeToQuality);
    assert!(svg.contains("native (cpu, 1 thread)"), "{svg}");
    // Marked where the bar would be, not only in the note under the chart.
    assert!(labelled(&svg, "not reached"), "{:?}", texts(&svg));
    assert!(svg.contains("0.42"), "the bar's value: {svg}");
    let chart = charts::planned(&results, &results.spec.name)
        .into_iter()
        .find(|c| c.kind == ChartKind::TimeToQuality)
        .unwrap();
    let note = chart.note.unwrap();
    assert!(
        note.contains("not reached") && note.contains("candle"),
        "{note}"
    );
    assert!(!note.contains("native (cpu, 1 thread)"), "{note}");
    // Trained, but nobody met the target: no chart.
    assert!(!kinds(&record()).contains(&ChartKind::TimeToQuality));
}

#[test]
fn memory_is_drawn_per_run_with_a_peak_and_says_what_in_process_covers() {
    let results = rich_record();
    let svg = written(&results, ChartKind::Memory);
    assert!(svg.contains("reference (in-process)"), "{svg}");
    assert!(svg.contains("native (cuda:0, 1 thread)"), "{svg}");
    assert!(svg.contains("48 MiB"), "{svg}");
    let chart = charts::planned(&results, &results.spec.name)
        .into_iter()
        .find(|c| c.kind == ChartKind::Memory)
        .unwrap();
    let note = chart.note.unwrap();
    assert!(note.contains("whole dlbench process"), "{note}");
    assert!(note.contains("In-process here: reference"), "{note}");
    assert!(!kinds(&record()).contains(&ChartKind::Memory));
}

#[test]
fn devices_compare_a_backend_on_cpu_and_gpu() {
    let svg = written(&rich_record(), ChartKind::Devices);
    for label in ["native", "cpu", "cuda:0"] {
        assert!(labelled(&svg, label), "{label} in {:?}", texts(&svg));
    }
    for text in ["inference at batch 32", "training step"] {
        assert!(svg.contains(text), "{text} in\n{svg}");
    }
    // Backends on one device only are not in it.
    assert!(!svg.contains("candle"), "{svg}");
    assert!(!kinds(&record()).contains(&ChartKind::Devices));
    // The GPU run disagrees: nothing on a second device to compare.
    let mut wrong_gpu = record();
    let mut gpu = native(Device::Cuda(0), 1, 40_000.0);
    gpu.agreement = Some(agreement(3.2, None, false));
    wrong_gpu.runs.push(gpu);
    assert!(!kinds(&wrong_gpu).contains(&ChartKind::Devices));
}

#[test]
fn the_agreement_heatmap_shows_every_checked_run_with_its_share_and_divergent_node() {
    let mut results = record();
    // A run that failed while being checked still has its row.
    let mut crashed = ok_run("broken");
    crashed.status = Status::Failed;
    let mut checked = agreement(0.1, None, false);
    checked.forward.as_mut().unwrap().error = Some("kernel panicked".to_string());
    crashed.agreement = Some(checked);
    results.runs.push(crashed);
    let svg = written(&results, ChartKind::Agreement);
    for label in [
        "wrongfast",
        "native",
        "tract",
        "candle",
        "broken",
        "forward",
        "gradients",
        "training",
        // Shares as the tables write them, the node where the error was introduced.
        "320%",
        "31%",
        "&lt;1%",
        "dense_1 (dense)",
        "not run",
        "pass (n/a)",
        "error",
    ] {
        assert!(labelled(&svg, label), "{label} in {:?}", texts(&svg));
    }
    // The oracle is what the others are compared with: it has no row.
    assert!(!labelled(&svg, "reference"), "{:?}", texts(&svg));
}

#[test]
fn a_classifier_gets_its_test_confusion_matrix_with_counts_and_axes() {
    let mut results = record();
    assert!(
        !kinds(&results).contains(&ChartKind::Confusion),
        "no matrix, no chart"
    );
    let matrix = vec![vec![40, 3, 0], vec![1, 70, 2], vec![0, 5, 33]];
    for backend in ["native", "candle"] {
        let training = run_of(&mut results, backend).training.as_mut().unwrap();
        training
            .confusion
            .insert("test".to_string(), matrix.clone());
        training
            .confusion
            .insert("validation".to_string(), vec![vec![1, 0, 0]; 3]);
    }
    let chart = charts::planned(&results, "mlp")
        .into_iter()
        .find(|c| c.kind == ChartKind::Confusion)
        .expect("planned");
    assert!(chart.title.contains("on the test split"), "{}", chart.title);
    assert_eq!(
        chart.note.as_deref(),
        Some("the other 1 trained runs' matrices are in the Quality tables")
    );
    let svg = written(&results, ChartKind::Confusion);
    for label in ["40", "70", "33", "predicted class", "true class", "0", "2"] {
        assert!(labelled(&svg, label), "{label} in {:?}", texts(&svg));
    }
}

#[test]
fn the_page_lists_every_chart_with_its_note() {
    let dir = out_dir("page");
    let report = Report::new(vec![(PathBuf::from("r.json"), rich_record())]).unwrap();
    let md = std::fs::read_to_string(report.write(&dir).unwrap()).unwrap();
    for kind in ChartKind::ALL {
        let stem = format!("mlp-{}", kind.suffix());
        assert!(
            md.contains(&format!("](charts/{stem}.svg)")),
            "{stem} in\n{md}"
        );
        for extension in ["svg", "png"] {
            let file = dir.join("charts").join(format!("{stem}.{extension}"));
            assert!(file.is_file(), "{}", file.display());
        }
    }
    assert!(md.contains("*Peak RSS of each run's process"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_html_page_inlines_its_charts_and_renders_the_tables() {
    for results in [record(), rich_record()] {
        let planned = charts::planned(&results, &results.spec.name).len();
        let report = Report::new(vec![(PathBuf::from("r.json"), results)]).unwrap();
        let html = html::render_html(&report).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("<svg").count(), planned, "every chart inline");
        assert_eq!(html.matches("<figcaption>").count(), planned);
        assert!(
            html.matches("<table>").count() >= 2,
            "runs and agreement tables"
        );
        assert!(
            !html.contains("](charts/"),
            "a chart left as a Markdown link"
        );
        assert!(
            !html.contains("src=") && !html.contains("href="),
            "self-contained"
        );
    }
    let report = Report::new(vec![(PathBuf::from("r.json"), rich_record())]).unwrap();
    let html = html::render_html(&report).unwrap();
    // The note is in the figure's caption (and drawn under the chart), not left behind as a
    // paragraph of its own.
    assert!(
        html.contains("<br>\nPeak RSS of each run's process"),
        "note in the caption"
    );
    assert!(!html.contains("<em>Peak RSS"), "note left as a paragraph");
}
