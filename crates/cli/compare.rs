//! `dlbench compare`: is a difference real or the machine's noise? Either two records of the
//! same spec (`OLD.json NEW.json`: before and after a change) or one record's backends against
//! one of them (`RESULTS.json --baseline NAME`). Prints each median's change with its interval
//! and a verdict; runs nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use dlbench_harness::compare::{between_backends, between_records, Changes, DEFAULT_THRESHOLD};
use dlbench_harness::configuration::label;
use dlbench_harness::results::Results;
use dlbench_harness::stats::format_ns;

/// The arguments of `dlbench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// `OLD.json NEW.json`, or one record with `--baseline`.
    #[arg(required = true, num_args = 1..=2, value_name = "RESULTS.json")]
    records: Vec<PathBuf>,
    /// Compare every backend of the one record given against this one.
    #[arg(long, value_name = "BACKEND")]
    baseline: Option<String>,
    /// Smallest change called `faster` or `slower`, as a fraction (0.05 = 5%); smaller ones
    /// are `no significant change` however narrow their interval.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD, value_parser = threshold)]
    threshold: f64,
}

fn threshold(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if (0.0..1.0).contains(&t) => Ok(t),
        _ => Err(format!(
            "`{text}` is not a fraction from 0 to 1 (0.05 = 5%)"
        )),
    }
}

/// Reads the records (schema checked; an unreadable one is exit 2) and prints the comparison.
pub fn compare(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let records = args
        .records
        .iter()
        .map(|path| Results::read(path))
        .collect::<Result<Vec<_>, _>>()?;
    let changes = match (&records[..], &args.baseline) {
        ([one], Some(baseline)) => {
            between_backends(one, baseline, args.threshold).map_err(|e| anyhow::anyhow!(e))?
        }
        ([old, new], None) => {
            if old.spec.name != new.spec.name {
                anyhow::bail!(
                    "{} is a record of spec `{}` and {} of `{}`: compare records of one spec",
                    args.records[0].display(),
                    old.spec.name,
                    args.records[1].display(),
                    new.spec.name
                );
            }
            between_records(old, new, args.threshold)
        }
        ([_], None) => {
            anyhow::bail!("give two records (OLD.json NEW.json), or one with --baseline")
        }
        (_, Some(_)) => anyhow::bail!("--baseline compares the backends of one record: give one"),
        _ => unreachable!("clap takes one or two records"),
    };
    print!("{}", render(&changes));
    Ok(ExitCode::SUCCESS)
}

/// The comparison as a terminal table, with the machine check and what was unmatched.
pub fn render(changes: &Changes) -> String {
    let mut out = format!("{}\n", changes.title);
    if let Some((ratio, [lo, hi])) = changes.machine.probe_ratio {
        out += &format!("machine-speed probe: {ratio:.3}x [{lo:.3}, {hi:.3}]\n");
    }
    if let Some(why) = &changes.machine.changed {
        out += &format!("machine changed: {why}\n");
    }
    for note in &changes.machine.notes {
        out += &format!("note: {note}\n");
    }
    let rows: Vec<[String; 5]> = changes
        .changes
        .iter()
        .map(|c| {
            let interval = c
                .ratio_ci95
                .map_or("-".to_string(), |[lo, hi]| format!("[{lo:.3}, {hi:.3}]"));
            [
                format!("{}: {}", label(&c.backend, c.device, c.threads), c.measure),
                format!("{} -> {}", format_ns(c.old_ns), format_ns(c.new_ns)),
                format!("{:.3}x", c.ratio),
                interval,
                c.verdict.to_string(),
            ]
        })
        .collect();
    let header = [
        "measurement",
        "median",
        "time ratio",
        "95% interval",
        "verdict",
    ];
    let widths: Vec<usize> = (0..5)
        .map(|k| {
            rows.iter()
                .map(|r| r[k].len())
                .chain([header[k].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 5]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    out += &line(header);
    for row in &rows {
        out += &line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    for missing in &changes.unmatched {
        out += &format!("not compared: {missing}\n");
    }
    out
}
