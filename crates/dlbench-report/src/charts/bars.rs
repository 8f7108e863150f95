//! The charts of bars: training step time per thread count, time to quality and peak memory
//! (CPU against GPU gathers its bars in `devices`). Each builder turns the record into
//! [`BarChart`], one or more panels of grouped bars with their 95% intervals as whiskers, and
//! one routine draws them all.

use dlbench_harness::results::{Results, RunRecord};
use dlbench_harness::stats::Summary;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    compact, grouped, legend, ok_runs, time_unit, DrawResult, Drawing, Figure, FONT, SIZE,
};

/// Bytes in a MiB.
const MIB: f64 = 1024.0 * 1024.0;
/// Share of a group's slot its bars take; the rest separates the groups.
const GROUP_WIDTH: f64 = 0.8;
/// Height of a category on a horizontal chart, in pixels.
const ROW_HEIGHT: u32 = 36;

/// One bar, in the panel's unit, with its interval when there is one.
pub(super) struct Bar {
    value: f64,
    interval: Option<[f64; 2]>,
}

impl Bar {
    /// A median and its 95% interval, divided by `per_unit`.
    pub(super) fn median(summary: &Summary, per_unit: f64) -> Option<Bar> {
        let value = summary.median_ns / per_unit;
        let interval = summary.median_ci95_ns.map(|ns| ns / per_unit);
        (value.is_finite() && value > 0.0).then_some(Bar {
            value,
            interval: interval.iter().all(|b| b.is_finite()).then_some(interval),
        })
    }

    /// Where the bar and its whisker end.
    fn top(&self) -> f64 {
        self.interval
            .map_or(self.value, |[_, hi]| hi.max(self.value))
    }
}

/// Bars of one colour, one per group at most (thread count, device).
pub(super) struct Series {
    pub(super) name: String,
    pub(super) bars: Vec<Option<Bar>>,
}

/// One plot: a group of bars per category (a backend, a run), a bar per series in each.
pub(super) struct Panel {
    /// Its own caption when the chart has several panels.
    pub(super) title: String,
    pub(super) value_desc: String,
    /// Printed after each bar's value (horizontal charts).
    pub(super) unit: &'static str,
    pub(super) groups: Vec<String>,
    pub(super) series: Vec<Series>,
    /// Written where a group has no bar at all, e.g. `not reached`.
    pub(super) missing: Option<&'static str>,
}

impl Panel {
    /// The end of the value axis: the highest bar or whisker (1 when there is none).
    fn top(&self) -> f64 {
        let top = self
            .series
            .iter()
            .flat_map(|s| s.bars.iter().flatten())
            .map(Bar::top)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        if top > 0.0 {
            top
        } else {
            1.0
        }
    }

    pub(super) fn has_bars(&self) -> bool {
        self.series
            .iter()
            .any(|s| s.bars.iter().any(Option::is_some))
    }
}

/// Panels side by side, each of grouped bars.
pub(super) struct BarChart {
    /// Categories down the side, bars across: for many runs with long names.
    pub(super) horizontal: bool,
    pub(super) panels: Vec<Panel>,
}

impl BarChart {
    /// Tall enough for a row per category on a horizontal chart.
    pub(super) fn size(&self) -> (u32, u32) {
        let rows = self
            .panels
            .iter()
            .map(|p| p.groups.len())
            .max()
            .unwrap_or(0) as u32;
        match self.horizontal {
            true => (SIZE.0, SIZE.1.max(150 + ROW_HEIGHT * rows)),
            false => SIZE,
        }
    }
}

/// The one series of a chart of a bar per category with no interval (`None`: no bar).
fn plain(values: impl IntoIterator<Item = Option<f64>>) -> Vec<Series> {
    let bars = values
        .into_iter()
        .map(|v| {
            v.map(|value| Bar {
                value,
                interval: None,
            })
        })
        .collect();
    vec![Series {
        name: String::new(),
        bars,
    }]
}

fn threads_name(threads: usize) -> String {
    match threads {
        1 => "1 thread".to_string(),
        n => format!("{n} threads"),
    }
}

/// Group name of a run: its backend, and its device when the backend ran on several.
fn backend_on_device(runs: &[&RunRecord], run: &RunRecord) -> String {
    let several = runs
        .iter()
        .any(|r| r.backend == run.backend && r.device != run.device);
    match several {
        true => format!("{} ({})", run.backend, run.device),
        false => run.backend.clone(),
    }
}

/// Training step time per backend (and device), one bar per thread count.
pub(super) fn step_time(results: &Results) -> Option<Drawing> {
    let trained: Vec<&RunRecord> = ok_runs(results)
        .map(|(_, run)| run)
        .filter(|run| {
            run.training
                .as_ref()
                .is_some_and(|t| t.step_time.median_ns.is_finite() && t.step_time.median_ns > 0.0)
        })
        .collect();
    let largest = trained
        .iter()
        .filter_map(|r| Some(r.training.as_ref()?.step_time.median_ns))
        .fold(0.0, f64::max);
    let (per_unit, unit) = time_unit(largest);
    let groups = grouped(
        trained
            .iter()
            .map(|&run| (backend_on_device(&trained, run), run)),
    );
    let mut threads: Vec<usize> = trained.iter().map(|r| r.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    let series = threads
        .iter()
        .map(|&n| Series {
            name: threads_name(n),
            bars: groups
                .iter()
                .map(|(_, runs)| {
                    let run = runs.iter().find(|r| r.threads == n)?;
                    Bar::median(&run.training.as_ref()?.step_time, per_unit)
                })
                .collect(),
        })
        .collect();
    let panel = Panel {
        title: String::new(),
        value_desc: format!("step time ({unit})"),
        unit,
        groups: groups.into_iter().map(|(name, _)| name).collect(),
        series,
        missing: None,
    };
    panel.has_bars().then(|| Drawing {
        title: format!(
            "{}: training step time per backend and thread count (median, 95% interval)",
            results.spec.name
        ),
        note: None,
        figure: Figure::Bars(BarChart {
            horizontal: false,
            panels: vec![panel],
        }),
    })
}

/// Training time until the spec's target was met, per run that trained; drawn when one run
/// met it at least, those that did not marked `not reached`.
pub(super) fn time_to_quality(results: &Results) -> Option<Drawing> {
    let runs: Vec<(String, Option<f64>)> = ok_runs(results)
        .filter_map(|(label, run)| {
            let seconds = run.training.as_ref()?.time_to_quality_s;
            Some((label, seconds.filter(|s| s.is_finite() && *s >= 0.0)))
        })
        .collect();
    let missed: Vec<&str> = runs
        .iter()
        .filter(|(_, s)| s.is_none())
        .map(|(label, _)| label.as_str())
        .collect();
    let panel = Panel {
        title: String::new(),
        value_desc: "training time to the target (s)".to_string(),
        unit: "s",
        groups: runs.iter().map(|(label, _)| label.clone()).collect(),
        series: plain(runs.iter().map(|(_, seconds)| *seconds)),
        missing: Some("not reached"),
    };
    panel.has_bars().then(|| Drawing {
        title: format!(
            "{}: time to the validation target (training steps only)",
            results.spec.name
        ),
        note: (!missed.is_empty())
            .then(|| format!("Target not reached within the run: {}.", missed.join(", "))),
        figure: Figure::Bars(BarChart {
            horizontal: true,
            panels: vec![panel],
        }),
    })
}

/// Peak resident memory (MiB) per run that agrees and recorded one. A run that disagrees
/// stopped before training and inference: its peak is not comparable.
pub(super) fn memory(results: &Results) -> Option<Drawing> {
    let runs: Vec<(String, f64, bool)> = ok_runs(results)
        .filter_map(|(label, run)| {
            let bytes = run.peak_rss_bytes.filter(|&b| b > 0)?;
            // The harness says so in a note: the peak is the whole dlbench process's.
            let in_process = run.notes.iter().any(|n| n.contains("in-process"));
            Some((label, bytes as f64 / MIB, in_process))
        })
        .collect();
    if runs.is_empty() {
        return None;
    }
    let in_process: Vec<&str> = runs.iter().filter(|r| r.2).map(|r| r.0.as_str()).collect();
    let mut note = "Peak RSS of each run's process: a worker counts its backend alone, an \
                    in-process run the whole dlbench process."
        .to_string();
    if !in_process.is_empty() {
        note.push_str(&format!(" In-process here: {}.", in_process.join(", ")));
    }
    let panel = Panel {
        title: String::new(),
        value_desc: "peak resident set size (MiB)".to_string(),
        unit: "MiB",
        groups: runs
            .iter()
            .map(|(label, _, in_process)| match in_process {
                true => format!("{label} (in-process)"),
                false => label.clone(),
            })
            .collect(),
        series: plain(runs.iter().map(|&(_, mib, _)| Some(mib))),
        missing: None,
    };
    Some(Drawing {
        title: format!("{}: peak memory per run", results.spec.name),
        note: Some(note),
        figure: Figure::Bars(BarChart {
            horizontal: true,
            panels: vec![panel],
        }),
    })
}

/// Draws `chart` into `area`: one panel under `title`, or several side by side each under
/// its own title.
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    chart: &BarChart,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    if let [panel] = chart.panels.as_slice() {
        return draw_panel(area, (title, 18), panel, chart.horizontal);
    }
    let inner = area.titled(title, (FONT, 18))?;
    let columns = inner.split_evenly((1, chart.panels.len()));
    for (column, panel) in columns.iter().zip(&chart.panels) {
        draw_panel(column, (&panel.title, 14), panel, chart.horizontal)?;
    }
    Ok(())
}

/// One panel of grouped bars. Categories sit at whole numbers on their axis, so that the
/// mesh's label formatter can name them; the first is at the top of a horizontal chart.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (title, title_size): (&str, u32),
    panel: &Panel,
    horizontal: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let n = panel.groups.len();
    let position = |group: usize| match horizontal {
        true => (n - 1 - group) as f64,
        false => group as f64,
    };
    let name = |v: &f64| -> String {
        let index = v.round();
        let whole = (v - index).abs() < 1e-6 && index >= 0.0 && index < n as f64;
        match (whole, horizontal) {
            (false, _) => String::new(),
            (true, true) => panel.groups[n - 1 - index as usize].clone(),
            (true, false) => panel.groups[index as usize].clone(),
        }
    };
    let top = panel.top() * 1.15;
    let categories = -0.5..(n as f64 - 0.5);
    // Hints finer than one label per category make sure every whole number gets one.
    let hint = 2 * n + 1;
    let longest = panel.groups.iter().map(|g| g.chars().count()).max();
    let mut builder = ChartBuilder::on(area);
    builder.caption(title, (FONT, title_size)).margin(16);
    let mut context = match horizontal {
        true => {
            let side = (longest.unwrap_or(0) as u32 * 8 + 20).clamp(60, 340);
            builder
                .x_label_area_size(40)
                .y_label_area_size(side)
                .build_cartesian_2d(0.0..top, categories)?
        }
        false => builder
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(categories, 0.0..top)?,
    };
    let mut mesh = context.configure_mesh();
    mesh.label_style((FONT, 13));
    match horizontal {
        true => mesh
            .disable_y_mesh()
            .y_labels(hint)
            .y_label_formatter(&name)
            .x_label_formatter(&compact)
            .x_desc(panel.value_desc.as_str()),
        false => mesh
            .disable_x_mesh()
            .x_labels(hint)
            .x_label_formatter(&name)
            .y_label_formatter(&compact)
            .y_desc(panel.value_desc.as_str()),
    };
    mesh.draw()?;
    let point = |category: f64, value: f64| match horizontal {
        true => (value, category),
        false => (category, value),
    };
    let k = panel.series.len().max(1);
    let width = GROUP_WIDTH / k as f64;
    for (s, series) in panel.series.iter().enumerate() {
        let colour = Palette99::pick(s).to_rgba();
        let placed: Vec<(f64, &Bar)> = series
            .bars
            .iter()
            .enumerate()
            .filter_map(|(g, bar)| {
                let centre = position(g) - GROUP_WIDTH / 2.0 + width * (s as f64 + 0.5);
                Some((centre, bar.as_ref()?))
            })
            .collect();
        let half = width * 0.45;
        let drawn = context.draw_series(placed.iter().map(|&(c, bar)| {
            Rectangle::new(
                [point(c - half, 0.0), point(c + half, bar.value)],
                colour.filled(),
            )
        }))?;
        if !series.name.is_empty() {
            drawn.label(series.name.clone()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled())
            });
        }
        let whiskers = placed.iter().filter_map(|&(c, bar)| {
            let [lo, hi] = bar.interval?;
            let cap = half * 0.5;
            Some([
                PathElement::new(vec![point(c, lo), point(c, hi)], BLACK.stroke_width(1)),
                PathElement::new(vec![point(c - cap, lo), point(c + cap, lo)], BLACK),
                PathElement::new(vec![point(c - cap, hi), point(c + cap, hi)], BLACK),
            ])
        });
        context.draw_series(whiskers.flatten())?;
        if horizontal {
            let style =
                TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
            context.draw_series(placed.iter().map(|&(c, bar)| {
                Text::new(
                    format!(" {} {}", compact(&bar.value), panel.unit),
                    point(c, bar.top()),
                    style.clone(),
                )
            }))?;
        }
    }
    if let Some(missing) = panel.missing {
        let style = (FONT, 12).into_font().color(&RED.mix(0.8));
        let style = match horizontal {
            true => style.pos(Pos::new(HPos::Left, VPos::Center)),
            false => style.pos(Pos::new(HPos::Center, VPos::Bottom)),
        };
        let empty = (0..n).filter(|&g| {
            panel
                .series
                .iter()
                .all(|s| s.bars.get(g).is_none_or(Option::is_none))
        });
        context.draw_series(
            empty.map(|g| Text::new(missing.to_string(), point(position(g), 0.0), style.clone())),
        )?;
    }
    if k > 1 {
        legend(&mut context, SeriesLabelPosition::UpperRight)?;
    }
    Ok(())
}
