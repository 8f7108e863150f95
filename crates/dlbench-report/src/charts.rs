//! The report's charts, drawn with plotters from the record alone: per spec, inference latency
//! against batch size (log axes, one line per backend with its median's 95% interval as a
//! band) and the training-loss curves of every backend overlaid. Each is written as SVG (what
//! the page shows; a browser draws its text) and PNG (for places that take images only).
//!
//! Text needs a font in PNG: DejaVu Sans (the `dejavu` crate) is registered once, so no system
//! font library is needed (plotters' default features would link fontconfig and freetype).

use std::path::Path;
use std::sync::Once;

use dlbench_harness::results::{Results, Status};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use crate::verdict::{agrees, label};
use crate::ReportError;

const SIZE: (u32, u32) = (800, 480);
const FONT: &str = "sans-serif";

/// One chart of one spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The file name without extension: `<spec>-latency`, `<spec>-loss`.
    pub stem: String,
    /// What it shows, as its caption and alt text.
    pub title: String,
}

/// One line of a chart: a backend's points, and its interval band where there is one.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    band: Vec<(f64, f64, f64)>,
}

/// The charts a record has data for, in the order the report shows them.
pub fn planned(results: &Results) -> Vec<Chart> {
    let spec = &results.spec.name;
    let mut charts = Vec::new();
    if !latency_lines(results).is_empty() {
        charts.push(Chart {
            stem: format!("{spec}-latency"),
            title: format!("{spec}: inference latency against batch size (median, 95% interval)"),
        });
    }
    if !loss_lines(results).is_empty() {
        charts.push(Chart {
            stem: format!("{spec}-loss"),
            title: format!("{spec}: training loss per step"),
        });
    }
    charts
}

/// Backends that ran and agree with the reference (the reference included): `(label, run)`.
/// One that disagrees is not timed, and its numbers are not worth drawing.
fn ok_runs(
    results: &Results,
) -> impl Iterator<Item = (String, &dlbench_harness::results::RunRecord)> {
    results
        .runs
        .iter()
        .filter(|r| r.status == Status::Ok && agrees(r))
        .map(move |r| (label(results, r), r))
}

fn latency_lines(results: &Results) -> Vec<Line> {
    ok_runs(results)
        .filter(|(_, r)| !r.inference.is_empty())
        .map(|(label, r)| {
            let mut runs: Vec<_> = r.inference.iter().collect();
            runs.sort_by_key(|i| i.batch);
            let ms = |ns: f64| ns / 1e6;
            Line {
                label,
                points: runs
                    .iter()
                    .map(|i| (i.batch as f64, ms(i.summary.median_ns)))
                    .collect(),
                band: runs
                    .iter()
                    .map(|i| {
                        let [lo, hi] = i.summary.median_ci95_ns;
                        (i.batch as f64, ms(lo), ms(hi))
                    })
                    .collect(),
            }
        })
        .filter(|l| {
            l.points
                .iter()
                .all(|(x, y)| *x > 0.0 && y.is_finite() && *y > 0.0)
        })
        .collect()
}

fn loss_lines(results: &Results) -> Vec<Line> {
    ok_runs(results)
        .filter_map(|(label, r)| {
            let losses = &r.training.as_ref()?.losses;
            let points: Vec<(f64, f64)> = losses
                .iter()
                .enumerate()
                .filter(|(_, l)| l.is_finite())
                .map(|(step, &l)| (step as f64, l))
                .collect();
            (!points.is_empty()).then_some(Line {
                label,
                points,
                band: Vec::new(),
            })
        })
        .collect()
}

/// Registers the font plotters draws text with, once per process.
fn register_font() {
    static FONT_ONCE: Once = Once::new();
    FONT_ONCE.call_once(|| {
        // The bytes are a valid TTF shipped by the crate; a failure would only mean no text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws the legend of `chart` at `position` and writes the area out.
fn finish<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    area: &DrawingArea<DB, Shift>,
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
    area.present()?;
    Ok(())
}

fn draw_latency<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    title: &str,
    lines: &[Line],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let (x_lo, x_hi) = range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    let (y_lo, y_hi) = range(
        lines
            .iter()
            .flat_map(|l| {
                l.band
                    .iter()
                    .flat_map(|b| [b.1, b.2])
                    .chain(l.points.iter().map(|p| p.1))
            })
            .filter(|v| v.is_finite() && *v > 0.0),
    );
    let mut chart = ChartBuilder::on(&area)
        .caption(title, (FONT, 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            ((x_lo / 1.5)..(x_hi * 1.5)).log_scale(),
            ((y_lo / 1.5)..(y_hi * 1.5)).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("batch size")
        .y_desc("latency per pass (ms)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .label_style((FONT, 13))
        .draw()?;
    for (i, line) in lines.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let band: Vec<(f64, f64)> = line
            .band
            .iter()
            .map(|b| (b.0, b.2))
            .chain(line.band.iter().rev().map(|b| (b.0, b.1)))
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(
            band,
            colour.mix(0.2).filled(),
        )))?;
        chart
            .draw_series(LineSeries::new(line.points.clone(), colour.stroke_width(2)))?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(
            line.points
                .iter()
                .map(|&p| Circle::new(p, 3, colour.filled())),
        )?;
    }
    finish(&area, &mut chart, SeriesLabelPosition::UpperLeft)
}

fn draw_loss<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    title: &str,
    lines: &[Line],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let (_, x_hi) = range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    let (y_lo, y_hi) = range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let pad = ((y_hi - y_lo) * 0.05).max(1e-6);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, (FONT, 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_hi.max(1.0), (y_lo - pad)..(y_hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc("loss")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FONT, 13))
        .draw()?;
    for (i, line) in lines.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(line.points.clone(), colour.stroke_width(2)))?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    finish(&area, &mut chart, SeriesLabelPosition::UpperRight)
}

/// Draws `chart` of `results` as SVG text, and as PNG into `png` when given.
fn render(results: &Results, chart: &Chart, png: Option<&Path>) -> Result<String, String> {
    register_font();
    let latency = chart.stem.ends_with("-latency");
    let lines = match latency {
        true => latency_lines(results),
        false => loss_lines(results),
    };
    let draw = |svg: &mut String| -> DrawResult {
        let area = SVGBackend::with_string(svg, SIZE).into_drawing_area();
        match latency {
            true => draw_latency(area, &chart.title, &lines),
            false => draw_loss(area, &chart.title, &lines),
        }
    };
    let mut svg = String::new();
    draw(&mut svg).map_err(|e| format!("{}: {e}", chart.stem))?;
    if let Some(png) = png {
        let area = BitMapBackend::new(png, SIZE).into_drawing_area();
        match latency {
            true => draw_latency(area, &chart.title, &lines),
            false => draw_loss(area, &chart.title, &lines),
        }
        .map_err(|e| format!("{}: {e}", chart.stem))?;
    }
    Ok(svg)
}

/// The SVG of `chart`, for inlining.
pub fn svg(results: &Results, chart: &Chart) -> Result<String, ReportError> {
    render(results, chart, None).map_err(ReportError::Chart)
}

/// Writes `dir/<stem>.svg` and `dir/<stem>.png` for every chart of `results`; each file
/// appears whole or not at all.
pub fn write(results: &Results, dir: &Path) -> Result<Vec<Chart>, ReportError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ReportError::Write(dlbench_core::Error::io(dir, e)))?;
    let charts = planned(results);
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
