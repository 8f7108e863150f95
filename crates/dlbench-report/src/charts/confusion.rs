//! The confusion matrix of a classifier on its test split (the validation split when there is
//! none): a row per true class, a column per predicted class, each cell coloured by its share
//! of the row (how the class's samples were classified) and labelled with its count.

use dlbench_harness::results::Results;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, Drawing, Figure, FONT};
use crate::verdict;

/// Side of a cell, in pixels; the chart grows with the classes.
const CELL: u32 = 56;
/// Room around the cells for the caption and the axes' labels.
const MARGIN: u32 = 150;

const EMPTY: RGBColor = RGBColor(247, 251, 255);
const FULL: RGBColor = RGBColor(8, 69, 148);

/// One run's confusion matrix.
pub(super) struct Confusion {
    counts: Vec<Vec<u64>>,
}

impl Confusion {
    /// Square cells, one per pair of classes.
    pub(super) fn size(&self) -> (u32, u32) {
        let side = CELL * self.counts.len() as u32 + MARGIN;
        (side.max(420) + 40, side.max(420))
    }
}

/// The first trained run's matrix on the test split, or on the validation split when the
/// record has no test split; `None` for a record without one (not a classifier, or older).
pub(super) fn confusion(results: &Results) -> Option<Drawing> {
    let (run, split, counts) = results.runs.iter().find_map(|run| {
        let matrices = &run.training.as_ref()?.confusion;
        ["test", "validation"]
            .into_iter()
            .find_map(|split| Some((run, split, matrices.get(split)?.clone())))
    })?;
    let others = results
        .runs
        .iter()
        .filter(|r| {
            r.training
                .as_ref()
                .is_some_and(|t| t.confusion.contains_key(split))
        })
        .count()
        - 1;
    Some(Drawing {
        title: format!(
            "{}: confusion matrix of {} on the {split} split",
            results.spec.name,
            verdict::label(results, run)
        ),
        note: (others > 0).then(|| {
            format!("the other {others} trained runs' matrices are in the Quality tables")
        }),
        figure: Figure::Confusion(Confusion { counts }),
    })
}

fn mix(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let channel = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
    RGBColor(
        channel(EMPTY.0, FULL.0),
        channel(EMPTY.1, FULL.1),
        channel(EMPTY.2, FULL.2),
    )
}

/// Draws `matrix` into `area` under `title`.
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    matrix: &Confusion,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let k = matrix.counts.len();
    let class = |v: &f64| {
        let c = v - 0.5;
        match (c - c.round()).abs() < 1e-6 && c >= 0.0 && c < k as f64 {
            true => (c.round() as usize).to_string(),
            false => String::new(),
        }
    };
    // Row 0 is drawn at the top, as the tables print it.
    let row = |v: &f64| {
        let r = v - 0.5;
        match (r - r.round()).abs() < 1e-6 && r >= 0.0 && r < k as f64 {
            true => (k - 1 - r.round() as usize).to_string(),
            false => String::new(),
        }
    };
    let mut context = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..k as f64, 0.0..k as f64)?;
    context
        .configure_mesh()
        .disable_mesh()
        .x_labels(2 * k + 1)
        .y_labels(2 * k + 1)
        .x_label_formatter(&class)
        .y_label_formatter(&row)
        .x_desc("predicted class")
        .y_desc("true class")
        .label_style((FONT, 13))
        .draw()?;
    for (truth, counts) in matrix.counts.iter().enumerate() {
        let total: u64 = counts.iter().sum();
        let y = (k - 1 - truth) as f64;
        for (predicted, &count) in counts.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            };
            let colour = mix(share);
            let x = predicted as f64;
            context.draw_series([
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], colour.filled()),
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], WHITE.stroke_width(2)),
            ])?;
            let ink = if share > 0.5 { WHITE } else { BLACK };
            let style = (FONT, 13)
                .into_font()
                .color(&ink)
                .pos(Pos::new(HPos::Center, VPos::Center));
            context.draw_series([Text::new(count.to_string(), (x + 0.5, y + 0.5), style)])?;
        }
    }
    Ok(())
}
