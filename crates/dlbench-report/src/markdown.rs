//! `index.md`: the recommendation first (most readers stop there), then a section per spec
//! with its environment, runs and agreement. Anything a record lacks is a marked cell (`—`
//! for not applicable, `n/a (...)` for what a run did not produce), so the tables stay whole.

use std::collections::BTreeSet;

use dlbench_harness::results::{Results, RunRecord, Status};

use crate::cells::{self, NOT_APPLICABLE};
use crate::changes;
use crate::charts::Chart;
use crate::verdict;
use crate::{Record, Report};

/// The whole page.
pub fn render_markdown(report: &Report) -> String {
    let mut out = String::from("# dlbench report\n\n");
    let several = report.records.len() > 1;
    if several {
        out.push_str("## Summary across specs\n\n");
        out.push_str(&summary_table(report));
        out.push_str("\n\n");
    }
    out.push_str("## Recommendation\n\n");
    for record in &report.records {
        if several {
            out.push_str(&format!("### {}\n\n", spec_title(record)));
        }
        for bullet in verdict::recommendations(&record.results) {
            out.push_str(&format!("- {bullet}\n"));
        }
        out.push('\n');
    }
    for record in &report.records {
        out.push_str(&spec_section(record));
    }
    out.push_str(&changes_between_runs(report));
    out
}

/// `Spec `mlp``; a second record of the same spec is told apart by its file.
fn spec_title(record: &Record) -> String {
    let spec = &record.results.spec.name;
    if record.name == *spec {
        format!("Spec `{}`", cells::escape(spec))
    } else {
        format!(
            "Spec `{}` (`{}`)",
            cells::escape(spec),
            cells::escape(&record.path.display().to_string())
        )
    }
}

/// For every spec with several records, each later record compared with the first: what
/// `dlbench compare` says of them.
fn changes_between_runs(report: &Report) -> String {
    let mut specs: Vec<&str> = Vec::new();
    for record in &report.records {
        if !specs.contains(&record.results.spec.name.as_str()) {
            specs.push(&record.results.spec.name);
        }
    }
    let mut out = String::new();
    for spec in specs {
        let records: Vec<&Record> = report
            .records
            .iter()
            .filter(|r| r.results.spec.name == spec)
            .collect();
        if records.len() > 1 {
            out += &format!(
                "## Changes between runs of spec `{}`\n\n",
                cells::escape(spec)
            );
            out += &changes::between_runs(&records);
        }
    }
    out
}

/// One row per record: size, how many backends ran, and the fastest of each kind.
fn summary_table(report: &Report) -> String {
    let mut lines = vec![cells::header(&[
        "spec",
        "parameters",
        "backends ok / total",
        "fastest inference (batch 1)",
        "fastest training step",
    ])];
    for record in &report.records {
        let results = &record.results;
        let ok = results
            .runs
            .iter()
            .filter(|r| r.status == Status::Ok)
            .count();
        let fastest = |ranking: Vec<verdict::Timed>| {
            ranking.first().map_or(NOT_APPLICABLE.to_string(), |t| {
                format!("{} {}", t.label, cells::duration(t.median_ns))
            })
        };
        lines.push(cells::row(&[
            cells::escape(&results.spec.name),
            results.spec.parameters.to_string(),
            format!("{ok} / {}", results.runs.len()),
            fastest(verdict::inference_ranking(results, 1)),
            fastest(verdict::training_ranking(results)),
        ]));
    }
    lines.join("\n")
}

/// A spec's section: what was run, where, the runs table, the agreement table and the notes.
fn spec_section(record: &Record) -> String {
    let results = &record.results;
    let spec = &results.spec;
    let notes = Notes::collect(results);
    let mut out = format!("## {}\n\n", spec_title(record));
    out.push_str(&format!(
        "Record `{}`. {} parameters, {} FLOPs per sample; loss `{}`, optimizer `{}`, batch {}; \
         {} training, {} validation and {} test samples.\n\n",
        cells::escape(&record.path.display().to_string()),
        spec.parameters,
        spec.flops_per_sample,
        cells::escape(&spec.loss),
        cells::escape(&spec.optimizer),
        spec.batch_size,
        spec.train_samples,
        spec.validation_samples,
        spec.test_samples
    ));
    for report in &spec.cleaning {
        out.push_str(&format!(
            "Cleaned {}.\n\n",
            cells::escape(&report.summary())
        ));
    }
    out.push_str(&environment_line(results));
    out.push_str("\n\n### Runs\n\n");
    out.push_str(&runs_table(results, &notes));
    let quality = crate::quality::quality_section(results);
    if !quality.is_empty() {
        out.push_str("\n\n### Quality\n\n");
        out.push_str(&quality);
    }
    let charts = crate::charts::planned(results, &record.name);
    if !charts.is_empty() {
        out.push_str("\n\n### Charts\n\n");
        for chart in charts {
            out.push_str(&chart_block(&chart));
            out.push_str("\n\n");
        }
        // The runs table ends without a blank line of its own.
        out.truncate(out.trim_end().len());
    }
    let side_by_side = changes::between_backends_of(record);
    if !side_by_side.is_empty() {
        out.push_str("\n\n");
        out.push_str(side_by_side.trim_end());
    }
    out.push_str("\n\n### Agreement with the f64 reference\n\n");
    out.push_str(
        "Worst error as a share of the tolerance (`|a - r| <= atol + rtol * |r|`; above 100% \
         fails) and the largest distance in f32 ulps.\n\n",
    );
    out.push_str(&agreement_table(results));
    out.push_str("\n\n");
    if !notes.lines.is_empty() {
        out.push_str("### Notes\n\n");
        for (number, line) in notes.lines.iter().enumerate() {
            out.push_str(&format!("{}. {line}\n", number + 1));
        }
        out.push('\n');
    }
    out
}

/// A chart as the page lists it: its image, and its note as a paragraph of its own.
/// [`crate::html`] finds this text to put the drawing in its place.
pub fn chart_block(chart: &Chart) -> String {
    let image = format!(
        "![{}](charts/{}.svg)",
        cells::escape(&chart.title),
        chart.stem
    );
    match &chart.note {
        Some(note) => format!("{image}\n\n*{}*", cells::escape(note)),
        None => image,
    }
}

/// `Environment: CPU (avx2, fma), 2 cores; OS; rustc; git; versions`.
fn environment_line(results: &Results) -> String {
    let env = &results.environment;
    let isa = if env.cpu_flags.is_empty() {
        String::new()
    } else {
        format!(" ({})", env.cpu_flags.join(", "))
    };
    let mut parts = vec![
        format!("{}{isa}, {} cores", env.cpu, env.cores),
        env.os.clone(),
        env.rustc.clone(),
    ];
    if let Some(git) = &env.git {
        parts.push(format!("git {git}"));
    }
    // Which kernels ran explains a difference between machines (or a forced AVX2 run).
    let mut kernels: Vec<String> = Vec::new();
    for run in &results.runs {
        if let Some(k) = &run.kernels {
            let line = format!("{} kernels: {k}", run.backend);
            if !kernels.contains(&line) {
                kernels.push(line);
            }
        }
    }
    if let Some(cap) = &env.isa_cap {
        kernels.push(format!("capped by DLBENCH_ISA={cap}"));
    }
    if !kernels.is_empty() {
        parts.push(kernels.join(", "));
    }
    if !env.versions.is_empty() {
        let versions: Vec<String> = env
            .versions
            .iter()
            .map(|(name, version)| format!("{name}: {version}"))
            .collect();
        parts.push(format!("versions: {}", versions.join(", ")));
    }
    cells::escape(&format!("Environment: {}.", parts.join("; ")))
}

/// The numbered notes of a spec: each failure's error, then every run's and agreement's
/// notes. `error_note[i]` is the note number of run `i`'s error, for its status cell.
struct Notes {
    lines: Vec<String>,
    error_note: Vec<Option<usize>>,
}

impl Notes {
    fn collect(results: &Results) -> Self {
        let mut lines = Vec::new();
        let mut error_note = Vec::new();
        for run in &results.runs {
            let name = verdict::label(results, run);
            let error = match (&run.error, run.status) {
                (Some(error), Status::Failed | Status::Unsupported) => {
                    let status = status_word(run.status);
                    lines.push(format!(
                        "**{name}** {status}: {}",
                        cells::reason_in_note(error)
                    ));
                    Some(lines.len())
                }
                _ => None,
            };
            error_note.push(error);
            let agreement_notes = run.agreement.iter().flat_map(|a| &a.notes);
            for note in run.notes.iter().chain(agreement_notes) {
                lines.push(format!("**{name}**: {}", cells::reason_in_note(note)));
            }
        }
        Notes { lines, error_note }
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Failed => "failed",
        Status::Unsupported => "unsupported",
    }
}

/// The status cell: `ok`, `ok, disagrees`, `failed: reason… (note 2)`.
fn status_cell(run: &RunRecord, note: Option<usize>) -> String {
    let mut cell = status_word(run.status).to_string();
    if run.status == Status::Ok && !verdict::agrees(run) {
        cell.push_str(", disagrees");
    }
    if let Some(error) = &run.error {
        if run.status != Status::Ok {
            cell.push_str(&format!(": {}", cells::reason_in_cell(error)));
        }
    }
    if let Some(number) = note {
        cell.push_str(&format!(" (note {number})"));
    }
    cell
}

/// The cell for a figure the run did not produce, saying why.
fn missing_cell(run: &RunRecord) -> String {
    match run.status {
        Status::Failed => "n/a (failed)".to_string(),
        Status::Unsupported => "n/a (unsupported)".to_string(),
        Status::Ok if !verdict::agrees(run) => "n/a (disagrees: not timed)".to_string(),
        Status::Ok => NOT_APPLICABLE.to_string(),
    }
}

fn runs_table(results: &Results, notes: &Notes) -> String {
    let batches: BTreeSet<usize> = results
        .runs
        .iter()
        .flat_map(|r| r.inference.iter().map(|i| i.batch))
        .collect();
    let batch_titles: Vec<String> = batches
        .iter()
        .map(|b| format!("inference batch {b} [95% CI]"))
        .collect();
    let mut titles = vec![
        "backend",
        "device",
        "threads",
        "status",
        "step median [95% CI]",
        "loss first → last",
        "validation",
        "test",
    ];
    titles.extend(batch_titles.iter().map(String::as_str));
    let mut lines = vec![cells::header(&titles)];
    for (index, run) in results.runs.iter().enumerate() {
        let note = notes.error_note.get(index).copied().flatten();
        let (step, losses, validation, test) = match &run.training {
            Some(training) => (
                cells::median_with_interval(&training.step_time),
                cells::loss_trajectory(&training.losses),
                cells::headline(training, "val"),
                cells::headline(training, "test"),
            ),
            None => (
                missing_cell(run),
                missing_cell(run),
                missing_cell(run),
                missing_cell(run),
            ),
        };
        let mut row = vec![
            cells::escape(&verdict::label(results, run)),
            run.device.to_string(),
            run.threads.to_string(),
            status_cell(run, note),
            step,
            losses,
            validation,
            test,
        ];
        for batch in &batches {
            row.push(
                run.inference
                    .iter()
                    .find(|i| i.batch == *batch)
                    .map_or_else(
                        || missing_cell(run),
                        |i| cells::median_with_interval(&i.summary),
                    ),
            );
        }
        lines.push(cells::row(&row));
    }
    lines.join("\n")
}

fn agreement_table(results: &Results) -> String {
    let mut lines = vec![cells::header(&[
        "backend",
        "forward",
        "gradients",
        "training",
        "first divergence",
    ])];
    for run in &results.runs {
        let name = cells::escape(&verdict::label(results, run));
        let row = match (&run.agreement, run.status) {
            (Some(agreement), _) => {
                let cell = |check: &Option<_>| {
                    check
                        .as_ref()
                        .map_or(NOT_APPLICABLE.to_string(), cells::check)
                };
                vec![
                    name,
                    cell(&agreement.forward),
                    cell(&agreement.gradients),
                    cell(&agreement.training),
                    first_divergence(agreement),
                ]
            }
            // The reference has no agreement: it is what the others are compared with.
            (None, Status::Ok) => {
                let mut row = vec![name, "— (the oracle)".to_string()];
                row.extend(std::iter::repeat_n(NOT_APPLICABLE.to_string(), 3));
                row
            }
            (None, _) => {
                let mut row = vec![name];
                row.extend(std::iter::repeat_n(missing_cell(run), 3));
                row.push(NOT_APPLICABLE.to_string());
                row
            }
        };
        lines.push(cells::row(&row));
    }
    lines.join("\n")
}

/// Where the first failing check's error was introduced: `` `dense_1` (dense) in forward ``.
fn first_divergence(agreement: &dlbench_harness::results::Agreement) -> String {
    let failing = verdict::named_checks(agreement)
        .into_iter()
        .find(|(_, check)| !check.pass);
    let Some((name, check)) = failing else {
        return NOT_APPLICABLE.to_string();
    };
    let place = match (&check.first_divergent_node, &check.first_divergent_op) {
        (Some(node), Some(op)) => format!(
            "`{}` ({}) in {name}",
            cells::escape(node),
            cells::escape(op)
        ),
        (Some(node), None) => format!("`{}` in {name}", cells::escape(node)),
        (None, _) => format!("not located, in {name}"),
    };
    match &check.worst {
        Some(worst) => format!("{place}; worst `{}`", cells::escape(worst)),
        None => place,
    }
}
