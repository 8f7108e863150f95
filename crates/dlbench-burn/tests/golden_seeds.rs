//! The four seed models, built from their spec files, run by burn (through [`BurnBackend`], in
//! f32 on flex, with burn's autodiff and optimizers) against the same models in real PyTorch
//! float64: forward outputs, loss, every parameter gradient, a 5-step training-loss trajectory
//! with the spec's optimizer, and the weights after it.
//!
//! The golden data (`crates/dlbench-reference/tests/golden/seeds.json`) and the comparison are
//! those of the reference's golden test, shared through `seeds_data.rs`; the tolerances are the
//! libtorch adapter's (f32 against f64, see its `golden_seeds.rs`). Run with `--nocapture` to
//! see the worst differences per kind of value.

#[path = "../../dlbench-reference/tests/golden/seeds_data.rs"]
mod seeds_data;

use dlbench_burn::BurnBackend;
use dlbench_core::{Backend, Model, PrepareOptions, Session, TrainingConfig};
use seeds_data::{check_seed, Engine, Kind, Tolerance};

const BURN: Engine = Engine {
    name: "burn",
    tolerance,
};

/// The relative part, for every kind but the initial weights: f32 carries 24 bits, and a
/// value computed through a few thousand f32 roundings keeps about four correct digits.
const RTOL: f64 = 1e-4;

/// f32 against f64, per kind of value; the absolute parts cover elements near zero (sums whose
/// terms cancel), a few f32 ulps of the magnitude of the terms behind that kind of value. The
/// comments give the worst absolute differences measured (burn 0.22.1 on flex, one thread).
fn tolerance(kind: Kind) -> Tolerance {
    let atol = match kind {
        // f32 values put into the model and read back: nothing may change them.
        Kind::InitialWeight => {
            return Tolerance {
                atol: 1e-12,
                rtol: 1e-9,
            }
        }
        // Logits, probabilities, mu and logvar: sums of terms up to ~1 (worst 2.3e-7, VAE).
        Kind::Output => 5e-7,
        // Means or sums of positive terms: no cancellation, the relative bound alone holds
        // (worst 1.1e-7 relative).
        Kind::Loss | Kind::StepLoss => 0.0,
        // Gradients are at most ~0.5; about half an ulp of 1 covers the cancelling elements
        // (worst 3.9e-8, CNN, within its relative bound).
        Kind::Gradient => 3e-8,
        // Adam divides by sqrt(v) + 1e-8, so a tiny gradient's error is amplified (see the
        // libtorch adapter's test). Worst 1.6e-6 (RNN; libtorch's 8.9e-7): 4e-6 leaves room
        // for another CPU's gemm kernels and still fails Adam's eps 10x too large, which moves
        // the RNN's weights by up to 2.6e-3 (tried once).
        Kind::FinalWeight => 4e-6,
    };
    Tolerance { atol, rtol: RTOL }
}

fn burn(model: &Model, training: TrainingConfig) -> Box<dyn Session> {
    let options = PrepareOptions {
        training: Some(training),
        ..PrepareOptions::default()
    };
    BurnBackend.prepare(model, &options).expect("burn prepares")
}

#[test]
fn mlp_matches_pytorch() {
    check_seed("mlp", &BURN, burn);
}

#[test]
fn cnn_matches_pytorch() {
    check_seed("cnn", &BURN, burn);
}

#[test]
fn rnn_matches_pytorch() {
    check_seed("rnn", &BURN, burn);
}

#[test]
fn vae_matches_pytorch() {
    check_seed("vae", &BURN, burn);
}
