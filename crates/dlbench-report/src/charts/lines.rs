//! The charts of lines: latency and throughput against batch size, thread scaling and the
//! training-loss curves. Each builder turns the record into [`LineChart`]; one routine draws
//! them all, on log or linear axes.

use std::ops::Range;

use dlbench_harness::results::{InferenceRecord, Results};
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{compact, grouped, legend, ok_runs, range, DrawResult, Drawing, Figure, FONT};

/// One line of a chart: a series' points, and its interval band where there is one.
pub(super) struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    /// `(x, low, high)` of the interval around each point; empty for no band.
    band: Vec<(f64, f64, f64)>,
    /// A reference to read the others against (the ideal scaling), not a measurement.
    guide: bool,
}

impl Line {
    fn measured(label: String, points: Vec<(f64, f64)>, band: Vec<(f64, f64, f64)>) -> Self {
        Line {
            label,
            points,
            band,
            guide: false,
        }
    }

    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.points
            .iter()
            .map(|p| p.1)
            .chain(self.band.iter().flat_map(|b| [b.1, b.2]))
    }
}

/// A chart of lines with its axes.
pub(super) struct LineChart {
    x_desc: &'static str,
    y_desc: &'static str,
    /// Both axes logarithmic (batch sizes and times span decades).
    log: bool,
    x_range: Range<f64>,
    y_range: Range<f64>,
    x_format: fn(&f64) -> String,
    y_format: fn(&f64) -> String,
    legend: SeriesLabelPosition,
    /// Dots on the points: where few points make a line, show which are measured.
    markers: bool,
    lines: Vec<Line>,
}

/// Batch sizes, steps and threads: whole numbers, and no label between them.
fn whole(v: &f64) -> String {
    match (v - v.round()).abs() < 1e-9 {
        true => format!("{v:.0}"),
        false => String::new(),
    }
}

/// Log axes over `values` with room around them; `None` when no value is drawable.
fn log_range(values: impl Iterator<Item = f64>) -> Option<Range<f64>> {
    let (lo, hi) = range(values.filter(|v| v.is_finite() && *v > 0.0));
    (lo <= hi).then(|| (lo / 1.5)..(hi * 1.5))
}

/// One line per agreeing backend with inference records: `y(batch, ns)` at the median, its
/// band from the median's interval. Lines with a point a log axis cannot show are left out.
fn batch_lines(results: &Results, y: impl Fn(usize, f64) -> f64) -> Vec<Line> {
    ok_runs(results)
        .filter(|(_, r)| !r.inference.is_empty())
        .map(|(label, r)| {
            let mut runs: Vec<&InferenceRecord> = r.inference.iter().collect();
            runs.sort_by_key(|i| i.batch);
            let points = runs
                .iter()
                .map(|i| (i.batch as f64, y(i.batch, i.summary.median_ns)))
                .collect();
            let band = runs
                .iter()
                .map(|i| {
                    let [lo, hi] = i.summary.median_ci95_ns.map(|ns| y(i.batch, ns));
                    // Throughput falls as time rises: the bounds swap.
                    (i.batch as f64, lo.min(hi), lo.max(hi))
                })
                .collect();
            Line::measured(label, points, band)
        })
        .filter(|l| {
            l.points
                .iter()
                .all(|(x, y)| *x > 0.0 && y.is_finite() && *y > 0.0)
        })
        .collect()
}

/// Latency or throughput against batch size, from [`batch_lines`].
fn against_batch(
    results: &Results,
    title: String,
    (y_desc, legend): (&'static str, SeriesLabelPosition),
    y: impl Fn(usize, f64) -> f64,
) -> Option<Drawing> {
    let lines = batch_lines(results, y);
    let x_range = log_range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)))?;
    let y_range = log_range(lines.iter().flat_map(Line::values))?;
    Some(Drawing {
        title,
        note: None,
        figure: Figure::Lines(LineChart {
            x_desc: "batch size",
            y_desc,
            log: true,
            x_range,
            y_range,
            x_format: whole,
            y_format: compact,
            legend,
            markers: true,
            lines,
        }),
    })
}

/// Inference latency per pass (ms) against batch size.
pub(super) fn latency(results: &Results) -> Option<Drawing> {
    let spec = &results.spec.name;
    against_batch(
        results,
        format!("{spec}: inference latency against batch size (median, 95% interval)"),
        // Latency rises with the batch: the upper left is free.
        ("latency per pass (ms)", SeriesLabelPosition::UpperLeft),
        |_, ns| ns / 1e6,
    )
}

/// Inference throughput (samples/s = batch / median) against batch size.
pub(super) fn throughput(results: &Results) -> Option<Drawing> {
    let spec = &results.spec.name;
    against_batch(
        results,
        format!("{spec}: inference throughput against batch size (median, 95% interval)"),
        // Throughput rises with the batch: the lower right is free.
        ("samples per second", SeriesLabelPosition::LowerRight),
        |batch, ns| batch as f64 / ns * 1e9,
    )
}

/// The training loss of every agreeing backend, per step.
pub(super) fn loss(results: &Results) -> Option<Drawing> {
    let lines: Vec<Line> = ok_runs(results)
        .filter_map(|(label, r)| {
            let losses = &r.training.as_ref()?.losses;
            let points: Vec<(f64, f64)> = losses
                .iter()
                .enumerate()
                .filter(|(_, l)| l.is_finite())
                .map(|(step, &l)| (step as f64, l))
                .collect();
            (!points.is_empty()).then(|| Line::measured(label, points, Vec::new()))
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    let (_, x_hi) = range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    let (y_lo, y_hi) = range(lines.iter().flat_map(Line::values));
    let pad = ((y_hi - y_lo) * 0.05).max(1e-6);
    Some(Drawing {
        title: format!("{}: training loss per step", results.spec.name),
        note: None,
        figure: Figure::Lines(LineChart {
            x_desc: "training step",
            y_desc: "loss",
            log: false,
            x_range: 0.0..x_hi.max(1.0),
            y_range: (y_lo - pad)..(y_hi + pad),
            x_format: whole,
            y_format: compact,
            legend: SeriesLabelPosition::UpperRight,
            markers: false,
            lines,
        }),
    })
}

/// Training speed-up against threads, per backend and device that trained (and agrees) at two
/// thread counts or more: the step median at the fewest threads over the median at each.
pub(super) fn scaling(results: &Results) -> Option<Drawing> {
    let trained = ok_runs(results).filter_map(|(_, run)| {
        let median = run.training.as_ref()?.step_time.median_ns;
        (median.is_finite() && median > 0.0)
            .then(|| ((run.backend.clone(), run.device), (run.threads, median)))
    });
    let mut runs = grouped(trained);
    for (_, counts) in &mut runs {
        // A stable sort: of a thread count run twice, the first run stands.
        counts.sort_by_key(|c| c.0);
        counts.dedup_by_key(|c| c.0);
    }
    runs.retain(|(_, counts)| counts.len() >= 2);
    if runs.is_empty() {
        return None;
    }
    let several_devices = |backend: &str| runs.iter().filter(|(k, _)| k.0 == backend).count() > 1;
    let mut lines: Vec<Line> = runs
        .iter()
        .map(|((backend, device), counts)| {
            let base = counts[0].1;
            let label = match several_devices(backend) {
                true => format!("{backend} ({device})"),
                false => backend.clone(),
            };
            let points = counts
                .iter()
                .map(|&(n, ns)| (n as f64, base / ns))
                .collect();
            Line::measured(label, points, Vec::new())
        })
        .collect();
    let (x_lo, x_hi) = range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    // Linear scaling from the fewest threads any line starts at.
    lines.push(Line {
        label: "ideal (linear)".to_string(),
        points: vec![(x_lo, 1.0), (x_hi, x_hi / x_lo)],
        band: Vec::new(),
        guide: true,
    });
    let (_, y_hi) = range(lines.iter().flat_map(Line::values));
    let pad = (x_hi - x_lo) * 0.05;
    Some(Drawing {
        title: format!("{}: training speed-up against threads", results.spec.name),
        note: None,
        figure: Figure::Lines(LineChart {
            x_desc: "threads",
            y_desc: "speed-up (step at fewest threads / at n)",
            log: false,
            x_range: (x_lo - pad)..(x_hi + pad),
            y_range: 0.0..(y_hi * 1.1),
            x_format: whole,
            y_format: compact,
            legend: SeriesLabelPosition::UpperLeft,
            markers: true,
            lines,
        }),
    })
}

/// Draws `chart` into `area` under `title`.
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    chart: &LineChart,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, (FONT, 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70);
    let (x, y) = (chart.x_range.clone(), chart.y_range.clone());
    match chart.log {
        true => {
            let (x_bold, x_light) = log_ticks(&x);
            let (y_bold, y_light) = log_ticks(&y);
            plot(
                builder.build_cartesian_2d(
                    x.log_scale()
                        .with_key_points(x_bold)
                        .with_light_points(x_light),
                    y.log_scale()
                        .with_key_points(y_bold)
                        .with_light_points(y_light),
                )?,
                chart,
            )
        }
        false => plot(
            builder.build_cartesian_2d(RangedCoordf64::from(x), RangedCoordf64::from(y))?,
            chart,
        ),
    }
}

/// A log axis's labels and grid over `range`: labels at 1, 2 and 5 times each power of ten
/// (plotters' own labels every tenth of the top decade and none in a decade without a power of
/// ten in it), grid lines at every multiple. A range too narrow for two such labels is labelled
/// at every multiple.
fn log_ticks(range: &std::ops::Range<f64>) -> (Vec<f64>, Vec<f64>) {
    let (lo, hi) = (range.start.min(range.end), range.start.max(range.end));
    if !(lo > 0.0 && hi.is_finite()) {
        return (Vec::new(), Vec::new());
    }
    let inside = |v: &f64| (lo..=hi).contains(v);
    let decades = lo.log10().floor() as i32..=hi.log10().ceil() as i32;
    let multiples = |of: &'static [f64]| {
        decades
            .clone()
            // Dividing for negative powers keeps 0.3 exact where 3 * 0.1 is not.
            .flat_map(move |d| {
                of.iter().map(move |m| match d {
                    0.. => m * 10f64.powi(d),
                    _ => m / 10f64.powi(-d),
                })
            })
            .filter(inside)
            .collect::<Vec<f64>>()
    };
    let every = multiples(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let labels = multiples(&[1.0, 2.0, 5.0]);
    if labels.len() < 2 {
        return (every.clone(), every);
    }
    (labels, every)
}

/// The axes, every line and the legend, whatever the axes' scale.
fn plot<'a, DB, X, Y>(
    mut context: ChartContext<'a, DB, Cartesian2d<X, Y>>,
    chart: &LineChart,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    context
        .configure_mesh()
        .x_desc(chart.x_desc)
        .y_desc(chart.y_desc)
        .x_label_formatter(&chart.x_format)
        .y_label_formatter(&chart.y_format)
        .label_style((FONT, 13))
        .draw()?;
    for (index, line) in chart.lines.iter().enumerate() {
        draw_line(&mut context, index, line, chart.markers)?;
    }
    legend(&mut context, chart.legend.clone())
}

/// One line: its band, the line itself with its legend entry, and dots on its points.
fn draw_line<DB, X, Y>(
    context: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    index: usize,
    line: &Line,
    markers: bool,
) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    if line.guide {
        let style = BLACK.mix(0.6).stroke_width(1);
        context
            .draw_series(DashedLineSeries::new(line.points.clone(), 8, 6, style))?
            .label(line.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        return Ok(());
    }
    let colour = Palette99::pick(index).to_rgba();
    let band: Vec<(f64, f64)> = line
        .band
        .iter()
        .map(|b| (b.0, b.2))
        .chain(line.band.iter().rev().map(|b| (b.0, b.1)))
        .filter(|p| p.1.is_finite() && p.1 > 0.0)
        .collect();
    if !band.is_empty() {
        context.draw_series(std::iter::once(Polygon::new(
            band,
            colour.mix(0.2).filled(),
        )))?;
    }
    context
        .draw_series(LineSeries::new(line.points.clone(), colour.stroke_width(2)))?
        .label(line.label.clone())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    if markers {
        context.draw_series(
            line.points
                .iter()
                .map(|&p| Circle::new(p, 3, colour.filled())),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::log_ticks;

    #[test]
    fn log_axes_are_labelled_at_one_two_five_in_every_decade() {
        let (labels, grid) = log_ticks(&(0.04..1.2));
        assert_eq!(labels, [0.05, 0.1, 0.2, 0.5, 1.0]);
        assert_eq!(grid.len(), 6 + 9 + 1);
        // Too narrow for two 1-2-5 labels: every multiple is labelled.
        let (labels, _) = log_ticks(&(0.25..0.45));
        assert_eq!(labels, [0.3, 0.4]);
        assert_eq!(log_ticks(&(0.0..1.0)), (Vec::new(), Vec::new()));
    }
}
