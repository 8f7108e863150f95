//! The scalar path: the algorithms the SIMD paths vectorise, for CPUs without them. Plain
//! multiplies and adds rather than `mul_add`, which without FMA hardware is a slow libm call;
//! the argument reductions are exact without fusing (see `LN2_HI`), so accuracy holds.

use super::{
    EXP_MAX, EXP_MIN, EXP_POLY, LN2_HI, LN2_LO, LN_POLY, LOG2_E, SQRT_2, TANH_POLY, TANH_SMALL,
};

/// Adding then subtracting 1.5 * 2^23 rounds any `|v| < 2^22` to the nearest integer (ties
/// to even): the sum has no bits left below 1.
const ROUNDER: f32 = 12_582_912.0;

/// The polynomial with coefficients `coeffs` (highest power first) at `x`.
fn horner(coeffs: &[f32], x: f32) -> f32 {
    coeffs[1..].iter().fold(coeffs[0], |acc, &c| acc * x + c)
}

/// `2^n` for a normal exponent, `-126 <= n <= 127`.
fn pow2(n: i32) -> f32 {
    f32::from_bits(((n + 127) as u32) << 23)
}

/// e^x: `x = n ln 2 + r`, `e^x = 2^n e^r`.
pub(super) fn exp(x: f32) -> f32 {
    // `clamp` passes NaN through (to poison `r`).
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let n = (x * LOG2_E + ROUNDER) - ROUNDER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let er = (horner(&EXP_POLY, r) * (r * r) + r) + 1.0;
    // 2^n in two normal halves: `er * 2^half` is exact, and the second product rounds once,
    // into the denormals or to inf where the result lies there. (NaN `n` casts to 0.)
    let n = n as i32;
    let half = n >> 1;
    er * pow2(half) * pow2(n - half)
}

/// ln x: `x = m 2^e` with `m` in `[sqrt(1/2), sqrt(2))`, `ln x = e ln 2 + ln(1 + (m - 1))`.
pub(super) fn ln(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 {
        return f32::NEG_INFINITY;
    }
    // A denormal has no implicit leading bit: scale it into the normal range first.
    let (x, bias) = if x < f32::MIN_POSITIVE {
        (x * 8_388_608.0, 23)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let mut e = (bits >> 23) as i32 - 127 - bias;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let e = e as f32;
    let f = m - 1.0;
    let z = f * f;
    // The small terms first, then `f`, then the large `e ln 2`: Cephes' order, which keeps
    // the rounding of each partial sum below that of the result.
    let y = horner(&LN_POLY, f) * f * z + e * LN2_LO - 0.5 * z;
    (f + y) + e * LN2_HI
}

/// tanh x: an odd polynomial near 0 (relative accuracy there), else `1 - 2 / (e^2|x| + 1)`,
/// which saturates to exactly 1 (e^2|x| overflows to inf for large |x|: 2 / inf = 0).
pub(super) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let t = if a < TANH_SMALL {
        let z = a * a;
        horner(&TANH_POLY, z) * z * a + a
    } else {
        1.0 - 2.0 / (exp(a + a) + 1.0)
    };
    // NaN fails `a < TANH_SMALL` and comes out of exp as NaN; -0 keeps its sign.
    t.copysign(x)
}

/// 1 / (1 + e^-x) from `e = e^-|x|` <= 1, so nothing overflows: `1 / (1 + e)` for `x >= 0`,
/// `e / (1 + e)` for `x < 0` (which follows e^x into the denormals instead of flushing to 0).
pub(super) fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let numerator = if x < 0.0 { e } else { 1.0 };
    numerator / (1.0 + e)
}
