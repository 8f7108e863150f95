//! The conformance suite every backend runs: one small model per IR op, per loss and per
//! optimizer option, and the seed specs, each checked against the reference for forward outputs
//! (and intermediates), parameter gradients and a training loss trajectory
//! (`dlbench_harness::agreement`). In the style of
//! tract's test-rt and burn's backend tests: the cases live here, once, and a backend adds one
//! test.
//!
//! # Adding a backend
//!
//! In the adapter crate, `tests/conformance.rs` (with `dlbench-conformance` and `dlbench-reference`
//! as dev-dependencies):
//!
//! ```no_run
//! use dlbench_conformance::assert_conforms;
//! use dlbench_reference::ReferenceBackend;
//! # let my_backend = ReferenceBackend;
//! // #[test] fn conforms() {
//! assert_conforms(
//!     &my_backend,
//!     &ReferenceBackend,
//!     &[("max_pool2d_ceil", "pools in floor mode only (issue #12)")],
//! );
//! // }
//! ```
//!
//! Each expected failure names a case and says why. [`assert_conforms`] panics on a failure
//! that is not listed *and* on a listed case that now passes (or does not exist), so the list
//! stays honest as the adapter improves. A check the backend cannot do (an inference-only
//! backend's gradients) is left out of the case, not failed: see [`Agreement::notes`].

mod cases;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use dlbench_core::rng::Stream;
use dlbench_core::{
    Backend, DType, Device, Error, GraphBuilder, Loss, Model, Result, Tensor, TrainingConfig,
};
use dlbench_data::Dataset;

use dlbench_harness::agreement::{check_subject, Subject};
use dlbench_harness::configuration::Configuration;
use dlbench_harness::results::{Agreement, AgreementCheck};
use dlbench_spec::workload::Workload;
use dlbench_spec::{AgreementSpec, Spec};

/// The data input of every op case.
const X: &str = "x";
/// Seeds weights and synthetic data of the op cases.
const SEED: u64 = 7;
/// Samples of synthetic data per op case: three batches of [`BATCH`].
const SAMPLES: usize = 12;
const BATCH: usize = 4;

/// One case of the suite.
pub struct Case {
    /// Stable name, used in expected-failure lists: `dense`, `max_pool2d_ceil`, `spec_cnn`.
    pub name: String,
    /// What it exercises.
    pub about: String,
    source: Source,
}

enum Source {
    Graph(GraphCase),
    /// A seed spec in `specs/`, with the batch size and training steps of the check.
    Spec {
        file: String,
        batch_size: Option<usize>,
        steps: usize,
    },
}

/// A graph built on a data input [`X`] of shape `[batch, ..sample]`, returning its outputs; the
/// first output feeds the loss.
struct GraphCase {
    sample: Vec<usize>,
    training: TrainingConfig,
    build: BuildGraph,
}

/// Adds a case's nodes after its data input and returns its outputs.
type BuildGraph = Box<dyn Fn(&mut GraphBuilder) -> Result<Vec<String>> + Send + Sync>;

/// A case made ready to check: owns what [`Subject`] borrows.
struct Built {
    model: Model,
    data: Dataset,
    training: TrainingConfig,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    tolerances: AgreementSpec,
}

impl Case {
    fn graph(name: &str, about: &str, graph: GraphCase) -> Case {
        Case {
            name: name.to_string(),
            about: about.to_string(),
            source: Source::Graph(graph),
        }
    }

    /// `specs/<file>.yaml`, optionally at another batch size, checked over `steps` steps.
    fn spec(file: &str, batch_size: Option<usize>, steps: usize) -> Case {
        let batch = batch_size.map_or(String::new(), |b| format!(", batch {b}"));
        Case {
            name: format!("spec_{file}"),
            about: format!("the seed spec specs/{file}.yaml{batch}, {steps} training steps"),
            source: Source::Spec {
                file: file.to_string(),
                batch_size,
                steps,
            },
        }
    }

    fn build(&self) -> Result<Built> {
        match &self.source {
            Source::Graph(g) => {
                let mut b = GraphBuilder::new(&self.name);
                b.data_input(X, &g.sample)?;
                let outputs = (g.build)(&mut b)?;
                let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
                let model = Model::initialized(b.finish(&refs)?, SEED)?;
                let data = synthetic(&self.name, &model, &g.sample, g.training.loss)?;
                Ok(Built {
                    model,
                    data,
                    training: g.training,
                    batch_size: BATCH,
                    shuffle: true,
                    seed: SEED,
                    tolerances: AgreementSpec::default(),
                })
            }
            Source::Spec {
                file,
                batch_size,
                steps,
            } => {
                let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../specs")
                    .join(format!("{file}.yaml"));
                let mut spec = Spec::load(&path).map_err(|e| Error::invalid(e.to_string()))?;
                if let Some(b) = batch_size {
                    spec.train.batch_size = *b;
                }
                spec.agreement.steps = *steps;
                let work =
                    Workload::prepare(spec, false).map_err(|e| Error::invalid(e.to_string()))?;
                let Workload {
                    spec,
                    model,
                    train,
                    batch_size,
                    ..
                } = work;
                Ok(Built {
                    batch_size,
                    model,
                    data: train,
                    training: spec.training_config(),
                    shuffle: spec.train.shuffle,
                    seed: spec.seed,
                    tolerances: spec.agreement,
                })
            }
        }
    }

    /// The case's model with its initial weights (for tests that look inside it).
    pub fn model(&self) -> Result<Model> {
        Ok(self.build()?.model)
    }

    /// The loss and optimizer the case trains with.
    pub fn training(&self) -> Result<TrainingConfig> {
        match &self.source {
            Source::Graph(g) => Ok(g.training),
            Source::Spec { .. } => Ok(self.build()?.training),
        }
    }

    /// Checks `backend` against `reference` on this case.
    pub fn run(
        &self,
        backend: &dyn Backend,
        reference: &dyn Backend,
        device: Device,
        threads: usize,
    ) -> Result<Agreement> {
        let built = self.build()?;
        let subject = Subject {
            model: &built.model,
            data: &built.data,
            training: built.training,
            batch_size: built.batch_size,
            shuffle: built.shuffle,
            seed: built.seed,
            tolerances: &built.tolerances,
        };
        let config = Configuration::new(backend, device, threads);
        check_subject(&subject, config, reference)
    }
}

/// Seeded data for an op case: normal features (uniform in [0, 1] for the VAE, whose loss
/// reads them as probabilities) and targets that suit the loss.
fn synthetic(name: &str, model: &Model, sample: &[usize], loss: Loss) -> Result<Dataset> {
    let stream = |what: &str| Stream::new(SEED, &format!("conformance/{name}/{what}"), 0);
    let shape: Vec<usize> = std::iter::once(SAMPLES)
        .chain(sample.iter().copied())
        .collect();
    let n: usize = shape.iter().product();
    let features = match loss {
        Loss::VaeElbo => stream("x").uniform_vec(n),
        Loss::Mse
        | Loss::CrossEntropy
        | Loss::BinaryCrossEntropy
        | Loss::BinaryCrossEntropyWithLogits => stream("x").normal_vec(n),
    };
    let prediction = model.graph.output_infos()?[0].resolve(SAMPLES);
    let count: usize = prediction.iter().product();
    let targets = match loss {
        Loss::Mse => Some(Tensor::f64(prediction, stream("y").normal_vec(count))?),
        Loss::CrossEntropy => {
            let classes = *prediction.last().unwrap_or(&1);
            let labels = stream("y")
                .uniform_vec(SAMPLES)
                .iter()
                .map(|u| ((u * classes as f64) as i64).min(classes as i64 - 1))
                .collect();
            Some(Tensor::i64(vec![SAMPLES], labels)?)
        }
        Loss::BinaryCrossEntropy => {
            let bits = stream("y").uniform_vec(count);
            let bits = bits.iter().map(|u| f64::from(*u < 0.5)).collect();
            Some(Tensor::f64(prediction, bits)?)
        }
        Loss::BinaryCrossEntropyWithLogits => {
            Some(Tensor::f64(prediction, stream("y").uniform_vec(count))?)
        }
        Loss::VaeElbo => None,
    };
    let targets = targets.map(|t| match t.dtype() {
        DType::I64 => t,
        _ => t.to_dtype(DType::F32),
    });
    Dataset::new(Tensor::f64(shape, features)?, targets).map_err(|e| Error::invalid(e.to_string()))
}

/// Every case of the suite, in order: dense and mat_mul, conv2d, pooling, layout,
/// activations and dropout, element-wise with broadcasting, LSTM, losses, optimizer options,
/// seed specs. `tests/coverage.rs` checks that every op, loss, optimizer and optimizer option
/// has a case.
pub fn cases() -> Vec<Case> {
    cases::all()
}

/// One case's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseReport {
    /// The case's [`Case::name`].
    pub case: String,
    /// The case's [`Case::about`].
    pub about: String,
    /// The agreement, or why the case could not be checked at all (the reference or the case
    /// itself failed, or the backend panicked).
    pub outcome: std::result::Result<Agreement, String>,
    /// The reason given, when the backend lists this case as an expected failure.
    pub expected_failure: Option<String>,
}

impl CaseReport {
    /// True when every check that ran passed.
    pub fn pass(&self) -> bool {
        matches!(&self.outcome, Ok(a) if a.pass())
    }

    /// One line per check: pass or fail, the figures, the worst value and, for a failed
    /// forward check, the first divergent node.
    pub fn describe(&self) -> String {
        let verdict = if self.pass() { "pass" } else { "FAIL" };
        let mut text = format!("{} ({verdict}): {}", self.case, self.about);
        match &self.outcome {
            Err(e) => text.push_str(&format!("\n    error: {e}")),
            Ok(a) => {
                let checks = [
                    ("forward", &a.forward),
                    ("gradients", &a.gradients),
                    ("training", &a.training),
                ];
                for (kind, check) in checks {
                    if let Some(c) = check {
                        text.push_str(&format!("\n    {}", describe_check(kind, c)));
                    }
                }
                for note in &a.notes {
                    text.push_str(&format!("\n    note: {note}"));
                }
            }
        }
        text
    }
}

fn describe_check(kind: &str, c: &AgreementCheck) -> String {
    let verdict = if c.pass { "pass" } else { "FAIL" };
    let mut line = format!(
        "{kind} {verdict}: max_abs {:.3e}, max_rel {:.3e}, max_ulp {}",
        c.max_abs, c.max_rel, c.max_ulp
    );
    if let Some(worst) = &c.worst {
        line.push_str(&format!(", worst `{worst}`"));
    }
    if let (Some(node), Some(op)) = (&c.first_divergent_node, &c.first_divergent_op) {
        line.push_str(&format!("; first divergent node `{node}` ({op})"));
        if let Some(d) = &c.divergence {
            line.push_str(&format!(
                ": max_abs {:.3e}, {} of {} elements outside tolerance",
                d.max_abs, d.mismatched, d.elements
            ));
            if let Some(problem) = &d.problem {
                line.push_str(&format!(", {problem}"));
            }
        }
    }
    if let Some(error) = &c.error {
        line.push_str(&format!("\n      error: {error}"));
    }
    for note in &c.notes {
        line.push_str(&format!("\n      {note}"));
    }
    line
}

/// The outcome of the whole suite for one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteReport {
    /// The checked backend's name.
    pub backend: String,
    /// One report per case, in suite order.
    pub cases: Vec<CaseReport>,
    /// Expected failures that name no case of the suite.
    pub unknown_expected: Vec<String>,
}

impl SuiteReport {
    /// The report of the case named `name`.
    pub fn case(&self, name: &str) -> Option<&CaseReport> {
        self.cases.iter().find(|c| c.case == name)
    }

    /// The names of the failing cases, expected or not.
    pub fn failed(&self) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|c| !c.pass())
            .map(|c| c.case.as_str())
            .collect()
    }

    /// Failing cases not listed as expected failures.
    pub fn unexpected_failures(&self) -> Vec<&CaseReport> {
        self.cases
            .iter()
            .filter(|c| !c.pass() && c.expected_failure.is_none())
            .collect()
    }

    /// Cases listed as expected failures that pass.
    pub fn unexpected_passes(&self) -> Vec<&CaseReport> {
        self.cases
            .iter()
            .filter(|c| c.pass() && c.expected_failure.is_some())
            .collect()
    }

    /// True when the failures are exactly the expected ones.
    pub fn conforms(&self) -> bool {
        self.unexpected_failures().is_empty()
            && self.unexpected_passes().is_empty()
            && self.unknown_expected.is_empty()
    }

    /// What makes the suite not conform, case by case.
    pub fn problems(&self) -> String {
        let mut text = format!("{} does not conform:", self.backend);
        for c in self.unexpected_failures() {
            text.push_str(&format!("\n  unexpected failure: {}", c.describe()));
        }
        for c in self.unexpected_passes() {
            let why = c.expected_failure.as_deref().unwrap_or_default();
            text.push_str(&format!(
                "\n  listed as an expected failure ({why}) but passes: {}; remove it from the list",
                c.case
            ));
        }
        for name in &self.unknown_expected {
            text.push_str(&format!(
                "\n  listed as an expected failure but no case is named `{name}`"
            ));
        }
        text
    }
}

/// Runs every case on `backend` (CPU, one thread) against `reference`. `expected_failures`
/// lists `(case, why)` pairs; a panic inside a case is recorded as that case's failure.
pub fn run_suite(
    backend: &dyn Backend,
    reference: &dyn Backend,
    expected_failures: &[(&str, &str)],
) -> SuiteReport {
    run_suite_on(backend, Device::Cpu, reference, expected_failures)
}

/// [`run_suite`] with `backend` on `device` (the reference always runs on the CPU), so that
/// one test body covers every device a backend reports.
pub fn run_suite_on(
    backend: &dyn Backend,
    device: Device,
    reference: &dyn Backend,
    expected_failures: &[(&str, &str)],
) -> SuiteReport {
    let all = cases();
    let reports = all
        .iter()
        .map(|case| {
            let run = catch_unwind(AssertUnwindSafe(|| case.run(backend, reference, device, 1)));
            let outcome = match run {
                Ok(Ok(agreement)) => Ok(agreement),
                Ok(Err(e)) => Err(e.to_string()),
                Err(panic) => Err(format!("panicked: {}", panic_message(panic.as_ref()))),
            };
            CaseReport {
                case: case.name.clone(),
                about: case.about.clone(),
                outcome,
                expected_failure: expected_failures
                    .iter()
                    .find(|(name, _)| *name == case.name)
                    .map(|(_, why)| why.to_string()),
            }
        })
        .collect();
    let unknown_expected = expected_failures
        .iter()
        .filter(|(name, _)| !all.iter().any(|c| c.name == *name))
        .map(|(name, _)| name.to_string())
        .collect();
    SuiteReport {
        backend: match device {
            Device::Cpu => backend.name().to_string(),
            _ => format!("{} on {device}", backend.name()),
        },
        cases: reports,
        unknown_expected,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// [`run_suite`], then panics listing every unexpected failure and every expected failure that
/// now passes or names no case. Returns the report for further checks.
pub fn assert_conforms(
    backend: &dyn Backend,
    reference: &dyn Backend,
    expected_failures: &[(&str, &str)],
) -> SuiteReport {
    assert_conforms_on(backend, Device::Cpu, reference, expected_failures)
}

/// [`assert_conforms`] with `backend` on `device`.
pub fn assert_conforms_on(
    backend: &dyn Backend,
    device: Device,
    reference: &dyn Backend,
    expected_failures: &[(&str, &str)],
) -> SuiteReport {
    let report = run_suite_on(backend, device, reference, expected_failures);
    if !report.conforms() {
        panic!("{}", report.problems());
    }
    report
}
