//! dlbench's reports, built from `dlbench.results/v1` records alone, so that a report is
//! regenerated without running anything again.
//!
//! This first slice writes one Markdown page, `index.md`: a summary table across specs (when
//! there are several), the recommendation per use case (what a reader who skips everything
//! else reads), and a section per spec with its environment, runs and agreement tables.
//!
//! Charts ([`charts`]), as SVG and PNG beside the page, per spec and only where the record has
//! the data: inference latency and throughput against batch size, training step time per
//! thread count, thread scaling, the training-loss curves, time to quality, CPU against GPU,
//! peak memory and the agreement heatmap. [`html`] makes the self-contained `index.html`
//! (charts inline).

pub mod cells;
pub mod changes;
pub mod charts;
pub mod html;
pub mod markdown;
pub mod quality;
pub mod verdict;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use dlbench_harness::results::Results;

pub use markdown::render_markdown;

/// Why a report could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A report needs at least one record.
    #[error("no results records to report on")]
    NoRecords,
    /// A record could not be read: missing, not JSON, or another schema. The source names the
    /// file.
    #[error("reading a results record: {0}")]
    Read(dlbench_core::Error),
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Write(dlbench_core::Error),
    /// A chart could not be drawn.
    #[error("drawing the chart {0}")]
    Chart(String),
}

/// One results record and where it was read from.
#[derive(Debug, Clone)]
pub struct Record {
    /// The record's name in the report, and the start of its charts' file names: its spec's
    /// name, followed by `-2`, `-3`... for the second and later records of the same spec.
    pub name: String,
    /// The file it came from (shown in the report, so a reader can find the raw numbers).
    pub path: PathBuf,
    /// The record itself.
    pub results: Results,
}

/// The records a report covers, in the order given.
#[derive(Debug, Clone)]
pub struct Report {
    /// One or more records, typically one per spec.
    pub records: Vec<Record>,
}

impl Report {
    /// A report over records already in memory (e.g. straight from `dlbench run`).
    pub fn new(records: Vec<(PathBuf, Results)>) -> Result<Self, ReportError> {
        if records.is_empty() {
            return Err(ReportError::NoRecords);
        }
        let mut seen: Vec<&str> = Vec::new();
        let mut names = Vec::new();
        for (_, results) in &records {
            let spec = results.spec.name.as_str();
            seen.push(spec);
            names.push(match seen.iter().filter(|s| **s == spec).count() {
                1 => spec.to_string(),
                n => format!("{spec}-{n}"),
            });
        }
        let records = records
            .into_iter()
            .zip(names)
            .map(|((path, results), name)| Record {
                name,
                path,
                results,
            })
            .collect();
        Ok(Report { records })
    }

    /// Reads each record with its schema checked; the first that cannot be read is the error.
    pub fn read(paths: &[PathBuf]) -> Result<Self, ReportError> {
        let records = paths
            .iter()
            .map(|path| {
                Results::read(path)
                    .map(|results| (path.clone(), results))
                    .map_err(ReportError::Read)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Report::new(records)
    }

    /// Writes `dir/index.md`, the self-contained `dir/index.html` and the charts
    /// (`dir/charts/<spec>-<chart>.svg` and `.png`), creating `dir`; each file appears whole
    /// or not at all. Returns the Markdown page's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ReportError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ReportError::Write(dlbench_core::Error::io(dir, e)))?;
        for record in &self.records {
            charts::write(&record.results, &record.name, &dir.join("charts"))?;
        }
        let page = html::render_html(self)?;
        dlbench_core::format::write_atomically(&dir.join("index.html"), page.as_bytes())
            .map_err(ReportError::Write)?;
        let path = dir.join("index.md");
        dlbench_core::format::write_atomically(&path, render_markdown(self).as_bytes())
            .map_err(ReportError::Write)?;
        Ok(path)
    }
}
