//! The agreement heatmap: a row per run checked against the reference (failing ones too: this
//! is where disagreement shows), a column per check. A cell's colour is the worst error's share
//! of the tolerance on a log scale; its text is that share as the tables write it and, when
//! the check fails, the node that introduced the error.

use dlbench_harness::results::{AgreementCheck, Results};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, Drawing, Figure, FONT, SIZE};
use crate::{cells, verdict};

const CHECKS: [&str; 3] = ["forward", "gradients", "training"];
/// Height of a row, in pixels: room for the share and the node under it.
const ROW_HEIGHT: u32 = 52;
/// Height of the colour key under the map.
const KEY_HEIGHT: u32 = 40;
/// Longest node name written in a cell.
const NODE_CHARS: usize = 30;
/// Shares at or below this are the greenest: far inside the tolerance.
const GREENEST: f64 = 0.01;

/// A check that did not run, or whose share a record did not keep.
const NOT_RUN: RGBColor = RGBColor(205, 205, 205);
const WELL_INSIDE: RGBColor = RGBColor(76, 175, 80);
const NEAR: RGBColor = RGBColor(250, 212, 60);
const JUST_ABOVE: RGBColor = RGBColor(245, 124, 0);
const FAR_ABOVE: RGBColor = RGBColor(183, 28, 28);

/// One cell: its colour and its lines of text.
struct Cell {
    colour: RGBColor,
    text: Vec<String>,
}

/// The agreement of every checked run.
pub(super) struct Heatmap {
    rows: Vec<String>,
    cells: Vec<[Cell; 3]>,
}

impl Heatmap {
    /// Tall enough for a row per run.
    pub(super) fn size(&self) -> (u32, u32) {
        let height = 110 + ROW_HEIGHT * self.rows.len() as u32 + KEY_HEIGHT;
        (SIZE.0, height.max(260))
    }
}

fn mix(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let channel = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
    RGBColor(channel(a.0, b.0), channel(a.1, b.1), channel(a.2, b.2))
}

/// The colour of a share of the tolerance, on a log scale: green from 1% down, yellow at
/// 100%, orange just above (a failure stands out from a near pass) to red at 10x and beyond.
fn colour(share: f64) -> RGBColor {
    match share {
        s if s.is_nan() => NOT_RUN,
        s if s > 1.0 => mix(JUST_ABOVE, FAR_ABOVE, s.log10()),
        s => {
            let low = GREENEST.log10();
            mix(WELL_INSIDE, NEAR, (s.max(GREENEST).log10() - low) / -low)
        }
    }
}

/// Dark cells take white text.
fn text_colour(background: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = background;
    let luminance = 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64;
    match luminance < 130.0 {
        true => WHITE,
        false => BLACK,
    }
}

fn cell(check: Option<&AgreementCheck>) -> Cell {
    let Some(check) = check else {
        return Cell {
            colour: NOT_RUN,
            text: vec!["not run".to_string()],
        };
    };
    if check.error.is_some() {
        return Cell {
            colour: FAR_ABOVE,
            text: vec!["error".to_string()],
        };
    }
    let share = check.tolerance_used;
    let (colour, first) = match (share.is_nan(), check.pass) {
        (false, _) => (colour(share), cells::share(share)),
        // An old record kept no share; a failure must still look like one.
        (true, true) => (NOT_RUN, "pass (n/a)".to_string()),
        (true, false) => (JUST_ABOVE, "FAIL (n/a)".to_string()),
    };
    let mut text = vec![first];
    if !check.pass {
        let node = match (&check.first_divergent_node, &check.first_divergent_op) {
            (Some(node), Some(op)) => format!("{node} ({op})"),
            (Some(node), None) => node.clone(),
            (None, _) => "not located".to_string(),
        };
        text.push(cells::first_line(&node, NODE_CHARS));
    }
    Cell { colour, text }
}

/// Every run with an agreement section, whatever its status.
pub(super) fn agreement(results: &Results) -> Option<Drawing> {
    let (rows, cells): (Vec<String>, Vec<[Cell; 3]>) = results
        .runs
        .iter()
        .filter_map(|run| {
            let a = run.agreement.as_ref()?;
            let row = [&a.forward, &a.gradients, &a.training].map(|c| cell(c.as_ref()));
            Some((verdict::label(results, run), row))
        })
        .unzip();
    if rows.is_empty() {
        return None;
    }
    Some(Drawing {
        title: format!(
            "{}: agreement with the f64 reference (worst error / tolerance)",
            results.spec.name
        ),
        note: None,
        figure: Figure::Heatmap(Heatmap { rows, cells }),
    })
}

/// Draws `map` into `area` under `title`, its colour key below it.
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    map: &Heatmap,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (_, height) = area.dim_in_pixel();
    let (upper, key) = area.split_vertically(height.saturating_sub(KEY_HEIGHT));
    let n = map.rows.len();
    let longest = map.rows.iter().map(|r| r.chars().count()).max();
    let side = (longest.unwrap_or(0) as u32 * 8 + 20).clamp(80, 320);
    // Cells span whole numbers, so the labels' formatters name the half-way points; row 0 is
    // drawn at the top.
    let column = |v: &f64| {
        let c = v - 0.5;
        match (c - c.round()).abs() < 1e-6 && (0.0..3.0).contains(&c) {
            true => CHECKS[c.round() as usize].to_string(),
            false => String::new(),
        }
    };
    let row = |v: &f64| {
        let r = v - 0.5;
        match (r - r.round()).abs() < 1e-6 && r >= 0.0 && r < n as f64 {
            true => map.rows[n - 1 - r.round() as usize].clone(),
            false => String::new(),
        }
    };
    let mut context = ChartBuilder::on(&upper)
        .caption(title, (FONT, 18))
        .margin(16)
        .x_label_area_size(30)
        .y_label_area_size(side)
        .build_cartesian_2d(0.0..3.0, 0.0..n as f64)?;
    context
        .configure_mesh()
        .disable_mesh()
        // Twice as many hints as cells: every half-way point is a key point.
        .x_labels(7)
        .y_labels(2 * n + 1)
        .x_label_formatter(&column)
        .y_label_formatter(&row)
        .label_style((FONT, 13))
        .draw()?;
    for (i, cells) in map.cells.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        for (c, cell) in cells.iter().enumerate() {
            let x = c as f64;
            context.draw_series([
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], cell.colour.filled()),
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], WHITE.stroke_width(3)),
            ])?;
            let ink = text_colour(cell.colour);
            let lines = cell.text.len();
            context.draw_series(cell.text.iter().enumerate().map(|(l, text)| {
                let size = if l == 0 { 15 } else { 12 };
                let style = (FONT, size)
                    .into_font()
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                // One line in the middle; two a little above and below it.
                let offset = match lines {
                    1 => 0.5,
                    _ => 0.68 - 0.34 * l as f64,
                };
                Text::new(text.clone(), (x + 0.5, y + offset), style)
            }))?;
        }
    }
    draw_key(&key)
}

/// The colour key: swatches of shares from far inside the tolerance to far above it.
fn draw_key<DB: DrawingBackend>(key: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let swatches = [
        ("≤1%", colour(0.001)),
        ("10%", colour(0.1)),
        ("100%", colour(1.0)),
        (">100% (fails)", colour(1.01)),
        ("10x", colour(10.0)),
        ("not run / not recorded", NOT_RUN),
    ];
    key.draw(&Text::new(
        "share of the tolerance (log scale):",
        (16, 14),
        style.clone(),
    ))?;
    let mut x = 250;
    for (text, colour) in swatches {
        key.draw(&Rectangle::new([(x, 7), (x + 14, 21)], colour.filled()))?;
        key.draw(&Text::new(text, (x + 18, 14), style.clone()))?;
        x += 26 + 7 * text.chars().count() as i32;
    }
    Ok(())
}
