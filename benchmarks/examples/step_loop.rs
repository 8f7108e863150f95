//! Runs one seed workload's step in a loop on one backend, for a profiler to watch:
//! `cargo run --release -p dlbench-benchmarks --example step_loop -- cnn train native 200 [2]`
//! (`train` or `b1` / `b32` for inference; then the backend, the number of steps and,
//! optionally, the thread count, 1 by default).
//! Prints the median step time; preparation happens before the loop.

use std::time::Instant;

use dlbench_benchmarks::Workload;
use dlbench_core::{Mode, PrepareOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (spec, what, backend, steps, threads) = match &args[..] {
        [spec, what, backend, steps] => (spec, what, backend, steps, "1"),
        [spec, what, backend, steps, threads] => (spec, what, backend, steps, threads.as_str()),
        _ => {
            eprintln!("usage: step_loop SPEC train|b1|b32 BACKEND STEPS [THREADS]");
            std::process::exit(2);
        }
    };
    let steps: usize = steps.parse().expect("STEPS is a number");
    let threads: usize = threads.parse().expect("THREADS is a number");
    let backend = dlbench_benchmarks::backend(backend);
    let batch = if what == "b1" { 1 } else { 32 };
    let work = Workload::load(spec, batch);
    let training = what == "train";
    let options = PrepareOptions {
        training: training.then(|| work.spec.training_config()),
        threads,
        ..PrepareOptions::default()
    };
    let mut session = backend.prepare(&work.model, &options).expect("prepare");
    session
        .load(if training {
            &work.training
        } else {
            &work.inference
        })
        .expect("load");
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let start = Instant::now();
        if training {
            session.train_step().expect("step");
        } else {
            session.forward(Mode::Inference).expect("forward");
        }
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{spec} {what} {} x{threads}: median {:.1} us over {steps} steps",
        backend.name(),
        times[steps / 2] * 1e6
    );
}
