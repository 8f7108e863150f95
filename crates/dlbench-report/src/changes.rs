//! The report's comparisons, read as `dlbench compare` prints them: each record of a spec
//! against the first record of that spec given (before and after a change), and within one
//! record each backend against the fastest to train (measured side by side, the trustworthy
//! case). Every row says `faster`, `slower`, `no significant change` or `machine changed: not
//! comparable`, from the ratio's interval, never from two medians alone.

use dlbench_harness::compare::{between_backends, between_records, Changes, DEFAULT_THRESHOLD};

use crate::cells;
use crate::verdict;
use crate::Record;

/// Markdown sections comparing the records of one spec (`records` all of that spec, in the
/// order given): each later record against the first. Empty for a single record.
pub fn between_runs(records: &[&Record]) -> String {
    let Some((first, later)) = records.split_first() else {
        return String::new();
    };
    later
        .iter()
        .map(|record| {
            let changes = between_records(&first.results, &record.results, DEFAULT_THRESHOLD);
            format!(
                "### Changes: `{}` against `{}`\n\n{}",
                cells::escape(&record.path.display().to_string()),
                cells::escape(&first.path.display().to_string()),
                render(&changes)
            )
        })
        .collect()
}

/// A Markdown section comparing every backend of `record` with the fastest to train (on its
/// device and thread count); empty when fewer than two backends were timed.
pub fn between_backends_of(record: &Record) -> String {
    let results = &record.results;
    let Some(fastest) = verdict::training_ranking(results).into_iter().next() else {
        return String::new();
    };
    let baseline = &results
        .runs
        .iter()
        .find(|r| verdict::label(results, r) == fastest.label)
        .map(|r| r.backend.clone())
        .unwrap_or_default();
    match between_backends(results, baseline, DEFAULT_THRESHOLD) {
        Ok(changes) if !changes.changes.is_empty() => format!(
            "### Side by side with `{}`\n\n{}",
            cells::escape(baseline),
            render(&changes)
        ),
        _ => String::new(),
    }
}

/// The machine check, then one row per measurement, then what could not be compared.
pub fn render(changes: &Changes) -> String {
    let mut out = String::new();
    if let Some((ratio, [lo, hi])) = changes.machine.probe_ratio {
        out +=
            &format!("Machine-speed probe, new against old: {ratio:.3}x [{lo:.3} – {hi:.3}].\n\n");
    }
    if let Some(why) = &changes.machine.changed {
        out += &format!(
            "**Not comparable**: {}. No verdict is given.\n\n",
            cells::escape(why)
        );
    }
    for note in &changes.machine.notes {
        out += &format!("Note: {}.\n\n", cells::escape(note));
    }
    let mut lines = vec![cells::header(&[
        "run",
        "measurement",
        "baseline median",
        "median",
        "time ratio [95% interval]",
        "verdict",
    ])];
    for c in &changes.changes {
        let interval = c
            .ratio_ci95
            .map_or("[interval n/a]".to_string(), |[lo, hi]| {
                format!("[{lo:.3} – {hi:.3}]")
            });
        lines.push(cells::row(&[
            cells::escape(&format!("{} {} x{}", c.backend, c.device, c.threads)),
            c.measure.clone(),
            cells::duration(c.old_ns),
            cells::duration(c.new_ns),
            format!("{:.3}x {interval}", c.ratio),
            format!("**{}**", c.verdict),
        ]));
    }
    out += &lines.join("\n");
    out += "\n\n";
    for missing in &changes.unmatched {
        out += &format!("- not compared: {}\n", cells::escape(missing));
    }
    if !changes.unmatched.is_empty() {
        out.push('\n');
    }
    out
}
