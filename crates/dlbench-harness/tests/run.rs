//! The run loop with deliberately broken backends: a backend that errors, one that panics and
//! one that cannot train each become their own record, and every other result is kept.

use std::collections::BTreeSet;
use std::path::Path;

use dlbench_core::{
    Backend, Capabilities, Device, Mode, Model, PrepareOptions, Result, Session, Values,
};
use dlbench_harness::observer::Observer;
use dlbench_harness::results::Status;
use dlbench_harness::run::{run, RunOptions};
use dlbench_harness::stats::{consecutive_rounds, summarize};
use dlbench_harness::HarnessError;
use dlbench_reference::ReferenceBackend;
use dlbench_spec::Spec;
use dlbench_testkit::faults::{Fault, FaultyBackend};

/// Quiet progress.
struct Silent;

impl Observer for Silent {
    fn begin(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64, _: &str) {}
    fn end(&mut self, _: &str) {}
}

/// The reference, claiming it cannot train: a framework with inference only (tract).
struct InferenceOnly;

impl Backend for InferenceOnly {
    fn name(&self) -> &'static str {
        "inference-only"
    }
    fn version(&self) -> String {
        "test".into()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            training: false,
            ..ReferenceBackend.capabilities()
        }
    }
    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new(Noted(ReferenceBackend.prepare(model, options)?)))
    }
}

/// A reference session with a note, as a framework records what it composed.
struct Noted(Box<dyn Session>);

/// The note every [`Noted`] session gives.
const INFERENCE_NOTE: &str = "inference-only: its plan was prepared once";

impl Session for Noted {
    fn load(&mut self, inputs: &Values) -> Result<()> {
        self.0.load(inputs)
    }
    fn forward(&mut self, mode: Mode) -> Result<()> {
        self.0.forward(mode)
    }
    fn backward(&mut self) -> Result<()> {
        self.0.backward()
    }
    fn train_step(&mut self) -> Result<()> {
        self.0.train_step()
    }
    fn outputs(&mut self) -> Result<Values> {
        self.0.outputs()
    }
    fn intermediates(&mut self) -> Result<Values> {
        self.0.intermediates()
    }
    fn gradients(&mut self) -> Result<Values> {
        self.0.gradients()
    }
    fn weights(&mut self) -> Result<Values> {
        self.0.weights()
    }
    fn notes(&self) -> Vec<String> {
        vec![INFERENCE_NOTE.to_string()]
    }
}

/// Runs on the reference alone: a spec naming no backends compares every framework in the
/// registry, never the reference.
fn reference_only() -> RunOptions {
    RunOptions {
        backends: Some(vec!["reference".into()]),
        ..RunOptions::default()
    }
}

fn mlp() -> Spec {
    Spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/mlp.yaml")).unwrap()
}

#[test]
fn failures_are_records_and_the_other_backends_are_kept() {
    let erring = FaultyBackend {
        fault: Fault::Error,
    };
    let panicking = FaultyBackend {
        fault: Fault::Panic,
    };
    let registry: Vec<&dyn Backend> = vec![&ReferenceBackend, &erring, &panicking, &InferenceOnly];
    let options = RunOptions {
        backends: Some(
            [
                "test-error",
                "reference",
                "test-panic",
                "inference-only",
                "missing",
            ]
            .map(String::from)
            .to_vec(),
        ),
        // Known to dlbench but not in this registry: recorded as unsupported.
        planned_backends: vec!["missing".to_string()],
        quick: true,
        ..RunOptions::default()
    };
    let results = run(&mlp(), &registry, &options, &mut Silent).unwrap();
    let by_name = |n: &str| results.runs.iter().find(|r| r.backend == n).unwrap();

    let erring = by_name("test-error");
    assert_eq!(erring.status, Status::Failed);
    assert!(erring
        .error
        .as_ref()
        .unwrap()
        .contains("out of device memory (on purpose)"));

    let panicking = by_name("test-panic");
    assert_eq!(panicking.status, Status::Failed);
    let message = panicking.error.as_ref().unwrap();
    assert!(
        message.contains("panicked") && message.contains("on purpose"),
        "{message}"
    );

    let reference = by_name("reference");
    assert_eq!(reference.status, Status::Ok);
    assert_eq!(reference.training.as_ref().unwrap().losses.len(), 30);
    assert_eq!(reference.inference.len(), 2);
    assert!(reference.notes.iter().any(|n| n.contains("in-process run")));

    let inference_only = by_name("inference-only");
    assert_eq!(inference_only.status, Status::Ok);
    assert!(inference_only.training.is_none());
    assert_eq!(inference_only.inference.len(), 2);
    // An inference-only backend's notes come from its inference session, once.
    let noted = inference_only.notes.iter().filter(|n| *n == INFERENCE_NOTE);
    assert_eq!(noted.count(), 1, "{:?}", inference_only.notes);

    assert_eq!(by_name("missing").status, Status::Unsupported);
    assert!(!results.all_ok());
}

#[test]
fn a_device_the_backend_lacks_is_unsupported() {
    let registry: Vec<&dyn Backend> = vec![&ReferenceBackend];
    let options = RunOptions {
        devices: Some(vec![Device::Cuda(0)]),
        // A machine with a GPU, so that the device exists and only the backend lacks it.
        devices_present: Some(vec![Device::Cpu, Device::Cuda(0)]),
        quick: true,
        ..reference_only()
    };
    let results = run(&mlp(), &registry, &options, &mut Silent).unwrap();
    assert_eq!(results.runs[0].status, Status::Unsupported);
    assert!(results.runs[0].error.as_ref().unwrap().contains("cuda:0"));
}

#[test]
fn the_same_spec_gives_the_same_losses_and_metrics() {
    let registry: Vec<&dyn Backend> = vec![&ReferenceBackend];
    let options = RunOptions {
        quick: true,
        ..reference_only()
    };
    let a = run(&mlp(), &registry, &options, &mut Silent).unwrap();
    let b = run(&mlp(), &registry, &options, &mut Silent).unwrap();
    let (ta, tb) = (
        a.runs[0].training.as_ref().unwrap(),
        b.runs[0].training.as_ref().unwrap(),
    );
    assert_eq!(ta.losses, tb.losses);
    assert_eq!(ta.metrics, tb.metrics);
}

#[test]
fn timings_are_taken_in_rounds_and_their_intervals_resample_them() {
    let registry: Vec<&dyn Backend> = vec![&ReferenceBackend];
    let options = RunOptions {
        quick: true,
        ..reference_only()
    };
    let mut spec = mlp();
    spec.benchmark.rounds = 4;
    let results = run(&spec, &registry, &options, &mut Silent).unwrap();
    let record = &results.runs[0];
    assert_eq!(record.inference.len(), spec.inference.batch_sizes.len());
    for inference in &record.inference {
        assert_eq!(inference.raw_round.len(), inference.raw_ns.len());
        assert!(inference.raw_round.windows(2).all(|w| w[0] <= w[1]));
        let rounds: BTreeSet<usize> = inference.raw_round.iter().copied().collect();
        assert_eq!(rounds, (0..4).collect(), "every batch size in every round");
        assert_eq!(inference.summary.rounds, 4);
        // The record holds what it takes to recompute the summary.
        assert_eq!(
            summarize(&inference.raw_ns, &inference.raw_round),
            inference.summary
        );
    }
    let training = record.training.as_ref().unwrap();
    assert_eq!(
        training.raw_step_round,
        consecutive_rounds(training.raw_step_ns.len(), 4)
    );
    assert_eq!(training.step_time.rounds, 4);
    assert_eq!(
        summarize(&training.raw_step_ns, &training.raw_step_round),
        training.step_time
    );
}

/// Usage mistakes are refused before any work, naming the flag: unknown or empty backend
/// names, devices the machine lacks, thread counts over the limit, processes where there are
/// none.
#[test]
fn a_plan_that_cannot_run_is_a_usage_error_before_any_work() {
    let registry: Vec<&dyn Backend> = vec![&ReferenceBackend];
    let cases: [(RunOptions, &str); 7] = [
        (
            RunOptions {
                backends: Some(vec!["reference".into(), "bogus".into()]),
                ..reference_only()
            },
            "--backends: unknown backend `bogus`",
        ),
        (
            RunOptions {
                backends: Some(vec![String::new(), String::new()]),
                ..reference_only()
            },
            "--backends",
        ),
        (
            RunOptions {
                devices: Some(vec![Device::Cuda(7)]),
                devices_present: Some(vec![Device::Cpu]),
                ..reference_only()
            },
            "--device: device `cuda:7` does not exist",
        ),
        (
            RunOptions {
                threads: Some(vec![100_000]),
                ..reference_only()
            },
            "DLBENCH_MAX_THREADS",
        ),
        (
            RunOptions {
                threads: Some(vec![0]),
                ..reference_only()
            },
            "--threads",
        ),
        (
            RunOptions {
                processes: Some(0),
                ..reference_only()
            },
            "--processes: give at least 1",
        ),
        (
            RunOptions {
                processes: Some(3),
                ..reference_only()
            },
            "--processes: 3 processes need worker processes",
        ),
    ];
    for (options, needle) in cases {
        match run(&mlp(), &registry, &options, &mut Silent) {
            Err(HarnessError::Usage(message)) => assert!(message.contains(needle), "{message}"),
            Err(other) => assert!(other.to_string().contains(needle), "{other}"),
            Ok(_) => panic!("{needle}: the run went ahead"),
        }
    }
}

/// The f64 reference is the oracle: a spec that names no backends compares the frameworks, and
/// the reference runs only when named.
#[test]
fn the_reference_is_compared_only_when_named() {
    let registry: Vec<&dyn Backend> = vec![&ReferenceBackend, &InferenceOnly];
    let options = RunOptions {
        quick: true,
        ..RunOptions::default()
    };
    let results = run(&mlp(), &registry, &options, &mut Silent).unwrap();
    let names: Vec<&str> = results.runs.iter().map(|r| r.backend.as_str()).collect();
    assert_eq!(names, ["inference-only"]);
    let only_reference: Vec<&dyn Backend> = vec![&ReferenceBackend];
    match run(&mlp(), &only_reference, &options, &mut Silent) {
        Err(HarnessError::Usage(message)) => {
            assert!(message.contains("--backends reference"), "{message}")
        }
        other => panic!(
            "expected a usage error, got {:?}",
            other.map(|r| r.runs.len())
        ),
    }
}
