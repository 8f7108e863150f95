//! The supervisor: starts a worker process, follows its lines, and when it dies records the
//! input it was running (regenerated from its index, or the replayed file) with the cause,
//! then starts a new worker at the next input.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::targets::Target;
use crate::worker::{self, Guards, Inputs};

/// One input that failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The input's index in the run.
    pub index: u64,
    /// The cause: the guard's `FAIL` line, or how the worker died.
    pub message: String,
    /// Where the input was saved (beside it, the same name with `.msg` holds the cause).
    pub saved: PathBuf,
}

/// What a run of one target found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target.
    pub target: Target,
    /// Inputs run.
    pub inputs: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Inputs the parser accepted (the rest it refused with an error): how deep the mutated
    /// inputs reach.
    pub accepted: u64,
    /// The inputs that failed.
    pub failures: Vec<Failure>,
    /// The most live heap memory any worker held, in bytes.
    pub peak_heap: u64,
    /// The slowest input that finished: its index and time.
    pub slowest: Option<(u64, Duration)>,
}

impl Report {
    /// Inputs per second.
    pub fn rate(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How to fuzz.
#[derive(Debug, Clone)]
pub struct Options {
    /// The guards of each worker.
    pub guards: Guards,
    /// Where failing inputs are saved.
    pub out: PathBuf,
    /// Whether to draw a progress bar.
    pub progress: bool,
}

/// Runs `inputs` of `target` in workers until all have run, recording every failure.
pub fn supervise(target: Target, inputs: &Inputs, options: &Options) -> anyhow::Result<Report> {
    let total = match inputs {
        Inputs::Mutations { from, to, .. } => to - from,
        Inputs::Files(files) => files.len() as u64,
    };
    let bar = progress_bar(target, total, options.progress);
    let scratch = std::env::temp_dir().join(format!(
        "dlbench-fuzz-{}-{}",
        target.name(),
        std::process::id()
    ));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let corpus = match inputs {
        Inputs::Mutations { .. } => target.corpus(),
        Inputs::Files(_) => Vec::new(),
    };
    let started = Instant::now();
    let mut report = Report {
        target,
        inputs: 0,
        accepted: 0,
        elapsed: Duration::ZERO,
        failures: Vec::new(),
        peak_heap: 0,
        slowest: None,
    };
    let mut remaining = inputs.clone();
    loop {
        let outcome = run_worker(
            target,
            &remaining,
            options.guards,
            &scratch,
            &mut report,
            &bar,
        )?;
        let Some((index, message)) = outcome else {
            break;
        };
        let input = match inputs {
            Inputs::Mutations { seed, .. } => target.generate(&corpus, *seed, index),
            Inputs::Files(files) => std::fs::read(&files[index as usize])?,
        };
        let name = match inputs {
            Inputs::Mutations { seed, .. } => input_name(target, *seed, index),
            Inputs::Files(files) => files[index as usize]
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("replay-{index}")),
        };
        let saved = save(&options.out.join(target.name()), &name, &input, &message)?;
        bar.println(format!(
            "{}: input {index} failed: {message} (saved as {})",
            target.name(),
            saved.display()
        ));
        report.failures.push(Failure {
            index,
            message,
            saved,
        });
        remaining = match inputs {
            Inputs::Mutations { seed, to, .. } => Inputs::Mutations {
                seed: *seed,
                from: index + 1,
                to: *to,
            },
            // The next worker numbers its files from 0: `run_worker` offsets them.
            Inputs::Files(files) => Inputs::Files(files[index as usize + 1..].to_vec()),
        };
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&scratch);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Runs one worker over `inputs`. Returns the index and cause of the input it died on, or
/// `None` if it ran them all. Indices of replayed files are offset to the whole list.
fn run_worker(
    target: Target,
    inputs: &Inputs,
    guards: Guards,
    scratch: &Path,
    report: &mut Report,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Option<(u64, String)>> {
    // Mutation indices are the run's own; replayed files are numbered from 0 in each worker.
    let (offset, empty) = match inputs {
        Inputs::Mutations { from, to, .. } => (0, from >= to),
        Inputs::Files(files) => (report.inputs, files.is_empty()),
    };
    if empty {
        return Ok(None);
    }
    let exe = std::env::current_exe().context("finding the fuzzer's own executable")?;
    let mut child = Command::new(exe)
        .args(worker::args(target, inputs, guards, scratch))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting a worker")?;
    let stdout = child.stdout.take().context("worker stdout")?;
    let mut stderr = child.stderr.take().context("worker stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut running: Option<u64> = None;
    let mut done = false;
    // The worker's own watchdog ends a hang; this one catches a worker that stops itself.
    let silence = guards.hang_limit * 3 + Duration::from_secs(5);
    loop {
        match lines.recv_timeout(silence) {
            Ok(line) => {
                let mut words = line.split(' ');
                let word = words.next().unwrap_or("");
                let numbers: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
                match (word, numbers.as_slice()) {
                    ("run", [i]) => {
                        if running.is_some() {
                            report.inputs += 1;
                            bar.inc(1);
                        }
                        running = Some(offset + i);
                    }
                    ("slow", [i, micros]) => {
                        let took = Duration::from_micros(*micros);
                        if report.slowest.is_none_or(|(_, t)| took > t) {
                            report.slowest = Some((offset + i, took));
                        }
                    }
                    ("peak", [bytes]) => report.peak_heap = report.peak_heap.max(*bytes),
                    ("done", [accepted]) => {
                        report.accepted += accepted;
                        done = true;
                    }
                    _ => {}
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait().context("waiting for a worker")?;
    let errors = errors.join().unwrap_or_default();
    if done && status.success() {
        if running.is_some() {
            report.inputs += 1;
            bar.inc(1);
        }
        return Ok(None);
    }
    let Some(index) = running else {
        anyhow::bail!(
            "the {} worker failed before its first input ({status}): {errors}",
            target.name()
        );
    };
    report.inputs += 1;
    bar.inc(1);
    let message = errors
        .lines()
        .find_map(|l| l.strip_prefix("FAIL "))
        .map(str::to_string)
        .unwrap_or_else(|| {
            let tail: Vec<&str> = errors.lines().rev().take(3).collect();
            format!(
                "the worker died ({status}): {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )
        });
    Ok(Some((index, message)))
}

/// The file name of input `index` of a run of `target` seeded with `seed`.
pub fn input_name(target: Target, seed: u64, index: u64) -> String {
    format!("{}-s{seed}-i{index}", target.name())
}

/// Saves a failing input and its cause; returns the input's path.
fn save(dir: &Path, name: &str, input: &[u8], message: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, input).with_context(|| format!("writing {}", path.display()))?;
    std::fs::write(path.with_extension("msg"), format!("{message}\n"))
        .with_context(|| format!("writing the cause beside {}", path.display()))?;
    Ok(path)
}

fn progress_bar(target: Target, total: u64, visible: bool) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>12} {wide_bar} {pos}/{len} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(target.name());
    bar
}

/// The largest resident set any finished worker of this process reached, in bytes.
pub fn max_worker_rss() -> u64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    (usage.ru_maxrss.max(0) as u64) * 1024
}
