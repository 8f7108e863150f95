//! Process per backend: `dlbench run` runs each backend x device x thread count in its own
//! worker process, so that every framework gets its own thread pools (rayon and candle read
//! their thread count once per process), its own peak-RSS figure, and containment: an abort,
//! a segfault or a hang ends that worker only and becomes that backend's failed record, while
//! every other result is kept.
//!
//! # Protocol
//!
//! The orchestrator ([`run_worker`]) starts the dlbench binary itself as
//!
//! ```text
//! dlbench worker --spec PATH --backend NAME --device D --threads N [--quick] [--process I/N]
//! ```
//!
//! (written by [`WorkerRequest::args`] and read back by [`WorkerRequest::parse`], side by side
//! in `worker/request.rs`) with stdin closed and stdout and stderr piped. The
//! worker ([`serve`]) loads the spec, prepares the workload and runs the backend. On stdout it
//! writes one JSON object per line, each a [`Message`]:
//!
//! ```text
//! {"begin":{"label":"reference cpu x1: train","total":30}}
//! {"advance":{"done":1,"message":"loss 0.6931"}}
//! {"end":{"outcome":"reference cpu x1: trained 30 steps, ..."}}
//! {"record":{"backend":"reference","device":"cpu","threads":1,"status":"ok",...}}
//! ```
//!
//! Progress messages come as the run goes; the [`Message::Record`], a
//! [`RunRecord`], comes last and once. The worker then exits 0,
//! also when the backend failed in an ordinary way (an error or a panic): that failure is in
//! the record. Diagnostics go to stderr, which the orchestrator keeps the tail of (the last
//! [`TAIL_LINES`] lines, at most [`TAIL_BYTES`] bytes).
//!
//! Every other end is the orchestrator's to describe, as a failed record whose error names it
//! and quotes the stderr tail: killed by a signal (`SIGABRT`, `SIGSEGV`, `SIGKILL`...), a
//! non-zero exit, an exit without a record, output that is not this protocol, and a worker
//! still running at its time limit, which is killed (`timed out after 600 s`).
//!
//! Lines on stdout that are not messages (a framework printing its banner) are tolerated when
//! a record follows; they only explain a missing record.

mod lifeline;
mod pipes;
mod request;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dlbench_core::Backend;
use serde::{Deserialize, Serialize};

use crate::backend_run::{run_contained, Oracle};
use crate::configuration::Configuration;
use crate::observer::Observer;
use crate::processes;
use crate::registry;
use crate::results::{RunRecord, Status};
use crate::HarnessError;
use dlbench_spec::workload::Workload;
use dlbench_spec::Spec;
pub use lifeline::{watch_parent, ORPHANED_EXIT};
use pipes::{read_messages, read_tail, Line, Tail};
pub use request::{WorkerRequest, SUBCOMMAND};

/// Lines of the worker's stderr kept for a failure message.
pub const TAIL_LINES: usize = 20;
/// Bytes of the worker's stderr kept for a failure message.
pub const TAIL_BYTES: usize = 4096;
/// How long to wait for the last of stderr once the worker has ended.
const DRAIN_WAIT: Duration = Duration::from_secs(2);
/// Longer limits are taken as this one (a year), which no run reaches.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);
/// How often to look whether a worker that closed its stdout has exited.
const POLL: Duration = Duration::from_millis(10);

/// One line of the worker's stdout. Serialized externally tagged: `{"begin": {...}}`,
/// `{"record": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// [`Observer::begin`]: a phase of `total` units begins.
    Begin {
        /// Backend, device and what the phase does.
        label: String,
        /// Units the phase has (steps, rounds).
        total: u64,
    },
    /// [`Observer::advance`]: `done` units of the current phase are finished.
    Advance {
        /// Units finished so far in the phase.
        done: u64,
        /// A short status, e.g. `loss 0.6931`; may be empty.
        message: String,
    },
    /// [`Observer::end`]: the current phase ended with this outcome.
    End {
        /// One line: what the phase came to.
        outcome: String,
    },
    /// The run's result; the last message.
    Record(Box<RunRecord>),
}

impl Message {
    /// The message as one JSON line, without its newline.
    pub fn to_line(&self) -> String {
        // Only maps with string keys and plain values: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses one line written by [`Message::to_line`].
    pub fn from_line(line: &str) -> Result<Message, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// The worker side: runs `request` with the backend of that name in `registry`, writing
/// progress and finally the record to `out` as [`Message`] lines.
///
/// An error means there is no record to write (unknown backend, unreadable spec, stdout
/// closed); the binary reports it on stderr and exits 2.
pub fn serve(
    request: &WorkerRequest,
    registry: &[&dyn Backend],
    out: &mut dyn Write,
) -> Result<(), HarnessError> {
    let backend = registry::find(registry, &request.backend).ok_or_else(|| {
        HarnessError::Usage(format!(
            "backend `{}` is not in this build of dlbench",
            request.backend
        ))
    })?;
    eprintln!(
        "dlbench worker (pid {}): {} on spec {}",
        std::process::id(),
        request.label(),
        request.spec.display()
    );
    let mut work = Workload::prepare(Spec::load(&request.spec)?, request.quick)?;
    work.benchmark = processes::share(&work.benchmark, request.share.of);
    let oracle = match request.share.timing_only() {
        true => Oracle::CheckedElsewhere,
        false => registry::reference(registry).into(),
    };
    let mut events = EventWriter {
        out: &mut *out,
        last_done: None,
    };
    let config = Configuration::new(backend, request.device, request.threads);
    let record = run_contained(&work, config, oracle, &mut events);
    write_line(out, &Message::Record(Box::new(record)))
        .map_err(|e| HarnessError::Core(dlbench_core::Error::io("<stdout>", e)))
}

fn write_line(out: &mut dyn Write, message: &Message) -> std::io::Result<()> {
    writeln!(out, "{}", message.to_line())?;
    out.flush()
}

/// The worker's [`Observer`]: each event becomes a [`Message`] line.
struct EventWriter<'a> {
    out: &'a mut dyn Write,
    /// The last `done` sent without a message; timing loops report the same percentage
    /// many times, which need not cross the pipe.
    last_done: Option<u64>,
}

impl EventWriter<'_> {
    fn send(&mut self, message: Message) {
        // Progress is best effort: if the orchestrator is gone, the record write fails and
        // ends the worker.
        let _ = write_line(self.out, &message);
    }
}

impl Observer for EventWriter<'_> {
    fn begin(&mut self, label: &str, total: u64) {
        self.last_done = None;
        self.send(Message::Begin {
            label: label.to_string(),
            total,
        });
    }

    fn advance(&mut self, done: u64, message: &str) {
        if message.is_empty() && self.last_done == Some(done) {
            return;
        }
        self.last_done = Some(done);
        self.send(Message::Advance {
            done,
            message: message.to_string(),
        });
    }

    fn end(&mut self, outcome: &str) {
        self.send(Message::End {
            outcome: outcome.to_string(),
        });
    }
}

/// The orchestrator side: runs `request` in a worker process started from `exe`, forwards its
/// progress to `observer`, kills it after `timeout`, and always returns a record: the worker's,
/// or a failed one naming what went wrong with the tail of the worker's stderr.
pub fn run_worker(
    exe: &Path,
    timeout: Duration,
    request: &WorkerRequest,
    observer: &mut dyn Observer,
) -> RunRecord {
    let mut command = Command::new(exe);
    command
        .args(request.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    lifeline::bind_to_parent(&mut command);
    let spawned = command.spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let error = format!("could not start the worker `{}`: {e}", exe.display());
            return failed(request, None, error, observer);
        }
    };
    // A limit beyond any run (`--timeout` of u64::MAX seconds) must not overflow the clock.
    let deadline = Instant::now() + timeout.min(MAX_TIMEOUT);
    let messages = read_messages(&mut child);
    let tail = Arc::new(Mutex::new(Tail::default()));
    let drained = read_tail(&mut child, Arc::clone(&tail));

    let mut output = WorkerOutput::default();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match messages.recv_timeout(left) {
            Ok(line) => output.take(line, observer),
            Err(RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // Stdout is closed (or the time is up): wait for the exit, within the same limit.
    let status = if timed_out {
        None
    } else {
        wait_until(&mut child, deadline)
    };
    let cause = match status {
        Some(status) => abnormal_exit(status, &output),
        None => {
            // SIGKILL cannot be caught or ignored, so the wait returns.
            let _ = child.kill();
            let _ = child.wait();
            Some(format!(
                "timed out after {} (the worker was killed)",
                seconds(timeout)
            ))
        }
    };
    // Stderr ends when the worker does; a grandchild holding it open is not waited for.
    let _ = drained.recv_timeout(DRAIN_WAIT);
    let tail = tail.lock().map(|t| t.render()).unwrap_or_default();
    match conclude(request, output, cause, &tail) {
        Verdict::Clean(record) => record,
        Verdict::Abnormal { partial, error } => failed(request, partial, error, observer),
    }
}

/// How a worker's run ended, as [`conclude`] judges it.
enum Verdict {
    /// The worker ended normally with its record (which may report a failure of its own).
    Clean(RunRecord),
    /// The worker ended abnormally: `error` says how; `partial` is a record it wrote first.
    Abnormal {
        partial: Option<RunRecord>,
        error: String,
    },
}

/// Judges a finished worker from its output and `cause`, the abnormal end the process itself
/// showed, if any. A failure is given the stderr `tail`.
fn conclude(
    request: &WorkerRequest,
    output: WorkerOutput,
    cause: Option<String>,
    tail: &str,
) -> Verdict {
    let Some(mut record) = output.record else {
        let cause = cause.unwrap_or_else(|| "the worker ended".into());
        let error = match &output.first_stray {
            Some(stray) => format!("{cause}; its output is not the worker protocol: {stray}"),
            None => format!("{cause}, without writing a record"),
        };
        return Verdict::Abnormal {
            partial: None,
            error: format!("{error}\n{tail}"),
        };
    };
    if let Some(cause) = cause {
        // The measurements that arrived are kept, but the run did not end cleanly.
        return Verdict::Abnormal {
            partial: Some(record),
            error: format!("{cause}, after writing its record\n{tail}"),
        };
    }
    if (&record.backend, record.device, record.threads)
        != (&request.backend, request.device, request.threads)
    {
        let error = format!(
            "the worker answered for {} {} x{} instead: a protocol error\n{tail}",
            record.backend, record.device, record.threads
        );
        return Verdict::Abnormal {
            partial: None,
            error,
        };
    }
    if record.status == Status::Failed {
        let error = record.error.take().unwrap_or_default();
        record.error = Some(format!("{error}\n{tail}"));
    }
    if output.stray > 0 {
        record.notes.push(format!(
            "the worker wrote {} line(s) on stdout that are not protocol messages",
            output.stray
        ));
    }
    Verdict::Clean(record)
}

/// A failed record for `request` (keeping what `partial` measured), told to `observer`.
fn failed(
    request: &WorkerRequest,
    partial: Option<RunRecord>,
    error: String,
    observer: &mut dyn Observer,
) -> RunRecord {
    observer.end(&format!(
        "{}: failed: {}",
        request.label(),
        first_line(&error)
    ));
    let mut record = partial.unwrap_or_else(|| {
        RunRecord::without_results(
            &request.backend,
            request.device,
            request.threads,
            Status::Failed,
            String::new(),
        )
    });
    record.status = Status::Failed;
    record.error = Some(error);
    record
}

/// Why a worker that exited on its own ended abnormally, if it did.
fn abnormal_exit(status: ExitStatus, output: &WorkerOutput) -> Option<String> {
    if let Some(signal) = status.signal() {
        let core = if status.core_dumped() {
            ", core dumped"
        } else {
            ""
        };
        // SIGKILL comes from the kernel's out-of-memory killer or from a person or program;
        // the exit status cannot tell which.
        let hint = if signal == SIGKILL {
            " (sent by another process, or by the kernel's out-of-memory killer when memory \
             ran out: `dmesg` tells which)"
        } else {
            ""
        };
        return Some(format!(
            "the worker was killed by {} (signal {signal}{core}){hint}",
            signal_name(signal)
        ));
    }
    match status.code() {
        Some(0) if output.record.is_some() => None,
        Some(0) => Some("the worker exited with code 0".into()),
        Some(code) => Some(format!("the worker exited with code {code}")),
        None => Some(format!("the worker ended abnormally ({status})")),
    }
}

const SIGKILL: i32 = 9;

/// The conventional name of a signal. The numbers are those of Linux; the classic ones
/// (up to 15, but 7 and 10) are the same on every Unix.
fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 if cfg!(target_os = "linux") => "SIGBUS",
        8 => "SIGFPE",
        SIGKILL => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return format!("signal {signal}"),
    };
    name.to_string()
}

/// `600 s`, or `0.5 s` for a limit that is not whole seconds.
fn seconds(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} s", duration.as_secs_f64())
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Waits for `child` to exit until `deadline`; `None` if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            // Still running at the deadline, or not waitable: either way it must be killed.
            Ok(None) | Err(_) => return None,
        }
    }
}

/// What the worker said on stdout, gathered as it arrives.
#[derive(Default)]
struct WorkerOutput {
    record: Option<RunRecord>,
    stray: usize,
    /// The first line that was not a message, described for an error.
    first_stray: Option<String>,
}

impl WorkerOutput {
    /// Forwards progress to `observer` and keeps the first record.
    fn take(&mut self, line: Line, observer: &mut dyn Observer) {
        match line {
            Line::Message(Message::Begin { label, total }) => observer.begin(&label, total),
            Line::Message(Message::Advance { done, message }) => observer.advance(done, &message),
            Line::Message(Message::End { outcome }) => observer.end(&outcome),
            Line::Message(Message::Record(record)) if self.record.is_none() => {
                self.record = Some(*record);
            }
            Line::Message(Message::Record(_)) => self.stray_line("a second record".into()),
            Line::Stray(description) => self.stray_line(description),
        }
    }

    fn stray_line(&mut self, description: String) {
        self.stray += 1;
        self.first_stray.get_or_insert(description);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlbench_core::Device;

    #[test]
    fn a_record_round_trips_through_a_json_line() {
        let mut record = RunRecord::without_results(
            "reference",
            Device::Cpu,
            2,
            Status::Failed,
            "out of memory\nsecond line".into(),
        );
        record.peak_rss_bytes = Some(123 << 20);
        record.notes.push("a \"quoted\" note".into());
        let message = Message::Record(Box::new(record));
        let line = message.to_line();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with(r#"{"record":{"#), "{line}");
        assert_eq!(Message::from_line(&line).unwrap(), message);
    }

    #[test]
    fn progress_messages_are_tagged_by_their_kind() {
        let begin = Message::Begin {
            label: "reference cpu x1: train".into(),
            total: 30,
        };
        assert_eq!(
            begin.to_line(),
            r#"{"begin":{"label":"reference cpu x1: train","total":30}}"#
        );
        assert_eq!(Message::from_line(&begin.to_line()).unwrap(), begin);
        assert!(Message::from_line("Loading weights...").is_err());
    }

    #[test]
    fn signals_have_their_names() {
        assert_eq!(signal_name(6), "SIGABRT");
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(64), "signal 64");
        assert_eq!(seconds(Duration::from_secs(600)), "600 s");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5 s");
    }
}
