//! Dot products between the rows of two row-major matrices, `C += A Bᵀ`, for the shapes that
//! `sgemm`'s 6 x 64 register tiles fit badly: few rows on both sides, long rows. The weight
//! gradient of a convolution with few taps per output is one: `dW[o, t] += dY[o, :] · col[t,
//! :]` over the output positions, and for a first layer on one input channel (3 x 3 = 9
//! taps) a 64-wide tile would be 86% padding. Here each 4 x 4 block of `C` is 16 vector
//! accumulators running along the rows, reduced once at the end.

use super::isa::Isa;

/// `C[i, j] += sum_p A[i, p] B[j, p]` for `A` `m x k` and `B` `n x k` (both row-major,
/// contiguous) and row-major `C` `m x n` with row stride `ldc`.
///
/// # Panics
/// When a slice is too short for its shape.
pub fn dot_rows_add(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, c: &mut [f32], ldc: usize) {
    dot_rows_add_on(Isa::chosen(), a, b, m, n, k, c, ldc);
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn dot_rows_add_on(
    isa: Isa,
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        a.len() >= m * k,
        "dot_rows_add: A is shorter than {m} x {k}"
    );
    assert!(
        b.len() >= n * k,
        "dot_rows_add: B is shorter than {n} x {k}"
    );
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "dot_rows_add: C is too short for {m} x {n} with ldc {ldc}"
    );
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: `Isa::Avx512` is only available on CPUs with AVX-512F, and the slices were
        // checked to hold their shapes.
        unsafe { avx512::dot_rows_add(a, b, m, n, k, c, ldc) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: `Isa::Avx2` is only available on CPUs with AVX2 and FMA.
        unsafe { portable_on_avx2(a, b, m, n, k, c, ldc) };
        return;
    }
    let _ = isa;
    portable(a, b, m, n, k, c, ldc);
}

/// The portable loops compiled with AVX2 enabled: the compiler keeps the `LANES` partial sums
/// in one `ymm` register (the same sums in the same order, so the same bits).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn portable_on_avx2(
    a: &[f32],
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    ldc: usize,
) {
    portable(a, b, m, n, k, c, ldc)
}

/// Independent partial sums per dot product, so the additions do not form one long chain.
const LANES: usize = 8;

#[inline(always)]
fn portable(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, c: &mut [f32], ldc: usize) {
    for i in 0..m {
        let a_row = &a[i * k..(i + 1) * k];
        for j in 0..n {
            let b_row = &b[j * k..(j + 1) * k];
            let mut lanes = [0.0f32; LANES];
            let (a_chunks, b_chunks) = (a_row.chunks_exact(LANES), b_row.chunks_exact(LANES));
            let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
            for (x, y) in a_chunks.zip(b_chunks) {
                for l in 0..LANES {
                    lanes[l] += x[l] * y[l];
                }
            }
            let mut sum: f32 = lanes.iter().sum();
            for (x, y) in a_rest.iter().zip(b_rest) {
                sum += x * y;
            }
            c[i * ldc + j] += sum;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, __mmask16, _mm512_fmadd_ps, _mm512_maskz_loadu_ps, _mm512_reduce_add_ps,
        _mm512_setzero_ps,
    };

    /// Rows of `A` and of `B` per block: 16 accumulators, 4 + 4 loads per 16 FMAs.
    const BLOCK: usize = 4;

    /// As `super::dot_rows_add_on`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and the slices must hold their shapes (checked by the
    /// caller).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot_rows_add(
        a: &[f32],
        b: &[f32],
        m: usize,
        n: usize,
        k: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        macro_rules! dispatch {
            ($rows:expr, $cols:expr, $($mi:literal $nj:literal)*) => {
                match ($rows, $cols) {
                    $(($mi, $nj) => block::<$mi, $nj>,)*
                    _ => unreachable!("dot block {} x {}", $rows, $cols),
                }
            };
        }
        let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        for i in (0..m).step_by(BLOCK) {
            for j in (0..n).step_by(BLOCK) {
                let (mi, nj) = (BLOCK.min(m - i), BLOCK.min(n - j));
                let run = dispatch!(mi, nj,
                    1 1 1 2 1 3 1 4 2 1 2 2 2 3 2 4 3 1 3 2 3 3 3 4 4 1 4 2 4 3 4 4);
                // SAFETY: rows `i..i + mi <= m` of A and `j..j + nj <= n` of B hold `k`
                // floats each; the block's last element of C is `(m-1)*ldc + n-1` at most.
                unsafe { run(ap.add(i * k), bp.add(j * k), k, cp.add(i * ldc + j), ldc) };
            }
        }
    }

    /// One `MI x NJ` block of `C += A Bᵀ`.
    ///
    /// # Safety
    /// AVX-512F; `a` and `b` point to `MI` and `NJ` rows of `k` floats, `c` to an `MI x NJ`
    /// block with row stride `ldc`.
    #[target_feature(enable = "avx512f")]
    unsafe fn block<const MI: usize, const NJ: usize>(
        a: *const f32,
        b: *const f32,
        k: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let mut acc: [[__m512; NJ]; MI] = [[_mm512_setzero_ps(); NJ]; MI];
        for p in (0..k).step_by(16) {
            // The tail's lanes past `k` load as zero and add nothing.
            let mask: __mmask16 = if k - p >= 16 {
                0xffff
            } else {
                (1u16 << (k - p)) - 1
            };
            // SAFETY: the lanes of `mask` are columns `p..min(p + 16, k)` of the rows.
            unsafe {
                let bv: [__m512; NJ] =
                    std::array::from_fn(|j| _mm512_maskz_loadu_ps(mask, b.add(j * k + p)));
                for (i, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_maskz_loadu_ps(mask, a.add(i * k + p));
                    for (r, &bj) in row.iter_mut().zip(&bv) {
                        *r = _mm512_fmadd_ps(av, bj, *r);
                    }
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                // SAFETY: inside the `MI x NJ` block at `c`.
                unsafe { *c.add(i * ldc + j) += _mm512_reduce_add_ps(v) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{dot_rows_add_on, Isa};
    use crate::kernels::test_rng::Rng;

    /// Every path against f64 dot products, accumulated onto a non-zero C with padded rows
    /// (which must stay untouched), on shapes with partial blocks on both sides and lengths
    /// around the 16-lane vector. Bound: a `k`-term f32 sum of terms in [-1, 1) is off by at
    /// most about `k * 2^-24 * k`; one wrong term is off by far more than `(k + 2) * 2^-20`.
    #[test]
    fn dot_rows_add_matches_f64() {
        for (m, n, k) in [
            (1, 1, 1),
            (32, 9, 900),
            (5, 7, 15),
            (4, 4, 16),
            (6, 3, 17),
            (9, 13, 33),
            (3, 8, 0),
            (2, 5, 200),
        ] {
            let ldc = n + 3;
            let a = Rng(1 + m as u64).fill(m * k);
            let b = Rng(7 + n as u64).fill(n * k);
            let c0 = Rng(11 + k as u64).fill(m * ldc);
            for isa in Isa::available() {
                let mut c = c0.clone();
                dot_rows_add_on(isa, &a, &b, m, n, k, &mut c, ldc);
                for i in 0..m {
                    for j in 0..ldc {
                        let got = f64::from(c[i * ldc + j]);
                        let mut want = f64::from(c0[i * ldc + j]);
                        if j < n {
                            want += (0..k)
                                .map(|p| f64::from(a[i * k + p]) * f64::from(b[j * k + p]))
                                .sum::<f64>();
                        }
                        let bound = (k + 2) as f64 * 2f64.powi(-20);
                        assert!(
                            (got - want).abs() <= bound,
                            "{isa:?} {m}x{n}x{k}: C[{i}, {j}] is {got}, expected {want}"
                        );
                    }
                }
            }
        }
    }
}
