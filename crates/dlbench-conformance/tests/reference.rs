//! The conformance suite on the reference, which must conform to itself, and on the mutants
//! of `dlbench-testkit`, each of which must fail exactly the cases its bug touches, with the
//! forward divergence localized to the node that has the bug.

use dlbench_conformance::{assert_conforms, cases, SuiteReport};
use dlbench_core::{Backend, Model, Node, Op};
use dlbench_reference::ReferenceBackend;
use dlbench_testkit::mutants::{Mutant, Mutation};

#[test]
fn the_reference_conforms_to_itself() {
    let report = assert_conforms(&ReferenceBackend, &ReferenceBackend, &[]);
    for case in &report.cases {
        let agreement = case.outcome.as_ref().unwrap();
        for check in [
            &agreement.forward,
            &agreement.gradients,
            &agreement.training,
        ] {
            let check = check.as_ref().expect("the reference runs every check");
            assert_eq!(check.max_abs, 0.0, "{}", case.describe());
        }
    }
}

/// Runs the suite on a mutant expecting exactly `failing` to fail, then checks that each
/// failing case's forward check names the first node `culprit` picks in the case's model
/// (and prints what it reports, for `--nocapture`).
fn caught(mutation: Mutation, failing: &[&str], culprit: fn(&Model, &Node) -> bool) -> SuiteReport {
    let expected: Vec<(&str, &str)> = failing.iter().map(|c| (*c, "the mutation")).collect();
    let mutant = Mutant { mutation };
    let report = assert_conforms(&mutant, &ReferenceBackend, &expected);
    for case in cases()
        .iter()
        .filter(|c| failing.contains(&c.name.as_str()))
    {
        let model = case.model().unwrap();
        let node = model
            .graph
            .nodes
            .iter()
            .find(|n| culprit(&model, n))
            .unwrap();
        let outcome = &report.case(&case.name).unwrap();
        let forward = outcome.outcome.as_ref().unwrap().forward.as_ref().unwrap();
        assert!(!forward.pass, "{}", outcome.describe());
        assert_eq!(
            forward.first_divergent_node.as_deref(),
            Some(node.name.as_str()),
            "{} in {}",
            mutant.name(),
            outcome.describe()
        );
        assert_eq!(forward.first_divergent_op.as_deref(), Some(node.op.name()));
        let divergence = forward.divergence.as_ref().unwrap();
        assert!(!divergence.pass && divergence.mismatched > 0);
        eprintln!("{}", outcome.describe());
    }
    report
}

/// A Dense whose weight the transposed reading scrambles: more than one output unit.
fn scrambled_dense(model: &Model, node: &Node) -> bool {
    node.op == Op::Dense && model.weights[&node.inputs[1]].shape()[0] > 1
}

#[test]
fn a_transposed_dense_weight_is_caught_at_the_first_dense_node() {
    // The RNN's only Dense has one output unit, where `[out, in]` and `[in, out]` coincide:
    // the mutation changes nothing there, so spec_rnn passes.
    caught(
        Mutation::TransposedDense,
        &[
            "dense",
            "dense_no_bias",
            "dense_3d",
            "spec_mlp",
            "spec_cnn",
            "spec_vae",
        ],
        scrambled_dense,
    );
}

#[test]
fn swapped_lstm_gates_are_caught_at_the_lstm_node() {
    caught(
        Mutation::SwappedLstmGates,
        &[
            "lstm_forward",
            "lstm_reverse",
            "lstm_bidirectional",
            "lstm_batch_first",
            "lstm_batch_first_bidirectional",
            "spec_rnn",
        ],
        |_, n| matches!(n.op, Op::Lstm(_)),
    );
}

#[test]
fn floor_pooling_is_caught_at_the_pooling_node_in_ceil_mode_only() {
    let report = caught(
        Mutation::FloorPooling,
        &[
            "max_pool2d_ceil",
            "max_pool2d_padding_ceil",
            "avg_pool2d_ceil",
            "avg_pool2d_ceil_pad_exclude",
        ],
        |_, n| matches!(n.op, Op::MaxPool2d(_) | Op::AvgPool2d(_)),
    );
    // The output shape is what differs.
    let case = report.case("max_pool2d_ceil").unwrap();
    let forward = case.outcome.as_ref().unwrap().forward.as_ref().unwrap();
    let problem = forward.divergence.as_ref().unwrap().problem.as_deref();
    assert!(problem.is_some_and(|p| p.contains("shape")), "{problem:?}");
}
