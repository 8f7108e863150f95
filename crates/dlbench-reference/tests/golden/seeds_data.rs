//! The golden seed data (`seeds.json`, written by `tests/golden/seeds.py` from real PyTorch
//! float64) and the check that runs one engine's [`Session`] against it. Shared by the test
//! files that include it with `#[path = ...] mod seeds_data;`:
//! `crates/dlbench-reference/tests/golden_seeds.rs` (the f64 reference) and
//! `crates/dlbench-tch/tests/golden_seeds.rs` (libtorch in f32). Each chooses its tolerances.
//!
//! `seeds.py` (its header says how to regenerate, and with which torch) rebuilt each model from
//! `torch.nn` layers, set its initial weights from a small counter-based generator (splitmix64
//! over an FNV-1a key per parameter, uniform +-1/sqrt(fan_in): PyTorch's default init, in f32
//! values) that [`initial_weights`] reimplements bit for bit, so the 800k initial parameters of
//! the CNN and VAE need not be stored; ran a few real (MLP, CNN, RNN) or synthetic (VAE) samples;
//! and wrote `seeds.json`. Tensors of at most 10,000 elements are stored in full; larger ones
//! (the CNN's `conv2d_2` and `dense_1` weights, the VAE's weight matrices) as their sum, sum of
//! |x|, sum of squares, a position-weighted sum and ~50 sampled elements.
//!
//! An element passes when `|engine - pytorch| <= atol + rtol |pytorch|`; a sum-like summary gets
//! the same test with `|pytorch|` replaced by the tensor's sum of |x| (by the expected value for
//! the sum of squares), since its rounding errors grow with the magnitudes summed. A failure
//! names the spec, the value, the element and both numbers.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use dlbench_core::training::LOSS;
use dlbench_core::{Model, Session, Tensor, TrainingConfig, Values};
use dlbench_spec::Spec;
use serde_json::Value;

/// At most this many disagreements are listed per spec; the count is always given.
const SHOWN: usize = 20;

/// The kinds of value compared, each with its own tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The session's weights before training: the golden initial weights, which are f32
    /// values, so any engine must hold them exactly.
    InitialWeight,
    Output,
    Loss,
    Gradient,
    /// The loss read after each training step (that step's loss before its update).
    StepLoss,
    FinalWeight,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::InitialWeight => "initial weight",
            Kind::Output => "output",
            Kind::Loss => "loss",
            Kind::Gradient => "gradient",
            Kind::StepLoss => "step loss",
            Kind::FinalWeight => "final weight",
        }
    }
}

/// `|engine - pytorch| <= atol + rtol * scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

/// The engine under test, as the report and the failures name it, and its tolerances.
pub struct Engine {
    /// `reference`, `libtorch`...
    pub name: &'static str,
    pub tolerance: fn(Kind) -> Tolerance,
}

fn golden(spec: &str) -> Value {
    let all: Value = serde_json::from_str(include_str!("seeds.json")).expect("golden JSON parses");
    all["seeds"]
        .as_array()
        .expect("seeds")
        .iter()
        .find(|s| s["spec"] == spec)
        .unwrap_or_else(|| panic!("seeds.json has no `{spec}`"))
        .clone()
}

/// `specs/{name}.yaml`; every crate that includes this module sits at `crates/<name>`.
fn spec_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../specs/{name}.yaml"))
}

// ------------------------------------------------------------------ initial weights

fn fnv1a64(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// The generator of `seeds.py`: element `i` of the parameter keyed `key`, uniform in
/// +-`bound`, rounded to f32.
fn uniform_f32(key: &str, count: usize, bound: f64) -> Vec<f32> {
    let base = fnv1a64(key);
    (1..=count as u64)
        .map(|i| {
            let mut z = base.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 40) as f64 / f64::from(1u32 << 24);
            (bound * (2.0 * u - 1.0)) as f32
        })
        .collect()
}

/// The golden initial weights for `model`'s parameters, with the shapes the spec gives them.
/// The generator must reproduce the script's values exactly: the recorded samples, being f32
/// values, must match to the bit (the summaries are compared with the session's weights later).
fn initial_weights(spec: &str, model: &Model, golden: &Value) -> Values {
    let fan_in = golden["fan_in"].as_object().expect("fan_in");
    let names: Vec<&String> = model.weights.keys().collect();
    let recorded: Vec<&String> = fan_in.keys().collect();
    assert_eq!(
        names, recorded,
        "{spec}: the spec's parameters differ from those seeds.py recorded"
    );
    model
        .weights
        .iter()
        .map(|(name, w)| {
            let fan = fan_in[name].as_u64().expect("fan_in is an integer") as f64;
            let data = uniform_f32(&format!("{spec}/{name}"), w.len(), 1.0 / fan.sqrt());
            let want = &golden["initial_weights"][name];
            for sample in want["samples"].as_array().expect("samples") {
                let i = sample[0].as_u64().expect("an index") as usize;
                let b = sample[1].as_f64().expect("a value") as f32;
                assert_eq!(
                    data[i],
                    b,
                    "{spec}: initial `{name}`{}: this test's generator disagrees with seeds.py",
                    index(w.shape(), i)
                );
            }
            let tensor = Tensor::f32(w.shape().to_vec(), data).expect("count matches shape");
            (name.clone(), tensor)
        })
        .collect()
}

// ------------------------------------------------------------------ reading the JSON

fn shape(value: &Value) -> Vec<usize> {
    serde_json::from_value(value["shape"].clone()).expect("shape")
}

fn numbers(value: &Value) -> Vec<f64> {
    serde_json::from_value(value.clone()).expect("a list of numbers")
}

/// An input as the script wrote it: i64 labels, or f32 values. serde_json without its
/// `float_roundtrip` feature may parse a decimal 1 ulp off the f64 Python wrote; rounding to
/// f32 takes that back out, so the engine computes on exactly PyTorch's numbers.
fn input(name: &str, value: &Value) -> Tensor {
    if value["dtype"] == "i64" {
        let labels = serde_json::from_value(value["data"].clone()).expect("labels");
        return Tensor::i64(shape(value), labels).expect("shape matches data");
    }
    let data = numbers(&value["data"]);
    let narrow: Vec<f32> = data.iter().map(|&v| v as f32).collect();
    assert!(
        narrow
            .iter()
            .zip(&data)
            .all(|(&n, &v)| (f64::from(n) - v).abs() <= 4.0 * f64::EPSILON * v.abs()),
        "input `{name}` is not f32-exact"
    );
    Tensor::f32(shape(value), narrow).expect("shape matches data")
}

// ------------------------------------------------------------------ comparing

/// The disagreements and worst differences found for one spec.
struct Checker<'a> {
    spec: &'static str,
    engine: &'a Engine,
    failures: Vec<String>,
    /// Per kind of value (outputs, gradients... and their summaries apart, which sum many
    /// rounding errors): the largest |diff| and |diff| / |pytorch|.
    worst: BTreeMap<String, (f64, f64)>,
}

impl<'a> Checker<'a> {
    fn new(spec: &'static str, engine: &'a Engine) -> Self {
        Checker {
            spec,
            engine,
            failures: Vec::new(),
            worst: BTreeMap::new(),
        }
    }

    /// Compares one number; `scale` is what the relative tolerance multiplies (|want| for an
    /// element, the sum of |x| for a sum of elements). `label` keys the worst-difference report.
    fn number(&mut self, kind: Kind, label: &str, what: &str, got: f64, want: f64, scale: f64) {
        let diff = (got - want).abs();
        let worst = self.worst.entry(label.to_string()).or_insert((0.0, 0.0));
        worst.0 = worst.0.max(diff);
        if want != 0.0 {
            worst.1 = worst.1.max(diff / want.abs());
        }
        let Tolerance { atol, rtol } = (self.engine.tolerance)(kind);
        let allowed = atol + rtol * scale;
        // A NaN on either side makes `diff` NaN, which must fail too.
        if diff.is_nan() || diff > allowed {
            self.failures.push(format!(
                "{}: {what}: {} {got:e}, PyTorch {want:e} (|diff| {diff:e} > {allowed:e})",
                self.spec, self.engine.name
            ));
        }
    }

    /// Compares an engine's tensor with a golden one, stored in full or as a summary.
    fn tensor(&mut self, kind: Kind, name: &str, got: &Tensor, want: &Value) {
        let what = kind.as_str();
        let shape = shape(want);
        if got.shape() != shape.as_slice() {
            self.failures.push(format!(
                "{}: {what} `{name}`: shape {:?}, PyTorch {shape:?}",
                self.spec,
                got.shape()
            ));
            return;
        }
        let got = got.to_f64_vec();
        if want.get("data").is_some() {
            for (i, (&a, b)) in got.iter().zip(numbers(&want["data"])).enumerate() {
                let at = index(&shape, i);
                let element = format!("{what} `{name}`{at}");
                self.number(kind, what, &element, a, b, b.abs());
            }
            return;
        }
        let abs_sum = want["abs_sum"].as_f64().expect("abs_sum");
        let summaries: [(&str, f64, f64); 4] = [
            ("sum", got.iter().sum(), abs_sum),
            ("abs_sum", got.iter().map(|v| v.abs()).sum(), abs_sum),
            ("sum_sq", got.iter().map(|v| v * v).sum(), 0.0),
            ("weighted", weighted_sum(&got), abs_sum),
        ];
        let label = format!("{what} sums");
        for (field, value, scale) in summaries {
            let expected = want[field].as_f64().expect("a summary number");
            let scale = if field == "sum_sq" { expected } else { scale };
            let summary = format!("{what} `{name}` {field}");
            self.number(kind, &label, &summary, value, expected, scale);
        }
        for sample in want["samples"].as_array().expect("samples") {
            let i = sample[0].as_u64().expect("an index") as usize;
            let b = sample[1].as_f64().expect("a value");
            let element = format!("{what} `{name}`{}", index(&shape, i));
            self.number(kind, what, &element, got[i], b, b.abs());
        }
    }

    fn finish(self) {
        let mut report = format!(
            "{} on {}: worst |diff| (and |diff| / |PyTorch|):",
            self.spec, self.engine.name
        );
        for (kind, (abs, rel)) in &self.worst {
            write!(report, "\n  {kind:<20} {abs:.2e} ({rel:.2e})").unwrap();
        }
        eprintln!("{report}");
        if !self.failures.is_empty() {
            let shown: Vec<&str> = self
                .failures
                .iter()
                .take(SHOWN)
                .map(String::as_str)
                .collect();
            panic!(
                "{} values of {} differ from PyTorch by more than atol + rtol |PyTorch|:\n{}",
                self.failures.len(),
                self.engine.name,
                shown.join("\n")
            );
        }
    }
}

/// `sum_i x[i] * c(i)` with the script's weights `c(i) = ((i * 7919) mod 10007) / 10007`.
fn weighted_sum(x: &[f64]) -> f64 {
    x.iter()
        .enumerate()
        .map(|(i, v)| v * ((i * 7919) % 10007) as f64 / 10007.0)
        .sum()
}

/// A flat index as a multi-index, `[2, 0, 5]`.
fn index(shape: &[usize], mut flat: usize) -> String {
    if shape.is_empty() {
        return String::new();
    }
    let mut at = vec![0; shape.len()];
    for (a, &d) in at.iter_mut().zip(shape).rev() {
        *a = flat % d;
        flat /= d;
    }
    format!("{at:?}")
}

// ------------------------------------------------------------------ the check

/// Builds `spec_name` from its spec file with the golden initial weights, prepares it with
/// `prepare` and the spec's training config, and compares with PyTorch: the session's weights
/// before training, the outputs, loss and gradients of one `backward`, the loss of each of the
/// golden training steps and the weights after them. Panics listing every disagreement.
pub fn check_seed(
    spec_name: &'static str,
    engine: &Engine,
    prepare: impl FnOnce(&Model, TrainingConfig) -> Box<dyn Session>,
) {
    let golden = golden(spec_name);
    let spec = Spec::load(&spec_path(spec_name)).expect("the spec loads");
    let built = spec.build_model().expect("the spec builds");
    let training = spec.training_config();
    let recorded: TrainingConfig =
        serde_json::from_value(golden["training"].clone()).expect("a dlbench training config");
    assert_eq!(
        training, recorded,
        "{spec_name}: the spec's loss and optimizer are not those seeds.py trained with"
    );
    let mut check = Checker::new(spec_name, engine);

    let weights = initial_weights(spec_name, &built, &golden);
    let model = Model::new(built.graph.clone(), weights).expect("golden weights fit the graph");
    let mut session = prepare(&model, training);
    // What the session holds, not just what it was given: a conversion on the way in must
    // keep the f32 weights exact.
    let held = session.weights().expect("the session's weights");
    for (name, want) in golden["initial_weights"]
        .as_object()
        .expect("initial weights")
    {
        check.tensor(Kind::InitialWeight, name, &held[name], want);
    }

    let batch: Values = golden["batch"]
        .as_object()
        .expect("batch")
        .iter()
        .map(|(name, value)| (name.clone(), input(name, value)))
        .collect();
    session.load(&batch).unwrap();

    // Forward and backward at the initial weights.
    session.backward().unwrap();
    let outputs = session.outputs().unwrap();
    let want_outputs = golden["outputs"].as_array().expect("outputs");
    assert_eq!(model.graph.outputs.len(), want_outputs.len(), "{spec_name}");
    for (name, want) in model.graph.outputs.iter().zip(want_outputs) {
        check.tensor(Kind::Output, name, &outputs[name], want);
    }
    let want_loss = golden["loss"].as_f64().expect("loss");
    let loss = loss_of(session.as_mut());
    check.number(Kind::Loss, "loss", "loss", loss, want_loss, want_loss.abs());
    let gradients = session.gradients().unwrap();
    for (name, want) in golden["gradients"].as_object().expect("gradients") {
        check.tensor(Kind::Gradient, name, &gradients[name], want);
    }

    // Training: each step's loss is read before its update, as PyTorch's loop records it.
    for (step, want) in numbers(&golden["losses"]).into_iter().enumerate() {
        session.train_step().unwrap();
        let got = loss_of(session.as_mut());
        let what = format!("step {step} loss");
        check.number(Kind::StepLoss, "step loss", &what, got, want, want.abs());
    }
    let final_weights = session.weights().unwrap();
    for (name, want) in golden["final_weights"].as_object().expect("final weights") {
        check.tensor(Kind::FinalWeight, name, &final_weights[name], want);
    }
    check.finish();
}

/// The scalar loss of the session's last pass: its output [`LOSS`].
fn loss_of(session: &mut dyn Session) -> f64 {
    let outputs = session.outputs().unwrap();
    let loss = &outputs[LOSS];
    assert_eq!(loss.len(), 1, "the loss is a scalar");
    loss.to_f64_vec()[0]
}
