//! The AVX-512F path, 16 lanes: the portable algorithms, with `getexp` / `getmant` splitting
//! ln's argument (denormals included, no rescaling) and `scalef` applying exp's `2^n` with a
//! single rounding into the denormals or to inf (no two-step scaling).

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_abs_ps, _mm512_add_ps, _mm512_and_si512, _mm512_castps_si512,
    _mm512_castsi512_ps, _mm512_cmp_ps_mask, _mm512_div_ps, _mm512_fmadd_ps, _mm512_fnmadd_ps,
    _mm512_getexp_ps, _mm512_getmant_ps, _mm512_loadu_ps, _mm512_mask_add_ps, _mm512_mask_blend_ps,
    _mm512_mask_mov_ps, _mm512_mask_mul_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
    _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps, _mm512_or_si512, _mm512_roundscale_ps,
    _mm512_scalef_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    _mm512_sub_ps, _CMP_EQ_OQ, _CMP_GT_OQ, _CMP_LT_OQ, _CMP_NLT_UQ, _MM_FROUND_NO_EXC,
    _MM_FROUND_TO_NEAREST_INT, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_ZERO,
};

use super::{
    Func, EXP_MAX, EXP_MIN, EXP_POLY, LN2_HI, LN2_LO, LN_POLY, LOG2_E, SQRT_2, TANH_POLY,
    TANH_SMALL,
};

const LANES: usize = 16;

/// `func` over `len` floats from `src` into `dst`.
///
/// # Safety
/// The CPU must support AVX-512F; `src` must be readable and `dst` writable for `len`
/// floats, and they must be the same pointer or not overlap.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn map(func: Func, src: *const f32, dst: *mut f32, len: usize) {
    // One loop per function, so that each body is inlined with no per-vector dispatch.
    macro_rules! each_vector {
        ($f:ident) => {{
            let mut i = 0;
            while i + LANES <= len {
                // SAFETY: `i + 16 <= len`; the vector is loaded before its result is stored.
                unsafe { _mm512_storeu_ps(dst.add(i), $f(_mm512_loadu_ps(src.add(i)))) };
                i += LANES;
            }
            if i < len {
                // The ragged tail: masked lanes are neither read nor written.
                let mask: __mmask16 = (1u16 << (len - i)) - 1;
                // SAFETY: the mask covers only the `len - i` floats left.
                unsafe {
                    let x = _mm512_maskz_loadu_ps(mask, src.add(i));
                    _mm512_mask_storeu_ps(dst.add(i), mask, $f(x));
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
#[target_feature(enable = "avx512f")]
fn splat(v: f32) -> __m512 {
    _mm512_set1_ps(v)
}

/// The polynomial with coefficients `coeffs` (highest power first) at `x`.
#[inline]
#[target_feature(enable = "avx512f")]
fn horner(coeffs: &[f32], x: __m512) -> __m512 {
    let mut acc = splat(coeffs[0]);
    for &c in &coeffs[1..] {
        acc = _mm512_fmadd_ps(acc, x, splat(c));
    }
    acc
}

/// The sign bit of each lane of `x`, or-ed onto `magnitude`.
#[inline]
#[target_feature(enable = "avx512f")]
fn with_sign_of(magnitude: __m512, x: __m512) -> __m512 {
    let sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN));
    _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(magnitude), sign))
}

#[inline]
#[target_feature(enable = "avx512f")]
fn exp(x: __m512) -> __m512 {
    // `max` and `min` return their second operand when either is NaN: NaN passes through.
    let x = _mm512_min_ps(splat(EXP_MAX), _mm512_max_ps(splat(EXP_MIN), x));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, splat(LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, splat(LN2_LO), _mm512_fnmadd_ps(n, splat(LN2_HI), x));
    let p = horner(&EXP_POLY, r);
    let er = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), splat(1.0));
    _mm512_scalef_ps(er, n)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn ln(x: __m512) -> __m512 {
    // |x| = m 2^e with m in [1, 2), then m halved (and e raised) above sqrt(2).
    let m = _mm512_getmant_ps::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_ZERO>(x);
    let e = _mm512_getexp_ps(x);
    let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, splat(SQRT_2));
    let m = _mm512_mask_mul_ps(m, above, m, splat(0.5));
    let e = _mm512_mask_add_ps(e, above, e, splat(1.0));
    let f = _mm512_sub_ps(m, splat(1.0));
    let z = _mm512_mul_ps(f, f);
    let y = _mm512_mul_ps(_mm512_mul_ps(horner(&LN_POLY, f), f), z);
    let y = _mm512_fmadd_ps(e, splat(LN2_LO), y);
    let y = _mm512_fnmadd_ps(splat(0.5), z, y);
    let r = _mm512_fmadd_ps(e, splat(LN2_HI), _mm512_add_ps(f, y));
    // getexp / getmant of 0, inf and negatives give finite garbage (or NaN for inf).
    let r = _mm512_mask_mov_ps(
        r,
        _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(x, splat(f32::INFINITY)),
        x,
    );
    let r = _mm512_mask_mov_ps(
        r,
        _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps()),
        splat(f32::NAN),
    );
    _mm512_mask_mov_ps(
        r,
        _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, _mm512_setzero_ps()),
        splat(f32::NEG_INFINITY),
    )
}

#[inline]
#[target_feature(enable = "avx512f")]
fn tanh(x: __m512) -> __m512 {
    let a = _mm512_abs_ps(x);
    let z = _mm512_mul_ps(a, a);
    let small = _mm512_fmadd_ps(_mm512_mul_ps(horner(&TANH_POLY, z), z), a, a);
    let e = exp(_mm512_add_ps(a, a));
    let large = _mm512_sub_ps(
        splat(1.0),
        _mm512_div_ps(splat(2.0), _mm512_add_ps(e, splat(1.0))),
    );
    let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, splat(TANH_SMALL));
    with_sign_of(_mm512_mask_blend_ps(is_small, large, small), x)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn sigmoid(x: __m512) -> __m512 {
    let e = exp(with_sign_of(_mm512_abs_ps(x), splat(-1.0)));
    let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
    let numerator = _mm512_mask_mov_ps(splat(1.0), negative, e);
    _mm512_div_ps(numerator, _mm512_add_ps(splat(1.0), e))
}
