//! Vectorised f32 transcendentals over slices: `exp`, `ln`, `tanh`, `sigmoid`, each
//! out of place (`src -> dst`) or in place, on the fastest SIMD path this CPU has.
//!
//! Every path runs the same algorithms with the same coefficients (below), so they agree to
//! within rounding; they differ only in how they reach the bits (AVX-512's `getexp`,
//! `getmant` and `scalef`; integer bit tricks on AVX2 and in the portable code) and in
//! whether they fuse multiply-adds. Measured accuracy against f64, every path on this CPU
//! (see `tests.rs`): exp 0.99 ULP, ln 0.83, tanh 1.33, sigmoid 2.25, denormal
//! results included. Edge behaviour is PyTorch's: NaN propagates; exp overflows to +inf and
//! underflows to +0; ln(+-0) = -inf, ln(x < 0) = NaN, ln(+inf) = +inf; tanh(+-large) = +-1 and
//! tanh(-0) = -0; sigmoid never forms inf/inf (it goes to 0 and 1 through the denormals).
//!
//! For the LSTM gates: `sigmoid_in_place` on the input/forget/output gate slices and
//! `tanh_in_place` on the cell gate (and on the cell state into an output buffer via
//! `tanh`). Short slices are fine: a call costs one load of the cached path choice, and the
//! ragged tail is one masked vector on AVX-512.

use super::isa::Isa;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

#[cfg(test)]
mod tests;

/// `dst[i] = e^src[i]`.
///
/// # Panics
/// When the slices differ in length.
pub fn exp(src: &[f32], dst: &mut [f32]) {
    map(Func::Exp, Isa::chosen(), src, dst);
}

/// `xs[i] = e^xs[i]`.
pub fn exp_in_place(xs: &mut [f32]) {
    map_in_place(Func::Exp, Isa::chosen(), xs);
}

/// `dst[i] = ln src[i]` (natural log).
///
/// # Panics
/// When the slices differ in length.
pub fn ln(src: &[f32], dst: &mut [f32]) {
    map(Func::Ln, Isa::chosen(), src, dst);
}

/// `xs[i] = ln xs[i]` (natural log).
pub fn ln_in_place(xs: &mut [f32]) {
    map_in_place(Func::Ln, Isa::chosen(), xs);
}

/// `dst[i] = tanh src[i]`.
///
/// # Panics
/// When the slices differ in length.
pub fn tanh(src: &[f32], dst: &mut [f32]) {
    map(Func::Tanh, Isa::chosen(), src, dst);
}

/// `xs[i] = tanh xs[i]`.
pub fn tanh_in_place(xs: &mut [f32]) {
    map_in_place(Func::Tanh, Isa::chosen(), xs);
}

/// `dst[i] = 1 / (1 + e^-src[i])`.
///
/// # Panics
/// When the slices differ in length.
pub fn sigmoid(src: &[f32], dst: &mut [f32]) {
    map(Func::Sigmoid, Isa::chosen(), src, dst);
}

/// `xs[i] = 1 / (1 + e^-xs[i])`.
pub fn sigmoid_in_place(xs: &mut [f32]) {
    map_in_place(Func::Sigmoid, Isa::chosen(), xs);
}

/// Which function a kernel applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Exp,
    Ln,
    Tanh,
    Sigmoid,
}

/// `func` over `src` into `dst` on `path` (which must come from `Isa::available()`).
pub(crate) fn map(func: Func, path: Isa, src: &[f32], dst: &mut [f32]) {
    assert_eq!(
        src.len(),
        dst.len(),
        "math: source and destination lengths differ"
    );
    // SAFETY: both slices hold `len` floats and, being a shared and an exclusive borrow,
    // do not overlap.
    unsafe { run(func, path, src.as_ptr(), dst.as_mut_ptr(), src.len()) }
}

/// `func` over `xs` in place on `path` (which must come from `Isa::available()`).
pub(crate) fn map_in_place(func: Func, path: Isa, xs: &mut [f32]) {
    let p = xs.as_mut_ptr();
    // SAFETY: `xs` holds `len` floats; source and destination are the same, which every
    // kernel allows (each vector is loaded before its result is stored).
    unsafe { run(func, path, p, p, xs.len()) }
}

/// # Safety
/// `src` must be readable and `dst` writable for `len` floats; they must either be the same
/// pointer or not overlap; `path` must be one `Isa::available()` lists.
unsafe fn run(func: Func, path: Isa, src: *const f32, dst: *mut f32, len: usize) {
    match path {
        // SAFETY: the caller's guarantees, and the path's features were detected.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::map(func, src, dst, len) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::map(func, src, dst, len) },
        _ => {
            let f = match func {
                Func::Exp => portable::exp,
                Func::Ln => portable::ln,
                Func::Tanh => portable::tanh,
                Func::Sigmoid => portable::sigmoid,
            };
            for i in 0..len {
                // SAFETY: `i < len`; each element is read before it is written.
                unsafe { *dst.add(i) = f(*src.add(i)) };
            }
        }
    }
}

// The coefficients every path shares. exp and ln are Cephes' `expf` and `logf` (S. L.
// Moshier), tanh's small-argument polynomial is Cephes' `tanhf`: minimax fits whose errors
// stay under an f32 ULP on their reduced ranges.

/// `log2(e)`, to find `n = round(x / ln 2)`.
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split in two: `LN2_HI` has 9 significant bits, so `n * LN2_HI` is exact for every
/// `|n| < 2^15` and `x - n * LN2_HI` loses nothing even without a fused multiply-add.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// exp's argument clamp. Below -110, e^x is far under half the least denormal (2^-150) and
/// rounds to 0; above 100 it is far over `f32::MAX` and gives +inf. The clamp keeps
/// `n = round(x / ln 2)` in -159..=145, whose halves are normal powers of two on the paths
/// that scale in two steps, and leaves NaN unchanged (every path clamps NaN-preserving).
const EXP_MIN: f32 = -110.0;
const EXP_MAX: f32 = 100.0;

/// `e^r = 1 + r + r^2 P(r)` on `|r| <= ln 2 / 2`; `P` from its highest power down.
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_6e-1,
    0.5,
];

/// `ln(1 + f) = f - f^2 / 2 + f^3 Q(f)` on `sqrt(1/2) - 1 <= f < sqrt(2) - 1`; `Q` from its
/// highest power down.
const LN_POLY: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_84e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_7e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    3.333_333e-1,
];

/// ln reduces `x = m 2^e` with `m` in `[sqrt(1/2), sqrt(2))`, so `f = m - 1` is small on
/// both sides of 0 (and exact: Sterbenz).
const SQRT_2: f32 = std::f32::consts::SQRT_2;

/// Below this `|x|`, tanh uses its odd polynomial; above, `1 - 2 / (e^2|x| + 1)`, whose
/// cancellation costs under a bit from here on.
const TANH_SMALL: f32 = 0.625;

/// `tanh x = x + x^3 T(x^2)` on `|x| < 0.625`; `T` from its highest power down.
const TANH_POLY: [f32; 5] = [
    -5.704_988_7e-3,
    2.063_908_8e-2,
    -5.373_971_5e-2,
    1.333_144_2e-1,
    -3.333_328e-1,
];
