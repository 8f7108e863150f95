//! One backend on one device with one thread count: train the model for the workload's steps,
//! score it on the validation and test splits, and time inference per batch size. Failures and
//! panics become a failed record instead of ending the run.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use dlbench_core::training::LOSS;
use dlbench_core::{Backend, Error, Loss, Mode, Session, Values};
use dlbench_data::evaluation::{Evaluation, Task};
use dlbench_data::Dataset;

use crate::agreement;
use crate::configuration::Configuration;
use crate::environment::peak_rss_bytes;
use crate::measure::{measure_in_rounds, Timed};
use crate::observer::Observer;
use crate::registry::REFERENCE;
use crate::results::{InferenceRecord, RunRecord, Status, TrainingRecord};
use crate::stats::{consecutive_rounds, format_ns, summarize};
use dlbench_spec::feed::{batch_inputs, batch_inputs_given, Phase};
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
        let batch = match batches.next() {
            Some(b) => b,
            None => {
                epoch += 1;
                batches = epoch_of(epoch);
                batches.next().expect("the training split is not empty")
            }
        };
        let (x, y) = (batch.features, batch.targets);
        // Augmented here, before the timed step: every backend trains on the same pixels.
        let x = match &spec.data.augment {
            Some(augment) => augment
                .apply(&x, spec.seed, step as u32)
                .map_err(|e| Error::invalid(e.to_string()))?,
            None => x,
        };
        let phase = Phase::Train(step as u32);
        let inputs = batch_inputs_given(&graph, &x, y.as_ref(), &batch.inputs, spec.seed, phase)?;
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
            let validation = evaluate(
                work,
                session.as_mut(),
                &graph,
                training.loss,
                &work.validation,
            )?;
            let met = validation.is_some_and(|v| {
                v.metrics("val")
                    .into_iter()
                    .any(|(k, v)| k == target.record_key() && target.is_met(v))
            });
            if met {
                time_to_quality = Some(trained.as_secs_f64());
            }
        }
    }
    // The final scores: validation, then the test split, which nothing above has looked at.
    let mut metrics = BTreeMap::new();
    let mut confusion = BTreeMap::new();
    for (split, prefix, data) in [
        ("validation", "val", &work.validation),
        ("test", "test", &work.test),
    ] {
        if let Some(evaluation) = evaluate(work, session.as_mut(), &graph, training.loss, data)? {
            metrics.extend(evaluation.metrics(prefix));
            if let Some(matrix) = evaluation.confusion() {
                confusion.insert(split.to_string(), matrix.counts().to_vec());
            }
        }
    }
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
        confusion,
        time_to_quality_s: time_to_quality,
        raw_step_ns: raw,
        raw_step_round: raw_round,
        raw_step_process: Vec::new(),
    })
}

/// The metrics of `data` (a held-out split) after the steps trained so far, each named
/// `<split>_<metric>` (see [`Evaluation::metrics`]); `None` when the split is empty.
fn evaluate(
    work: &Workload,
    session: &mut dyn Session,
    graph: &dlbench_core::Graph,
    loss: Loss,
    data: &Dataset,
) -> dlbench_core::Result<Option<Evaluation>> {
    if data.is_empty() {
        return Ok(None);
    }
    let output = &graph.outputs[0];
    let task = match loss {
        Loss::CrossEntropy => Task::Classes(
            graph
                .output_infos()?
                .first()
                .and_then(|o| o.shape.get(1).and_then(|d| d.known()))
                .unwrap_or(0),
        ),
        Loss::BinaryCrossEntropy => Task::Binary { logits: false },
        Loss::BinaryCrossEntropyWithLogits => Task::Binary { logits: true },
        Loss::Mse => Task::Regression,
        Loss::VaeElbo => Task::Unsupervised,
    };
    let mut evaluation = Evaluation::new(task);
    let batch = work.spec.train.batch_size.min(data.len());
    for (k, b) in data.batches(batch, false, 0, 0).enumerate() {
        let (x, y) = (b.features, b.targets);
        let inputs = batch_inputs(graph, &x, y.as_ref(), work.spec.seed, Phase::Eval(k as u32))?;
        session.load(&inputs)?;
        session.forward(Mode::Inference)?;
        let outputs = session.outputs()?;
        let prediction = outputs
            .get(output)
            .ok_or_else(|| Error::invalid(format!("the session returned no output `{output}`")))?;
        evaluation
            .add(outputs[LOSS].to_f64_vec()[0], prediction, y.as_ref())
            .map_err(|e| Error::invalid(e.to_string()))?;
    }
    Ok(Some(evaluation))
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
            let x = source.batch(&rows).features;
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
