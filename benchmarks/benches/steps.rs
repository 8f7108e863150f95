//! Whole steps of the seed workloads on every backend in the build: one forward pass at batch
//! 1 and 32, and one training step (forward, backward, optimizer update) at batch 32.
//! Preparation and input upload happen before the timed closure.
//!
//! `cargo bench -p dlbench-benchmarks --bench steps`

// `criterion_group!` expands to a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dlbench_benchmarks::{backends, Workload, SEED_SPECS};
use dlbench_core::{Mode, PrepareOptions};

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward");
    for &name in SEED_SPECS {
        for batch in [1, 32] {
            let work = Workload::load(name, batch);
            for backend in backends() {
                let mut session = backend
                    .prepare(&work.model, &PrepareOptions::default())
                    .expect("prepare");
                session.load(&work.inference).expect("load");
                let id = BenchmarkId::new(format!("{name}/b{batch}"), backend.name());
                group.bench_function(id, |b| {
                    b.iter(|| session.forward(Mode::Inference).expect("forward"))
                });
            }
        }
    }
    group.finish();
}

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    for &name in SEED_SPECS {
        let work = Workload::load(name, 32);
        for backend in backends().into_iter().filter(|b| b.capabilities().training) {
            let options = PrepareOptions {
                training: Some(work.spec.training_config()),
                ..PrepareOptions::default()
            };
            let mut session = backend.prepare(&work.model, &options).expect("prepare");
            session.load(&work.training).expect("load");
            let id = BenchmarkId::new(format!("{name}/b32"), backend.name());
            group.bench_function(id, |b| b.iter(|| session.train_step().expect("step")));
        }
    }
    group.finish();
}

fn config() -> Criterion {
    // The f64 reference takes up to a second per CNN step: few, short samples keep a full run
    // within minutes on two cores.
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = steps;
    config = config();
    targets = forward, train_step
}
criterion_main!(steps);
