//! A steady-state step of the native engine allocates nothing: its buffers are planned when a
//! batch size is first loaded and reused after (see `engine::session`). Counted with a
//! counting global allocator over the four seed workloads, training at batch 32 and
//! inference alternating batch 1 and 32 (as the harness's rounds do), on one and two threads.
//!
//! Counted by `support/counting.rs`, so this file holds ONE test; it runs again on each lower
//! instruction set (`support/per_isa.rs`).

#[path = "support/counting.rs"]
mod counting;
#[path = "support/per_isa.rs"]
mod per_isa;

use std::path::Path;

use counting::{allocations, Counting};
use dlbench_core::{Backend, Mode, PrepareOptions, Session, Values};
use dlbench_native::engine::NativeBackend;
use dlbench_spec::feed::{batch_inputs, Phase};
use dlbench_spec::Spec;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A seed spec's model, its training config, and batches of 1 and 32 rows for inference and
/// for training.
struct Workload {
    spec: Spec,
    model: dlbench_core::Model,
    inference: [Values; 2],
    training: Values,
}

fn workload(name: &str) -> Workload {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../specs/{name}.yaml"));
    let spec = Spec::load(&path).expect("seed spec parses");
    let model = spec.build_model().expect("seed model builds");
    let train = spec.load_data().expect("seed data loads").train;
    let rows = |batch: usize| (0..batch).map(|i| i % train.len()).collect::<Vec<_>>();
    let eval = |batch: usize| {
        let x = train.batch(&rows(batch)).features;
        batch_inputs(&model.graph, &x, None, spec.seed, Phase::Eval(0)).expect("inputs")
    };
    let graph = model
        .graph
        .with_loss(spec.train.loss)
        .expect("training graph");
    let b = train.batch(&rows(32));
    let (x, y) = (b.features, b.targets);
    let training =
        batch_inputs(&graph, &x, y.as_ref(), spec.seed, Phase::Train(0)).expect("inputs");
    Workload {
        inference: [eval(1), eval(32)],
        training,
        spec,
        model,
    }
}

#[test]
fn a_steady_state_step_allocates_nothing() {
    per_isa::announce();
    let mut found = Vec::new();
    for name in ["mlp", "cnn", "rnn", "vae"] {
        let work = workload(name);
        for threads in [1, 2] {
            let training = PrepareOptions {
                training: Some(work.spec.training_config()),
                threads,
                ..PrepareOptions::default()
            };
            let mut session = NativeBackend.prepare(&work.model, &training).unwrap();
            let step = |session: &mut Box<dyn Session>| {
                session.load(&work.training).unwrap();
                session.train_step().unwrap();
            };
            // The first steps size the buffers (and the optimizer's state).
            for _ in 0..3 {
                step(&mut session);
            }
            let count = allocations(|| (0..3).for_each(|_| step(&mut session)));
            found.push(format!(
                "{name} training step, {threads} thread(s): {count}"
            ));

            let inference = PrepareOptions {
                threads,
                ..PrepareOptions::default()
            };
            let mut session = NativeBackend.prepare(&work.model, &inference).unwrap();
            let pass = |session: &mut Box<dyn Session>| {
                for batch in &work.inference {
                    session.load(batch).unwrap();
                    session.forward(Mode::Inference).unwrap();
                }
            };
            pass(&mut session);
            pass(&mut session);
            let count = allocations(|| pass(&mut session));
            found.push(format!(
                "{name} inference b1 + b32, {threads} thread(s): {count}"
            ));
        }
    }
    let report = found.join("\n");
    println!("{report}");
    assert!(
        found.iter().all(|line| line.ends_with(": 0")),
        "allocations in steady state:\n{report}"
    );
    // Counting is over: the children are separate processes, counted by themselves.
    per_isa::rerun_on_other_isas("a_steady_state_step_allocates_nothing");
}
