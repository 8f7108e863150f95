//! Test doubles that break the process the way real frameworks do: abort (a failed C++
//! assertion), segfault (a bad pointer in native code), hang (a deadlocked thread pool), panic
//! and a plain error. Each wraps the f64 reference and strikes during its
//! [`FAULTY_STEP`]th training step, after some progress has been reported, so that tests of
//! the worker containment see a run die midway.
//!
//! Only `test-panic` and `test-error` are safe to run in the test's own process; the others
//! end or block it, and are meant to run in a `dlbench worker` process.

use std::time::Duration;

use dlbench_core::{Backend, Capabilities, Error, Model, PrepareOptions, Result, Session};
use dlbench_reference::ReferenceBackend;

use crate::wrapped::{Around, TimedCall, Wrapped};

/// The training step (counted from 1) during which a faulty backend strikes.
pub const FAULTY_STEP: usize = 3;

/// One way of breaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `std::process::abort()`: the worker dies of SIGABRT.
    Abort,
    /// A write through a null pointer: the worker dies of SIGSEGV.
    Segfault,
    /// Sleeps forever: the worker must be killed at its time limit.
    Hang,
    /// Panics with a message naming the backend.
    Panic,
    /// Returns an [`Error::Backend`] naming the backend.
    Error,
}

impl Fault {
    /// Every fault, in the order of [`backends`].
    pub const ALL: [Fault; 5] = [
        Fault::Abort,
        Fault::Segfault,
        Fault::Hang,
        Fault::Panic,
        Fault::Error,
    ];

    /// The backend name: `test-abort`, `test-segfault`, `test-hang`, `test-panic`,
    /// `test-error`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Abort => "test-abort",
            Fault::Segfault => "test-segfault",
            Fault::Hang => "test-hang",
            Fault::Panic => "test-panic",
            Fault::Error => "test-error",
        }
    }

    /// Breaks as described; returns only for [`Fault::Error`].
    fn strike(self) -> Result<()> {
        match self {
            Fault::Abort => std::process::abort(),
            Fault::Segfault => {
                // black_box hides the null from the optimizer, so the write is really made.
                let address = std::hint::black_box(std::ptr::null_mut::<u8>());
                // SAFETY: none, on purpose: the write faults and the kernel ends the process
                // with SIGSEGV, which is what this test double exists to produce.
                unsafe { address.write_volatile(1) };
                unreachable!("a write through a null pointer returned")
            }
            Fault::Hang => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            Fault::Panic => panic!("test-panic: index out of bounds (on purpose)"),
            Fault::Error => Err(Error::Backend {
                backend: self.name().into(),
                message: "out of device memory (on purpose)".into(),
            }),
        }
    }
}

/// A test double: the f64 reference, broken by one [`Fault`] during training.
#[derive(Debug, Clone, Copy)]
pub struct FaultyBackend {
    /// What goes wrong; also its backend name.
    pub fault: Fault,
}

impl Backend for FaultyBackend {
    fn name(&self) -> &'static str {
        self.fault.name()
    }

    fn version(&self) -> String {
        "test".into()
    }

    fn capabilities(&self) -> Capabilities {
        ReferenceBackend.capabilities()
    }

    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new(Wrapped {
            inner: ReferenceBackend.prepare(model, options)?,
            around: Striking {
                fault: self.fault,
                steps: 0,
            },
        }))
    }
}

/// Strikes during the [`FAULTY_STEP`]th training step.
struct Striking {
    fault: Fault,
    steps: usize,
}

impl Around for Striking {
    fn around(&mut self, call: TimedCall, inner: &mut dyn Session) -> Result<()> {
        if call == TimedCall::TrainStep {
            self.steps += 1;
            if self.steps == FAULTY_STEP {
                self.fault.strike()?;
            }
        }
        call.run(inner)
    }
}

/// Every fault backend, named `test-<fault>`.
pub fn backends() -> Vec<Box<dyn Backend>> {
    Fault::ALL
        .iter()
        .map(|&fault| Box::new(FaultyBackend { fault }) as Box<dyn Backend>)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_is_a_test_backend_of_its_own_name() {
        let names: Vec<&str> = backends().iter().map(|b| b.name()).collect();
        assert_eq!(
            names,
            [
                "test-abort",
                "test-segfault",
                "test-hang",
                "test-panic",
                "test-error"
            ]
        );
    }

    #[test]
    fn an_error_fault_names_its_backend() {
        let error = Fault::Error.strike().unwrap_err().to_string();
        assert_eq!(error, "test-error: out of device memory (on purpose)");
    }
}
