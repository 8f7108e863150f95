//! The AVX2 + FMA micro-kernel: a 6 x 16 tile of `C` held in 12 `ymm` accumulators.
//!
//! Why 6 x 16: with 16 `ymm` registers, 12 accumulators + 2 `B` vectors + 1 broadcast = 15
//! fit without spilling, and 12 independent FMA chains cover the FMA latency times the two
//! FMA pipes (4 x 2 = 8). Each `k` step does 2 loads + 6 broadcasts for 12 FMAs. This is the
//! classic Haswell-era BLIS shape.

use std::arch::x86_64::{
    __m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_storeu_ps,
};

/// Rows of the register tile.
pub(crate) const MR: usize = 6;
/// Columns of the register tile (2 vectors of 8 lanes).
pub(crate) const NR: usize = 16;

/// `C[0..6, 0..16] = alpha * Apanel Bpanel + beta * C` (with `beta == 0`, `C` is only written).
///
/// # Safety
/// The CPU must support AVX2 and FMA. `a` must point to `6 * kc` readable floats (the packed
/// `A` panel); `b` to `kc` rows of 16 readable floats, `ldb` apart (the packed `B` panel,
/// `ldb = 16`, or a row-major `B` read in place); `c` to a 6 x 16 block with row stride
/// `ldc`, readable (unless `beta == 0`) and writable.
// The argument list is the BLIS micro-kernel contract (panels, strides, scalars).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn kernel(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    let mut acc: [[__m256; 2]; MR] = [[_mm256_setzero_ps(); 2]; MR];
    let mut a = a;
    let mut b = b;
    for _ in 0..kc {
        // SAFETY: the caller guarantees `kc` rows of 16 floats at `b` (`ldb` apart) and of 6
        // floats at `a`.
        unsafe {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_set1_ps(*a.add(i));
                row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
            }
            a = a.add(MR);
            // Wrapping: after the last row, `b` may point past the end of an in-place `B`.
            b = b.wrapping_add(ldb);
        }
    }
    let va = _mm256_set1_ps(alpha);
    let vb = _mm256_set1_ps(beta);
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            // SAFETY: the caller guarantees the 6 x 16 block at `c` (row stride `ldc`).
            unsafe {
                let p = c.add(i * ldc + j * 8);
                let out = if beta == 0.0 {
                    _mm256_mul_ps(va, v)
                } else {
                    _mm256_fmadd_ps(vb, _mm256_loadu_ps(p), _mm256_mul_ps(va, v))
                };
                _mm256_storeu_ps(p, out);
            }
        }
    }
}
