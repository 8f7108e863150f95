//! One backend on one device with one thread count: train the model for the workload's steps,
//! evaluate it on the validation split, and time inference per batch size. Failures and
//! panics become a failed record instead of ending the run.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use dlbench_core::training::LOSS;
use dlbench_core::{Backend, Error, Loss, Mode, Session, Tensor, Values};
use dlbench_data::confusion::ConfusionMatrix;

use crate::agreement;
use crate::configuration::Configuration;
use crate::environment::peak_rss_bytes;
use crate::measure::{measure_in_rounds, Timed};
use crate::observer::Observer;
use crate::registry::REFERENCE;
use crate::results::{InferenceRecord, RunRecord, Status, TrainingRecord};
use crate::stats::{consecutive_rounds, format_ns, summarize};
use dlbench_spec::feed::{batch_inputs, Phase};
use dlbench_spec::workload::Workload;

/// What a backend's numbers are checked against before it is timed.
#[derive(Clone, Copy)]
pub enum Oracle<'a> {
    /// The agreement oracle, the registry's [`REFERENCE`] backend: every other backend is
    /// checked against it before anything is timed.
    Reference(&'a dyn Backend),
    /// This build has no reference: agreement is not checked, and the record says so.
    Missing,
    /// Another process of the same configuration checked it (`--processes`): only time.
    CheckedElsewhere,
}

impl<'a> From<Option<&'a dyn Backend>> for Oracle<'a> {
    fn from(reference: Option<&'a dyn Backend>) -> Self {
        reference.map_or(Oracle::Missing, Oracle::Reference)
    }
}

/// One backend run with its failures, panics included, turned into a failed record.
pub fn run_contained(
    work: &Workload,
    config: Configuration,
    oracle: Oracle,
    observer: &mut dyn Observer,
) -> RunRecord {
    let (name, device) = (config.name(), config.device);
    let caps = config.backend.capabilities();
    if !caps.devices.contains(&device) {
        return config.record(
            Status::Unsupported,
            format!("{name} cannot use device {device} on this machine"),
        );
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        run_backend(work, config, oracle, observer)
    }));
    let mut failed = |message: String| {
        observer.end(&format!("{}: failed: {message}", config.label()));
        config.record(Status::Failed, message)
    };
    match outcome {
        Ok(Ok(record)) => record,
        Ok(Err(Error::Unsupported { what, .. })) => config.record(Status::Unsupported, what),
        Ok(Err(e)) => failed(e.to_string()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            failed(format!("panicked: {message}"))
        }
    }
}

fn run_backend(
    work: &Workload,
    config: Configuration,
    oracle: Oracle,
    observer: &mut dyn Observer,
) -> dlbench_core::Result<RunRecord> {
    let label = config.label();
    let mut record = config.record(Status::Ok, String::new());
    record.error = None;
    match oracle {
        _ if config.name() == REFERENCE => record
            .notes
            .push("the f64 reference is the agreement oracle: it has no agreement section".into()),
        Oracle::Missing => record
            .notes
            .push("no f64 reference in this build: agreement was not checked".into()),
        Oracle::CheckedElsewhere => {}
        Oracle::Reference(reference) => {
            observer.begin(&format!("{label}: agreement"), 1);
            let agreement = agreement::check(work, config, reference)?;
            let pass = agreement.pass();
            observer.end(&format!(
                "{label}: agreement with the reference: {}",
                if pass { "pass" } else { "FAIL" }
            ));
            let error = agreement.error().map(str::to_string);
            record.agreement = Some(agreement);
            if let Some(error) = error {
                // The framework failed, which is not the same as computing different numbers.
                observer.end(&format!("{label}: failed: {error}"));
                record.status = Status::Failed;
                record.error = Some(error);
                return Ok(record);
            }
            if !pass {
                // No timing without agreement: a fast wrong answer is not a result.
                record
                    .notes
                    .push("not timed: it disagrees with the f64 reference".into());
                record.peak_rss_bytes = peak_rss_bytes();
                return Ok(record);
            }
        }
    }
    let caps = config.backend.capabilities();
    if caps.training {
        record.training = Some(train(work, config, observer, &mut record)?);
    } else {
        record.notes.push(format!("{} cannot train", config.name()));
    }
    if caps.inference {
        record.inference = benchmark_inference(work, config, observer, &mut record)?;
    }
    // The peak of this process: the backend's own in a worker; the caller of an in-process
    // run says that it covers everything else the process did too.
    record.peak_rss_bytes = peak_rss_bytes();
    Ok(record)
}

fn loss_of(session: &mut dyn Session) -> dlbench_core::Result<f64> {
    let outputs = session.outputs()?;
    let loss = outputs
        .get(LOSS)
        .ok_or_else(|| Error::invalid("the training session returned no loss"))?;
    Ok(loss.to_f64_vec()[0])
}

/// Trains `config` for the workload's steps; the time to prepare the session goes in `record`.
fn train(
    work: &Workload,
    config: Configuration,
    observer: &mut dyn Observer,
    record: &mut RunRecord,
) -> dlbench_core::Result<TrainingRecord> {
    let spec = &work.spec;
    let label = config.label();
    let training = spec.training_config();
    let started = Instant::now();
    let mut session = config.prepare(&work.model, Some(training))?;
    record.prepare_ns = Some(started.elapsed().as_nanos() as f64);
    record.notes.extend(session.notes());
    let graph = work.model.graph.with_loss(training.loss)?;
    let batch = work.batch_size;
    let epoch_of = |epoch: u32| {
        work.train
            .batches(batch, spec.train.shuffle, spec.seed, epoch)
    };

    observer.begin(&format!("{label}: train"), work.steps as u64);
    let (mut losses, mut raw) = (
        Vec::with_capacity(work.steps),
        Vec::with_capacity(work.steps),
    );
    let (mut epoch, mut batches) = (0, epoch_of(0));
    let mut time_to_quality = None;
    let mut trained = Duration::ZERO;
    for step in 0..work.steps {
        let (x, y) = match batches.next() {
            Some(b) => b,
            None => {
                epoch += 1;
                batches = epoch_of(epoch);
                batches.next().expect("the training split is not empty")
            }
        };
        let inputs = batch_inputs(&graph, &x, y.as_ref(), spec.seed, Phase::Train(step as u32))?;
        session.load(&inputs)?;
        let t = Instant::now();
        session.train_step()?;
        let dt = t.elapsed();
        trained += dt;
        raw.push(dt.as_nanos() as f64);
        let loss = loss_of(session.as_mut())?;
        if !loss.is_finite() {
            return Err(Error::invalid(format!(
                "the training loss is {loss} at step {step}"
            )));
        }
        losses.push(loss);
        observer.advance(step as u64 + 1, &format!("loss {loss:.4}"));
        let epoch_done = batches.len() == 0 || step + 1 == work.steps;
        if let (Some(target), true, None) = (&spec.train.target, epoch_done, time_to_quality) {
            let metrics = evaluate(work, session.as_mut(), &graph, training.loss)?;
            if metrics
                .get(&target.record_key())
                .is_some_and(|v| target.is_met(*v))
            {
                time_to_quality = Some(trained.as_secs_f64());
            }
        }
    }
    let metrics = evaluate(work, session.as_mut(), &graph, training.loss)?;
    // Consecutive blocks of steps play the part of inference's rounds: the interval widens
    // when the machine drifted during training.
    let raw_round = consecutive_rounds(raw.len(), work.benchmark.rounds);
    let step_time = summarize(&raw, &raw_round);
    observer.end(&format!(
        "{label}: trained {} steps, loss {:.4} -> {:.4}, median step {}",
        work.steps,
        losses.first().copied().unwrap_or(f64::NAN),
        losses.last().copied().unwrap_or(f64::NAN),
        format_ns(step_time.median_ns)
    ));
    Ok(TrainingRecord {
        batch,
        steps: work.steps,
        step_median_ns: step_time.median_ns,
        step_time,
        losses,
        metrics,
        time_to_quality_s: time_to_quality,
        raw_step_ns: raw,
        raw_step_round: raw_round,
        raw_step_process: Vec::new(),
    })
}

/// Validation loss and the metric that fits the loss, over the whole validation split.
fn evaluate(
    work: &Workload,
    session: &mut dyn Session,
    graph: &dlbench_core::Graph,
    loss: Loss,
) -> dlbench_core::Result<BTreeMap<String, f64>> {
    let data = &work.validation;
    let n = data.len();
    let mut metrics = BTreeMap::new();
    if n == 0 {
        return Ok(metrics);
    }
    let batch = work.spec.train.batch_size.min(n);
    let mut total_loss = 0.0;
    let mut confusion = None;
    for (k, (x, y)) in data.batches(batch, false, 0, 0).enumerate() {
        let rows = x.shape()[0] as f64;
        let inputs = batch_inputs(graph, &x, y.as_ref(), work.spec.seed, Phase::Eval(k as u32))?;
        session.load(&inputs)?;
        session.forward(Mode::Inference)?;
        let outputs = session.outputs()?;
        total_loss += outputs[LOSS].to_f64_vec()[0] * rows;
        if let (Some(pred), Some(y)) = (outputs.get(&graph.outputs[0]), y.as_ref()) {
            count_classes(loss, pred, y, &mut confusion)?;
        }
    }
    if let Some(confusion) = &confusion {
        metrics.extend(class_scores(confusion));
    }
    // The share predicted right: the confusion matrix's diagonal (0 with no targets to judge).
    let accuracy = confusion.as_ref().map_or(0.0, ConfusionMatrix::accuracy);
    metrics.insert("val_loss".into(), total_loss / n as f64);
    let metric = match loss {
        Loss::CrossEntropy => Some(("val_accuracy", accuracy)),
        Loss::BinaryCrossEntropy | Loss::BinaryCrossEntropyWithLogits => {
            Some(("val_binary_accuracy", accuracy))
        }
        Loss::Mse => Some(("val_mse", total_loss / n as f64)),
        Loss::VaeElbo => None,
    };
    if let Some((name, value)) = metric {
        metrics.insert(name.to_string(), value);
    }
    Ok(metrics)
}

/// Adds a batch's predictions to the confusion matrix (classification losses only), made on
/// the first batch: as many classes as the logits have columns, or two for a binary output.
fn count_classes(
    loss: Loss,
    prediction: &Tensor,
    target: &Tensor,
    confusion: &mut Option<ConfusionMatrix>,
) -> dlbench_core::Result<()> {
    let counted = match loss {
        Loss::CrossEntropy => {
            let classes = prediction.shape().get(1).copied().unwrap_or(0);
            confusion
                .get_or_insert_with(|| ConfusionMatrix::new(classes))
                .add_logits(prediction, target)
        }
        Loss::BinaryCrossEntropy | Loss::BinaryCrossEntropyWithLogits => confusion
            .get_or_insert_with(|| ConfusionMatrix::new(2))
            .add_binary(
                prediction,
                target,
                loss == Loss::BinaryCrossEntropyWithLogits,
            ),
        Loss::Mse | Loss::VaeElbo => Ok(()),
    };
    counted.map_err(|e| Error::invalid(e.to_string()))
}

/// Precision, recall and F1 from the confusion matrix: of the positive class (1) for a binary
/// classifier, macro and weighted averages over classes otherwise (scikit-learn's
/// definitions).
fn class_scores(confusion: &ConfusionMatrix) -> Vec<(String, f64)> {
    let named = |suffix: &str, s: dlbench_data::confusion::Scores| {
        [
            (format!("val_precision{suffix}"), s.precision),
            (format!("val_recall{suffix}"), s.recall),
            (format!("val_f1{suffix}"), s.f1),
        ]
    };
    if confusion.counts().len() == 2 {
        named("", confusion.class(1)).to_vec()
    } else {
        let mut scores = named("_macro", confusion.macro_average()).to_vec();
        scores.extend(named("_weighted", confusion.weighted_average()));
        scores
    }
}

/// Inference latency at every batch size of the spec, measured in rounds (`measure`) in one
/// inference session; that session's notes (an inference-only backend's only ones) go in
/// `record`, after the training session's, each once.
fn benchmark_inference(
    work: &Workload,
    config: Configuration,
    observer: &mut dyn Observer,
    record: &mut RunRecord,
) -> dlbench_core::Result<Vec<InferenceRecord>> {
    let label = config.label();
    let source = if !work.validation.is_empty() {
        &work.validation
    } else {
        &work.train
    };
    let batches = &work.spec.inference.batch_sizes;
    let inputs = batches
        .iter()
        .map(|&batch| {
            let rows: Vec<usize> = (0..batch).map(|i| i % source.len()).collect();
            let (x, _) = source.batch(&rows);
            batch_inputs(&work.model.graph, &x, None, work.spec.seed, Phase::Eval(0))
        })
        .collect::<dlbench_core::Result<Vec<_>>>()?;
    let mut subject = Inference {
        session: config.prepare(&work.model, None)?,
        inputs,
    };
    for note in subject.session.notes() {
        if !record.notes.contains(&note) {
            record.notes.push(note);
        }
    }
    let list: Vec<String> = batches.iter().map(usize::to_string).collect();
    observer.begin(
        &format!("{label}: inference, batch {}", list.join(", ")),
        work.benchmark.rounds as u64,
    );
    let timings = measure_in_rounds(&mut subject, batches.len(), &work.benchmark, observer)?;
    let records: Vec<InferenceRecord> = batches
        .iter()
        .zip(timings)
        .map(|(&batch, timing)| {
            let summary = summarize(&timing.per_iteration_ns, &timing.round);
            InferenceRecord {
                batch,
                throughput_per_s: batch as f64 / (summary.median_ns * 1e-9),
                summary,
                iterations_per_sample: timing.iterations_per_sample,
                raw_ns: timing.per_iteration_ns,
                raw_round: timing.round,
                raw_process: Vec::new(),
            }
        })
        .collect();
    let medians: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "batch {} median {} ({} samples)",
                r.batch,
                format_ns(r.summary.median_ns),
                r.summary.samples
            )
        })
        .collect();
    observer.end(&format!("{label}: inference: {}", medians.join("; ")));
    Ok(records)
}

/// One inference session and the inputs of each batch size, loaded on selection.
struct Inference {
    session: Box<dyn Session>,
    inputs: Vec<Values>,
}

impl Timed for Inference {
    fn select(&mut self, case: usize) -> dlbench_core::Result<()> {
        self.session.load(&self.inputs[case])
    }
    fn run(&mut self) -> dlbench_core::Result<()> {
        self.session.forward(Mode::Inference)
    }
}
