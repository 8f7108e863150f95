//! `sgemm` allocates nothing on the heap once warm: a training step calls it dozens of times,
//! and a steady-state step must be free of allocations. Counted by `support/counting.rs`
//! (every thread's allocations, the pool's workers included), so this file holds ONE test.

#[path = "support/counting.rs"]
mod counting;

use counting::{allocations, Counting};
use dlbench_native::kernels::gemm::{sgemm, MatRef};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One product: `m x k` times `k x n`, `B` stored row-major or as the transpose of an `n x k`
/// matrix (`x Wᵀ`), on `threads` threads.
struct Product {
    what: &'static str,
    m: usize,
    n: usize,
    k: usize,
    b_transposed: bool,
    threads: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Product {
    fn new(what: &'static str, (m, n, k): (usize, usize, usize), bt: bool, threads: usize) -> Self {
        let fill = |len: usize| (0..len).map(|i| (i % 7) as f32 - 3.0).collect();
        Product {
            what,
            m,
            n,
            k,
            b_transposed: bt,
            threads,
            a: fill(m * k),
            b: fill(k * n),
            c: vec![0.0; m * n],
        }
    }

    fn run(&mut self) {
        let a = MatRef::row_major(&self.a, self.m, self.k);
        let b = if self.b_transposed {
            MatRef::row_major(&self.b, self.n, self.k).t()
        } else {
            MatRef::row_major(&self.b, self.k, self.n)
        };
        sgemm(1.0, a, b, 0.0, &mut self.c, self.n, self.threads);
    }
}

#[test]
fn warm_sgemm_allocates_nothing() {
    // Each shape picks one route through `sgemm` (see `gemm::threaded`); the threaded ones
    // are above the work that a second thread needs.
    let mut products = [
        Product::new("one thread, B in place", (64, 64, 64), false, 1),
        Product::new("one thread, B packed", (200, 300, 70), true, 1),
        Product::new("row bands", (200, 300, 70), false, 2),
        Product::new("column bands", (32, 2048, 128), false, 2),
        Product::new("split k", (32, 100, 2304), true, 2),
        Product::new("split k, 3 slices", (7, 20, 40_000), false, 3),
        Product::new("one row, dot products", (1, 256, 1000), true, 1),
        Product::new("one row, row sums", (1, 256, 1000), false, 1),
        Product::new("one column", (256, 1, 1000), false, 1),
    ];
    // Which pool thread runs which task varies from call to call, so warm up every route
    // several times (a worker must have run some task to have its buffers).
    for _ in 0..20 {
        for product in &mut products {
            product.run();
        }
    }
    let mut report = Vec::new();
    for product in &mut products {
        let count = allocations(|| (0..10).for_each(|_| product.run()));
        if count > 0 {
            report.push(format!(
                "{} ({}x{}x{}, {} threads): {count} allocations in 10 calls",
                product.what, product.m, product.n, product.k, product.threads
            ));
        }
    }
    assert!(
        report.is_empty(),
        "warm sgemm allocated:\n{}",
        report.join("\n")
    );
}
