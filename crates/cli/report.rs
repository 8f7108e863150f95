//! `dlbench report`: regenerate the report from results records, without running anything.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use dlbench_report::Report;

/// The arguments of `dlbench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// One or more `results.json` records written by `dlbench run`.
    #[arg(required = true, value_name = "RESULTS.json")]
    records: Vec<PathBuf>,
    /// The folder to write `index.md` into (created if missing).
    #[arg(long, short)]
    out: PathBuf,
}

/// Reads every record (schema checked), writes `OUT/index.md` and prints its path. An
/// unreadable record is an error naming its file, which `main` turns into exit 2.
pub fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let report = Report::read(&args.records)?;
    let written = report
        .write(&args.out)
        .with_context(|| format!("report into {}", args.out.display()))?;
    println!("wrote {}", written.display());
    Ok(ExitCode::SUCCESS)
}
