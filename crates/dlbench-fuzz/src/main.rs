//! `dlbench-fuzz`: fuzz one parser or all of them, or replay inputs. See `docs/fuzzing.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dlbench_core::limits::{format_bytes, parse_size};
use dlbench_fuzz::guard::CountingAllocator;
use dlbench_fuzz::{supervise, worker, Guards, Inputs, Options, Report, Target};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Fuzz dlbench's parsers with structure-aware mutations, under a memory cap and a hang limit.
#[derive(Parser)]
#[command(name = "dlbench-fuzz")]
struct Cli {
    /// The target: spec, csv, npy, npz, safetensors, pickle, onnx, or `all`.
    target: String,
    /// Inputs to run per target.
    #[arg(long, default_value_t = 100_000)]
    runs: u64,
    /// The run's seed: the same seed runs the same inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The first input's index (to resume a run, or to rerun one input).
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Replay these files instead of mutating (the target's regressions, a saved failure).
    #[arg(long, num_args = 1..)]
    replay: Vec<PathBuf>,
    /// Live heap memory at which an input fails.
    #[arg(long, default_value = "1G")]
    memory_cap: String,
    /// Milliseconds after which an input is a hang.
    #[arg(long, default_value_t = 10_000)]
    hang_ms: u64,
    /// Write the target's seeds to DIR/<target>/ and its dictionary to DIR/<target>.dict (for
    /// the libFuzzer runs of scripts/fuzz-coverage.sh) instead of fuzzing.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    /// Write the inputs `--from`..`--from + --runs` to DIR instead of running them (to look at
    /// a slow input, or to keep one as a regression).
    #[arg(long, value_name = "DIR")]
    dump: Option<PathBuf>,
    /// Where failing inputs are saved, one folder per target.
    #[arg(long, default_value = "target/fuzz")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__worker") {
        let result =
            worker::parse_args(&args[2..]).and_then(|(target, inputs, guards, scratch)| {
                worker::run(target, &inputs, guards, &scratch)
            });
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("worker: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let cli = Cli::parse();
    match fuzz(&cli) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("dlbench-fuzz: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the targets the command line names; returns how many inputs failed.
fn fuzz(cli: &Cli) -> anyhow::Result<usize> {
    let targets: Vec<Target> = match cli.target.as_str() {
        "all" => Target::ALL.to_vec(),
        name => vec![Target::from_name(name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown target `{name}`: expected all, {}",
                Target::ALL.map(Target::name).join(", ")
            )
        })?],
    };
    anyhow::ensure!(
        cli.replay.is_empty() || targets.len() == 1,
        "--replay needs one target, not `all`"
    );
    let memory_cap = parse_size(&cli.memory_cap).ok_or_else(|| {
        anyhow::anyhow!(
            "--memory-cap `{}`: expected a size such as 1G",
            cli.memory_cap
        )
    })?;
    if std::env::var_os("DLBENCH_MAX_MEMORY").is_none() {
        std::env::set_var("DLBENCH_MAX_MEMORY", dlbench_fuzz::FUZZ_MAX_MEMORY);
    }
    let options = Options {
        guards: Guards {
            memory_cap: usize::try_from(memory_cap).unwrap_or(usize::MAX),
            hang_limit: Duration::from_millis(cli.hang_ms),
        },
        out: cli.out.clone(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    if let Some(dir) = &cli.export {
        for target in targets {
            let seeds = dlbench_fuzz::seeds::export(
                target,
                &dir.join(target.name()),
                &dir.join(format!("{}.dict", target.name())),
            )?;
            println!(
                "{}: {seeds} seeds in {}",
                target.name(),
                dir.join(target.name()).display()
            );
        }
        return Ok(0);
    }
    if let Some(dir) = &cli.dump {
        std::fs::create_dir_all(dir)?;
        for target in targets {
            let corpus = target.corpus();
            for index in cli.from..cli.from.saturating_add(cli.runs) {
                let name = dlbench_fuzz::supervise::input_name(target, cli.seed, index);
                std::fs::write(dir.join(name), target.generate(&corpus, cli.seed, index))?;
            }
        }
        return Ok(0);
    }
    let mut failures = 0;
    for target in targets {
        let inputs = if cli.replay.is_empty() {
            Inputs::Mutations {
                seed: cli.seed,
                from: cli.from,
                to: cli.from.saturating_add(cli.runs),
            }
        } else {
            Inputs::Files(cli.replay.clone())
        };
        let report = supervise(target, &inputs, &options)?;
        println!("{}", summary(&report));
        failures += report.failures.len();
    }
    Ok(failures)
}

/// One line per target: counts, rate, failures, peak memory, the slowest input.
fn summary(report: &Report) -> String {
    let slowest = report
        .slowest
        .map(|(i, t)| format!(", slowest input #{i} {:.1} ms", t.as_secs_f64() * 1e3))
        .unwrap_or_default();
    format!(
        "{}: {} inputs in {:.1} s ({:.0}/s), {} accepted, {} failures, peak live heap {}, largest worker RSS {}{slowest}",
        report.target.name(),
        report.inputs,
        report.elapsed.as_secs_f64(),
        report.rate(),
        report.accepted,
        report.failures.len(),
        format_bytes(report.peak_heap),
        format_bytes(dlbench_fuzz::supervise::max_worker_rss()),
    )
}
