//! Single layers of the seed workloads at their seed sizes, every backend in the build side by
//! side: the CNN's second convolution (32 x 15 x 15 -> 64 filters 3 x 3) and the RNN's LSTM
//! (10 steps of 1 feature, hidden 50), at batch 32: a forward pass, and a training step
//! (forward, backward, SGD update) against a mean-squared-error loss on the layer's output.
//! Preparation and input upload happen before the timed closure.
//!
//! `cargo bench -p dlbench-benchmarks --bench layers` (add `--features tch` for libtorch)

// `criterion_group!` expands to a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dlbench_benchmarks::backends;
use dlbench_core::ir::{Conv2d, Direction, Lstm};
use dlbench_core::training::{Sgd, TARGET};
use dlbench_core::{
    GraphBuilder, Loss, Mode, Model, Optimizer, PrepareOptions, Tensor, TrainingConfig, Values,
};

const BATCH: usize = 32;

/// A one-layer model and a batch for it (the target has the output's shape).
struct Layer {
    name: &'static str,
    model: Model,
    inputs: Values,
    training: Values,
}

/// Deterministic values in [-1, 1): the speed does not depend on them.
fn values(len: usize, salt: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + salt * 104_729) % 2001) as f32 - 1000.0) / 1000.0)
        .collect()
}

fn layer(name: &'static str, sample: &[usize], output: &[usize], model: Model) -> Layer {
    let shape = |dims: &[usize]| [&[BATCH][..], dims].concat();
    let len = |dims: &[usize]| BATCH * dims.iter().product::<usize>();
    let x = Tensor::f32(shape(sample), values(len(sample), 1)).expect("input");
    let target = Tensor::f32(shape(output), values(len(output), 2)).expect("target");
    let inputs = Values::from([("x".to_string(), x)]);
    let mut training = inputs.clone();
    training.insert(TARGET.to_string(), target);
    Layer {
        name,
        model,
        inputs,
        training,
    }
}

fn layers() -> Vec<Layer> {
    let mut conv = GraphBuilder::new("conv");
    conv.data_input("x", &[32, 15, 15]).expect("input");
    let y = conv
        .conv2d(None, "x", 64, [3, 3], Conv2d::default(), true)
        .expect("conv");
    let conv = Model::initialized(conv.finish(&[&y]).expect("graph"), 0).expect("weights");

    let mut lstm = GraphBuilder::new("lstm");
    lstm.data_input("x", &[10, 1]).expect("input");
    let attrs = Lstm {
        hidden: 50,
        direction: Direction::Forward,
        batch_first: true,
    };
    let [y, _, _] = lstm.lstm(None, "x", attrs).expect("lstm");
    let lstm = Model::initialized(lstm.finish(&[&y]).expect("graph"), 0).expect("weights");

    vec![
        layer("conv2d_32x15x15_64x3x3", &[32, 15, 15], &[64, 13, 13], conv),
        layer("lstm_10x1_h50", &[10, 1], &[10, 50], lstm),
    ]
}

fn bench(c: &mut Criterion) {
    let training = TrainingConfig {
        loss: Loss::Mse,
        optimizer: Optimizer::Sgd(Sgd {
            lr: 0.01,
            ..Sgd::default()
        }),
    };
    for layer in layers() {
        let mut group = c.benchmark_group(layer.name);
        for backend in backends() {
            let mut session = backend
                .prepare(&layer.model, &PrepareOptions::default())
                .expect("prepare");
            session.load(&layer.inputs).expect("load");
            group.bench_function(BenchmarkId::new("forward", backend.name()), |b| {
                b.iter(|| session.forward(Mode::Inference).expect("forward"))
            });
            if !backend.capabilities().training {
                continue;
            }
            let options = PrepareOptions {
                training: Some(training),
                ..PrepareOptions::default()
            };
            let mut session = backend.prepare(&layer.model, &options).expect("prepare");
            session.load(&layer.training).expect("load");
            group.bench_function(BenchmarkId::new("train_step", backend.name()), |b| {
                b.iter(|| session.train_step().expect("step"))
            });
        }
        group.finish();
    }
}

fn config() -> Criterion {
    // The f64 reference takes tens of milliseconds per convolution step: few, short samples.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = layers_bench;
    config = config();
    targets = bench
}
criterion_main!(layers_bench);
