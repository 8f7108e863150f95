//! The four seed models, built from their spec files, run by the f64 reference session against
//! the same models in real PyTorch float64: forward outputs, loss, every parameter gradient, a
//! 5-step training-loss trajectory with the spec's optimizer, and the weights after it.
//!
//! The golden data and the comparison live in `golden/seeds_data.rs`, which the libtorch
//! backend's golden test includes too. Both sides compute in f64 on f32-exact weights and
//! inputs, so they differ only by rounding order: each element must satisfy
//! `|reference - pytorch| <= 1e-12 + 1e-9 |pytorch|`, whatever the kind of value.

#[path = "golden/seeds_data.rs"]
mod seeds_data;

use dlbench_core::{Model, Session, TrainingConfig};
use dlbench_reference::ReferenceSession;
use seeds_data::{check_seed, Engine, Kind, Tolerance};

const REFERENCE: Engine = Engine {
    name: "reference",
    tolerance,
};

fn tolerance(_: Kind) -> Tolerance {
    Tolerance {
        atol: 1e-12,
        rtol: 1e-9,
    }
}

fn reference(model: &Model, training: TrainingConfig) -> Box<dyn Session> {
    Box::new(ReferenceSession::new(model, Some(training)).expect("the reference prepares"))
}

#[test]
fn mlp_matches_pytorch() {
    check_seed("mlp", &REFERENCE, reference);
}

#[test]
fn cnn_matches_pytorch() {
    check_seed("cnn", &REFERENCE, reference);
}

#[test]
fn rnn_matches_pytorch() {
    check_seed("rnn", &REFERENCE, reference);
}

#[test]
fn vae_matches_pytorch() {
    check_seed("vae", &REFERENCE, reference);
}
