//! The four seed models, built from their spec files, run by libtorch (through [`TchBackend`],
//! in f32, with libtorch's autograd and optimizers) against the same models in real PyTorch
//! float64: forward outputs, loss, every parameter gradient, a 5-step training-loss trajectory
//! with the spec's optimizer, and the weights after it.
//!
//! The golden data (`crates/dlbench-reference/tests/golden/seeds.json`) and the comparison are
//! those of the reference's golden test, shared through `seeds_data.rs`. Weights and inputs are
//! f32-exact, so the only difference is f32 arithmetic against f64: each element must satisfy
//! `|libtorch - pytorch| <= atol + rtol |pytorch|`, with the tolerances of [`tolerance`].
//! Run with `--nocapture` to see the worst differences per kind of value.

#[path = "../../dlbench-reference/tests/golden/seeds_data.rs"]
mod seeds_data;

use dlbench_core::{Backend, Model, PrepareOptions, Session, TrainingConfig};
use dlbench_tch::TchBackend;
use seeds_data::{check_seed, Engine, Kind, Tolerance};

const LIBTORCH: Engine = Engine {
    name: "libtorch",
    tolerance,
};

/// The relative part, for every kind but the initial weights: f32 carries 24 bits (unit
/// roundoff 6e-8), and a value computed through a few hundred to a few thousand f32 roundings
/// (a dot product, a conv, five training steps) keeps about four correct digits even where
/// errors add up (the losses, which do not cancel, agree to 5e-8). A summary of a large tensor
/// (its sum, sum of squares...) gets it times the tensor's sum of |x|: generous, as its errors
/// mostly cancel (worst 6e-7 of that scale); its sampled elements are what is tight.
const RTOL: f64 = 1e-4;

/// f32 against f64, per kind of value. The absolute parts cover elements near zero: they are
/// sums whose terms cancel, and the f32 rounding error of a sum is about the unit roundoff times
/// its largest terms, however small the result. So each atol is a few f32 ulps of the
/// magnitude of the terms behind that kind of value, in all four seeds (outputs, gradients and
/// weights are at most ~0.75 in absolute value; the losses 0.7 to 700). The comments give the
/// worst differences measured (libtorch 2.11.0 on the CPU, one thread). Sensitivity, tried once:
/// SGD's learning rate 0.1% high fails the CNN and VAE final weights; Adam's eps 10x too large
/// fails the RNN's (the MLP's gradients are too large for eps to matter).
fn tolerance(kind: Kind) -> Tolerance {
    let atol = match kind {
        // f32 values put into the model and read back: nothing may change them, beyond the
        // ~1e-16 with which the JSON's decimals and the f64 summaries are written.
        Kind::InitialWeight => {
            return Tolerance {
                atol: 1e-12,
                rtol: 1e-9,
            }
        }
        // Logits, probabilities, mu and logvar: sums of terms up to ~1, so ~8 ulps of 1. The
        // VAE's mu and logvar near 0 differ by up to 1.2e-7.
        Kind::Output => 5e-7,
        // Means or sums of positive terms (cross-entropies, the ELBO): no cancellation, so the
        // relative bound alone holds (worst 5e-8 relative).
        Kind::Loss | Kind::StepLoss => 0.0,
        // Gradients are at most ~0.5; ~half an ulp of 1 covers the cancelling elements (worst
        // 8e-8 in the VAE, whose gradients sum over 1000 outputs and 256 hidden units). The
        // RNN's gradients are much smaller (w_hh's are at most 3e-4), but its errors too
        // (worst 1.1e-8), and a wrong LSTM gradient would be wrong on its large elements.
        Kind::Gradient => 3e-8,
        // SGD (CNN, VAE) moves a weight by lr * gradient, so its error is tiny (worst 5e-8).
        // Adam (MLP, RNN) divides by sqrt(v) + 1e-8: for a gradient near 1e-8 an absolute
        // gradient error of 1e-11 becomes lr * 1e-11 / 1e-8 = 1e-6 of weight per step. 2e-6 is
        // 0.04% of the 5e-3 its five steps of lr 1e-3 can move a weight (RNN worst 8.9e-7).
        Kind::FinalWeight => 2e-6,
    };
    Tolerance { atol, rtol: RTOL }
}

/// One thread: libtorch's results then do not depend on the machine's core count.
fn libtorch(model: &Model, training: TrainingConfig) -> Box<dyn Session> {
    let options = PrepareOptions {
        training: Some(training),
        ..PrepareOptions::default()
    };
    TchBackend
        .prepare(model, &options)
        .expect("libtorch prepares")
}

#[test]
fn mlp_matches_pytorch() {
    check_seed("mlp", &LIBTORCH, libtorch);
}

#[test]
fn cnn_matches_pytorch() {
    check_seed("cnn", &LIBTORCH, libtorch);
}

#[test]
fn rnn_matches_pytorch() {
    check_seed("rnn", &LIBTORCH, libtorch);
}

#[test]
fn vae_matches_pytorch() {
    check_seed("vae", &LIBTORCH, libtorch);
}
