//! One backend on one device with one thread count: train the model for the workload's steps,
//! evaluate it on the validation split, and time inference per batch size. Failures and
//! panics become a failed record instead of ending the run.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use dlbench_core::training::LOSS;
use dlbench_core::{Backend, Device, Error, Loss, Mode, PrepareOptions, Session, Tensor};
use dlbench_data::metrics;

use crate::agreement;
use crate::environment::peak_rss_bytes;
use crate::feed::{batch_inputs, Phase};
use crate::results::{InferenceRecord, RunRecord, Status, TrainingRecord};
use crate::run::Observer;
use crate::spec::BenchmarkSpec;
use crate::stats::{format_ns, summarize};
use crate::workload::Workload;

/// The name of the backend every other one is checked against: the f64 reference.
pub const REFERENCE: &str = "reference";

/// One backend run with its failures, panics included, turned into a failed record.
///
/// `reference` is the agreement oracle (the registry's [`REFERENCE`] backend): every other
/// backend is checked against it before anything is timed.
pub fn run_contained(
    work: &Workload,
    backend: &dyn Backend,
    reference: Option<&dyn Backend>,
    device: Device,
    threads: usize,
    observer: &mut dyn Observer,
) -> RunRecord {
    let name = backend.name();
    let caps = backend.capabilities();
    if !caps.devices.contains(&device) {
        return RunRecord::without_results(
            name,
            device,
            threads,
            Status::Unsupported,
            format!("{name} cannot use device {device} on this machine"),
        );
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        run_backend(work, backend, reference, device, threads, observer)
    }));
    let mut failed = |message: String| {
        observer.end(&format!("{name} {device} x{threads}: failed: {message}"));
        RunRecord::without_results(name, device, threads, Status::Failed, message)
    };
    match outcome {
        Ok(Ok(record)) => record,
        Ok(Err(Error::Unsupported { what, .. })) => {
            RunRecord::without_results(name, device, threads, Status::Unsupported, what)
        }
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
    backend: &dyn Backend,
    reference: Option<&dyn Backend>,
    device: Device,
    threads: usize,
    observer: &mut dyn Observer,
) -> dlbench_core::Result<RunRecord> {
    let label = format!("{} {device} x{threads}", backend.name());
    let mut record =
        RunRecord::without_results(backend.name(), device, threads, Status::Ok, String::new());
    record.error = None;
    match reference {
        _ if backend.name() == REFERENCE => record
            .notes
            .push("the f64 reference is the agreement oracle: it has no agreement section".into()),
        None => record
            .notes
            .push("no f64 reference in this build: agreement was not checked".into()),
        Some(reference) => {
            observer.begin(&format!("{label}: agreement"), 1);
            let agreement = agreement::check(work, backend, reference, device, threads)?;
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
    let caps = backend.capabilities();
    if caps.training {
        record.training = Some(train(
            work,
            backend,
            device,
            threads,
            &label,
            observer,
            &mut record,
        )?);
    } else {
        record
            .notes
            .push(format!("{} cannot train", backend.name()));
    }
    if caps.inference {
        record.inference = benchmark_inference(work, backend, device, threads, &label, observer)?;
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

#[allow(clippy::too_many_arguments)]
fn train(
    work: &Workload,
    backend: &dyn Backend,
    device: Device,
    threads: usize,
    label: &str,
    observer: &mut dyn Observer,
    record: &mut RunRecord,
) -> dlbench_core::Result<TrainingRecord> {
    let spec = &work.spec;
    let config = spec.training_config();
    let options = PrepareOptions {
        device,
        threads,
        training: Some(config),
    };
    let started = Instant::now();
    let mut session = backend.prepare(&work.model, &options)?;
    record.prepare_ns = Some(started.elapsed().as_nanos() as f64);
    let graph = work.model.graph.with_loss(config.loss)?;
    let batch = spec.train.effective_batch_size(work.train.len());
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
            let metrics = evaluate(work, session.as_mut(), &graph, config.loss)?;
            if metrics
                .get(&target.record_key())
                .is_some_and(|v| target.is_met(*v))
            {
                time_to_quality = Some(trained.as_secs_f64());
            }
        }
    }
    let metrics = evaluate(work, session.as_mut(), &graph, config.loss)?;
    let step_time = summarize(&raw);
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
    let (mut total_loss, mut correct) = (0.0, 0.0);
    for (k, (x, y)) in data.batches(batch, false, 0, 0).enumerate() {
        let rows = x.shape()[0] as f64;
        let inputs = batch_inputs(graph, &x, y.as_ref(), work.spec.seed, Phase::Eval(k as u32))?;
        session.load(&inputs)?;
        session.forward(Mode::Inference)?;
        let outputs = session.outputs()?;
        total_loss += outputs[LOSS].to_f64_vec()[0] * rows;
        if let (Some(pred), Some(y)) = (outputs.get(&graph.outputs[0]), y.as_ref()) {
            correct += accuracy(loss, pred, y)? * rows;
        }
    }
    metrics.insert("val_loss".into(), total_loss / n as f64);
    let metric = match loss {
        Loss::CrossEntropy => Some(("val_accuracy", correct / n as f64)),
        Loss::BinaryCrossEntropy | Loss::BinaryCrossEntropyWithLogits => {
            Some(("val_binary_accuracy", correct / n as f64))
        }
        Loss::Mse => Some(("val_mse", total_loss / n as f64)),
        Loss::VaeElbo => None,
    };
    if let Some((name, value)) = metric {
        metrics.insert(name.to_string(), value);
    }
    Ok(metrics)
}

/// The fraction of a batch predicted right (classification losses only).
fn accuracy(loss: Loss, prediction: &Tensor, target: &Tensor) -> dlbench_core::Result<f64> {
    let fraction = match loss {
        Loss::CrossEntropy => metrics::accuracy(prediction, target),
        Loss::BinaryCrossEntropy => metrics::binary_accuracy(prediction, target, false),
        Loss::BinaryCrossEntropyWithLogits => metrics::binary_accuracy(prediction, target, true),
        Loss::Mse | Loss::VaeElbo => return Ok(0.0),
    };
    fraction.map_err(|e| Error::invalid(e.to_string()))
}

fn benchmark_inference(
    work: &Workload,
    backend: &dyn Backend,
    device: Device,
    threads: usize,
    label: &str,
    observer: &mut dyn Observer,
) -> dlbench_core::Result<Vec<InferenceRecord>> {
    let options = PrepareOptions {
        device,
        threads,
        training: None,
    };
    let mut session = backend.prepare(&work.model, &options)?;
    let source = if !work.validation.is_empty() {
        &work.validation
    } else {
        &work.train
    };
    let mut records = Vec::new();
    for &batch in &work.spec.inference.batch_sizes {
        let rows: Vec<usize> = (0..batch).map(|i| i % source.len()).collect();
        let (x, _) = source.batch(&rows);
        let inputs = batch_inputs(&work.model.graph, &x, None, work.spec.seed, Phase::Eval(0))?;
        session.load(&inputs)?;
        observer.begin(&format!("{label}: inference batch {batch}"), 100);
        let mut run = || session.forward(Mode::Inference);
        let timing = sample(&mut run, &work.benchmark, observer)?;
        let summary = summarize(&timing.per_iteration_ns);
        observer.end(&format!(
            "{label}: inference batch {batch}: median {} ({} samples)",
            format_ns(summary.median_ns),
            summary.samples
        ));
        records.push(InferenceRecord {
            batch,
            throughput_per_s: batch as f64 / (summary.median_ns * 1e-9),
            summary,
            iterations_per_sample: timing.iterations_per_sample,
            raw_ns: timing.per_iteration_ns,
        });
    }
    Ok(records)
}

struct Timing {
    per_iteration_ns: Vec<f64>,
    iterations_per_sample: usize,
}

/// Shortest sample worth timing: well above the clock's resolution and overhead.
const MIN_SAMPLE: Duration = Duration::from_micros(200);
/// Samples a budget is sized for (criterion's default): enough for stable percentiles and a
/// bootstrap, few enough to keep raw samples in the record.
const TARGET_SAMPLES: f64 = 100.0;
const MAX_SAMPLES: usize = 10_000;

/// Warm up for `warmup_s`, then take samples until both `min_samples` and `budget_s` are
/// reached. A sample times several iterations when one is shorter than its share of the
/// budget (`budget_s / 100`, at least [`MIN_SAMPLE`]).
fn sample(
    run: &mut dyn FnMut() -> dlbench_core::Result<()>,
    budget: &BenchmarkSpec,
    observer: &mut dyn Observer,
) -> dlbench_core::Result<Timing> {
    let warmup = Instant::now();
    let mut warm_runs = 0u32;
    while warm_runs == 0 || warmup.elapsed().as_secs_f64() < budget.warmup_s {
        run()?;
        warm_runs += 1;
    }
    let estimate = warmup.elapsed() / warm_runs;
    let per_sample = MIN_SAMPLE.max(Duration::from_secs_f64(budget.budget_s / TARGET_SAMPLES));
    let iterations =
        (per_sample.as_nanos() / estimate.as_nanos().max(1)).clamp(1, 100_000) as usize;
    let started = Instant::now();
    let mut per_iteration_ns = Vec::new();
    loop {
        let t = Instant::now();
        for _ in 0..iterations {
            run()?;
        }
        per_iteration_ns.push(t.elapsed().as_nanos() as f64 / iterations as f64);
        let elapsed = started.elapsed().as_secs_f64();
        let done_by_time = (100.0 * elapsed / budget.budget_s.max(1e-9)).min(100.0);
        let done_by_count =
            100.0 * per_iteration_ns.len() as f64 / budget.min_samples.max(1) as f64;
        observer.advance(done_by_time.min(done_by_count) as u64, "");
        let enough = per_iteration_ns.len() >= budget.min_samples && elapsed >= budget.budget_s;
        if enough || per_iteration_ns.len() >= MAX_SAMPLES {
            break;
        }
    }
    Ok(Timing {
        per_iteration_ns,
        iterations_per_sample: iterations,
    })
}
