//! `dlbench run`: the main job. Runs a spec on its backends, prints a summary table and writes
//! `results.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use dlbench_core::{Backend, Device};
use dlbench_harness::results::{
    AgreementCheck, Results, RunRecord, Status, TrainingRecord, QUALITY_METRICS,
};
use dlbench_harness::run::{Isolation, RunOptions};
use dlbench_harness::stats::format_ns;
use dlbench_spec::Spec;

use crate::progress::Bars;
use crate::{registry, Failure};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The spec to run (e.g. specs/mlp.yaml).
    spec: PathBuf,
    /// Backends to run instead of the spec's, comma-separated (e.g. reference).
    #[arg(long, value_delimiter = ',')]
    backends: Option<Vec<String>>,
    /// Devices instead of the spec's, comma-separated (cpu, cuda:0).
    #[arg(long, value_delimiter = ',')]
    device: Option<Vec<String>>,
    /// Thread counts instead of the spec's, comma-separated.
    #[arg(long, value_delimiter = ',')]
    threads: Option<Vec<usize>>,
    /// A small budget for CI and first looks: at most 30 training steps, short timings.
    #[arg(long)]
    quick: bool,
    /// Folder for results.json [default: reports/<spec name>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Time limit of each backend run (one worker process each); a run still going then is
    /// killed and recorded as timed out.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Worker processes per backend x device x thread count, interleaved in time; intervals
    /// then resample processes and rounds. The first process checks agreement and trains; the
    /// others time with a share of the timing budget (each still trains the spec's steps).
    /// 10 to 20 tell a real change from the machine's noise (`dlbench compare`).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    processes: u64,
}

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    // A misspelt DLBENCH_ISA is bad input: refused before the spec is even read.
    dlbench_native::kernels::isa::isa_cap()?;
    let spec = Spec::load(&args.spec)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&spec.name));
    check_writable(&out)?;
    let devices = args
        .device
        .as_ref()
        .map(|ds| {
            ds.iter()
                .map(|d| d.parse::<Device>())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let options = RunOptions {
        backends: args.backends.clone(),
        devices,
        threads: args.threads.clone(),
        quick: args.quick,
        // Each backend in its own process: this binary's hidden `worker` subcommand.
        isolation: Isolation::Process {
            exe: std::env::current_exe().map_err(|e| {
                Failure(format!(
                    "cannot find the dlbench binary to start workers: {e}"
                ))
            })?,
            timeout: Duration::from_secs(args.timeout),
        },
        planned_backends: registry::not_built()
            .into_iter()
            .map(|(name, _)| name.to_string())
            .collect(),
        devices_present: None,
        processes: Some(args.processes as usize),
    };
    let backends = registry::backends();
    let registry: Vec<&dyn Backend> = backends.iter().map(|b| b.as_ref()).collect();
    let mut results = dlbench_harness::run::run(&spec, &registry, &options, &mut Bars::default())?;
    add_build_hints(&mut results);
    print_summary(&results);
    print_agreement(&results);
    let path = results
        .write(&out)
        .map_err(|e| Failure(format!("could not write the results: {e}")))?;
    println!("results: {}", path.display());
    // The report beside the record: what a person opens. The record is the result; a report
    // that cannot be written is said, not a failed run.
    match dlbench_report::Report::new(vec![(path.clone(), results.clone())])
        .and_then(|report| report.write(&out))
    {
        Ok(index) => println!("report: {}", index.display()),
        Err(e) => eprintln!("warning: the report was not written: {e}"),
    }
    if results.runs.iter().any(|r| r.status == Status::Failed) {
        return Err(Failure("at least one backend failed; see the table above".into()).into());
    }
    if results.runs.iter().any(disagrees) {
        return Err(Failure(
            "at least one backend disagrees with the f64 reference; see the agreement table".into(),
        )
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses, before any work, an output folder the results could not be written to: a path
/// through a file, a folder without write permission, a `results.json` that is a folder.
/// Nothing is created: a probe file in the nearest existing folder is written and removed.
fn check_writable(out: &Path) -> anyhow::Result<()> {
    let bad = |why: String| anyhow::anyhow!("--out {}: {why}", out.display());
    let results = out.join("results.json");
    if results.is_dir() {
        return Err(bad(format!("{} is a folder", results.display())));
    }
    let existing = out
        .ancestors()
        .find(|a| a.as_os_str().is_empty() || a.exists())
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        return Err(bad(format!("{} is not a folder", existing.display())));
    }
    let probe = existing.join(format!(".dlbench-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| bad(format!("cannot write in {}: {e}", existing.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The harness records a backend this build lacks as unsupported without knowing why; the
/// registry knows, so each such record also says how to build the backend in (or that it is
/// not implemented yet).
fn add_build_hints(results: &mut Results) {
    let planned = registry::not_built();
    for run in &mut results.runs {
        let hint = planned.iter().find(|(name, _)| *name == run.backend);
        if let (Status::Unsupported, Some((_, how)), Some(error)) =
            (&run.status, hint, run.error.as_mut())
        {
            if error.contains("not in this build") {
                error.push_str(&format!(". {how}"));
            }
        }
    }
}

/// The width of the backend column: the longest name, at least the header's.
fn backend_width(results: &Results) -> usize {
    results
        .runs
        .iter()
        .map(|r| r.backend.len())
        .chain([11])
        .max()
        .unwrap_or(11)
}

/// The checks of a run's agreement section, in table order.
fn checks(run: &RunRecord) -> [(&'static str, Option<&AgreementCheck>); 3] {
    let a = run.agreement.as_ref();
    [
        ("forward", a.and_then(|a| a.forward.as_ref())),
        ("gradients", a.and_then(|a| a.gradients.as_ref())),
        ("training", a.and_then(|a| a.training.as_ref())),
    ]
}

fn disagrees(run: &RunRecord) -> bool {
    checks(run).iter().any(|(_, c)| c.is_some_and(|c| !c.pass))
}

/// One line per backend that has an agreement section: pass or FAIL, the largest relative
/// error of each check, and where a disagreement starts.
fn print_agreement(results: &Results) {
    let w = backend_width(results);
    let runs: Vec<&RunRecord> = results
        .runs
        .iter()
        .filter(|r| r.agreement.is_some())
        .collect();
    if runs.is_empty() {
        println!(
            "\nAgreement with the f64 reference: no backend other than the reference ran, so \
             there was nothing to check."
        );
        return;
    }
    println!(
        "\nAgreement with the f64 reference (the worst error as a share of the tolerance, \
         above 100% fails; and in f32 ulps):"
    );
    let header = format!(
        "{:<w$} {:<7} {:>3} {:>20} {:>20} {:>20}  {}",
        "backend", "device", "thr", "forward", "gradients", "training", "first divergent node"
    );
    println!("{header}");
    println!("{}", "-".repeat(header.len()));
    for r in runs {
        let cell = |c: Option<&AgreementCheck>| c.map_or("-".to_string(), agreement_cell);
        let [f, g, t] = checks(r);
        let node = [f, g, t]
            .iter()
            .find_map(|(_, c)| c.and_then(|c| c.first_divergent_node.clone()))
            .unwrap_or_default();
        println!(
            "{:<w$} {:<7} {:>3} {:>20} {:>20} {:>20}  {node}",
            r.backend,
            r.device.to_string(),
            r.threads,
            cell(f.1),
            cell(g.1),
            cell(t.1)
        );
    }
}

/// `pass 31% 12 ulp`: the worst error as a share of the tolerance and in f32 ulps. A relative
/// error alone misleads: near a zero reference it is large while well within `atol`. A record
/// written before the share was kept shows its relative error instead.
fn agreement_cell(c: &AgreementCheck) -> String {
    let verdict = if c.pass { "pass" } else { "FAIL" };
    let share = match c.tolerance_used {
        v if v.is_nan() => format!("rel {:.1e}", c.max_rel),
        v if v.is_infinite() => "inf".to_string(),
        v if v > 0.0 && v < 0.005 => "<1%".to_string(),
        v if v < 9.995 => format!("{:.0}%", v * 100.0),
        v => format!("{v:.0}x"),
    };
    let ulp = match c.max_ulp {
        u64::MAX => String::new(),
        u if u >= 100_000 => format!(" {:.0e} ulp", u as f64),
        u => format!(" {u} ulp"),
    };
    format!("{verdict} {share}{ulp}")
}

fn print_summary(results: &Results) {
    let w = backend_width(results);
    let spec = &results.spec;
    println!(
        "\n{}: {} parameters, {} train / {} validation / {} test samples, {} + {}, batch {}",
        spec.name,
        spec.parameters,
        spec.train_samples,
        spec.validation_samples,
        spec.test_samples,
        spec.loss,
        spec.optimizer,
        spec.batch_size
    );
    for report in &spec.cleaning {
        println!("cleaned {}", report.summary());
    }
    let batches: Vec<usize> = results
        .runs
        .iter()
        .flat_map(|r| r.inference.iter().map(|i| i.batch))
        .fold(Vec::new(), |mut acc, b| {
            if !acc.contains(&b) {
                acc.push(b);
            }
            acc
        });
    let mut header = format!(
        "{:<w$} {:<7} {:>3} {:<12} {:>11} {:>19} {:>22} {:>22}",
        "backend",
        "device",
        "thr",
        "status",
        "step (med)",
        "loss first -> last",
        "validation",
        "test"
    );
    for b in &batches {
        header.push_str(&format!(" {:>12}", format!("infer b={b}")));
    }
    println!("{header}");
    println!("{}", "-".repeat(header.len()));
    for r in &results.runs {
        let status = match r.status {
            Status::Ok if disagrees(r) => "disagrees",
            Status::Ok => "ok",
            Status::Failed => "FAILED",
            Status::Unsupported => "unsupported",
        };
        let headline = |t: &TrainingRecord, split| {
            t.headline(split)
                .map(|(name, v)| format!("{name} {v:.4}"))
                .unwrap_or_default()
        };
        let (step, losses, validation, test) = match &r.training {
            Some(t) => (
                format_ns(t.step_median_ns),
                format!(
                    "{:.4} -> {:.4}",
                    t.losses.first().copied().unwrap_or(f64::NAN),
                    t.losses.last().copied().unwrap_or(f64::NAN)
                ),
                headline(t, "val"),
                headline(t, "test"),
            ),
            None => Default::default(),
        };
        let mut line = format!(
            "{:<w$} {:<7} {:>3} {:<12} {:>11} {:>19} {:>22} {:>22}",
            r.backend,
            r.device.to_string(),
            r.threads,
            status,
            step,
            losses,
            validation,
            test
        );
        for b in &batches {
            let cell = r
                .inference
                .iter()
                .find(|i| i.batch == *b)
                .map(|i| format_ns(i.summary.median_ns))
                .unwrap_or_default();
            line.push_str(&format!(" {cell:>12}"));
        }
        println!("{line}");
        // Worker failures carry the worker's stderr tail on the lines after the cause.
        for line in r.error.iter().flat_map(|e| e.lines()) {
            println!("    {line}");
        }
    }
    print_quality(results, w);
}

/// The test split's scores of each trained run (the validation split's where there is no
/// test split), and the first run's confusion matrix.
fn print_quality(results: &Results, w: usize) {
    let split = if results.spec.test_samples > 0 {
        "test"
    } else {
        "val"
    };
    let trained: Vec<(&RunRecord, &TrainingRecord)> = results
        .runs
        .iter()
        .filter_map(|r| Some((r, r.training.as_ref()?)))
        .collect();
    let columns: Vec<&str> = QUALITY_METRICS
        .into_iter()
        .filter(|m| {
            trained
                .iter()
                .any(|(_, t)| t.metrics.contains_key(&format!("{split}_{m}")))
        })
        .collect();
    if columns.is_empty() {
        return;
    }
    let name = if split == "test" {
        "test"
    } else {
        "validation"
    };
    println!("\nquality on the {name} split");
    let mut header = format!("{:<w$} {:>3}", "backend", "thr");
    for c in &columns {
        header.push_str(&format!(" {c:>10}", c = shorten(c)));
    }
    println!("{header}");
    println!("{}", "-".repeat(header.len()));
    for (r, t) in &trained {
        let mut line = format!("{:<w$} {:>3}", r.backend, r.threads);
        for c in &columns {
            let cell = t
                .metrics
                .get(&format!("{split}_{c}"))
                .map(|v| format!("{v:.4}"))
                .unwrap_or_default();
            line.push_str(&format!(" {cell:>10}"));
        }
        println!("{line}");
    }
    let key = if split == "test" {
        "test"
    } else {
        "validation"
    };
    if let Some((r, counts)) = trained
        .iter()
        .find_map(|(r, t)| Some((r, t.confusion.get(key)?)))
    {
        println!(
            "\nconfusion matrix of {} on the {name} split (rows: true class, columns: predicted)",
            r.backend
        );
        let width = counts
            .iter()
            .flatten()
            .max()
            .map_or(1, |m| m.to_string().len())
            .max(2);
        for (truth, row) in counts.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|c| format!("{c:>width$}")).collect();
            println!("{truth:>4} | {}", cells.join(" "));
        }
    }
}

/// A metric's name that fits a 10-character column.
fn shorten(metric: &str) -> String {
    metric
        .replace("binary_accuracy", "bin_acc")
        .replace("precision", "prec")
        .replace("_weighted", "_w")
        .replace("_macro", "_m")
}

#[cfg(test)]
mod tests {
    use dlbench_harness::results::AgreementCheck;

    use super::agreement_cell;

    fn check(pass: bool, tolerance_used: f64, max_rel: f64, max_ulp: u64) -> AgreementCheck {
        let mut check = dlbench_harness::agreement::summarize(&[]);
        check.pass = pass;
        check.tolerance_used = tolerance_used;
        check.max_rel = max_rel;
        check.max_ulp = max_ulp;
        check
    }

    #[test]
    fn agreement_reads_as_a_share_of_the_tolerance_not_a_relative_error() {
        // A 12% relative error near a zero reference, at 31% of the tolerance, passes.
        assert_eq!(
            agreement_cell(&check(true, 0.31, 0.12, 12)),
            "pass 31% 12 ulp"
        );
        assert_eq!(
            agreement_cell(&check(true, 0.001, 0.12, 1)),
            "pass <1% 1 ulp"
        );
        assert_eq!(agreement_cell(&check(true, 0.0, 0.0, 0)), "pass 0% 0 ulp");
        assert_eq!(
            agreement_cell(&check(false, 3.2, 0.5, 4000)),
            "FAIL 320% 4000 ulp"
        );
        assert_eq!(
            agreement_cell(&check(false, 1.0e4, 2.0, 1 << 30)),
            "FAIL 10000x 1e9 ulp"
        );
        assert_eq!(
            agreement_cell(&check(false, f64::INFINITY, 1.0, u64::MAX)),
            "FAIL inf"
        );
        // A record from before the share was kept.
        assert_eq!(
            agreement_cell(&check(true, f64::NAN, 0.12, 3)),
            "pass rel 1.2e-1 3 ulp"
        );
    }
}
