//! The native sgemm side by side with the `gemm` crate (the product under candle and burn) and,
//! built with `--features tch`, libtorch's `mm`, on the shapes of `benches/gemm.rs`, at 1 and
//! 2 threads: a Markdown table of median GFLOP/s and native's ratio to the faster of the
//! others, the figure issue 16 is judged by.
//!
//! `cargo run --release -p dlbench-benchmarks --features tch --example gemm_table [-- ROUNDS
//! [SHAPE...]]` (all shapes by default; name some, `dense_wt`, to time only those)
//!
//! The contenders are timed in turn within each round, over many rounds, so that a noisy
//! minute of this shared machine slows all of them rather than one. `DLBENCH_ISA` caps the
//! native kernels; the `gemm` crate as built here (without its `x86-v4` feature) runs its
//! AVX2 + FMA kernels on every x86 CPU; libtorch is capped by its own variables
//! (`ATEN_CPU_CAPABILITY=avx2`, `MKL_ENABLE_INSTRUCTIONS=AVX2`, `ONEDNN_MAX_CPU_ISA=AVX2`). For
//! one thread, pin the process to one core (`taskset -c 1`): unpinned runs were up to 2x
//! slower on a Zen 3 machine.

use std::time::Instant;

use dlbench_native::kernels::gemm::{sgemm, MatRef};
use dlbench_native::kernels::isa::kernel_isa;

/// `(label, m, k, n, B is Wᵀ)`, as in `benches/gemm.rs`.
const SHAPES: &[(&str, usize, usize, usize, bool)] = &[
    ("square64", 64, 64, 64, false),
    ("square128", 128, 128, 128, false),
    ("square256", 256, 256, 256, false),
    ("square512", 512, 512, 512, false),
    ("square1024", 1024, 1024, 1024, false),
    ("square2048", 2048, 2048, 2048, false),
    ("cnn_conv2", 64, 288, 169 * 32, false),
    ("dense", 32, 2304, 100, false),
    ("dense_wt", 32, 2304, 100, true),
    ("vae_enc_wt", 32, 1000, 256, true),
    ("lstm", 32, 50, 200, false),
];

/// One product on prepared operands, run many times.
type Product<'a> = Box<dyn FnMut() + 'a>;

/// The operands of one shape: `A` is `m x k`, `B` is `k x n`, or with `wt` stored as the
/// `n x k` weight `W` and read transposed.
#[derive(Clone, Copy)]
struct Operands<'a> {
    a: &'a [f32],
    b: &'a [f32],
    m: usize,
    k: usize,
    n: usize,
    wt: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args
        .first()
        .map(|r| r.parse().expect("ROUNDS is a number"))
        .unwrap_or(15);
    let only = &args[args.len().min(1)..];
    let isa = kernel_isa().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    println!("native kernels: {isa}; median GFLOP/s of {rounds} interleaved rounds\n");
    let mut header = vec!["shape", "threads", "native"];
    if cfg!(feature = "tch") {
        header.push("libtorch");
    }
    header.extend(["gemm crate", "native / best other"]);
    println!("| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    for &(label, m, k, n, wt) in SHAPES {
        if !only.is_empty() && !only.iter().any(|o| o == label) {
            continue;
        }
        let a: Vec<f32> = (0..m * k).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i % 13) as f32 - 6.0) / 6.0).collect();
        for threads in [1, 2] {
            let flops = 2.0 * (m * n * k) as f64;
            let ops = Operands {
                a: &a,
                b: &b,
                m,
                k,
                n,
                wt,
            };
            let mut products: Vec<Product> = vec![native(ops, threads)];
            #[cfg(feature = "tch")]
            products.push(libtorch(ops, threads));
            products.push(gemm_crate(ops, threads));
            let gflops = interleaved(&mut products, flops, rounds);
            let best_other = gflops[1..].iter().copied().fold(0.0, f64::max);
            let mut row = vec![label.to_string(), threads.to_string()];
            row.extend(gflops.iter().map(|g| format!("{g:.1}")));
            row.push(format!("{:.2}", gflops[0] / best_other));
            println!("| {} |", row.join(" | "));
        }
    }
}

/// Median GFLOP/s of each product over `rounds` rounds, each timing every product in turn for
/// about 20 ms (after one untimed call that sizes buffers and warms caches).
fn interleaved(products: &mut [Product], flops: f64, rounds: usize) -> Vec<f64> {
    let reps: Vec<usize> = products
        .iter_mut()
        .map(|p| {
            p();
            let start = Instant::now();
            p();
            let once = start.elapsed().as_secs_f64().max(1e-7);
            ((0.02 / once) as usize).clamp(1, 100_000)
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(rounds); products.len()];
    for _ in 0..rounds {
        for ((p, &r), s) in products.iter_mut().zip(&reps).zip(&mut samples) {
            let start = Instant::now();
            for _ in 0..r {
                p();
            }
            s.push(flops * r as f64 / start.elapsed().as_secs_f64() / 1e9);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

fn native<'a>(ops: Operands<'a>, threads: usize) -> Product<'a> {
    let Operands { a, b, m, k, n, wt } = ops;
    let b_view = if wt {
        MatRef::row_major(b, n, k).t()
    } else {
        MatRef::row_major(b, k, n)
    };
    let mut out = vec![0.0f32; m * n];
    Box::new(move || {
        sgemm(
            1.0,
            MatRef::row_major(a, m, k),
            b_view,
            0.0,
            &mut out,
            n,
            threads,
        )
    })
}

#[cfg(feature = "tch")]
fn libtorch<'a>(ops: Operands<'a>, threads: usize) -> Product<'a> {
    let Operands { a, b, m, k, n, wt } = ops;
    use tch::{Device, Kind, Tensor};
    let a = Tensor::from_slice(a).reshape([m as i64, k as i64]);
    let b = if wt {
        Tensor::from_slice(b).reshape([n as i64, k as i64]).tr()
    } else {
        Tensor::from_slice(b).reshape([k as i64, n as i64])
    };
    let out = Tensor::zeros([m as i64, n as i64], (Kind::Float, Device::Cpu));
    Box::new(move || {
        // Set at each call: the products of both thread counts share the process.
        dlbench_tch::configure_threads(threads).expect("libtorch thread count");
        let _ = a.mm_out(&out, &b);
    })
}

/// The `gemm` crate's product into a preallocated output, on a rayon pool of `threads`.
fn gemm_crate<'a>(ops: Operands<'a>, threads: usize) -> Product<'a> {
    let Operands { a, b, m, k, n, wt } = ops;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");
    let mut out = vec![0.0f32; m * n];
    // Strides in elements: (column, row). Wᵀ is B with its strides swapped.
    let (b_cs, b_rs) = if wt { (k as isize, 1) } else { (1, n as isize) };
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    Box::new(move || {
        pool.install(|| {
            // SAFETY: `a` is m x k row-major, `b` k x n (or n x k read transposed) and `out`
            // m x n row-major: every index the strides reach lies inside its slice.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    out.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    b_cs,
                    b_rs,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                )
            }
        })
    })
}
