//! Counts the heap allocations of one steady-state training step (after a few warm-up steps)
//! of each seed workload on one backend, with a counting global allocator:
//! `cargo run --release -p dlbench-benchmarks --example allocations -- native`
//! native reports zero (its buffers are planned; `crates/dlbench-native/tests/allocations.rs`
//! holds it to that). Only Rust's allocator is counted: what libtorch allocates in C++ (with
//! `--features tch` and `-- tch`) is not seen here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use dlbench_benchmarks::{Workload, SEED_SPECS};
use dlbench_core::PrepareOptions;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "native".into());
    let backend = dlbench_benchmarks::backend(&name);
    const STEPS: usize = 10;
    for &spec in SEED_SPECS {
        let work = Workload::load(spec, 32);
        let options = PrepareOptions {
            training: Some(work.spec.training_config()),
            ..PrepareOptions::default()
        };
        let mut session = backend.prepare(&work.model, &options).expect("prepare");
        session.load(&work.training).expect("load");
        for _ in 0..3 {
            session.train_step().expect("step");
        }
        let (count, bytes) = (
            ALLOCATIONS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        for _ in 0..STEPS {
            session.train_step().expect("step");
        }
        let count = ALLOCATIONS.load(Ordering::Relaxed) - count;
        let bytes = BYTES.load(Ordering::Relaxed) - bytes;
        println!(
            "{spec} train step b32 on {name}: {} allocations, {:.1} KiB per step",
            count / STEPS,
            bytes as f64 / STEPS as f64 / 1024.0
        );
    }
}
