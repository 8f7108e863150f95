//! The 2 x 2 max-pooling kernels in AVX-512F: 16 windows at a time, the two input rows'
//! even and odd columns separated by lane permutes, then the window's four values compared in
//! row-major order exactly as the scalar code does (`vmaxps(v, m)` is `v > m ? v : m`, NaN
//! and signed zeros included).

use std::arch::x86_64::{
    __m512, __m512i, __mmask16, _mm512_cmp_ps_mask, _mm512_loadu_si512, _mm512_mask_blend_ps,
    _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_maskz_mov_ps, _mm512_max_ps,
    _mm512_permutex2var_ps, _CMP_GT_OQ,
};

use super::Tiles;

/// The mask of lanes `0..n` (`n <= 16`).
fn first(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// A vector of lane indices for `_mm512_permutex2var_ps` (0..16: first operand, 16..32:
/// second).
fn indices(f: impl Fn(i32) -> i32) -> __m512i {
    let idx: [i32; 16] = std::array::from_fn(|i| f(i as i32));
    // SAFETY: `idx` is 16 readable i32s (unaligned loads are allowed).
    unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) }
}

/// The even and odd columns of the `2n` floats at `row` (`n <= 16` windows).
///
/// # Safety
/// AVX-512F; `row` readable for `2n` floats.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn split(row: *const f32, n: usize, even: __m512i, odd: __m512i) -> (__m512, __m512) {
    // SAFETY: the lanes loaded are the `2n` floats at `row` (the second vector's address is
    // only formed, with wrapping arithmetic, when it loads nothing).
    let (lo, hi) = unsafe {
        (
            _mm512_maskz_loadu_ps(first((2 * n).min(16)), row),
            _mm512_maskz_loadu_ps(first((2 * n).saturating_sub(16)), row.wrapping_add(16)),
        )
    };
    (
        _mm512_permutex2var_ps(lo, even, hi),
        _mm512_permutex2var_ps(lo, odd, hi),
    )
}

/// As `super::max_2x2_portable`.
///
/// # Safety
/// AVX-512F; `plane` is an input plane of `t` and `y` an output plane, `t.kernel == [2, 2]`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn max_2x2(t: &Tiles, plane: &[f32], y: &mut [f32]) {
    let (w, ow) = (t.width, t.out[1]);
    assert!(plane.len() >= t.height * w && y.len() >= t.out[0] * ow && 2 * t.out[0] <= t.height);
    let (even, odd) = (indices(|i| 2 * i), indices(|i| 2 * i + 1));
    for oy in 0..t.out[0] {
        for ox in (0..ow).step_by(16) {
            let n = (ow - ox).min(16);
            // SAFETY: input rows `2oy` and `2oy + 1 < height`, columns `2ox..2(ox + n) <= w`;
            // output row `oy`, columns `ox..ox + n <= ow`.
            unsafe {
                let (a, b) = split(plane.as_ptr().add(2 * oy * w + 2 * ox), n, even, odd);
                let (c, d) = split(plane.as_ptr().add((2 * oy + 1) * w + 2 * ox), n, even, odd);
                let m = _mm512_max_ps(d, _mm512_max_ps(c, _mm512_max_ps(b, a)));
                _mm512_mask_storeu_ps(y.as_mut_ptr().add(oy * ow + ox), first(n), m);
            }
        }
    }
}

/// As `super::max_2x2_backward_portable`.
///
/// # Safety
/// As `max_2x2`, with `dy` an output plane and `dx` an input plane.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn max_2x2_backward(t: &Tiles, plane: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (w, ow) = (t.width, t.out[1]);
    let plane_len = t.height * w;
    assert!(plane.len() >= plane_len && dx.len() >= plane_len && 2 * t.out[0] <= t.height);
    assert!(dy.len() >= t.out[0] * ow);
    let (even, odd) = (indices(|i| 2 * i), indices(|i| 2 * i + 1));
    // Interleaving back: lane 2i from the first operand's lane i, 2i + 1 from the second's.
    let low = indices(|i| i / 2 + 16 * (i % 2));
    let high = indices(|i| 8 + i / 2 + 16 * (i % 2));
    for oy in 0..t.out[0] {
        for ox in (0..ow).step_by(16) {
            let n = (ow - ox).min(16);
            let (m_lo, m_hi) = (first((2 * n).min(16)), first((2 * n).saturating_sub(16)));
            // SAFETY: as in `max_2x2`, for reading `plane` and `dy` and writing `dx`.
            unsafe {
                let r0 = 2 * oy * w + 2 * ox;
                let r1 = r0 + w;
                let (a, b) = split(plane.as_ptr().add(r0), n, even, odd);
                let (c, d) = split(plane.as_ptr().add(r1), n, even, odd);
                let g = _mm512_maskz_loadu_ps(first(n), dy.as_ptr().add(oy * ow + ox));
                // Which element wins: the last one strictly greater than all before it.
                let beats_a = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(b, a);
                let m = _mm512_mask_blend_ps(beats_a, a, b);
                let beats_ab = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(c, m);
                let m = _mm512_mask_blend_ps(beats_ab, m, c);
                let beats_abc = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(d, m);
                let wins_d = beats_abc;
                let wins_c = beats_ab & !wins_d;
                let wins_b = beats_a & !beats_ab & !wins_d;
                let wins_a = !(beats_a | beats_ab | beats_abc);
                let (ga, gb) = (
                    _mm512_maskz_mov_ps(wins_a, g),
                    _mm512_maskz_mov_ps(wins_b, g),
                );
                let (gc, gd) = (
                    _mm512_maskz_mov_ps(wins_c, g),
                    _mm512_maskz_mov_ps(wins_d, g),
                );
                let out = dx.as_mut_ptr();
                _mm512_mask_storeu_ps(out.add(r0), m_lo, _mm512_permutex2var_ps(ga, low, gb));
                _mm512_mask_storeu_ps(
                    out.wrapping_add(r0 + 16),
                    m_hi,
                    _mm512_permutex2var_ps(ga, high, gb),
                );
                _mm512_mask_storeu_ps(out.add(r1), m_lo, _mm512_permutex2var_ps(gc, low, gd));
                _mm512_mask_storeu_ps(
                    out.wrapping_add(r1 + 16),
                    m_hi,
                    _mm512_permutex2var_ps(gc, high, gd),
                );
            }
        }
    }
}
