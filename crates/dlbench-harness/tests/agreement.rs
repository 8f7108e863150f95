//! `compare` (tolerances, ULP distance, mismatches), and `check` on a prepared spec: its
//! determinism, checks a backend cannot do, and nodes a backend cannot replay.

use std::path::Path;

use dlbench_core::{
    Backend, Capabilities, DType, Device, Error, Model, Op, PrepareOptions, Result, Session, Tensor,
};
use dlbench_harness::agreement::{check, compare, ulp_distance};
use dlbench_harness::configuration::Configuration;
use dlbench_harness::results::AgreementCheck;
use dlbench_reference::ReferenceBackend;
use dlbench_spec::workload::Workload;
use dlbench_spec::Spec;
use dlbench_testkit::mutants::{Mutant, Mutation};

fn f32s(v: &[f32]) -> Tensor {
    Tensor::f32(vec![v.len()], v.to_vec()).unwrap()
}

fn f64s(v: &[f64]) -> Tensor {
    Tensor::f64(vec![v.len()], v.to_vec()).unwrap()
}

#[test]
fn ulp_distance_counts_f32_values_between() {
    assert_eq!(ulp_distance(1.0, 1.0), 0);
    assert_eq!(ulp_distance(1.0, 1.0 + f32::EPSILON), 1);
    assert_eq!(ulp_distance(1.0 + f32::EPSILON, 1.0), 1);
    assert_eq!(ulp_distance(0.0, -0.0), 0);
    let tiny = f32::from_bits(1);
    assert_eq!(ulp_distance(tiny, -tiny), 2);
    assert_eq!(ulp_distance(-2.0, -2.0 - 2.0 * f32::EPSILON), 1);
    assert_eq!(ulp_distance(f32::NAN, 1.0), u64::MAX);
    assert_eq!(ulp_distance(f32::NAN, f32::NAN), 0);
}

#[test]
fn an_f32_result_rounded_from_the_reference_is_zero_ulp_off() {
    let reference = f64s(&[0.1, 1.0 / 3.0, -2.5e-7]);
    let actual = reference.to_dtype(DType::F32);
    let c = compare(&actual, &reference, 1e-6, 0.0);
    assert!(c.pass, "{c:?}");
    assert_eq!(c.max_ulp, 0);
    assert!(c.max_abs > 0.0 && c.max_rel < 1e-7);
}

#[test]
fn tolerance_is_atol_plus_rtol_times_the_reference() {
    let reference = f64s(&[100.0, 0.0]);
    // 0.1 = rtol * 100 is allowed at 100; 1e-5 = atol at 0.
    let c = compare(&f64s(&[100.09, 1e-5]), &reference, 1e-3, 1e-5);
    assert!(c.pass, "{c:?}");
    assert!(c.tolerance_used <= 1.0 && c.tolerance_used > 0.89);
    // The relative error skips the zero reference.
    assert!((c.max_rel - 0.09 / 100.0).abs() < 1e-9, "{}", c.max_rel);

    let c = compare(&f64s(&[100.2, 2e-5]), &reference, 1e-3, 1e-5);
    assert!(!c.pass);
    assert_eq!((c.mismatched, c.elements), (2, 2));
    assert!((c.max_abs - 0.2).abs() < 1e-9);
    assert!(c.tolerance_used > 1.0);

    // Zero tolerance: only exact agreement passes.
    assert!(compare(&reference, &reference, 0.0, 0.0).pass);
    let c = compare(&f64s(&[100.0, 1e-300]), &reference, 0.0, 0.0);
    assert!(!c.pass && c.tolerance_used.is_infinite());
}

#[test]
fn non_finite_values_agree_only_with_themselves() {
    let reference = f64s(&[f64::NAN, f64::INFINITY, 1.0]);
    assert!(compare(&reference, &reference, 1e-3, 1e-5).pass);
    let c = compare(
        &f32s(&[f32::NAN, f32::INFINITY, f32::NAN]),
        &reference,
        1e-3,
        1e-5,
    );
    assert!(!c.pass && c.max_abs.is_infinite() && c.max_ulp == u64::MAX);
    assert_eq!(c.mismatched, 1);
    let c = compare(
        &f64s(&[1.0, f64::NEG_INFINITY, 1.0]),
        &reference,
        1e-3,
        1e-5,
    );
    assert_eq!(c.mismatched, 2);
}

#[test]
fn shape_and_dtype_mismatches_fail_with_the_reason() {
    let reference = Tensor::f64(vec![2, 3], vec![0.0; 6]).unwrap();
    let c = compare(
        &Tensor::f32(vec![3, 2], vec![0.0; 6]).unwrap(),
        &reference,
        1.0,
        1.0,
    );
    assert!(!c.pass);
    let problem = c.problem.unwrap();
    assert!(
        problem.contains("[3, 2]") && problem.contains("[2, 3]"),
        "{problem}"
    );

    let labels = Tensor::i64(vec![2, 3], vec![0; 6]).unwrap();
    let c = compare(&labels, &reference, 1.0, 1.0);
    assert!(!c.pass);
    assert!(c.problem.unwrap().contains("i64"));
    assert!(compare(&labels, &labels, 0.0, 0.0).pass);
}

#[test]
fn infinite_figures_survive_the_results_record() {
    let check = AgreementCheck {
        max_abs: f64::INFINITY,
        max_rel: f64::NEG_INFINITY,
        max_ulp: u64::MAX,
        tolerance_used: f64::INFINITY,
        pass: false,
        worst: None,
        first_divergent_node: None,
        first_divergent_op: None,
        divergence: Some(compare(&f64s(&[1.0]), &f64s(&[1.0, 2.0]), 0.0, 0.0)),
        notes: vec![],
        error: Some("out of memory".into()),
    };
    let json = serde_json::to_string(&check).unwrap();
    let back: AgreementCheck = serde_json::from_str(&json).unwrap();
    assert_eq!(back, check, "{json}");
}

/// `backend` on the CPU with one thread.
fn on_cpu(backend: &dyn Backend) -> Configuration<'_> {
    Configuration::new(backend, Device::Cpu, 1)
}

fn mlp() -> Workload {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/mlp.yaml");
    let mut spec = Spec::load(&path).unwrap();
    spec.agreement.steps = 5;
    Workload::prepare(spec, true).unwrap()
}

#[test]
fn check_is_deterministic_and_reads_the_spec() {
    let work = mlp();
    let mutant = Mutant {
        mutation: Mutation::TransposedDense,
    };
    let a = check(&work, on_cpu(&mutant), &ReferenceBackend).unwrap();
    let b = check(&work, on_cpu(&mutant), &ReferenceBackend).unwrap();
    assert_eq!(a, b);
    assert!(!a.pass());
    let training = a.training.as_ref().unwrap();
    assert!(training.max_abs > 0.0 && training.worst.as_ref().unwrap().starts_with("loss["));

    let same = check(&work, on_cpu(&ReferenceBackend), &ReferenceBackend).unwrap();
    assert!(same.pass() && same.notes.is_empty());
    assert_eq!(same.gradients.as_ref().unwrap().max_abs, 0.0);
}

/// The transposed-dense mutant, limited: it cannot train, or it cannot replay `dense_1` alone.
struct Limited {
    inference_only: bool,
}

impl Backend for Limited {
    fn name(&self) -> &'static str {
        "limited"
    }
    fn version(&self) -> String {
        "test".into()
    }
    fn capabilities(&self) -> Capabilities {
        let mut caps = ReferenceBackend.capabilities();
        caps.training = !self.inference_only;
        caps
    }
    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        let nodes = &model.graph.nodes;
        if !self.inference_only && nodes.len() == 1 && nodes[0].name == "dense_1" {
            return Err(Error::Backend {
                backend: "limited".into(),
                message: "cannot lower a lone dense (on purpose)".into(),
            });
        }
        if options.training.is_some() && self.inference_only {
            return Err(Error::unsupported("limited", "training"));
        }
        let mutant = Mutant {
            mutation: Mutation::TransposedDense,
        };
        mutant.prepare(model, options)
    }
}

#[test]
fn checks_a_backend_cannot_do_are_left_out_with_a_note() {
    let limited = Limited {
        inference_only: true,
    };
    let a = check(&mlp(), on_cpu(&limited), &ReferenceBackend).unwrap();
    assert!(a.forward.is_some() && a.gradients.is_none() && a.training.is_none());
    assert!(a.notes[0].contains("cannot train"), "{:?}", a.notes);
}

#[test]
fn a_node_that_cannot_be_replayed_is_noted_and_skipped() {
    let limited = Limited {
        inference_only: false,
    };
    let work = mlp();
    let a = check(&work, on_cpu(&limited), &ReferenceBackend).unwrap();
    let forward = a.forward.unwrap();
    // dense_1 is skipped; dense_2 (10 x 10) is the next one the mutation scrambles.
    assert_eq!(forward.first_divergent_node.as_deref(), Some("dense_2"));
    assert_eq!(
        forward.first_divergent_op.as_deref(),
        Some(Op::Dense.name())
    );
    assert!(
        forward
            .notes
            .iter()
            .any(|n| n.contains("`dense_1` (dense) could not be replayed")
                && n.contains("on purpose")),
        "{:?}",
        forward.notes
    );
}

#[test]
fn a_check_recorded_before_the_share_of_tolerance_was_kept_still_reads() {
    let json = r#"{"max_abs": 0.5, "max_rel": 0.1, "max_ulp": 3, "pass": true,
                   "first_divergent_node": null}"#;
    let check: AgreementCheck = serde_json::from_str(json).unwrap();
    assert!(check.tolerance_used.is_nan());
    assert!(check.pass);
}

#[test]
fn a_check_keeps_the_largest_share_of_its_tolerance() {
    let (reference, near) = (f64s(&[1.0, 0.0]), f64s(&[1.0 + 1e-4, 1e-6]));
    let first = compare(&near, &reference, 1e-5, 1e-3);
    let second = compare(&reference, &reference, 1e-5, 1e-3);
    let check = dlbench_harness::agreement::summarize(&[
        ("a".to_string(), first.clone()),
        ("b".to_string(), second),
    ]);
    assert_eq!(check.tolerance_used, first.tolerance_used);
    assert!(check.tolerance_used > 0.0 && check.tolerance_used < 1.0);
    assert_eq!(check.worst.as_deref(), Some("a"));
}
