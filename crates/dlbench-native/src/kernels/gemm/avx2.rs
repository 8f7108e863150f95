//! The AVX2 + FMA micro-kernel: a 6 x 16 tile of `C` held in 12 `ymm` accumulators.
//!
//! Why 6 x 16: with 16 `ymm` registers, 12 accumulators + 2 `B` vectors + 1 broadcast = 15
//! fit without spilling, and 12 independent FMA chains cover the FMA latency times the two
//! FMA pipes (4 x 2 = 8). Each `k` step does 2 loads + 6 broadcasts for 12 FMAs. This is the
//! classic Haswell-era BLIS shape.

use super::APanel;
use std::arch::x86_64::{
    __m256, __m256i, _mm256_cmpgt_epi32, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_maskload_ps,
    _mm256_maskstore_ps, _mm256_mul_ps, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32,
    _mm256_setzero_ps, _mm256_storeu_ps, _mm_prefetch, _MM_HINT_T0,
};

/// Rows of the register tile.
pub(crate) const MR: usize = 6;
/// Columns of the register tile (2 vectors of 8 lanes).
pub(crate) const NR: usize = 16;

/// `C[0..6, 0..16] = alpha * Apanel Bpanel + beta * C` (with `beta == 0`, `C` is only written).
///
/// # Safety
/// The CPU must support AVX2 and FMA. `a` must lay out 6 rows of `kc` readable floats
/// (`APanel`: the packed `A` panel, or rows of a row-major `A` read in place); `b` to
/// `kc` rows of 16 readable floats, `ldb` apart (the packed `B` panel,
/// `ldb = 16`, or a row-major `B` read in place); `c` to a 6 x 16 block with row stride
/// `ldc`, readable (unless `beta == 0`) and writable.
// The argument list is the BLIS micro-kernel contract (panels, strides, scalars).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn kernel(
    kc: usize,
    a: APanel,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    let mut acc: [[__m256; 2]; MR] = [[_mm256_setzero_ps(); 2]; MR];
    // Start fetching the C tile now, so that its lines (rows `ldc` apart, likely out of cache
    // for a large C) arrive during the `kc` loop rather than stall the stores after it.
    for i in 0..MR {
        _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc + 15) as *const i8);
    }
    // Each row of the A panel, as an offset from the current column (see `APanel`).
    let rows: [usize; MR] = std::array::from_fn(|i| i * a.row);
    let (mut a, step) = (a.ptr, a.step);
    let mut b = b;
    for _ in 0..kc {
        // SAFETY: the caller guarantees `kc` rows of 16 floats at `b` (`ldb` apart) and 6 rows
        // of `kc` floats laid out by `a`.
        unsafe {
            // A `B` read in place has rows `ldb` apart: fetch a few rows ahead, as the
            // hardware prefetcher does not follow that stride far enough.
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(8 * ldb) as *const i8);
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_set1_ps(*a.add(rows[i]));
                row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
            }
            a = a.add(step);
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

/// An edge tile: `C[0..M, 0..cols] = alpha * Apanel Bpanel + beta * C` for `M <= 6` rows and
/// `cols <= 8 * V` columns (`V` is 1 or 2), computing only `M` rows and `V` vectors and writing
/// straight into `C` with the last vector masked, as the AVX-512 edge kernel does. `B`'s last
/// vector is read masked, so the `B` panel may be packed or read in place (a ragged last
/// panel need not be packed).
///
/// # Safety
/// As `kernel`, with the block at `c` being `M x cols`, `8 * (V - 1) < cols <= 8 * V`, and `b`
/// pointing to `kc` rows of `cols` readable floats, `ldb` apart.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn edge<const M: usize, const V: usize>(
    kc: usize,
    a: APanel,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    cols: usize,
) {
    let mut acc: [[__m256; V]; M] = [[_mm256_setzero_ps(); V]; M];
    // Each row of the A panel, as an offset from the current column (see `APanel`).
    let rows: [usize; MR] = std::array::from_fn(|i| i * a.row);
    let (mut a, step) = (a.ptr, a.step);
    let mut b = b;
    // Lanes of the last vector that exist in `C` (and are read from `B`): sign bit set.
    let tail = (cols - 8 * (V - 1)) as i32;
    let mask: __m256i = _mm256_cmpgt_epi32(
        _mm256_set1_epi32(tail),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    );
    for _ in 0..kc {
        // SAFETY: the caller guarantees `kc` rows of `cols` floats at `b` (`ldb` apart), of
        // which the loads read the first `cols` (the last vector masked: masked-off lanes are
        // not read, so no fault past a `B` read in place); and `M` rows of `kc` floats
        // laid out by `a`.
        unsafe {
            let mut bv = [_mm256_setzero_ps(); V];
            for (j, v) in bv.iter_mut().enumerate().take(V - 1) {
                *v = _mm256_loadu_ps(b.add(8 * j));
            }
            bv[V - 1] = _mm256_maskload_ps(b.add(8 * (V - 1)), mask);
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_set1_ps(*a.add(rows[i]));
                for (r, &v) in row.iter_mut().zip(&bv) {
                    *r = _mm256_fmadd_ps(ai, v, *r);
                }
            }
            a = a.add(step);
            b = b.wrapping_add(ldb);
        }
    }
    let va = _mm256_set1_ps(alpha);
    let vb = _mm256_set1_ps(beta);
    let full = _mm256_set1_epi32(-1);
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let m = if j + 1 == V { mask } else { full };
            // SAFETY: the masked lanes lie inside the `M x cols` block at `c`; masked-off
            // lanes are neither read nor written.
            unsafe {
                let p = c.add(i * ldc + j * 8);
                let out = if beta == 0.0 {
                    _mm256_mul_ps(va, v)
                } else {
                    _mm256_fmadd_ps(vb, _mm256_maskload_ps(p, m), _mm256_mul_ps(va, v))
                };
                _mm256_maskstore_ps(p, m, out);
            }
        }
    }
}

/// Runs the edge tile of `rows x cols` (`1..=6` x `1..=16`) with the smallest `edge`
/// instantiation that covers it.
///
/// # Safety
/// As `kernel`, with the block at `c` being `rows x cols`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel_edge(
    rows: usize,
    cols: usize,
    kc: usize,
    a: APanel,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
) {
    macro_rules! dispatch {
        ($($m:literal)*) => {
            match (rows, cols.div_ceil(8)) {
                $(
                    ($m, 1) => edge::<$m, 1>(kc, a, b, ldb, c, ldc, alpha, beta, cols),
                    ($m, 2) => edge::<$m, 2>(kc, a, b, ldb, c, ldc, alpha, beta, cols),
                )*
                _ => unreachable!("edge tile {rows} x {cols}"),
            }
        };
    }
    // SAFETY: forwarded from the caller; the match picks `M = rows` and `V` with
    // `8 * (V - 1) < cols <= 8 * V`.
    unsafe { dispatch!(1 2 3 4 5 6) }
}
