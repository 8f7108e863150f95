//! How single figures are written in a report: durations with their interval, shares of the
//! tolerance, metrics. Every function here accepts whatever a record may hold (NaN, infinity,
//! empty text) and returns something printable: a report never shows `NaN` raw, and never
//! lets a value break a Markdown table.

use dlbench_harness::results::AgreementCheck;
use dlbench_harness::stats::{format_ns, Summary};

/// The cell for something that does not apply (an inference-only backend's training step).
pub const NOT_APPLICABLE: &str = "—";

/// Longest error text shown inside a table cell; the whole first line goes in the notes.
const CELL_REASON_CHARS: usize = 40;

/// Longest error text shown in the notes list: worker stderr can be pages long.
const NOTE_REASON_CHARS: usize = 300;

/// A duration, or `n/a` when the record holds no usable number.
pub fn duration(ns: f64) -> String {
    if ns.is_finite() && ns >= 0.0 {
        format_ns(ns)
    } else {
        "n/a".to_string()
    }
}

/// `8.1 us [8.0 us – 8.2 us]`: a median and its 95% interval.
pub fn median_with_interval(summary: &Summary) -> String {
    format!(
        "{} {}",
        duration(summary.median_ns),
        interval(summary.median_ci95_ns)
    )
}

/// `[8.0 us – 8.2 us]`, or `[interval n/a]` when a bound is not a number.
pub fn interval(ci: [f64; 2]) -> String {
    if ci.iter().all(|b| b.is_finite()) {
        format!("[{} – {}]", duration(ci[0]), duration(ci[1]))
    } else {
        "[interval n/a]".to_string()
    }
}

/// A plain number with four significant-ish digits; non-finite values in words.
pub fn number(value: f64) -> String {
    if value.is_nan() {
        "n/a (not a number)".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "∞" } else { "-∞" }.to_string()
    } else if value != 0.0 && (value.abs() >= 1e4 || value.abs() < 1e-3) {
        format!("{value:.3e}")
    } else {
        format!("{value:.4}")
    }
}

/// `2.1x`: how many times slower the runner-up is.
pub fn ratio(ratio: f64) -> String {
    if !ratio.is_finite() {
        "n/a".to_string()
    } else if ratio >= 10.0 {
        format!("{ratio:.0}x")
    } else {
        format!("{ratio:.2}x")
    }
}

/// A share of the tolerance as a percentage: `31%`, `<1%`, `320%`, and from ten times the
/// tolerance as a multiple (`10000x`, as the terminal's table writes it); `n/a` when not
/// recorded.
pub fn share(tolerance_used: f64) -> String {
    if tolerance_used.is_nan() {
        "n/a".to_string()
    } else if tolerance_used.is_infinite() {
        "∞".to_string()
    } else if tolerance_used < 0.01 {
        "<1%".to_string()
    } else if tolerance_used < 9.995 {
        format!("{:.0}%", tolerance_used * 100.0)
    } else {
        format!("{tolerance_used:.0}x")
    }
}

/// The agreement cell of one check: `31% · 12 ulp`, `320% FAIL · 4100 ulp`, `error: ...`.
/// A record from before `tolerance_used` was kept says so instead of showing NaN.
pub fn check(check: &AgreementCheck) -> String {
    if let Some(error) = &check.error {
        return format!("error: {}", reason_in_cell(error));
    }
    let verdict = match (check.pass, check.tolerance_used.is_nan()) {
        (true, false) => share(check.tolerance_used),
        (false, false) => format!("{} FAIL", share(check.tolerance_used)),
        // Old records have no share; a diverged backend has NaN errors and fails.
        (true, true) => "pass (share not recorded)".to_string(),
        (false, true) => "FAIL (non-finite or not recorded)".to_string(),
    };
    format!("{verdict} · {} ulp", check.max_ulp)
}

/// The first line of an error, shortened for a table cell and made table-safe.
pub fn reason_in_cell(error: &str) -> String {
    escape(&first_line(error, CELL_REASON_CHARS))
}

/// The first line of an error, shortened for the notes list and made table-safe.
pub fn reason_in_note(error: &str) -> String {
    escape(&first_line(error, NOTE_REASON_CHARS))
}

/// The first non-empty line of `text`, cut at `max_chars` characters with an ellipsis.
pub fn first_line(text: &str, max_chars: usize) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no reason given");
    if line.chars().count() > max_chars {
        let cut: String = line.chars().take(max_chars).collect();
        format!("{}…", cut.trim_end())
    } else {
        line.to_string()
    }
}

/// Text that cannot end a table cell or row early: pipes escaped, line breaks made spaces.
pub fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// `0.71 → 0.09`: the first and last training loss.
pub fn loss_trajectory(losses: &[f64]) -> String {
    match (losses.first(), losses.last()) {
        (Some(first), Some(last)) => format!("{} → {}", number(*first), number(*last)),
        _ => NOT_APPLICABLE.to_string(),
    }
}

/// `accuracy 0.9735`: the metric that sums up a split (`val`, `test`) of a training run.
pub fn headline(training: &dlbench_harness::results::TrainingRecord, split: &str) -> String {
    training.headline(split).map_or_else(
        || NOT_APPLICABLE.to_string(),
        |(name, v)| format!("{name} {}", number(v)),
    )
}

/// One Markdown table row from its cells.
pub fn row(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

/// A Markdown table header with its separator line.
pub fn header(titles: &[&str]) -> String {
    let separator: Vec<&str> = titles.iter().map(|_| "---").collect();
    format!("| {} |\n| {} |", titles.join(" | "), separator.join(" | "))
}
