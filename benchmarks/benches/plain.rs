//! dlbench's burn and candle adapters beside the same model written directly against each
//! framework (`benchmarks/plain/`): the seed CNN's batch-32 training step and its batch-1 and
//! batch-32 inference, on one thread. Whatever separates `<framework>/plain` from
//! `<framework>/dlbench` is the adapter's cost: its graph interpreter, its layout changes and
//! the ops it composes. `candle_conv_pool_train` isolates the composed max-pool (candle's own
//! max-pool backward scales the gradient by 1/(kh*kw); the adapter's is PyTorch's).
//!
//! `taskset -c 1 cargo bench -p dlbench-benchmarks --bench plain` (one core: unpinned runs
//! on a shared machine are noisier).

// `criterion_group!` expands to a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dlbench_benchmarks::plain::{self, burn_cnn, candle_cnn};
use dlbench_benchmarks::Workload;
use dlbench_core::ir::{Conv2d, Pool2d};
use dlbench_core::training::{Sgd, TARGET};
use dlbench_core::{
    Backend, GraphBuilder, Loss, Mode, Model, Op, Optimizer, PrepareOptions, Session, Tensor,
    TrainingConfig, Values,
};

/// Both adapters run on one thread; the plain programs inherit the same pools.
const THREADS: usize = 1;

/// Sizes both frameworks' pools to [`THREADS`], as a user sets `RAYON_NUM_THREADS` before
/// starting: candle reads its sizes once, at its first parallel work, so this runs before any
/// plain program (from [`config`]).
fn size_pools() {
    dlbench_candle::configure_threads(THREADS).expect("candle threads");
    dlbench_burn::configure_threads(THREADS).expect("burn threads");
}

fn adapters() -> Vec<Box<dyn Backend>> {
    vec![
        Box::new(dlbench_burn::BurnBackend),
        Box::new(dlbench_candle::CandleBackend),
    ]
}

fn options(training: Option<TrainingConfig>) -> PrepareOptions {
    PrepareOptions {
        training,
        threads: THREADS,
        ..PrepareOptions::default()
    }
}

fn prepared(
    backend: &dyn Backend,
    model: &Model,
    batch: &Values,
    o: PrepareOptions,
) -> Box<dyn Session> {
    let mut session = backend.prepare(model, &o).expect("prepare");
    session.load(batch).expect("load");
    session
}

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("cnn_train_step_b32");
    let work = Workload::load("cnn", 32);
    let (pixels, labels) = plain::batch(32);
    let mut burn = burn_cnn::Training::new(&pixels, &labels);
    group.bench_function(BenchmarkId::new("burn", "plain"), |b| {
        b.iter(|| burn.step())
    });
    let mut candle = candle_cnn::Training::new(&pixels, &labels).expect("candle model");
    group.bench_function(BenchmarkId::new("candle", "plain"), |b| {
        b.iter(|| candle.step().expect("step"))
    });
    for backend in adapters() {
        let o = options(Some(work.spec.training_config()));
        let mut session = prepared(backend.as_ref(), &work.model, &work.training, o);
        group.bench_function(BenchmarkId::new(backend.name(), "dlbench"), |b| {
            b.iter(|| session.train_step().expect("step"))
        });
    }
    group.finish();
}

fn inference(c: &mut Criterion) {
    for batch in [1, 32] {
        let mut group = c.benchmark_group(format!("cnn_forward_b{batch}"));
        let work = Workload::load("cnn", batch);
        let (pixels, _) = plain::batch(batch);
        let burn = burn_cnn::Inference::new(&pixels);
        group.bench_function(BenchmarkId::new("burn", "plain"), |b| {
            b.iter(|| burn.forward())
        });
        let candle = candle_cnn::Inference::new(&pixels).expect("candle model");
        group.bench_function(BenchmarkId::new("candle", "plain"), |b| {
            b.iter(|| candle.forward().expect("forward"))
        });
        for backend in adapters() {
            let mut session = prepared(
                backend.as_ref(),
                &work.model,
                &work.inference,
                options(None),
            );
            group.bench_function(BenchmarkId::new(backend.name(), "dlbench"), |b| {
                b.iter(|| session.forward(Mode::Inference).expect("forward"))
            });
        }
        group.finish();
    }
}

/// conv(1->32, 3x3) -> max-pool 2 against a mean squared error, as in
/// [`candle_cnn::ConvPoolTraining`].
fn conv_pool_model() -> (Model, Values) {
    let mut g = GraphBuilder::new("conv_pool");
    g.data_input("x", &plain::shape::INPUT).expect("input");
    let y = g
        .conv2d(None, "x", 32, [3, 3], Conv2d::default(), true)
        .expect("conv");
    let y = g
        .op(None, Op::MaxPool2d(Pool2d::square(2)), &[&y])
        .expect("pool");
    let model = Model::initialized(g.finish(&[&y]).expect("graph"), 0).expect("weights");
    let (pixels, _) = plain::batch(32);
    let x = Tensor::f32(vec![32, 1, 32, 32], pixels).expect("input");
    let target = Tensor::f32(vec![32, 32, 15, 15], vec![1.0; 32 * 32 * 15 * 15]).expect("target");
    let batch = Values::from([("x".to_string(), x), (TARGET.to_string(), target)]);
    (model, batch)
}

fn candle_conv_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("candle_conv_pool_train_b32");
    let (pixels, _) = plain::batch(32);
    let mut plain = candle_cnn::ConvPoolTraining::new(&pixels).expect("candle model");
    group.bench_function(BenchmarkId::new("candle", "plain"), |b| {
        b.iter(|| plain.step().expect("step"))
    });
    let (model, batch) = conv_pool_model();
    let config = TrainingConfig {
        loss: Loss::Mse,
        optimizer: Optimizer::Sgd(Sgd {
            lr: plain::shape::LR,
            ..Sgd::default()
        }),
    };
    let backend = dlbench_candle::CandleBackend;
    let mut session = prepared(&backend, &model, &batch, options(Some(config)));
    group.bench_function(BenchmarkId::new("candle", "dlbench"), |b| {
        b.iter(|| session.train_step().expect("step"))
    });
    group.finish();
}

fn config() -> Criterion {
    size_pools();
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = plain_bench;
    config = config();
    targets = train_step, inference, candle_conv_pool
}
criterion_main!(plain_bench);
