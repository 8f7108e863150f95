//! Every reference op, forward and backward, against real PyTorch in float64.
//!
//! `tests/golden/ops.py` (its header says how to regenerate) ran each op in PyTorch on seeded
//! random inputs (plus hand-picked edge values: saturated BCE probabilities, huge logits),
//! drew a random upstream gradient for each output and backpropagated their dot product with
//! the outputs; `tests/golden/ops.json` keeps the op in dlbench's serde format, the inputs in
//! dlbench's input order, the outputs, the upstream gradients and the gradient of every input.
//! Here each case becomes a one-node [`Node`] run through [`ops::forward`] and
//! [`ops::backward`], and every output and input gradient must satisfy
//! `|a - b| <= 1e-12 + 1e-10 |b|` element by element, with infinities matched exactly.
//!
//! Finite differences (the gradcheck tests) only show that a backward is the derivative of its
//! forward; this shows that both are PyTorch's, conventions and edge cases included.

use dlbench_core::{Mode, Node, Op, Tensor};
use dlbench_reference::ops;
use serde_json::Value;

const ATOL: f64 = 1e-12;
const RTOL: f64 = 1e-10;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/ops.json")).expect("golden JSON parses")
}

/// One recorded PyTorch call.
struct Case {
    name: String,
    op: Op,
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
    output_grads: Vec<Tensor>,
    /// `None` where PyTorch has no gradient (integer labels).
    input_grads: Vec<Option<Tensor>>,
}

/// One element: a JSON number, or "inf" / "-inf" / "nan", which JSON cannot spell.
fn number(value: &Value) -> f64 {
    match value {
        Value::String(s) => s.parse().expect("inf, -inf or nan"),
        other => other.as_f64().expect("a number"),
    }
}

/// A tensor as the script wrote it; `exact` ones (inputs and upstream gradients) are f32
/// values. serde_json without its `float_roundtrip` feature may parse a decimal 1 ulp off the
/// f64 Python wrote; rounding to f32 takes that back out, so the reference computes on
/// exactly PyTorch's numbers (saturated BCE probabilities are sensitive to a single ulp).
fn tensor(value: &Value, exact: bool) -> Tensor {
    let shape: Vec<usize> = serde_json::from_value(value["shape"].clone()).expect("shape");
    let data = value["data"].as_array().expect("data");
    if value["dtype"] == "i64" {
        let labels = data
            .iter()
            .map(|v| v.as_i64().expect("an integer"))
            .collect();
        return Tensor::i64(shape, labels).expect("shape matches data");
    }
    let mut values: Vec<f64> = data.iter().map(number).collect();
    if exact {
        for v in &mut values {
            let narrow = f64::from(*v as f32);
            assert!(
                (narrow - *v).abs() <= 4.0 * f64::EPSILON * v.abs(),
                "{v} is not an f32 value"
            );
            *v = narrow;
        }
    }
    Tensor::f64(shape, values).expect("shape matches data")
}

fn tensors(value: &Value, exact: bool) -> Vec<Tensor> {
    let list = value.as_array().expect("a list of tensors");
    list.iter().map(|t| tensor(t, exact)).collect()
}

fn cases(family: &str) -> Vec<Case> {
    let golden = golden();
    let cases: Vec<Case> = golden["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["family"] == family)
        .map(|c| Case {
            name: c["name"].as_str().expect("name").to_string(),
            op: serde_json::from_value(c["op"].clone()).expect("a dlbench op"),
            inputs: tensors(&c["inputs"], true),
            outputs: tensors(&c["outputs"], false),
            output_grads: tensors(&c["output_grads"], true),
            input_grads: c["input_grads"]
                .as_array()
                .expect("input grads")
                .iter()
                .map(|g| (!g.is_null()).then(|| tensor(g, false)))
                .collect(),
        })
        .collect();
    assert!(!cases.is_empty(), "no `{family}` cases in ops.json");
    cases
}

/// The largest absolute and relative differences seen, and every mismatch (one line per
/// tensor).
#[derive(Default)]
struct Report {
    worst: f64,
    worst_relative: f64,
    failures: Vec<String>,
}

impl Report {
    /// Compares one tensor; a failure names the case, the tensor, the first bad element and
    /// both values.
    fn compare(&mut self, case: &str, what: &str, got: &Tensor, want: &Tensor) {
        if got.shape() != want.shape() {
            self.failures.push(format!(
                "{case}: {what} has shape {:?}, PyTorch {:?}",
                got.shape(),
                want.shape()
            ));
            return;
        }
        let got = got.as_f64().expect("reference outputs are f64");
        let want = want.as_f64().expect("golden values are f64");
        let mut first_bad = None;
        for (e, (&a, &b)) in got.iter().zip(want).enumerate() {
            let ok = if b.is_finite() {
                let diff = (a - b).abs();
                // NaN in `a` fails here too: the comparison with NaN is false.
                if diff <= ATOL + RTOL * b.abs() {
                    self.worst = self.worst.max(diff);
                    if b != 0.0 {
                        self.worst_relative = self.worst_relative.max(diff / b.abs());
                    }
                    true
                } else {
                    false
                }
            } else {
                a == b || (a.is_nan() && b.is_nan())
            };
            if !ok && first_bad.is_none() {
                first_bad = Some((e, a, b));
            }
        }
        if let Some((e, a, b)) = first_bad {
            self.failures.push(format!(
                "{case}: {what}[{e}] is {a:e}, PyTorch {b:e} (diff {:e})",
                (a - b).abs()
            ));
        }
    }
}

fn check_case(case: &Case, report: &mut Report) {
    let node = Node {
        name: case.name.clone(),
        op: case.op.clone(),
        inputs: (0..case.inputs.len()).map(|i| format!("in{i}")).collect(),
        outputs: (0..case.outputs.len()).map(|i| format!("out{i}")).collect(),
    };
    let inputs: Vec<&Tensor> = case.inputs.iter().collect();
    let outputs = ops::forward(&node, &inputs, Mode::Training).expect("forward runs");
    assert_eq!(outputs.len(), case.outputs.len(), "{}: outputs", case.name);
    for (k, (got, want)) in outputs.iter().zip(&case.outputs).enumerate() {
        report.compare(&case.name, &format!("output {k}"), got, want);
    }
    let output_refs: Vec<&Tensor> = outputs.iter().collect();
    let output_grads: Vec<Option<&Tensor>> = case.output_grads.iter().map(Some).collect();
    let grads = ops::backward(&node, &inputs, &output_refs, &output_grads).expect("backward runs");
    assert_eq!(grads.len(), case.inputs.len(), "{}: gradients", case.name);
    for (i, (got, want)) in grads.iter().zip(&case.input_grads).enumerate() {
        let what = format!("grad of input {i}");
        match (got, want) {
            (Some(got), Some(want)) => report.compare(&case.name, &what, got, want),
            (None, None) => {}
            (got, _) => report.failures.push(format!(
                "{}: {what} is {}, PyTorch's is {}",
                case.name,
                if got.is_some() { "present" } else { "missing" },
                if got.is_some() { "missing" } else { "present" },
            )),
        }
    }
}

fn check_family(family: &str) {
    let mut report = Report::default();
    let cases = cases(family);
    for case in &cases {
        check_case(case, &mut report);
    }
    eprintln!(
        "{family:<12} {} cases, max |diff| {:e}, max |diff| / |torch| {:e}",
        cases.len(),
        report.worst,
        report.worst_relative
    );
    assert!(
        report.failures.is_empty(),
        "{family} disagrees with PyTorch:\n{}",
        report.failures.join("\n")
    );
}

#[test]
fn conv2d_matches_pytorch() {
    check_family("conv2d");
}

#[test]
fn max_pool2d_matches_pytorch() {
    check_family("max_pool2d");
}

#[test]
fn avg_pool2d_matches_pytorch() {
    check_family("avg_pool2d");
}

#[test]
fn lstm_matches_pytorch() {
    check_family("lstm");
}

#[test]
fn dense_and_matmul_match_pytorch() {
    check_family("linear");
}

#[test]
fn softmax_and_log_softmax_match_pytorch() {
    check_family("softmax");
}

#[test]
fn losses_match_pytorch() {
    check_family("loss");
}

#[test]
fn elementwise_and_activations_match_pytorch() {
    check_family("elementwise");
}

#[test]
fn layout_matches_pytorch() {
    check_family("layout");
}
