//! The AVX2 + FMA path, 8 lanes: the portable algorithms vectorised, exponent bits and all
//! (AVX2 has no `getexp` or `scalef`), with fused multiply-adds.

use std::arch::x86_64::{
    __m256, __m256i, _mm256_add_epi32, _mm256_add_ps, _mm256_and_ps, _mm256_and_si256,
    _mm256_andnot_ps, _mm256_blendv_ps, _mm256_castps_si256, _mm256_castsi256_ps, _mm256_cmp_ps,
    _mm256_cvtepi32_ps, _mm256_cvtps_epi32, _mm256_div_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps,
    _mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_mul_ps, _mm256_or_ps, _mm256_or_si256,
    _mm256_round_ps, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setzero_ps, _mm256_slli_epi32,
    _mm256_srai_epi32, _mm256_srli_epi32, _mm256_storeu_ps, _mm256_sub_epi32, _mm256_sub_ps,
    _CMP_EQ_OQ, _CMP_GT_OQ, _CMP_LT_OQ, _CMP_NLT_UQ, _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEAREST_INT,
};

use super::{
    Func, EXP_MAX, EXP_MIN, EXP_POLY, LN2_HI, LN2_LO, LN_POLY, LOG2_E, SQRT_2, TANH_POLY,
    TANH_SMALL,
};

const LANES: usize = 8;

/// `func` over `len` floats from `src` into `dst`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `src` must be readable and `dst` writable for `len`
/// floats, and they must be the same pointer or not overlap.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn map(func: Func, src: *const f32, dst: *mut f32, len: usize) {
    // One loop per function, so that each body is inlined with no per-vector dispatch.
    macro_rules! each_vector {
        ($f:ident) => {{
            let mut i = 0;
            while i + LANES <= len {
                // SAFETY: `i + 8 <= len`; the vector is loaded before its result is stored.
                unsafe { _mm256_storeu_ps(dst.add(i), $f(_mm256_loadu_ps(src.add(i)))) };
                i += LANES;
            }
            if i < len {
                // The ragged tail goes through a full vector on the stack.
                let rest = len - i;
                let mut buf = [0.0f32; LANES];
                // SAFETY: `rest` floats remain at `src + i` and `dst + i`; `buf` is a
                // separate local.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.add(i), buf.as_mut_ptr(), rest);
                    _mm256_storeu_ps(buf.as_mut_ptr(), $f(_mm256_loadu_ps(buf.as_ptr())));
                    std::ptr::copy_nonoverlapping(buf.as_ptr(), dst.add(i), rest);
                }
            }
        }};
    }
    match func {
        Func::Exp => each_vector!(exp),
        Func::Ln => each_vector!(ln),
        Func::Tanh => each_vector!(tanh),
        Func::Sigmoid => each_vector!(sigmoid),
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn splat(v: f32) -> __m256 {
    _mm256_set1_ps(v)
}

/// Each lane where `mask` is set takes `b`, the others keep `a`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn select(mask: __m256, a: __m256, b: __m256) -> __m256 {
    _mm256_blendv_ps(a, b, mask)
}

/// The polynomial with coefficients `coeffs` (highest power first) at `x`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn horner(coeffs: &[f32], x: __m256) -> __m256 {
    let mut acc = splat(coeffs[0]);
    for &c in &coeffs[1..] {
        acc = _mm256_fmadd_ps(acc, x, splat(c));
    }
    acc
}

/// `2^n` per lane for normal exponents, `-126 <= n <= 127`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pow2(n: __m256i) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        n,
        _mm256_set1_epi32(127),
    )))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp(x: __m256) -> __m256 {
    // `max` and `min` return their second operand when either is NaN: NaN passes through.
    let x = _mm256_min_ps(splat(EXP_MAX), _mm256_max_ps(splat(EXP_MIN), x));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        splat(LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, splat(LN2_LO), _mm256_fnmadd_ps(n, splat(LN2_HI), x));
    let p = horner(&EXP_POLY, r);
    let er = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), splat(1.0));
    // 2^n in two normal halves: `er * 2^half` is exact, and the second product rounds once,
    // into the denormals or to inf where the result lies there. (A NaN `er` stays NaN.)
    let n = _mm256_cvtps_epi32(n);
    let half = _mm256_srai_epi32::<1>(n);
    _mm256_mul_ps(
        _mm256_mul_ps(er, pow2(half)),
        pow2(_mm256_sub_epi32(n, half)),
    )
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn ln(x: __m256) -> __m256 {
    // A denormal has no implicit leading bit: scale it into the normal range first.
    let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(x, splat(f32::MIN_POSITIVE));
    let scaled = select(tiny, x, _mm256_mul_ps(x, splat(8_388_608.0)));
    let bits = _mm256_castps_si256(scaled);
    let biased = _mm256_srli_epi32::<23>(bits);
    let e = _mm256_cvtepi32_ps(_mm256_sub_epi32(biased, _mm256_set1_epi32(127)));
    let e = _mm256_sub_ps(e, _mm256_and_ps(tiny, splat(23.0)));
    let m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
        _mm256_set1_epi32(0x3f80_0000),
    ));
    // m in [1, 2); halved (and e raised) above sqrt(2).
    let above = _mm256_cmp_ps::<_CMP_GT_OQ>(m, splat(SQRT_2));
    let m = select(above, m, _mm256_mul_ps(m, splat(0.5)));
    let e = _mm256_add_ps(e, _mm256_and_ps(above, splat(1.0)));
    let f = _mm256_sub_ps(m, splat(1.0));
    let z = _mm256_mul_ps(f, f);
    let y = _mm256_mul_ps(_mm256_mul_ps(horner(&LN_POLY, f), f), z);
    let y = _mm256_fmadd_ps(e, splat(LN2_LO), y);
    let y = _mm256_fnmadd_ps(splat(0.5), z, y);
    let r = _mm256_fmadd_ps(e, splat(LN2_HI), _mm256_add_ps(f, y));
    // The exponent bits of 0, inf, NaN and negatives give finite garbage.
    let zero = _mm256_setzero_ps();
    let r = select(_mm256_cmp_ps::<_CMP_NLT_UQ>(x, splat(f32::INFINITY)), r, x);
    let r = select(_mm256_cmp_ps::<_CMP_LT_OQ>(x, zero), r, splat(f32::NAN));
    select(
        _mm256_cmp_ps::<_CMP_EQ_OQ>(x, zero),
        r,
        splat(f32::NEG_INFINITY),
    )
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn tanh(x: __m256) -> __m256 {
    let sign = _mm256_and_ps(x, splat(-0.0));
    let a = _mm256_andnot_ps(splat(-0.0), x);
    let z = _mm256_mul_ps(a, a);
    let small = _mm256_fmadd_ps(_mm256_mul_ps(horner(&TANH_POLY, z), z), a, a);
    let e = exp(_mm256_add_ps(a, a));
    let large = _mm256_sub_ps(
        splat(1.0),
        _mm256_div_ps(splat(2.0), _mm256_add_ps(e, splat(1.0))),
    );
    let is_small = _mm256_cmp_ps::<_CMP_LT_OQ>(a, splat(TANH_SMALL));
    _mm256_or_ps(select(is_small, large, small), sign)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn sigmoid(x: __m256) -> __m256 {
    let e = exp(_mm256_or_ps(x, splat(-0.0)));
    let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
    let numerator = select(negative, splat(1.0), e);
    _mm256_div_ps(numerator, _mm256_add_ps(splat(1.0), e))
}
