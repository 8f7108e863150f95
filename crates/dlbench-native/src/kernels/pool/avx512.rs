//! The 2 x 2 max-pooling kernels in AVX-512F: 16 windows at a time, the two input rows'
//! even and odd columns separated by lane permutes, then the window's four values compared in
//! row-major order exactly as the scalar code does (`v > m ? v : m`, so NaN and signed zeros
//! come out the same), and gradients interleaved back by the inverse permutes.

use std::arch::x86_64::{
    __m512, __m512i, __mmask16, _mm512_cmp_ps_mask, _mm512_cmpeq_epi32_mask, _mm512_cvtepi32_epi8,
    _mm512_cvtepu8_epi32, _mm512_loadu_si512, _mm512_mask_blend_ps, _mm512_mask_mov_epi32,
    _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_maskz_mov_ps, _mm512_permutex2var_ps,
    _mm512_set1_epi32, _mm512_setzero_si512, _mm_loadu_si128, _mm_storeu_si128, _CMP_GT_OQ,
};

use super::Tiles;

/// The mask of lanes `0..n` (`n <= 16`).
fn first(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// A vector of lane indices for `_mm512_permutex2var_ps` (0..16: first operand, 16..32:
/// second). (A target-feature function, so that the load is inlined: called from plain code,
/// the intrinsic was an out-of-line call costing as much as a plane's kernel.)
#[target_feature(enable = "avx512f")]
fn indices(f: impl Fn(i32) -> i32) -> __m512i {
    let idx: [i32; 16] = std::array::from_fn(|i| f(i as i32));
    // SAFETY: `idx` is 16 readable i32s (unaligned loads are allowed).
    unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) }
}

/// The lane permutations: `even` / `odd` split 32 consecutive floats into their even and odd
/// columns, `low` / `high` interleave two vectors back into 32.
struct Permutes {
    even: __m512i,
    odd: __m512i,
    low: __m512i,
    high: __m512i,
}

impl Permutes {
    #[target_feature(enable = "avx512f")]
    fn new() -> Self {
        Permutes {
            even: indices(|i| 2 * i),
            odd: indices(|i| 2 * i + 1),
            low: indices(|i| i / 2 + 16 * (i % 2)),
            high: indices(|i| 8 + i / 2 + 16 * (i % 2)),
        }
    }
}

/// Where `n <= 16` windows of a row of windows lie: the offsets of their top-left elements in
/// the plane (`top`, and `top + width` below), and the load / store masks of the 2n floats
/// per input row.
#[derive(Clone, Copy)]
struct Span {
    top: usize,
    width: usize,
    n: usize,
}

impl Span {
    fn masks(&self) -> (__mmask16, __mmask16) {
        (
            first((2 * self.n).min(16)),
            first((2 * self.n).saturating_sub(16)),
        )
    }
}

/// The windows' elements in row-major order: top-left, top-right, bottom-left, bottom-right.
///
/// # Safety
/// AVX-512F; the plane at `plane` holds both input rows of the span's `2n` columns.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load(plane: *const f32, s: Span, p: &Permutes) -> [__m512; 4] {
    let (lo, hi) = s.masks();
    let split = |at: usize| {
        // SAFETY: the lanes loaded are the `2n` floats of the span in one input row (the
        // second vector's address is only formed, with wrapping arithmetic, when it loads
        // nothing).
        let (a, b) = unsafe {
            (
                _mm512_maskz_loadu_ps(lo, plane.add(at)),
                _mm512_maskz_loadu_ps(hi, plane.wrapping_add(at + 16)),
            )
        };
        (
            _mm512_permutex2var_ps(a, p.even, b),
            _mm512_permutex2var_ps(a, p.odd, b),
        )
    };
    let ((a, b), (c, d)) = (split(s.top), split(s.top + s.width));
    [a, b, c, d]
}

/// Each window's maximum, and which element is its first maximum (one mask per element):
/// the last one strictly greater than all before it.
#[inline]
#[target_feature(enable = "avx512f")]
fn first_max([a, b, c, d]: [__m512; 4]) -> (__m512, [__mmask16; 4]) {
    let beats_a = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(b, a);
    let m = _mm512_mask_blend_ps(beats_a, a, b);
    let beats_ab = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(c, m);
    let m = _mm512_mask_blend_ps(beats_ab, m, c);
    let beats_abc = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(d, m);
    let m = _mm512_mask_blend_ps(beats_abc, m, d);
    let wins = [
        !(beats_a | beats_ab | beats_abc),
        beats_a & !beats_ab & !beats_abc,
        beats_ab & !beats_abc,
        beats_abc,
    ];
    (m, wins)
}

/// Writes gradient `g` of each window to the element `wins` marks, zeros to the others.
///
/// # Safety
/// AVX-512F; the plane at `dx` holds both input rows of the span's `2n` columns.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store_grads(dx: *mut f32, s: Span, g: __m512, wins: [__mmask16; 4], p: &Permutes) {
    let (lo, hi) = s.masks();
    let [ga, gb, gc, gd] = wins.map(|w| _mm512_maskz_mov_ps(w, g));
    for (at, left, right) in [(s.top, ga, gb), (s.top + s.width, gc, gd)] {
        // SAFETY: the lanes stored are the `2n` floats of the span in one input row.
        unsafe {
            _mm512_mask_storeu_ps(dx.add(at), lo, _mm512_permutex2var_ps(left, p.low, right));
            let upper = _mm512_permutex2var_ps(left, p.high, right);
            _mm512_mask_storeu_ps(dx.wrapping_add(at + 16), hi, upper);
        }
    }
}

/// Calls `f(span, output offset)` for each run of up to 16 windows.
fn for_each_span(t: &Tiles, mut f: impl FnMut(Span, usize)) {
    let (w, ow) = (t.width, t.out[1]);
    for oy in 0..t.out[0] {
        for ox in (0..ow).step_by(16) {
            let n = (ow - ox).min(16);
            let top = 2 * oy * w + 2 * ox;
            f(Span { top, width: w, n }, oy * ow + ox);
        }
    }
}

/// Checks the plane lengths the kernels index by.
fn check(t: &Tiles, plane: usize, out: usize) {
    assert!(t.kernel == [2, 2] && 2 * t.out[0] <= t.height && 2 * t.out[1] <= t.width);
    assert!(plane >= t.height * t.width && out >= t.out[0] * t.out[1]);
}

/// As `super::max_2x2_portable`, also writing each window's argmax (0..4) if `argmax` is
/// given.
///
/// # Safety
/// AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn max_2x2(t: &Tiles, plane: &[f32], y: &mut [f32], argmax: Option<&mut [u8]>) {
    check(t, plane.len(), y.len());
    let p = Permutes::new();
    let (xp, yp) = (plane.as_ptr(), y.as_mut_ptr());
    let mut argmax = argmax.inspect(|a| assert!(a.len() >= t.out[0] * t.out[1]));
    for_each_span(t, |s, out| {
        // SAFETY: the span lies inside the plane and its `n` outputs inside `y` (`check`).
        let idx = unsafe {
            let (m, wins) = first_max(load(xp, s, &p));
            _mm512_mask_storeu_ps(yp.add(out), first(s.n), m);
            let mut idx = _mm512_setzero_si512();
            for (k, w) in wins.into_iter().enumerate().skip(1) {
                idx = _mm512_mask_mov_epi32(idx, w, _mm512_set1_epi32(k as i32));
            }
            _mm512_cvtepi32_epi8(idx)
        };
        if let Some(a) = &mut argmax {
            // 16 bytes stored in place (those past the run are rewritten by the next run), or
            // near the end of the plane through a buffer. (A masked narrowing store, `vpmovdb`
            // to memory, measured several times slower.)
            let mut bytes = [0u8; 16];
            let run = a.get_mut(out..out + 16).unwrap_or(&mut bytes);
            // SAFETY: `run` is 16 writable bytes.
            unsafe { _mm_storeu_si128(run.as_mut_ptr().cast(), idx) };
            if a.len() < out + 16 {
                a[out..out + s.n].copy_from_slice(&bytes[..s.n]);
            }
        }
    });
}

/// As `super::max_2x2_backward_portable`.
///
/// # Safety
/// AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn max_2x2_backward(t: &Tiles, plane: &[f32], dy: &[f32], dx: &mut [f32]) {
    check(t, plane.len(), dy.len());
    assert!(dx.len() >= t.height * t.width);
    let p = Permutes::new();
    let (xp, gp, dp) = (plane.as_ptr(), dy.as_ptr(), dx.as_mut_ptr());
    for_each_span(t, |s, out| {
        // SAFETY: as in `max_2x2`, with `dx` shaped as the plane and `dy` as the output.
        unsafe {
            let (_, wins) = first_max(load(xp, s, &p));
            let g = _mm512_maskz_loadu_ps(first(s.n), gp.add(out));
            store_grads(dp, s, g, wins, &p);
        }
    });
}

/// As `super::max_2x2_backward_portable`, from the argmax `max_2x2` saved.
///
/// # Safety
/// AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn max_2x2_backward_from_argmax(
    t: &Tiles,
    argmax: &[u8],
    dy: &[f32],
    dx: &mut [f32],
) {
    check(t, t.height * t.width, dy.len());
    assert!(argmax.len() >= dy.len() && dx.len() >= t.height * t.width);
    let p = Permutes::new();
    let (gp, dp) = (dy.as_ptr(), dx.as_mut_ptr());
    for_each_span(t, |s, out| {
        // 16 bytes read in place, or (near the end of the plane) through a buffer. (Copying
        // every run to a buffer stalls the load on store-to-load forwarding.)
        let mut bytes = [0u8; 16];
        let run = match argmax.get(out..out + 16) {
            Some(run) => run,
            None => {
                bytes[..s.n].copy_from_slice(&argmax[out..out + s.n]);
                &bytes
            }
        };
        // SAFETY: as in `max_2x2_backward`; `run` is 16 readable bytes.
        unsafe {
            let idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(run.as_ptr().cast()));
            let wins: [__mmask16; 4] =
                std::array::from_fn(|k| _mm512_cmpeq_epi32_mask(idx, _mm512_set1_epi32(k as i32)));
            let g = _mm512_maskz_loadu_ps(first(s.n), gp.add(out));
            store_grads(dp, s, g, wins, &p);
        }
    });
}
