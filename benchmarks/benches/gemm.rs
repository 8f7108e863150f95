//! The native sgemm on square sizes and the seed workloads' shapes, 1 and 2 threads, side by
//! side with burn's and candle's `matmul` (default features; each allocates its output, as a
//! user of those frameworks gets) and libtorch's (`mm` into a preallocated output) when built
//! with the `tch` feature. Throughput is counted as `2 m n k` elements, so criterion's
//! "elem/s" reads as FLOP/s.
//!
//! `cargo bench -p dlbench-benchmarks --bench gemm` (add `--features tch`, with the README's
//! libtorch environment, for libtorch)

// `criterion_group!` expands to a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dlbench_native::kernels::gemm::{sgemm, MatRef};

/// `(label, m, k, n)`.
const SHAPES: &[(&str, usize, usize, usize)] = &[
    ("square64", 64, 64, 64),
    ("square128", 128, 128, 128),
    ("square256", 256, 256, 256),
    ("square512", 512, 512, 512),
    ("square1024", 1024, 1024, 1024),
    ("square2048", 2048, 2048, 2048),
    // CNN conv2 as im2col: 64 filters x (32 channels * 3 * 3) x (13 * 13 positions * batch 32).
    ("cnn_conv2", 64, 288, 169 * 32),
    // CNN dense layer at batch 32: 2304 features -> 100, as dx = dy W would read it (B
    // row-major) and as the forward x Wᵀ does (`_wt`: B a transposed view, packed by
    // transposing).
    ("dense", 32, 2304, 100),
    ("dense_wt", 32, 2304, 100),
    // VAE encoder at batch 32: 1000 features -> 256, x Wᵀ.
    ("vae_enc_wt", 32, 1000, 256),
    // LSTM gate product at batch 32: 50 inputs -> 4 * 50 gates.
    ("lstm", 32, 50, 200),
];

fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    for &(label, m, k, n) in SHAPES {
        // Values in [-1, 1): the data do not change the speed, only avoid denormals.
        let a: Vec<f32> = (0..m * k).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i % 13) as f32 - 6.0) / 6.0).collect();
        let mut out = vec![0.0f32; m * n];
        // `_wt` shapes hold B as Wᵀ: W is n x k, row-major.
        let b_view = if label.ends_with("_wt") {
            MatRef::row_major(&b, n, k).t()
        } else {
            MatRef::row_major(&b, k, n)
        };
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        for threads in [1, 2] {
            #[cfg(feature = "tch")]
            libtorch_mm(&mut group, label, (m, k, n), (&a, &b), threads);
            #[cfg(feature = "burn")]
            burn_mm(&mut group, label, (m, k, n), (&a, &b), threads);
            #[cfg(feature = "candle")]
            candle_mm(&mut group, label, (m, k, n), (&a, &b), threads);
            let id = BenchmarkId::new(label, format!("native/t{threads}"));
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    sgemm(
                        1.0,
                        MatRef::row_major(&a, m, k),
                        b_view,
                        0.0,
                        &mut out,
                        n,
                        threads,
                    )
                })
            });
        }
    }
    group.finish();
}

/// libtorch's own product on the same data and thread count.
#[cfg(feature = "tch")]
fn libtorch_mm(
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    label: &str,
    (m, k, n): (usize, usize, usize),
    (a, b): (&[f32], &[f32]),
    threads: usize,
) {
    use tch::{Device, Kind, Tensor};
    dlbench_tch::configure_threads(threads).expect("libtorch thread count");
    let a = Tensor::from_slice(a).reshape([m as i64, k as i64]);
    let b = if label.ends_with("_wt") {
        Tensor::from_slice(b).reshape([n as i64, k as i64]).tr()
    } else {
        Tensor::from_slice(b).reshape([k as i64, n as i64])
    };
    let out = Tensor::zeros([m as i64, n as i64], (Kind::Float, Device::Cpu));
    let id = BenchmarkId::new(label, format!("libtorch/t{threads}"));
    group.bench_function(id, |bench| bench.iter(|| a.mm_out(&out, &b)));
}

/// A rayon pool of `threads`: burn-flex's and candle's matmuls split their work over the
/// current rayon pool, which a process sizes once globally; a local pool per thread count puts
/// both counts in one run.
#[cfg(any(feature = "burn", feature = "candle"))]
fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool")
}

/// burn-flex's `matmul` on the same data, in a pool of `threads`.
#[cfg(feature = "burn")]
fn burn_mm(
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    label: &str,
    (m, k, n): (usize, usize, usize),
    (a, b): (&[f32], &[f32]),
    threads: usize,
) {
    use burn::tensor::{Device, Tensor, TensorData};
    let device = Device::flex();
    let a: Tensor<2> = Tensor::from_data(TensorData::new(a.to_vec(), [m, k]), &device);
    let b: Tensor<2> = if label.ends_with("_wt") {
        Tensor::<2>::from_data(TensorData::new(b.to_vec(), [n, k]), &device).transpose()
    } else {
        Tensor::from_data(TensorData::new(b.to_vec(), [k, n]), &device)
    };
    let pool = pool(threads);
    let id = BenchmarkId::new(label, format!("burn/t{threads}"));
    group.bench_function(id, |bench| {
        pool.install(|| bench.iter(|| a.clone().matmul(b.clone())))
    });
}

/// candle's `matmul` on the same data, in a pool of `threads`. candle also reads
/// `RAYON_NUM_THREADS` at every product to choose how many parts to split it into, so that is
/// set to the same count.
#[cfg(feature = "candle")]
fn candle_mm(
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    label: &str,
    (m, k, n): (usize, usize, usize),
    (a, b): (&[f32], &[f32]),
    threads: usize,
) {
    use candle_core::{Device, Tensor};
    let device = Device::Cpu;
    let a = Tensor::from_slice(a, (m, k), &device).expect("a");
    let b = if label.ends_with("_wt") {
        Tensor::from_slice(b, (n, k), &device).and_then(|w| w.t())
    } else {
        Tensor::from_slice(b, (k, n), &device)
    }
    .expect("b");
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let pool = pool(threads);
    let id = BenchmarkId::new(label, format!("candle/t{threads}"));
    group.bench_function(id, |bench| {
        pool.install(|| bench.iter(|| a.matmul(&b).expect("matmul")))
    });
}

criterion_group!(benches, gemm);
criterion_main!(benches);
