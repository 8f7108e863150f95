//! The worker process: runs inputs one after another under the guards and tells the
//! supervisor, on stdout, which input it is about to run. A failure ends the worker (see
//! `guard`); the supervisor then knows the input from the last line.
//!
//! Lines: `run <index>` before each input, `slow <index> <microseconds>` when an input is the
//! slowest yet, `peak <bytes>` when live heap memory reaches a new high, `done <accepted>` at the end (how
//! many inputs the parser accepted rather than refused).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::guard::{self, Watchdog};
use crate::targets::Target;

/// What a worker runs.
#[derive(Debug, Clone)]
pub enum Inputs {
    /// Inputs `from..to` of the run seeded with `seed`.
    Mutations {
        /// The run's seed.
        seed: u64,
        /// The first index.
        from: u64,
        /// One past the last index.
        to: u64,
    },
    /// These files, in order; the index is the position in the list.
    Files(Vec<PathBuf>),
}

/// How a worker is guarded.
#[derive(Debug, Clone, Copy)]
pub struct Guards {
    /// Live heap bytes that end the worker.
    pub memory_cap: usize,
    /// How long one input may run.
    pub hang_limit: Duration,
}

/// Runs the worker: never returns normally on a failure (the guards exit the process).
pub fn run(target: Target, inputs: &Inputs, guards: Guards, scratch: &Path) -> anyhow::Result<()> {
    guard::install_panic_hook();
    let watchdog = Watchdog::start(guards.hang_limit);
    let corpus = match inputs {
        Inputs::Mutations { .. } => target.corpus(),
        Inputs::Files(_) => Vec::new(),
    };
    anyhow::ensure!(
        !matches!(inputs, Inputs::Mutations { .. }) || !corpus.is_empty(),
        "no seed inputs for {}",
        target.name()
    );
    guard::set_memory_cap(guards.memory_cap);
    let mut out = std::io::stdout().lock();
    let mut slowest = Duration::ZERO;
    let mut peak = guard::peak_bytes();
    let mut accepted = 0u64;
    let indices: Box<dyn Iterator<Item = u64>> = match inputs {
        Inputs::Mutations { from, to, .. } => Box::new(*from..*to),
        Inputs::Files(files) => Box::new(0..files.len() as u64),
    };
    for index in indices {
        writeln!(out, "run {index}")?;
        out.flush()?;
        let input = match inputs {
            Inputs::Mutations { seed, .. } => target.generate(&corpus, *seed, index),
            Inputs::Files(files) => std::fs::read(&files[index as usize])?,
        };
        let started = Instant::now();
        // An error is a parser refusing the input, which is what it should do.
        if watchdog.time(|| target.run(&input, scratch)).is_ok() {
            accepted += 1;
        }
        let took = started.elapsed();
        if took > slowest {
            slowest = took;
            writeln!(out, "slow {index} {}", took.as_micros())?;
        }
        if guard::peak_bytes() > peak {
            peak = guard::peak_bytes();
            writeln!(out, "peak {peak}")?;
        }
    }
    writeln!(out, "done {accepted}")?;
    out.flush()?;
    Ok(())
}

/// The command-line arguments that start a worker (read back by [`parse_args`]).
pub fn args(target: Target, inputs: &Inputs, guards: Guards, scratch: &Path) -> Vec<String> {
    let mut args = vec![
        "__worker".to_string(),
        target.name().to_string(),
        guards.memory_cap.to_string(),
        guards.hang_limit.as_millis().to_string(),
        scratch.display().to_string(),
    ];
    match inputs {
        Inputs::Mutations { seed, from, to } => {
            args.extend([
                "mutations".into(),
                seed.to_string(),
                from.to_string(),
                to.to_string(),
            ]);
        }
        Inputs::Files(files) => {
            args.push("files".into());
            args.extend(files.iter().map(|f| f.display().to_string()));
        }
    }
    args
}

/// Reads what [`args`] wrote (after `__worker`).
pub fn parse_args(args: &[String]) -> anyhow::Result<(Target, Inputs, Guards, PathBuf)> {
    let bad = || anyhow::anyhow!("malformed worker arguments: {args:?}");
    let target = Target::from_name(args.first().ok_or_else(bad)?).ok_or_else(bad)?;
    let number = |i: usize| -> anyhow::Result<u64> { Ok(args.get(i).ok_or_else(bad)?.parse()?) };
    let guards = Guards {
        memory_cap: number(1)? as usize,
        hang_limit: Duration::from_millis(number(2)?),
    };
    let scratch = PathBuf::from(args.get(3).ok_or_else(bad)?);
    let inputs = match args.get(4).map(String::as_str) {
        Some("mutations") => Inputs::Mutations {
            seed: number(5)?,
            from: number(6)?,
            to: number(7)?,
        },
        Some("files") => Inputs::Files(args[5..].iter().map(PathBuf::from).collect()),
        _ => return Err(bad()),
    };
    Ok((target, inputs, guards, scratch))
}
