//! Every path against an f64 product: shapes with edge tiles on both sides, all four
//! transpose combinations, padded strides, alpha/beta, `beta == 0` over NaN, `ldc > n`, and
//! 1 or 2 threads.
//!
//! Error bound: each f32 result is a `k`-term dot product, rounded at every step; the
//! classic bound is `|c - exact| <= gamma_k * sum |a||b|` with `gamma_k ~ k * 2^-24` for any
//! summation order (the blocked paths sum in a different order than the portable one), plus
//! one rounding each for the `alpha` and `beta` terms. We allow `(k + 2) * 2^-22`, four
//! times that, which still catches any wrong term (an error of one `|a||b|` term is far larger
//! for the magnitudes drawn here).

use super::{sgemm_bias_on, sgemm_on, Blocking, Isa, MatRef, SPLIT_WORK};
use crate::kernels::test_rng::Rng;

/// The storage of a `rows x cols` operand: row-major with `pad` extra floats per row, or (if
/// `transposed`) its transpose stored that way, viewed through `MatRef::t`.
struct Operand {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    transposed: bool,
    pad: usize,
}

impl Operand {
    fn new(rng: &mut Rng, rows: usize, cols: usize, transposed: bool, pad: usize) -> Self {
        let (r, c) = if transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        Operand {
            data: rng.fill(r * (c + pad)),
            rows,
            cols,
            transposed,
            pad,
        }
    }

    fn view(&self) -> MatRef<'_> {
        let (r, c) = if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        };
        let v = MatRef {
            data: &self.data,
            rows: r,
            cols: c,
            row_stride: c + self.pad,
            col_stride: 1,
        };
        if self.transposed {
            v.t()
        } else {
            v
        }
    }
}

/// One case: runs `path` and checks every element of C (and that padding is untouched).
#[allow(clippy::too_many_arguments)]
fn check(
    path: Isa,
    blocking: Option<Blocking>,
    (m, n, k): (usize, usize, usize),
    (ta, tb): (bool, bool),
    alpha: f32,
    beta: f32,
    ldc: usize,
    threads: usize,
    seed: u64,
) {
    let mut rng = Rng(seed | 1);
    let a = Operand::new(&mut rng, m, k, ta, 3);
    let b = Operand::new(&mut rng, k, n, tb, 1);
    let (av, bv) = (a.view(), b.view());
    let c0: Vec<f32> = if beta == 0.0 {
        vec![f32::NAN; m * ldc]
    } else {
        rng.fill(m * ldc)
    };
    let mut c = c0.clone();
    sgemm_on(path, blocking, alpha, av, bv, beta, &mut c, ldc, threads);
    for i in 0..m {
        for j in 0..ldc {
            let got = c[i * ldc + j];
            if j >= n {
                assert!(
                    got.to_bits() == c0[i * ldc + j].to_bits(),
                    "{path:?} wrote padding ({i},{j})"
                );
                continue;
            }
            let (mut exact, mut mag) = (0.0f64, 0.0f64);
            for p in 0..k {
                let t = av.at(i, p) as f64 * bv.at(p, j) as f64;
                exact += t;
                mag += t.abs();
            }
            let (mut want, mut bound) = (alpha as f64 * exact, alpha.abs() as f64 * mag);
            if beta != 0.0 {
                let old = c0[i * ldc + j] as f64;
                want += beta as f64 * old;
                bound += (beta as f64 * old).abs();
            }
            let tol = (k as f64 + 2.0) * 2f64.powi(-22) * bound + 1e-30;
            assert!(
                ((got as f64) - want).abs() <= tol,
                "{path:?} m{m} n{n} k{k} ta{ta} tb{tb} alpha{alpha} beta{beta} ldc{ldc} \
                 threads{threads}: C[{i},{j}] = {got}, want {want} (tol {tol})"
            );
        }
    }
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (7, 13, 29),
    (64, 64, 64),
    (6, 64, 256),
    (257, 129, 65),
    (300, 3, 5),
    (2, 300, 9),
    (5, 8, 700),
    (33, 70, 1),
    (12, 130, 300),
];

const TRANSPOSES: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

#[test]
fn gemm_every_path_shape_and_transpose() {
    for path in Isa::available() {
        for (s, &shape) in SHAPES.iter().enumerate() {
            for (t, &tr) in TRANSPOSES.iter().enumerate() {
                let seed = (s * 4 + t) as u64 + 7;
                check(path, None, shape, tr, 1.0, 0.0, shape.1, 1, seed);
            }
        }
    }
}

#[test]
fn gemm_alpha_beta_and_ldc() {
    let cases = [
        (1.0, 0.0),
        (0.5, 0.0),
        (1.0, 1.0),
        (-2.0, 0.25),
        (0.0, 0.5),
        (0.0, 0.0),
    ];
    for path in Isa::available() {
        for &(alpha, beta) in &cases {
            for &(m, n, k) in &[(7, 13, 29), (70, 90, 33)] {
                check(
                    path,
                    None,
                    (m, n, k),
                    (false, true),
                    alpha,
                    beta,
                    n + 5,
                    1,
                    3,
                );
                check(path, None, (m, n, k), (true, false), alpha, beta, n, 1, 5);
            }
        }
    }
}

#[test]
fn gemm_zero_k_scales_c() {
    for path in Isa::available() {
        check(path, None, (5, 9, 0), (false, false), 1.0, 0.0, 9, 1, 11);
        check(path, None, (5, 9, 0), (false, false), 1.0, 3.0, 12, 1, 11);
    }
}

/// Tiny blocks so that shapes of a few dozen cross every `nc`, `kc` and `mc` boundary.
#[test]
fn gemm_small_blocks_cover_every_loop() {
    for path in Isa::available() {
        let nr = if path == Isa::Avx2 { 16 } else { 64 };
        let blocking = Blocking {
            kc: 16,
            mc: 12,
            nc: 2 * nr,
            // Split even these small shapes across threads.
            split_work: 0,
        };
        for &(ta, tb) in &TRANSPOSES {
            for &(alpha, beta) in &[(1.0, 0.0), (1.5, -0.5)] {
                // 31 rows: several row blocks (packed B, row bands on 2 threads); 10 rows:
                // one row block (B read in place when row-major, column bands on 2 threads).
                for m in [31, 10] {
                    let shape = (m, 4 * nr + 37, 45);
                    check(
                        path,
                        Some(blocking),
                        shape,
                        (ta, tb),
                        alpha,
                        beta,
                        shape.1 + 2,
                        1,
                        13,
                    );
                    check(
                        path,
                        Some(blocking),
                        shape,
                        (ta, tb),
                        alpha,
                        beta,
                        shape.1,
                        2,
                        17,
                    );
                }
            }
        }
    }
}

#[test]
fn gemm_two_threads() {
    const { assert!(200 * 300 * 70 >= SPLIT_WORK && 7 * 20 * 40_000 >= SPLIT_WORK) };
    for path in Isa::available() {
        // Each above the work a second thread needs (`SPLIT_WORK`).
        // The last two split `k` (few rows and columns): with 2 and 3 slices below; so does
        // 20 x 300 x 700 (few rows, `k` large against `n`). With `B` transposed, 40 x 900 and
        // 24 x 1024 are swapped and their transposes back onto `C` split in row bands that
        // start off the 8 x 8 grid, with ragged columns or none.
        for &(m, n, k) in &[
            (200, 300, 70),
            (13, 700, 500),
            (40, 900, 64),
            (24, 1024, 48),
            (20, 300, 700),
            (257, 129, 129),
            (32, 100, 2304),
            (7, 20, 40_000),
        ] {
            for &(ta, tb) in &TRANSPOSES {
                check(path, None, (m, n, k), (ta, tb), 1.0, 0.0, n, 2, 19);
                check(path, None, (m, n, k), (ta, tb), 0.5, 2.0, n + 3, 2, 23);
                check(path, None, (m, n, k), (ta, tb), 0.5, 2.0, n + 1, 3, 29);
            }
        }
    }
}

/// A split `k` whose `m x n` partial products are shorter than their cache-line-rounded
/// blocks (7 x 3 = 21 floats in blocks of 32): only the product is added onto `C`, and rows
/// of the slice past the `m`th stay as they were. The bound allows the rounding of 200,000
/// terms of about 100 in all (1e-3 measured in the portable path's single chain); a missing
/// or stale partial product is off by tens.
#[test]
fn gemm_split_k_touches_only_the_product() {
    let (m, n, k) = (7, 3, 200_000);
    const { assert!(7 * 3 * 200_000 >= SPLIT_WORK) };
    let mut rng = Rng(41);
    let (a, b) = (rng.fill(m * k), rng.fill(k * n));
    let (av, bv) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
    for path in Isa::available() {
        let c0 = rng.fill((m + 4) * n);
        let mut c = c0.clone();
        sgemm_on(path, None, 1.0, av, bv, 1.0, &mut c, n, 2);
        for i in 0..m {
            for j in 0..n {
                let exact: f64 = (0..k)
                    .map(|p| av.at(i, p) as f64 * bv.at(p, j) as f64)
                    .sum();
                let want = exact + c0[i * n + j] as f64;
                let got = c[i * n + j] as f64;
                assert!(
                    (got - want).abs() <= 1e-2,
                    "{path:?} C[{i},{j}] = {got}, want {want}"
                );
            }
        }
        assert_eq!(c[m * n..], c0[m * n..], "{path:?} wrote past the product");
    }
}

/// The public entry point picks a path and gives the same answer.
#[test]
fn gemm_public_entry_point() {
    let mut rng = Rng(99);
    let (m, n, k) = (37, 41, 43);
    let a = rng.fill(m * k);
    let b = rng.fill(k * n);
    let mut fast = vec![f32::NAN; m * n];
    let mut slow = vec![0.0; m * n];
    let (av, bv) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
    super::sgemm(1.0, av, bv, 0.0, &mut fast, n, 2);
    sgemm_on(Isa::Portable, None, 1.0, av, bv, 0.0, &mut slow, n, 1);
    for (x, y) in fast.iter().zip(&slow) {
        assert!((x - y).abs() <= 1e-4, "{x} vs {y}");
    }
}

/// Every edge-tile shape: each row count below a tile and column counts around every vector
/// boundary, with `C` ending right at the tile (masked lanes must not reach past it).
#[test]
fn gemm_every_edge_tile() {
    for path in Isa::available() {
        for m in 1..=7 {
            for n in [
                1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 70,
            ] {
                check(path, None, (m, n, 5), (false, false), 1.0, 0.0, n, 1, 29);
                check(path, None, (m, n, 5), (true, true), -1.0, 0.5, n, 1, 31);
            }
        }
    }
}

/// One-row and one-column products take the GEMV path on SIMD paths: both of its forms (B
/// contiguous along columns, as `x W^T` is, or along rows), strided operands that must fall
/// back to packing, odd lengths around the 16-lane chunks, more outputs than one block of
/// row sums (2500), and alpha/beta with `beta == 0` over NaN.
#[test]
fn gemm_one_row_and_one_column_products() {
    let shapes = [
        (1, 256, 1000),
        (1, 1000, 256),
        (1, 2500, 40),
        (1, 10, 30),
        (1, 7, 17),
        (1, 33, 1),
        (256, 1, 1000),
        (1000, 1, 256),
        (10, 1, 30),
        (7, 1, 17),
        (33, 1, 1),
    ];
    for path in Isa::available() {
        for (s, &shape) in shapes.iter().enumerate() {
            for (t, &tr) in TRANSPOSES.iter().enumerate() {
                let seed = (s * 4 + t) as u64 + 101;
                check(path, None, shape, tr, 1.0, 0.0, shape.1, 1, seed);
                check(path, None, shape, tr, -0.5, 0.25, shape.1 + 3, 1, seed + 1);
            }
        }
    }
}

/// `sgemm_bias` writes the bits of `sgemm` with `beta = 1` onto rows filled with the bias, on
/// every path: swapped products (`x Wᵀ` with fewer rows than outputs), whose bias is added in
/// the transpose (ragged 8 x 8 edges, row bands on 2 threads, a split `k`), and products that
/// are not swapped (one row, more rows than outputs, `W` not transposed). `C` starts as NaN:
/// the bias is never read from it.
#[test]
fn gemm_bias_matches_a_product_onto_bias_rows() {
    let cases = [
        (7, 13, 29, true, 1),
        (12, 130, 300, true, 1),
        (40, 900, 64, true, 2),
        (24, 1024, 48, true, 2),
        (7, 20, 40_000, true, 2),
        (1, 70, 30, true, 1),
        (300, 3, 5, true, 2),
        (33, 70, 20, false, 1),
    ];
    let mut rng = Rng(47);
    for path in Isa::available() {
        for &(m, n, k, transposed, threads) in &cases {
            let a = Operand::new(&mut rng, m, k, false, 0);
            let b = Operand::new(&mut rng, k, n, transposed, 2);
            let bias = rng.fill(n);
            let ldc = n + 3;
            let mut want = vec![f32::NAN; m * ldc];
            for row in want.chunks_mut(ldc) {
                row[..n].copy_from_slice(&bias);
            }
            sgemm_on(
                path,
                None,
                0.5,
                a.view(),
                b.view(),
                1.0,
                &mut want,
                ldc,
                threads,
            );
            let mut got = vec![f32::NAN; m * ldc];
            sgemm_bias_on(path, 0.5, a.view(), b.view(), &bias, &mut got, ldc, threads);
            for i in 0..m {
                for j in 0..n {
                    let (g, w) = (got[i * ldc + j], want[i * ldc + j]);
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{path:?} m{m} n{n} k{k} threads{threads}: C[{i},{j}] = {g}, want {w}"
                    );
                }
            }
        }
    }
}
