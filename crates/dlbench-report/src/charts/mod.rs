//! The report's charts, drawn with plotters from the record alone. Per spec: inference latency
//! and throughput against batch size, training step time per thread count, thread scaling, the
//! training-loss curves, time to quality, CPU against GPU, peak memory, the agreement
//! heatmap and a classifier's confusion matrix. Each is planned only when the record holds its data, and written as SVG (what the
//! page shows; a browser draws its text) and PNG (for places that take images only).
//!
//! Text needs a font in PNG: DejaVu Sans (the `dejavu` crate) is registered once, so no system
//! font library is needed (plotters' default features would link fontconfig and freetype).
//!
//! `lines` draws the charts of lines, `bars` those of bars (`devices` gathers the bars of CPU
//! against GPU), `heatmap` the agreement heatmap, `confusion` the confusion matrix; this module decides which charts a record
//! gets, and writes them.

mod bars;
mod confusion;
mod devices;
mod heatmap;
mod lines;

use std::path::Path;
use std::sync::Once;

use dlbench_harness::results::{Results, RunRecord, Status};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::cells;
use crate::verdict::{agrees, label};
use crate::ReportError;

/// The size of a chart unless its data needs more room (one row per run, for instance).
const SIZE: (u32, u32) = (800, 480);
const FONT: &str = "sans-serif";
/// Height of the line a chart's note takes under it, in pixels.
const NOTE_HEIGHT: u32 = 26;
/// Longest note drawn under a chart; the page's caption holds the whole of it.
const NOTE_CHARS: usize = 120;

/// Which chart it is: the data it reads and how it is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Inference latency against batch size, log-log, one line per backend with its band.
    Latency,
    /// Inference throughput (samples/s) against batch size, log-log.
    Throughput,
    /// Training step time per backend, one bar per thread count, with the 95% interval.
    StepTime,
    /// Speed-up of training against the thread count, with the ideal line.
    Scaling,
    /// The training loss of every backend, per step.
    Loss,
    /// Training time until the spec's target was met, per run.
    TimeToQuality,
    /// Training step and inference latency per backend, one bar per device.
    Devices,
    /// Peak resident memory per run.
    Memory,
    /// Share of the tolerance each agreement check used, per run: where disagreement shows.
    Agreement,
    /// A classifier's confusion matrix on the test split.
    Confusion,
}

impl ChartKind {
    /// Every chart, in the order the report shows them.
    pub const ALL: [ChartKind; 10] = [
        ChartKind::Latency,
        ChartKind::Throughput,
        ChartKind::StepTime,
        ChartKind::Scaling,
        ChartKind::Loss,
        ChartKind::TimeToQuality,
        ChartKind::Devices,
        ChartKind::Memory,
        ChartKind::Agreement,
        ChartKind::Confusion,
    ];

    /// The end of the chart's file name: `<spec>-<suffix>.svg`.
    pub fn suffix(self) -> &'static str {
        match self {
            ChartKind::Latency => "latency",
            ChartKind::Throughput => "throughput",
            ChartKind::StepTime => "step-time",
            ChartKind::Scaling => "scaling",
            ChartKind::Loss => "loss",
            ChartKind::TimeToQuality => "time-to-quality",
            ChartKind::Devices => "devices",
            ChartKind::Memory => "memory",
            ChartKind::Agreement => "agreement",
            ChartKind::Confusion => "confusion",
        }
    }
}

/// One chart of one spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Which chart it is.
    pub kind: ChartKind,
    /// The file name without extension: `<spec>-<suffix>`, e.g. `mlp-latency`.
    pub stem: String,
    /// What it shows, as its caption and alt text.
    pub title: String,
    /// What a reader needs to read it right (runs that did not reach the target, what a
    /// memory figure covers); shown under the chart.
    pub note: Option<String>,
}

/// A chart's data, ready to draw: what [`planned`] checks exists and [`write`] draws.
struct Drawing {
    title: String,
    note: Option<String>,
    figure: Figure,
}

enum Figure {
    Lines(lines::LineChart),
    Bars(bars::BarChart),
    Heatmap(heatmap::Heatmap),
    Confusion(confusion::Confusion),
}

impl Figure {
    fn size(&self) -> (u32, u32) {
        match self {
            Figure::Lines(_) => SIZE,
            Figure::Bars(chart) => chart.size(),
            Figure::Heatmap(map) => map.size(),
            Figure::Confusion(matrix) => matrix.size(),
        }
    }
}

/// The data of `kind` in `results`; `None` when the record has nothing to draw for it.
fn prepare(results: &Results, kind: ChartKind) -> Option<Drawing> {
    match kind {
        ChartKind::Latency => lines::latency(results),
        ChartKind::Throughput => lines::throughput(results),
        ChartKind::StepTime => bars::step_time(results),
        ChartKind::Scaling => lines::scaling(results),
        ChartKind::Loss => lines::loss(results),
        ChartKind::TimeToQuality => bars::time_to_quality(results),
        ChartKind::Devices => devices::by_device(results),
        ChartKind::Memory => bars::memory(results),
        ChartKind::Agreement => heatmap::agreement(results),
        ChartKind::Confusion => confusion::confusion(results),
    }
}

/// The charts a record has data for, in the order the report shows them; their files are named
/// `<name>-<suffix>` (`name` is the spec's, made unique when a report holds several records of
/// one spec).
pub fn planned(results: &Results, name: &str) -> Vec<Chart> {
    ChartKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let drawing = prepare(results, kind)?;
            Some(Chart {
                kind,
                stem: format!("{name}-{}", kind.suffix()),
                title: drawing.title,
                note: drawing.note,
            })
        })
        .collect()
}

/// Backends that ran and agree with the reference (the reference included): `(label, run)`.
/// One that disagrees is not timed, and its numbers are not worth drawing.
fn ok_runs(results: &Results) -> impl Iterator<Item = (String, &RunRecord)> {
    results
        .runs
        .iter()
        .filter(|r| r.status == Status::Ok && agrees(r))
        .map(move |r| (label(results, r), r))
}

/// Registers the font plotters draws text with, once per process.
fn register_font() {
    static FONT_ONCE: Once = Once::new();
    FONT_ONCE.call_once(|| {
        // The bytes are a valid TTF shipped by the crate; a failure would only mean no text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// The smallest and largest of `values`; `(inf, -inf)` when there are none.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// `items` grouped by key, the groups and the items in each in the order first seen.
fn grouped<K: PartialEq, V>(items: impl IntoIterator<Item = (K, V)>) -> Vec<(K, Vec<V>)> {
    let mut groups: Vec<(K, Vec<V>)> = Vec::new();
    for (key, value) in items {
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => groups.push((key, vec![value])),
        }
    }
    groups
}

/// `0`, `2.5e-4`, `0.012`, `0.50`, `12`, `12.5k`, `1.3M`: short labels for values that may span
/// decades (log axes), with two significant digits or more.
fn compact(v: &f64) -> String {
    let v = *v;
    match v.abs() {
        0.0 => "0".to_string(),
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.1}k", v / 1e3),
        a if a >= 10.0 => format!("{v:.0}"),
        a if a >= 0.1 => format!("{v:.2}"),
        a if a >= 0.01 => format!("{v:.3}"),
        _ => format!("{v:.1e}"),
    }
}

/// A duration unit that keeps the largest of `ns` between 1 and 1000: `(ns per unit, name)`.
fn time_unit(largest_ns: f64) -> (f64, &'static str) {
    match largest_ns {
        ns if ns >= 1e9 => (1e9, "s"),
        ns if ns >= 1e6 => (1e6, "ms"),
        ns if ns >= 1e3 => (1e3, "us"),
        _ => (1.0, "ns"),
    }
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws the legend of `chart` at `position`.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

/// Draws `drawing` onto `area`: its note on the last line, the figure above it.
fn draw<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, drawing: &Drawing) -> DrawResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let (_, height) = area.dim_in_pixel();
    let figure_area = match &drawing.note {
        Some(note) => {
            let (upper, lower) = area.split_vertically(height.saturating_sub(NOTE_HEIGHT));
            lower.draw(&Text::new(
                cells::first_line(note, NOTE_CHARS),
                (16, 4),
                (FONT, 13).into_font().color(&BLACK.mix(0.75)),
            ))?;
            upper
        }
        None => area.clone(),
    };
    match &drawing.figure {
        Figure::Lines(chart) => lines::draw(&figure_area, &drawing.title, chart)?,
        Figure::Bars(chart) => bars::draw(&figure_area, &drawing.title, chart)?,
        Figure::Heatmap(map) => heatmap::draw(&figure_area, &drawing.title, map)?,
        Figure::Confusion(matrix) => confusion::draw(&figure_area, &drawing.title, matrix)?,
    }
    area.present()?;
    Ok(())
}

/// Draws `chart` of `results` as SVG text, and as PNG into `png` when given.
fn render(results: &Results, chart: &Chart, png: Option<&Path>) -> Result<String, String> {
    register_font();
    let drawing = prepare(results, chart.kind)
        .ok_or_else(|| format!("{}: the record has no data for it", chart.stem))?;
    let size = drawing.figure.size();
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, size).into_drawing_area(),
        &drawing,
    )
    .map_err(|e| format!("{}: {e}", chart.stem))?;
    if let Some(png) = png {
        draw(BitMapBackend::new(png, size).into_drawing_area(), &drawing)
            .map_err(|e| format!("{}: {e}", chart.stem))?;
    }
    Ok(svg)
}

/// The SVG of `chart`, for inlining.
pub fn svg(results: &Results, chart: &Chart) -> Result<String, ReportError> {
    render(results, chart, None).map_err(ReportError::Chart)
}

/// Writes `dir/<stem>.svg` and `dir/<stem>.png` for every chart of `results` (named as in
/// [`planned`]); each file appears whole or not at all.
pub fn write(results: &Results, name: &str, dir: &Path) -> Result<Vec<Chart>, ReportError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ReportError::Write(dlbench_core::Error::io(dir, e)))?;
    let charts = planned(results, name);
    for chart in &charts {
        let png = dir.join(format!("{}.png", chart.stem));
        // The encoder picks the format from the extension: the partial file ends in .png too.
        let partial = dir.join(format!(".{}.partial.png", chart.stem));
        let svg = render(results, chart, Some(&partial)).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            ReportError::Chart(e)
        })?;
        std::fs::rename(&partial, &png)
            .map_err(|e| ReportError::Write(dlbench_core::Error::io(&png, e)))?;
        dlbench_core::format::write_atomically(
            &dir.join(format!("{}.svg", chart.stem)),
            svg.as_bytes(),
        )
        .map_err(ReportError::Write)?;
    }
    Ok(charts)
}
