//! The worker's command line, in one place: [`WorkerRequest::args`] writes it for the
//! orchestrator to start a worker with, and [`WorkerRequest::parse`] reads it back in the
//! worker, so that the two cannot drift apart.

use std::ffi::OsString;
use std::path::PathBuf;

use dlbench_core::Device;

use crate::configuration::label;
use crate::processes::Share;
use crate::HarnessError;

/// The subcommand of the dlbench binary that serves a [`WorkerRequest`].
pub const SUBCOMMAND: &str = "worker";

/// The synopsis of the worker's command line, quoted by every parse error.
const USAGE: &str =
    "dlbench worker --spec PATH --backend NAME --device D --threads N [--quick] [--process I/N]";

/// What one worker runs: the arguments of `dlbench worker`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRequest {
    /// The spec file; the worker reads it again, relative to the working directory it inherits.
    pub spec: PathBuf,
    /// The backend to run, by its name in the worker's registry.
    pub backend: String,
    /// The device (`cpu`, `cuda:N`).
    pub device: Device,
    /// The thread count.
    pub threads: usize,
    /// See [`RunOptions::quick`](crate::run::RunOptions::quick).
    pub quick: bool,
    /// Which of the configuration's processes this is (`--process I/N`, I from 1; absent for
    /// the only one).
    pub share: Share,
}

impl WorkerRequest {
    /// The worker's command line after the executable: `worker --spec PATH --backend NAME
    /// --device D --threads N [--quick] [--process I/N]`, the [`SUBCOMMAND`] and then [`WorkerRequest::flags`].
    pub fn args(&self) -> Vec<OsString> {
        let mut args = vec![OsString::from(SUBCOMMAND)];
        args.extend(self.flags());
        args
    }

    /// The flags after the subcommand: what [`WorkerRequest::parse`] reads.
    pub fn flags(&self) -> Vec<OsString> {
        let mut flags: Vec<OsString> = vec![
            "--spec".into(),
            self.spec.clone().into(),
            "--backend".into(),
            self.backend.clone().into(),
            "--device".into(),
            self.device.to_string().into(),
            "--threads".into(),
            self.threads.to_string().into(),
        ];
        if self.quick {
            flags.push("--quick".into());
        }
        if self.share != Share::default() {
            flags.push("--process".into());
            flags.push(format!("{}/{}", self.share.index + 1, self.share.of).into());
        }
        flags
    }

    /// Reads the flags that [`WorkerRequest::flags`] writes (in any order). An unknown,
    /// repeated or missing flag, a flag without its value, or a value that does not parse is a
    /// [`HarnessError::Usage`] that names it.
    pub fn parse<I>(flags: I) -> Result<WorkerRequest, HarnessError>
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
    {
        let mut flags = flags.into_iter().map(Into::into);
        let mut spec = None;
        let mut backend = None;
        let mut device = None;
        let mut threads = None;
        let mut quick = false;
        let mut share = None;
        while let Some(flag) = flags.next() {
            let name = flag.to_string_lossy().into_owned();
            match name.as_str() {
                "--spec" => set(&mut spec, &name, PathBuf::from(value(&mut flags, &name)?))?,
                "--backend" => set(&mut backend, &name, utf8(&name, value(&mut flags, &name)?)?)?,
                "--device" => {
                    let text = utf8(&name, value(&mut flags, &name)?)?;
                    let parsed = text
                        .parse::<Device>()
                        .map_err(|e| usage(&format!("{name}: {e}")))?;
                    set(&mut device, &name, parsed)?;
                }
                "--threads" => {
                    let text = utf8(&name, value(&mut flags, &name)?)?;
                    let parsed = text
                        .parse::<usize>()
                        .map_err(|_| usage(&format!("{name}: `{text}` is not a thread count")))?;
                    set(&mut threads, &name, parsed)?;
                }
                "--quick" if quick => return Err(usage("`--quick` is given twice")),
                "--quick" => quick = true,
                "--process" => {
                    let text = utf8(&name, value(&mut flags, &name)?)?;
                    set(&mut share, &name, parse_share(&name, &text)?)?;
                }
                _ => return Err(usage(&format!("unexpected argument `{name}`"))),
            }
        }
        let missing = |flag: &str| usage(&format!("`{flag}` is missing"));
        Ok(WorkerRequest {
            spec: spec.ok_or_else(|| missing("--spec"))?,
            backend: backend.ok_or_else(|| missing("--backend"))?,
            device: device.ok_or_else(|| missing("--device"))?,
            threads: threads.ok_or_else(|| missing("--threads"))?,
            quick,
            share: share.unwrap_or_default(),
        })
    }

    /// `backend device xthreads`, as progress labels and failure lines name a run.
    pub fn label(&self) -> String {
        label(&self.backend, self.device, self.threads)
    }
}

/// A usage error of the worker's command line, with the synopsis.
fn usage(problem: &str) -> HarnessError {
    HarnessError::Usage(format!("worker: {problem} (usage: {USAGE})"))
}

/// `I/N` with 1 <= I <= N.
fn parse_share(name: &str, text: &str) -> Result<Share, HarnessError> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
    match parsed {
        Some((i, n)) if 1 <= i && i <= n => Ok(Share {
            index: i - 1,
            of: n,
        }),
        _ => Err(usage(&format!(
            "{name}: `{text}` is not a process I/N with 1 <= I <= N"
        ))),
    }
}

/// The value after flag `name`.
fn value(flags: &mut impl Iterator<Item = OsString>, name: &str) -> Result<OsString, HarnessError> {
    flags
        .next()
        .ok_or_else(|| usage(&format!("`{name}` needs a value")))
}

/// The value of flag `name` as text.
fn utf8(name: &str, value: OsString) -> Result<String, HarnessError> {
    value
        .into_string()
        .map_err(|v| usage(&format!("{name}: `{}` is not UTF-8", v.to_string_lossy())))
}

/// Stores the value of flag `name`, which must not have one yet.
fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), HarnessError> {
    match slot.replace(value) {
        Some(_) => Err(usage(&format!("`{name}` is given twice"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> WorkerRequest {
        WorkerRequest {
            spec: "specs/mlp.yaml".into(),
            backend: "reference".into(),
            device: Device::Cuda(1),
            threads: 4,
            quick: true,
            share: Share::default(),
        }
    }

    fn words(args: &[OsString]) -> String {
        let words: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        words.join(" ")
    }

    #[test]
    fn the_request_is_a_worker_command_line() {
        let expected = "worker --spec specs/mlp.yaml --backend reference --device cuda:1 \
                        --threads 4 --quick";
        assert_eq!(words(&request().args()), expected);
    }

    #[test]
    fn the_flags_parse_back_into_the_request() {
        for quick in [true, false] {
            let request = WorkerRequest { quick, ..request() };
            assert_eq!(WorkerRequest::parse(request.flags()).unwrap(), request);
            assert_eq!(request.args()[1..], request.flags());
        }
        let third = WorkerRequest {
            share: Share { index: 2, of: 5 },
            ..request()
        };
        assert!(words(&third.args()).ends_with("--quick --process 3/5"));
        assert_eq!(WorkerRequest::parse(third.flags()).unwrap(), third);
        let reordered = [
            "--quick",
            "--threads",
            "4",
            "--device",
            "cuda:1",
            "--backend",
            "reference",
            "--spec",
            "specs/mlp.yaml",
        ];
        assert_eq!(WorkerRequest::parse(reordered).unwrap(), request());
    }

    #[test]
    fn bad_flags_are_usage_errors_that_name_the_problem() {
        let flags = |extra: &[&str]| {
            let mut all = vec!["--spec", "s.yaml", "--backend", "b", "--device", "cpu"];
            all.extend_from_slice(extra);
            WorkerRequest::parse(all)
        };
        let problem = |result: Result<WorkerRequest, HarnessError>| match result {
            Err(HarnessError::Usage(message)) => {
                assert!(message.contains(USAGE), "{message}");
                message
            }
            other => panic!("not a usage error: {other:?}"),
        };
        assert!(flags(&["--threads", "2"]).is_ok());
        assert!(problem(flags(&[])).contains("`--threads` is missing"));
        assert!(problem(flags(&["--threads"])).contains("`--threads` needs a value"));
        assert!(problem(flags(&["--threads", "two"])).contains("`two` is not a thread count"));
        assert!(problem(flags(&["--threads", "1", "--device", "cpu"])).contains("given twice"));
        assert!(problem(flags(&["--threads", "1", "--fast"])).contains("`--fast`"));
        for bad in ["0/3", "4/3", "1", "a/b"] {
            let message = problem(flags(&["--threads", "1", "--process", bad]));
            assert!(
                message.contains(&format!("`{bad}` is not a process")),
                "{message}"
            );
        }
        let device = problem(WorkerRequest::parse(["--device", "tpu"]));
        assert!(
            device.contains("--device: unknown device `tpu`"),
            "{device}"
        );
    }
}
