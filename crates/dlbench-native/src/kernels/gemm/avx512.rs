//! The AVX-512F micro-kernel: a 6 x 64 tile of `C` held in 24 `zmm` accumulators.
//!
//! Why 6 x 64: each step of `k` loads 4 vectors of the packed `B` row and broadcasts 6 values
//! of `A`, then issues 24 FMAs: 10 loads per 24 FMAs, fewer than a 14 x 32 tile (16 loads per
//! 28 FMAs), which keeps the load ports well under the FMA ports' pace. 24 independent
//! accumulators cover the FMA latency times the two FMA pipes (4 x 2 = 8 needed) three times
//! over, and 24 + 4 (`B`) + 1 (broadcast) = 29 of the 32 registers leaves no spill. The tile
//! rows are 64 contiguous floats of row-major `C`: four full-vector stores.

use super::APanel;
use std::arch::x86_64::{
    __m512, __mmask16, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    _mm_prefetch, _MM_HINT_T0,
};

/// Rows of the register tile.
pub(crate) const MR: usize = 6;
/// Columns of the register tile (4 vectors of 16 lanes).
pub(crate) const NR: usize = 64;

/// `C[0..6, 0..64] = alpha * Apanel Bpanel + beta * C` (with `beta == 0`, `C` is only written).
///
/// # Safety
/// The CPU must support AVX-512F. `a` must lay out 6 rows of `kc` readable floats
/// (`APanel`: the packed `A` panel, or rows of a row-major `A` read in place); `b` to
/// `kc` rows of 64 readable floats, `ldb` apart (the packed `B` panel,
/// `ldb = 64`, or a row-major `B` read in place); `c` to a 6 x 64 block with row stride
/// `ldc`, readable (unless `beta == 0`) and writable.
// The argument list is the BLIS micro-kernel contract (panels, strides, scalars).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
    let mut acc: [[__m512; 4]; MR] = [[_mm512_setzero_ps(); 4]; MR];
    // Start fetching the C tile now, so its 24 lines (likely out of cache for a large C, and
    // rows `ldc` apart) arrive during the `kc` loop rather than stall the stores after it.
    for i in 0..MR {
        for j in 0..4 {
            _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc + j * 16) as *const i8);
        }
    }
    // Each row of the A panel, as an offset from the current column (see `APanel`).
    let rows: [usize; MR] = std::array::from_fn(|i| i * a.row);
    let (mut a, step) = (a.ptr, a.step);
    let mut b = b;
    for _ in 0..kc {
        // SAFETY: the caller guarantees `kc` rows of 64 floats at `b` (`ldb` apart) and 6 rows
        // of `kc` floats laid out by `a`.
        unsafe {
            // Fetch B a few steps ahead: the packed panel streams from L2.
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(8 * ldb) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(8 * ldb + 32) as *const i8);
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            let b2 = _mm512_loadu_ps(b.add(32));
            let b3 = _mm512_loadu_ps(b.add(48));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(rows[i]));
                row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
                row[2] = _mm512_fmadd_ps(ai, b2, row[2]);
                row[3] = _mm512_fmadd_ps(ai, b3, row[3]);
            }
            a = a.add(step);
            // Wrapping: after the last row, `b` may point past the end of an in-place `B`.
            b = b.wrapping_add(ldb);
        }
    }
    let va = _mm512_set1_ps(alpha);
    let vb = _mm512_set1_ps(beta);
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            // SAFETY: the caller guarantees the 6 x 64 block at `c` (row stride `ldc`).
            unsafe {
                let p = c.add(i * ldc + j * 16);
                let out = if beta == 0.0 {
                    _mm512_mul_ps(va, v)
                } else {
                    _mm512_fmadd_ps(vb, _mm512_loadu_ps(p), _mm512_mul_ps(va, v))
                };
                _mm512_storeu_ps(p, out);
            }
        }
    }
}

/// An edge tile: `C[0..M, 0..cols] = alpha * Apanel Bpanel + beta * C` for `M <= 6` rows and
/// `cols <= 16 * V` columns, computing only `M` rows and `V` vectors (so a 2 x 8 edge does not
/// pay for a 6 x 64 tile) and writing straight into `C` with the last vector masked (so no
/// bounce buffer). `B`'s last vector is read masked too, so the `B` panel may be a packed one
/// or `cols` columns of a row-major `B` read in place (a ragged last panel need not be packed).
///
/// # Safety
/// As `kernel`, with the block at `c` being `M x cols`, `16 * (V - 1) < cols <= 16 * V`, and
/// `b` pointing to `kc` rows of `cols` readable floats, `ldb` apart.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
    let mut acc: [[__m512; V]; M] = [[_mm512_setzero_ps(); V]; M];
    // Each row of the A panel, as an offset from the current column (see `APanel`).
    let rows: [usize; MR] = std::array::from_fn(|i| i * a.row);
    let (mut a, step) = (a.ptr, a.step);
    let mut b = b;
    // Lanes of the last vector that exist in `C` (and are read from `B`).
    let tail = cols - 16 * (V - 1);
    let mask: __mmask16 = if tail == 16 {
        0xffff
    } else {
        (1u16 << tail) - 1
    };
    for _ in 0..kc {
        // SAFETY: the caller guarantees `kc` rows of `cols` floats at `b` (`ldb` apart), of
        // which the loads read the first `cols` (the last vector masked), V <= 4; and `M <= 6`
        // rows of `kc` floats laid out by `a`. The mask is there for memory safety alone: lanes
        // past `cols` only feed accumulator lanes that are never stored, so no result shows
        // its absence, but unmasked they would read past a `B` read in place.
        unsafe {
            let mut bv = [_mm512_setzero_ps(); V];
            for (j, v) in bv.iter_mut().enumerate().take(V - 1) {
                *v = _mm512_loadu_ps(b.add(16 * j));
            }
            bv[V - 1] = _mm512_maskz_loadu_ps(mask, b.add(16 * (V - 1)));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(rows[i]));
                for (r, &v) in row.iter_mut().zip(&bv) {
                    *r = _mm512_fmadd_ps(ai, v, *r);
                }
            }
            a = a.add(step);
            b = b.wrapping_add(ldb);
        }
    }
    let va = _mm512_set1_ps(alpha);
    let vb = _mm512_set1_ps(beta);
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let m = if j + 1 == V { mask } else { 0xffff };
            // SAFETY: the masked lanes lie inside the `M x cols` block at `c`; masked-off
            // lanes are neither read nor written (no fault even past the end of `C`).
            unsafe {
                let p = c.add(i * ldc + j * 16);
                let out = if beta == 0.0 {
                    _mm512_mul_ps(va, v)
                } else {
                    _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, p), _mm512_mul_ps(va, v))
                };
                _mm512_mask_storeu_ps(p, m, out);
            }
        }
    }
}

/// Runs the edge tile of `rows x cols` (`1..=6` x `1..=64`) with the smallest `edge`
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
            match (rows, cols.div_ceil(16)) {
                $(
                    ($m, 1) => edge::<$m, 1>(kc, a, b, ldb, c, ldc, alpha, beta, cols),
                    ($m, 2) => edge::<$m, 2>(kc, a, b, ldb, c, ldc, alpha, beta, cols),
                    ($m, 3) => edge::<$m, 3>(kc, a, b, ldb, c, ldc, alpha, beta, cols),
                    ($m, 4) => edge::<$m, 4>(kc, a, b, ldb, c, ldc, alpha, beta, cols),
                )*
                _ => unreachable!("edge tile {rows} x {cols}"),
            }
        };
    }
    // SAFETY: forwarded from the caller; the match picks `M = rows` and `V` with
    // `16 * (V - 1) < cols <= 16 * V`.
    unsafe { dispatch!(1 2 3 4 5 6) }
}
