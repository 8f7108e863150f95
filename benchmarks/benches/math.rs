//! The vectorised math kernels (`exp`, `ln`, `tanh`, `sigmoid` on the fastest path of this
//! CPU) against the scalar `std` (libm) loops they replace, on an LSTM gate row (50), a
//! batch of them (32 x 200) and the VAE's reconstruction (32 x 1000).
//!
//! `cargo bench -p dlbench-benchmarks --bench math`

// `criterion_group!` expands to a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dlbench_native::kernels::math;

const LENGTHS: &[usize] = &[50, 6400, 32000];

/// `(name, kernel, scalar)`.
type Case = (&'static str, fn(&[f32], &mut [f32]), fn(f32) -> f32);

fn scalar_sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

const CASES: &[Case] = &[
    ("exp", math::exp, f32::exp),
    ("ln", math::ln, f32::ln),
    ("tanh", math::tanh, f32::tanh),
    ("sigmoid", math::sigmoid, scalar_sigmoid),
];

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("math");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for &(name, kernel, scalar) in CASES {
        for &len in LENGTHS {
            // Inputs in (0, 4] for ln, [-4, 4) otherwise: the common range of activations.
            let src: Vec<f32> = (0..len)
                .map(|i| {
                    let v = (i % 1000) as f32 / 125.0 - 4.0;
                    if name == "ln" {
                        v + 4.001
                    } else {
                        v
                    }
                })
                .collect();
            let mut dst = vec![0.0f32; len];
            group.throughput(Throughput::Elements(len as u64));
            group.bench_function(BenchmarkId::new(name, format!("simd/{len}")), |b| {
                b.iter(|| kernel(&src, &mut dst))
            });
            group.bench_function(BenchmarkId::new(name, format!("libm/{len}")), |b| {
                b.iter(|| {
                    for (d, &s) in dst.iter_mut().zip(&src) {
                        *d = scalar(s);
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
