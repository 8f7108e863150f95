//! Agreement with the f64 reference: no timing without it. A backend's forward outputs (and
//! every intermediate value, when it can return them), its parameter gradients and its loss
//! trajectory over a few training steps are compared with the reference's on the same batches,
//! the same noise and the same initial weights. When the forward pass disagrees,
//! [`localize`] names the first node that *introduces* the error.
//!
//! The harness never names an adapter: the reference comes in as a `&dyn Backend` like any
//! other, so a test can check a backend against anything.
//!
//! A check passes when `|a - r| <= atol + rtol * |r|` for every element (NumPy's `allclose`,
//! with the tolerances of the spec's `agreement:` section).

pub mod localize;

use dlbench_core::training::LOSS;
use dlbench_core::{
    Backend, DType, Error, Mode, Model, Result, Session, Tensor, TrainingConfig, Values,
};
use dlbench_data::Dataset;

use crate::configuration::Configuration;
use crate::results::{Agreement, AgreementCheck};
use dlbench_spec::feed::{batch_inputs, Phase};
use dlbench_spec::workload::Workload;
use dlbench_spec::AgreementSpec;

pub use crate::results::Comparison;

/// Everything an agreement check reads: a workload's model, training data and settings, or a
/// conformance case's. What it is checked *on* (backend, device, threads) is a
/// [`Configuration`], passed beside it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The model as it starts training (initial weights, no loss node).
    pub model: &'a Model,
    /// Batches are cut from it as training cuts them (same shuffle, same seed).
    pub data: &'a Dataset,
    /// Loss and optimizer of the compared training steps.
    pub training: TrainingConfig,
    /// Rows per step, as training uses them (the workload's settled batch size).
    pub batch_size: usize,
    /// Reshuffle `data` every epoch, as training does.
    pub shuffle: bool,
    /// Seeds the shuffle, dropout masks and noise inputs.
    pub seed: u64,
    /// `rtol`, `atol` and the number of compared training steps.
    pub tolerances: &'a AgreementSpec,
}

impl<'a> Subject<'a> {
    /// The subject of a prepared spec: its model, training split, batch size and tolerances.
    pub fn of(work: &'a Workload) -> Self {
        let spec = &work.spec;
        Subject {
            model: &work.model,
            data: &work.train,
            training: spec.training_config(),
            batch_size: work.batch_size,
            shuffle: spec.train.shuffle,
            seed: spec.seed,
            tolerances: &spec.agreement,
        }
    }

    /// The features and targets of training step `step`, epoch after epoch.
    fn batch(&self, step: usize) -> Result<(Tensor, Option<Tensor>)> {
        let per_epoch = self.data.batches_per_epoch(self.batch_size.max(1));
        if per_epoch == 0 {
            return Err(Error::invalid("agreement: the training data is empty"));
        }
        let epoch = (step / per_epoch) as u32;
        self.data
            .batches(self.batch_size.max(1), self.shuffle, self.seed, epoch)
            .nth(step % per_epoch)
            .map(|b| (b.features, b.targets))
            .ok_or_else(|| Error::invalid(format!("agreement: no batch for step {step}")))
    }
}

/// Compares `actual` with `reference`: passes iff `|a - r| <= atol + rtol * |r|` everywhere.
///
/// Floats of any width compare with each other (the reference is f64, most backends f32);
/// labels only with labels. Two NaNs, or two equal infinities, agree; any other non-finite
/// value fails. A shape or dtype mismatch fails, with the reason in `problem`.
pub fn compare(actual: &Tensor, reference: &Tensor, rtol: f64, atol: f64) -> Comparison {
    let elements = reference.len();
    if actual.shape() != reference.shape() {
        return Comparison::incomparable(
            elements,
            format!(
                "shape {:?}, the reference's is {:?}",
                actual.shape(),
                reference.shape()
            ),
        );
    }
    if actual.dtype().is_float() != reference.dtype().is_float() {
        return Comparison::incomparable(
            elements,
            format!(
                "dtype {}, the reference's is {}",
                actual.dtype(),
                reference.dtype()
            ),
        );
    }
    let mut c = Comparison {
        max_abs: 0.0,
        max_rel: 0.0,
        max_ulp: 0,
        tolerance_used: 0.0,
        mismatched: 0,
        elements,
        pass: true,
        problem: None,
    };
    for (a, r) in actual.to_f64_vec().into_iter().zip(reference.to_f64_vec()) {
        let same = a == r || (a.is_nan() && r.is_nan());
        if same {
            continue;
        }
        // A NaN against a number, or infinities of opposite signs, is as far as it gets.
        let diff = match (a - r).abs() {
            d if d.is_nan() => f64::INFINITY,
            d => d,
        };
        let tolerance = atol + rtol * r.abs();
        let ok = a.is_finite() && r.is_finite() && diff <= tolerance;
        c.max_abs = c.max_abs.max(diff);
        if r != 0.0 {
            c.max_rel = c.max_rel.max(diff / r.abs());
        }
        c.max_ulp = c.max_ulp.max(ulp_distance(a as f32, r as f32));
        // Outside tolerance, diff > tolerance, so the share is above 1 (infinite for a zero
        // tolerance or a non-finite value).
        let used = match (ok, tolerance > 0.0 && diff.is_finite()) {
            (true, true) => diff / tolerance,
            (true, false) => 0.0,
            (false, true) => diff / tolerance,
            (false, false) => f64::INFINITY,
        };
        c.tolerance_used = c.tolerance_used.max(used);
        if !ok {
            c.mismatched += 1;
            c.pass = false;
        }
    }
    c
}

impl Comparison {
    /// A comparison that could not look at the elements: it fails, infinitely far off.
    pub fn incomparable(elements: usize, problem: String) -> Self {
        Comparison {
            max_abs: f64::INFINITY,
            max_rel: f64::INFINITY,
            max_ulp: u64::MAX,
            tolerance_used: f64::INFINITY,
            mismatched: elements,
            elements,
            pass: false,
            problem: Some(problem),
        }
    }
}

/// The distance between two f32 values in units in the last place: the number of f32 values
/// between them, counting across zero (`-0.0` and `0.0` are the same place).
pub fn ulp_distance(a: f32, b: f32) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    // Maps the bit patterns onto integers that order like the floats.
    fn ordered(x: f32) -> i64 {
        let bits = x.to_bits();
        let magnitude = i64::from(bits & 0x7fff_ffff);
        if bits >> 31 == 1 {
            -magnitude
        } else {
            magnitude
        }
    }
    ordered(a).abs_diff(ordered(b))
}

/// Folds named comparisons into one check: the worst of each figure, passing only if every
/// comparison passes. `worst` names the comparison that used most of its tolerance.
pub fn summarize(comparisons: &[(String, Comparison)]) -> AgreementCheck {
    let mut check = AgreementCheck {
        max_abs: 0.0,
        max_rel: 0.0,
        max_ulp: 0,
        tolerance_used: 0.0,
        pass: true,
        worst: None,
        first_divergent_node: None,
        first_divergent_op: None,
        divergence: None,
        notes: Vec::new(),
        error: None,
    };
    let mut worst_used = -1.0;
    for (name, c) in comparisons {
        check.max_abs = check.max_abs.max(c.max_abs);
        check.max_rel = check.max_rel.max(c.max_rel);
        check.max_ulp = check.max_ulp.max(c.max_ulp);
        check.pass &= c.pass;
        if c.tolerance_used > worst_used {
            worst_used = c.tolerance_used;
            check.worst = Some(name.clone());
        }
        // NaN (nothing comparable) counts as the worst: it cannot pass.
        if c.tolerance_used.is_nan() || c.tolerance_used > check.tolerance_used {
            check.tolerance_used = match c.tolerance_used.is_nan() {
                true => f64::INFINITY,
                false => c.tolerance_used,
            };
        }
        if let Some(problem) = &c.problem {
            check.notes.push(format!("`{name}`: {problem}"));
        }
    }
    check
}

/// A check that could not produce numbers: the backend failed while running it.
fn failed_check(note: String) -> AgreementCheck {
    let mut check = summarize(&[]);
    check.pass = false;
    check.max_abs = f64::INFINITY;
    check.max_rel = f64::INFINITY;
    check.max_ulp = u64::MAX;
    check.tolerance_used = f64::INFINITY;
    check.error = Some(note);
    check
}

/// Checks `config` against `reference` on a prepared spec: forward, gradients and training,
/// with the spec's `agreement:` tolerances. See [`check_subject`].
pub fn check(work: &Workload, config: Configuration, reference: &dyn Backend) -> Result<Agreement> {
    check_subject(&Subject::of(work), config, reference)
}

/// Checks `config` (a backend on a device with a thread count) against `reference` (on the
/// CPU, one thread: [`Configuration::oracle`]).
///
/// An error of the reference is returned: without the oracle there is nothing to check. An
/// error of the backend fails the check it happened in, with the message in its notes; an
/// `Unsupported` error, or a capability the backend lacks, leaves that check out (`None`) with
/// a note in [`Agreement::notes`].
pub fn check_subject(
    subject: &Subject,
    config: Configuration,
    reference: &dyn Backend,
) -> Result<Agreement> {
    let caps = config.backend.capabilities();
    let runner = Runner {
        subject,
        candidate: config,
        oracle: Configuration::oracle(reference),
    };
    let mut agreement = Agreement {
        forward: None,
        gradients: None,
        training: None,
        notes: Vec::new(),
    };
    let name = config.name();
    if caps.inference {
        agreement.forward = runner.forward(&mut agreement.notes)?;
    } else {
        agreement
            .notes
            .push(format!("forward: {name} cannot run inference"));
    }
    if caps.training {
        agreement.gradients = runner.gradients(&mut agreement.notes)?;
        agreement.training = runner.training(&mut agreement.notes)?;
    } else {
        agreement
            .notes
            .push(format!("gradients and training: {name} cannot train"));
    }
    Ok(agreement)
}

/// Runs one side of a check: the reference with `?`, the backend through [`Runner::outcome`].
struct Runner<'a> {
    subject: &'a Subject<'a>,
    /// The configuration checked.
    candidate: Configuration<'a>,
    /// The reference, as it runs: on the CPU with one thread.
    oracle: Configuration<'a>,
}

impl Runner<'_> {
    /// A session of the subject's model on the reference or the candidate, for training or
    /// for inference.
    fn prepare(&self, for_reference: bool, training: bool) -> Result<Box<dyn Session>> {
        let side = if for_reference {
            self.oracle
        } else {
            self.candidate
        };
        side.prepare(
            self.subject.model,
            training.then_some(self.subject.training),
        )
    }

    /// The backend's result, a failed check (other errors) or no check (`Unsupported`).
    fn outcome<T>(
        &self,
        what: &str,
        result: Result<T>,
        notes: &mut Vec<String>,
    ) -> std::result::Result<T, Option<Box<AgreementCheck>>> {
        match result {
            Ok(value) => Ok(value),
            Err(Error::Unsupported { what: why, .. }) => {
                notes.push(format!(
                    "{what}: unsupported by {}: {why}",
                    self.candidate.name()
                ));
                Err(None)
            }
            Err(e) => Err(Some(Box::new(failed_check(format!(
                "{what}: {} failed: {e}",
                self.candidate.name()
            ))))),
        }
    }

    /// One inference-mode forward pass on the first training batch.
    fn forward(&self, notes: &mut Vec<String>) -> Result<Option<AgreementCheck>> {
        let (rtol, atol) = (self.subject.tolerances.rtol, self.subject.tolerances.atol);
        let graph = &self.subject.model.graph;
        let (x, _) = self.subject.batch(0)?;
        let inputs = batch_inputs(graph, &x, None, self.subject.seed, Phase::Eval(0))?;
        let with_intermediates = self.oracle.backend.capabilities().intermediates;
        let (ref_outputs, ref_values) = run_forward(
            self.prepare(true, false)?.as_mut(),
            &inputs,
            with_intermediates,
        )?;
        if let Some(name) = graph.outputs.iter().find(|n| !ref_outputs.contains_key(*n)) {
            return Err(Error::invalid(format!(
                "{} returned no output `{name}`",
                self.oracle.name()
            )));
        }
        let wants = self.candidate.backend.capabilities().intermediates;
        let run = self
            .prepare(false, false)
            .and_then(|mut s| run_forward(s.as_mut(), &inputs, wants));
        let mut check = match self.outcome("forward", run, notes) {
            Ok((outputs, values)) => {
                let mut comparisons = Vec::new();
                let mut missing = Vec::new();
                for name in &graph.outputs {
                    let c = match outputs.get(name) {
                        Some(a) => compare(a, &ref_outputs[name], rtol, atol),
                        None => Comparison::incomparable(
                            ref_outputs[name].len(),
                            "the backend returned no such output".into(),
                        ),
                    };
                    comparisons.push((name.clone(), c));
                }
                if wants && with_intermediates {
                    let names = graph.nodes.iter().flat_map(|n| n.outputs.iter());
                    for name in names.filter(|n| !graph.outputs.contains(n)) {
                        match (values.get(name), ref_values.get(name)) {
                            (Some(a), Some(r)) => {
                                comparisons.push((name.clone(), compare(a, r, rtol, atol)))
                            }
                            _ => missing.push(name.as_str()),
                        }
                    }
                }
                let mut check = summarize(&comparisons);
                if !missing.is_empty() {
                    check.notes.push(format!(
                        "intermediates not returned, not compared: {}",
                        missing.join(", ")
                    ));
                }
                check
            }
            Err(None) => return Ok(None),
            Err(Some(failed)) => *failed,
        };
        if !check.pass {
            if with_intermediates {
                let mut values = ref_values;
                values.extend(inputs);
                let found =
                    localize::localize(self.subject.model, &values, self.candidate, (rtol, atol));
                check.notes.extend(found.notes);
                if let Some(d) = found.first {
                    check.first_divergent_node = Some(d.node);
                    check.first_divergent_op = Some(d.op);
                    check.divergence = Some(d.comparison);
                }
            } else {
                check.notes.push(format!(
                    "not localized: {} returns no intermediate values",
                    self.oracle.name()
                ));
            }
        }
        Ok(Some(check))
    }

    /// One backward pass on the first training batch: every parameter gradient.
    fn gradients(&self, notes: &mut Vec<String>) -> Result<Option<AgreementCheck>> {
        let (rtol, atol) = (self.subject.tolerances.rtol, self.subject.tolerances.atol);
        let model = self.subject.model;
        let graph = model.graph.with_loss(self.subject.training.loss)?;
        let (x, y) = self.subject.batch(0)?;
        let inputs = batch_inputs(&graph, &x, y.as_ref(), self.subject.seed, Phase::Train(0))?;
        let backward = |mut session: Box<dyn Session>| {
            session.load(&inputs)?;
            session.backward()?;
            session.gradients()
        };
        let expected = backward(self.prepare(true, true)?)?;
        let run = self.prepare(false, true).and_then(backward);
        let actual = match self.outcome("gradients", run, notes) {
            Ok(grads) => grads,
            Err(check) => return Ok(check.map(|c| *c)),
        };
        let comparisons: Vec<(String, Comparison)> = model
            .graph
            .params
            .iter()
            .map(|p| {
                let name = &p.value.name;
                let reference = expected.get(name).ok_or_else(|| {
                    Error::invalid(format!("the reference returned no gradient for `{name}`"))
                })?;
                let c = match actual.get(name) {
                    Some(a) => compare(a, reference, rtol, atol),
                    None => Comparison::incomparable(
                        reference.len(),
                        "the backend returned no gradient".into(),
                    ),
                };
                Ok((name.clone(), c))
            })
            .collect::<Result<_>>()?;
        Ok(Some(summarize(&comparisons)))
    }

    /// `agreement.steps` training steps from the same weights: the loss of each step.
    fn training(&self, notes: &mut Vec<String>) -> Result<Option<AgreementCheck>> {
        let (rtol, atol) = (self.subject.tolerances.rtol, self.subject.tolerances.atol);
        let graph = self
            .subject
            .model
            .graph
            .with_loss(self.subject.training.loss)?;
        let batches = (0..self.subject.tolerances.steps)
            .map(|step| {
                let (x, y) = self.subject.batch(step)?;
                let phase = Phase::Train(step as u32);
                batch_inputs(&graph, &x, y.as_ref(), self.subject.seed, phase)
            })
            .collect::<Result<Vec<_>>>()?;
        let expected = train(self.prepare(true, true)?.as_mut(), &batches)?;
        let run = self
            .prepare(false, true)
            .and_then(|mut s| train(s.as_mut(), &batches));
        let actual = match self.outcome("training", run, notes) {
            Ok(losses) => losses,
            Err(check) => return Ok(check.map(|c| *c)),
        };
        let comparisons: Vec<(String, Comparison)> = expected
            .iter()
            .zip(&actual)
            .enumerate()
            .map(|(step, (r, a))| {
                let c = compare(&Tensor::scalar_f64(*a), &Tensor::scalar_f64(*r), rtol, atol);
                (format!("loss[{step}]"), c)
            })
            .collect();
        let mut check = summarize(&comparisons);
        if let Some((name, _)) = comparisons.iter().find(|(_, c)| !c.pass) {
            check
                .notes
                .push(format!("the first step outside tolerance is {name}"));
        }
        Ok(Some(check))
    }
}

/// Loads `inputs`, runs forward in inference mode and returns the outputs and, if asked, every
/// intermediate value.
fn run_forward(
    session: &mut dyn Session,
    inputs: &Values,
    intermediates: bool,
) -> Result<(Values, Values)> {
    session.load(inputs)?;
    session.forward(Mode::Inference)?;
    let outputs = session.outputs()?;
    let values = match intermediates {
        true => session.intermediates()?,
        false => Values::new(),
    };
    Ok((outputs, values))
}

/// One training step per batch; the loss of each step (before its update).
fn train(session: &mut dyn Session, batches: &[Values]) -> Result<Vec<f64>> {
    batches
        .iter()
        .enumerate()
        .map(|(step, inputs)| {
            session.load(inputs)?;
            session.train_step()?;
            let outputs = session.outputs()?;
            let loss = outputs.get(LOSS).ok_or_else(|| {
                Error::invalid(format!(
                    "step {step}: the training session returned no loss"
                ))
            })?;
            match loss.dtype() {
                DType::I64 => Err(Error::invalid(format!(
                    "step {step}: the loss is an integer tensor"
                ))),
                _ => loss.to_f64_vec().first().copied().ok_or_else(|| {
                    Error::invalid(format!("step {step}: the loss is an empty tensor"))
                }),
            }
        })
        .collect()
}
