//! The orchestrator side of the worker protocol against fake workers: small shell scripts that
//! print what a worker would, then end the way a crashing framework does. The real worker, the
//! `dlbench` binary, is tested end to end in the root `tests/workers.rs`.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dlbench_core::Device;
use dlbench_harness::observer::Observer;
use dlbench_harness::results::{RunRecord, Status};
use dlbench_harness::worker::{run_worker, Message, WorkerRequest, TAIL_LINES};

/// Keeps every progress event, as one line each.
#[derive(Default)]
struct Recorder(Vec<String>);

impl Observer for Recorder {
    fn begin(&mut self, label: &str, total: u64) {
        self.0.push(format!("begin {label} {total}"));
    }
    fn advance(&mut self, done: u64, message: &str) {
        self.0.push(format!("advance {done} {message}"));
    }
    fn end(&mut self, outcome: &str) {
        self.0.push(format!("end {outcome}"));
    }
}

fn request() -> WorkerRequest {
    WorkerRequest {
        spec: "unused.yaml".into(),
        backend: "fake".into(),
        device: Device::Cpu,
        threads: 1,
        quick: true,
        share: Default::default(),
    }
}

/// A record line as a worker for `backend` writes it.
fn record_line(backend: &str) -> String {
    let mut record = RunRecord::without_results(backend, Device::Cpu, 1, Status::Ok, String::new());
    record.error = None;
    record.peak_rss_bytes = Some(42 << 20);
    Message::Record(Box::new(record)).to_line()
}

/// The fake workers, by name. All are written before any is started: a script still open
/// for writing in one thread while another thread forks cannot be executed ("text file busy").
fn scripts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dlbench-fake-workers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let record = record_line("fake");
        let progress = r#"echo '{"begin":{"label":"fake cpu x1: train","total":2}}'
echo '{"advance":{"done":1,"message":"loss 0.5"}}'"#;
        let bodies = [
            ("ok", format!("{progress}\necho '{record}'")),
            (
                "exit3",
                "echo 'loading' >&2\necho 'CUDA error: out of memory' >&2\nexit 3".to_string(),
            ),
            ("segv", format!("{progress}\nkill -SEGV $$")),
            ("sigkill", "kill -KILL $$".to_string()),
            ("garbage", "echo 'Welcome to FastTorch 9.1'".to_string()),
            ("silent", "exit 0".to_string()),
            (
                "hang",
                "echo 'about to hang' >&2\nexec sleep 30".to_string(),
            ),
            ("late-abort", format!("echo '{record}'\nkill -ABRT $$")),
            ("wrong", format!("echo '{}'", record_line("other"))),
            (
                "chatty",
                "i=0; while [ $i -lt 1000 ]; do echo \"noise $i\" >&2; i=$((i+1)); done; exit 1"
                    .to_string(),
            ),
        ];
        for (name, body) in bodies {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    })
}

fn run_fake(name: &str, timeout: Duration) -> (RunRecord, Recorder) {
    let mut events = Recorder::default();
    let record = run_worker(&scripts().join(name), timeout, &request(), &mut events);
    (record, events)
}

const LIMIT: Duration = Duration::from_secs(60);

fn error(record: &RunRecord) -> &str {
    record.error.as_deref().unwrap_or_default()
}

#[test]
fn progress_is_forwarded_and_the_record_returned() {
    let (record, events) = run_fake("ok", LIMIT);
    assert_eq!(record.status, Status::Ok, "{:?}", record.error);
    assert_eq!(record.peak_rss_bytes, Some(42 << 20));
    assert_eq!(
        events.0,
        ["begin fake cpu x1: train 2", "advance 1 loss 0.5"]
    );
}

#[test]
fn a_signal_is_named_and_progress_so_far_kept_in_the_events() {
    let (record, events) = run_fake("segv", LIMIT);
    assert_eq!(record.status, Status::Failed);
    assert!(
        error(&record).contains("killed by SIGSEGV"),
        "{}",
        error(&record)
    );
    assert!(
        events.0.last().unwrap().contains("fake cpu x1: failed"),
        "{:?}",
        events.0
    );
    let (record, _) = run_fake("sigkill", LIMIT);
    // A SIGKILL from a person is not the out-of-memory killer's: the message says either.
    let message = error(&record);
    assert!(
        message.contains("SIGKILL") && message.contains("sent by another process"),
        "{message}"
    );
}

#[test]
fn a_non_zero_exit_quotes_the_stderr_tail() {
    let (record, _) = run_fake("exit3", LIMIT);
    assert_eq!(record.status, Status::Failed);
    let message = error(&record);
    assert!(message.contains("exited with code 3"), "{message}");
    assert!(message.contains("CUDA error: out of memory"), "{message}");
}

#[test]
fn output_that_is_not_the_protocol_is_quoted() {
    let (record, _) = run_fake("garbage", LIMIT);
    let message = error(&record);
    assert!(message.contains("not the worker protocol"), "{message}");
    assert!(message.contains("Welcome to FastTorch"), "{message}");
    let (record, _) = run_fake("silent", LIMIT);
    assert!(
        error(&record).contains("without writing a record"),
        "{}",
        error(&record)
    );
}

#[test]
fn a_worker_past_its_limit_is_killed() {
    let started = Instant::now();
    let (record, _) = run_fake("hang", Duration::from_millis(500));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let message = error(&record);
    assert!(message.contains("timed out after 0.5 s"), "{message}");
    assert!(message.contains("about to hang"), "{message}");
}

#[test]
fn a_crash_after_the_record_keeps_it_but_fails_the_run() {
    let (record, _) = run_fake("late-abort", LIMIT);
    assert_eq!(record.status, Status::Failed);
    assert!(error(&record).contains("SIGABRT"), "{}", error(&record));
    assert!(error(&record).contains("after writing its record"));
    assert_eq!(record.peak_rss_bytes, Some(42 << 20));
}

#[test]
fn a_record_for_another_run_is_a_protocol_error() {
    let (record, _) = run_fake("wrong", LIMIT);
    assert_eq!(record.status, Status::Failed);
    assert!(
        error(&record).contains("protocol error"),
        "{}",
        error(&record)
    );
}

#[test]
fn a_long_stderr_is_cut_to_its_tail() {
    let (record, _) = run_fake("chatty", LIMIT);
    let message = error(&record);
    assert!(message.contains("noise 999"), "{message}");
    assert!(!message.contains("noise 979\n"), "{message}");
    assert!(message.lines().count() <= TAIL_LINES + 2, "{message}");
}

#[test]
fn a_missing_binary_is_a_failed_record() {
    let mut events = Recorder::default();
    let record = run_worker(
        Path::new("/no/such/dlbench"),
        LIMIT,
        &request(),
        &mut events,
    );
    assert_eq!(record.status, Status::Failed);
    assert!(
        error(&record).contains("could not start the worker"),
        "{}",
        error(&record)
    );
}
