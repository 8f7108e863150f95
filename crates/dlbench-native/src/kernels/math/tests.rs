//! Every path on this CPU against f64 (`std`'s libm, correctly rounded to far below an f32
//! ULP), measured in ULPs of the f32 nearest the exact value (so a correctly rounded result
//! scores at most 0.5, and a denormal result is measured in the denormal spacing):
//! - a strided sweep over all 2^32 bit patterns (every binade, both signs, denormals, inf
//!   and NaN), and 2^17 consecutive floats around each point where an algorithm switches
//!   branch or the result changes regime;
//! - exact edge values, PyTorch's;
//! - slices of every length around the vector widths, in place and out of place.
//!
//! Largest errors measured on this machine (the same on the AVX-512, AVX2 and portable
//! paths to 0.05), which the bounds below round up: exp 0.99, ln 0.83, tanh 1.33, sigmoid
//! 2.25 ULP (`cargo test --release -p dlbench-native math -- --nocapture` prints them).

use super::{map, map_in_place, Func};
use crate::kernels::isa::Isa;

/// The largest error allowed per function, in ULPs.
fn bound(func: Func) -> f64 {
    match func {
        Func::Exp | Func::Ln => 1.0,
        Func::Tanh => 1.5,
        Func::Sigmoid => 2.5,
    }
}

/// The exact value of `func` at `x`, to f64 accuracy.
fn exact(func: Func, x: f32) -> f64 {
    let x = f64::from(x);
    match func {
        Func::Exp => x.exp(),
        Func::Ln => x.ln(),
        Func::Tanh => x.tanh(),
        // Split by sign, so that the far negative tail follows e^x instead of flushing.
        Func::Sigmoid => {
            if x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                x.exp() / (1.0 + x.exp())
            }
        }
    }
}

/// The error of `got` against `want` in units of the spacing of f32s around `want` (the
/// denormal spacing below the normal range, the top binade's spacing past `f32::MAX`).
/// Infinite when exactly one is NaN, or when one is infinite and `want` does not round to it.
fn ulps(got: f32, want: f64) -> f64 {
    if got.is_nan() || want.is_nan() {
        return if got.is_nan() && want.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if got.is_infinite() || want.is_infinite() {
        return if got == want as f32 {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let binade = ((want.abs().to_bits() >> 52) as i32 - 1023).clamp(-126, 127);
    let spacing = 2f64.powi(binade - 23);
    (f64::from(got) - want).abs() / spacing
}

/// The worst error of `func` on `path` over `inputs`, whose exact values are `want`:
/// (ULPs, input, result).
fn worst(func: Func, path: Isa, inputs: &[f32], want: &[f64]) -> (f64, f32, f32) {
    let mut got = vec![0.0; inputs.len()];
    map(func, path, inputs, &mut got);
    let mut worst = (0.0, 0.0, 0.0);
    for ((&x, &y), &w) in inputs.iter().zip(&got).zip(want) {
        let e = ulps(y, w);
        // `!(e <= worst)` also catches a NaN error, should one ever arise.
        if e.total_cmp(&worst.0).is_gt() {
            worst = (e, x, y);
        }
    }
    worst
}

/// Where an algorithm switches branch or its result changes regime.
fn turning_points(func: Func) -> Vec<f32> {
    let common = [0.0, 1.0, -1.0, f32::MIN_POSITIVE, -f32::MIN_POSITIVE];
    let specific: &[f32] = match func {
        // Overflow; the first denormal result; underflow to 0; the clamp; n = +-1.
        Func::Exp => &[
            88.72284, -87.33655, -103.27893, -110.0, 100.0, 0.3466, -0.3466,
        ],
        // sqrt(2) and sqrt(1/2), where `m` is halved; the denormals.
        Func::Ln => &[
            std::f32::consts::SQRT_2,
            std::f32::consts::FRAC_1_SQRT_2,
            2.0,
            1e-40,
        ],
        // The branch switch; saturation to 1.
        Func::Tanh => &[0.625, -0.625, 9.01, -9.01],
        // The denormal tail; saturation to 1.
        Func::Sigmoid => &[-87.33655, -103.27893, 16.6, 0.625, -0.625],
    };
    common.iter().chain(specific).copied().collect()
}

/// The worst error on each available path: (ULPs, input, result), and where it was found.
type Worst = Vec<((f64, f32, f32), String)>;

/// Updates `worst` (one entry per path) with `func` over `inputs`; `what` names the sweep.
fn sweep(func: Func, inputs: &[f32], what: &str, worst_so_far: &mut Worst) {
    let want: Vec<f64> = inputs.iter().map(|&x| exact(func, x)).collect();
    for (path, entry) in Isa::available().into_iter().zip(worst_so_far.iter_mut()) {
        let found = worst(func, path, inputs, &want);
        if found.0.total_cmp(&entry.0 .0).is_gt() {
            *entry = (found, what.to_string());
        }
    }
}

/// The strided sweep over all bit patterns (in chunks, to bound memory) and 2^16 floats
/// either side of each turning point; then each path's worst error against the bound
/// (printed, for `--nocapture`).
fn check_accuracy(func: Func) {
    // 127 is prime, so the sweep hits every residue of the mantissa's low bits.
    const STRIDE: u64 = 127;
    const CHUNK: u64 = 1 << 16;
    let paths = Isa::available();
    let mut worst_so_far: Worst = vec![((0.0, 0.0, 0.0), String::new()); paths.len()];
    let mut start = 0u64;
    while start < 1 << 32 {
        let inputs: Vec<f32> = (start..(start + CHUNK * STRIDE).min(1 << 32))
            .step_by(STRIDE as usize)
            .map(|bits| f32::from_bits(bits as u32))
            .collect();
        sweep(func, &inputs, "strided sweep", &mut worst_so_far);
        start += CHUNK * STRIDE;
    }
    for centre in turning_points(func) {
        // Consecutive floats: bit patterns of one sign are ordered by magnitude.
        let c = i64::from(centre.to_bits());
        let inputs: Vec<f32> = (c - (1 << 16)..c + (1 << 16))
            .filter(|&b| (0..1 << 32).contains(&b) && (b >> 31) == (c >> 31))
            .map(|b| f32::from_bits(b as u32))
            .collect();
        let what = format!("around {centre:e}");
        sweep(func, &inputs, &what, &mut worst_so_far);
    }
    for (path, ((e, x, y), what)) in paths.into_iter().zip(worst_so_far) {
        eprintln!("{func:?} on {path:?}: at most {e:.2} ULP ({what}, x = {x:e})");
        assert!(
            e <= bound(func),
            "{func:?} on {path:?} ({what}): {e:.2} ULP at x = {x:e} ({:#010x}): got {y:e}, \
             want {:e}",
            x.to_bits(),
            exact(func, x)
        );
    }
}

#[test]
fn exp_is_within_1_ulp_on_every_path() {
    check_accuracy(Func::Exp);
}

#[test]
fn ln_is_within_1_ulp_on_every_path() {
    check_accuracy(Func::Ln);
}

#[test]
fn tanh_is_within_1_5_ulp_on_every_path() {
    check_accuracy(Func::Tanh);
}

#[test]
fn sigmoid_is_within_2_5_ulp_on_every_path() {
    check_accuracy(Func::Sigmoid);
}

/// Exact results where PyTorch has them: `(x, want)`, compared bit for bit (NaN as any NaN).
fn edge_cases(func: Func) -> Vec<(f32, f32)> {
    let (inf, nan, max, tiny) = (f32::INFINITY, f32::NAN, f32::MAX, f32::from_bits(1));
    match func {
        Func::Exp => vec![
            (nan, nan),
            (inf, inf),
            (-inf, 0.0),
            (0.0, 1.0),
            (-0.0, 1.0),
            (88.8, inf),
            (max, inf),
            (-104.0, 0.0),
            (-max, 0.0),
            (tiny, 1.0),
        ],
        Func::Ln => vec![
            (nan, nan),
            (inf, inf),
            (-inf, nan),
            (0.0, -inf),
            (-0.0, -inf),
            (-1.0, nan),
            (-tiny, nan),
            (1.0, 0.0),
        ],
        Func::Tanh => vec![
            (nan, nan),
            (inf, 1.0),
            (-inf, -1.0),
            (0.0, 0.0),
            (-0.0, -0.0),
            (10.0, 1.0),
            (-10.0, -1.0),
            (max, 1.0),
            (-max, -1.0),
            (tiny, tiny),
            (-tiny, -tiny),
            (1e-30, 1e-30),
        ],
        Func::Sigmoid => vec![
            (nan, nan),
            (inf, 1.0),
            (-inf, 0.0),
            (0.0, 0.5),
            (-0.0, 0.5),
            (20.0, 1.0),
            (max, 1.0),
            (-200.0, 0.0),
            (-max, 0.0),
        ],
    }
}

#[test]
fn edge_values_are_pytorchs_on_every_path() {
    for func in [Func::Exp, Func::Ln, Func::Tanh, Func::Sigmoid] {
        let (inputs, want): (Vec<f32>, Vec<f32>) = edge_cases(func).into_iter().unzip();
        for path in Isa::available() {
            let mut got = vec![0.0; inputs.len()];
            map(func, path, &inputs, &mut got);
            for ((x, w), g) in inputs.iter().zip(&want).zip(&got) {
                let same = if w.is_nan() {
                    g.is_nan()
                } else {
                    g.to_bits() == w.to_bits()
                };
                assert!(same, "{func:?} on {path:?} at {x:e}: got {g:e}, want {w:e}");
            }
        }
    }
}

#[test]
fn sigmoid_follows_exp_into_the_denormals() {
    // e^-100 ~ 3.7e-44: a denormal that a naive 1 / (1 + e^100) flushes to 0.
    for path in Isa::available() {
        let mut got = [0.0];
        map(Func::Sigmoid, path, &[-100.0], &mut got);
        assert!(got[0] > 0.0, "{path:?}: sigmoid(-100) = {}", got[0]);
    }
}

#[test]
fn every_length_matches_lane_by_lane_in_place_and_leaves_the_rest_alone() {
    const SENTINEL: f32 = 12345.0;
    let src: Vec<f32> = (0..70).map(|i| (i as f32 - 35.0) * 0.37).collect();
    for func in [Func::Exp, Func::Ln, Func::Tanh, Func::Sigmoid] {
        for path in Isa::available() {
            // Each element alone: a one-float slice, the tail code's smallest case.
            let alone: Vec<f32> = src
                .iter()
                .map(|&x| {
                    let mut y = [0.0];
                    map(func, path, &[x], &mut y);
                    y[0]
                })
                .collect();
            for len in 0..=src.len() {
                let mut out = vec![SENTINEL; src.len() + 16];
                map(func, path, &src[..len], &mut out[..len]);
                let mut in_place = src[..len].to_vec();
                map_in_place(func, path, &mut in_place);
                for i in 0..len {
                    let (a, b, c) = (alone[i], out[i], in_place[i]);
                    let same =
                        |u: f32, v: f32| u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan());
                    assert!(
                        same(a, b) && same(a, c),
                        "{func:?} on {path:?}, length {len}, element {i}: alone {a}, in a \
                         slice {b}, in place {c}"
                    );
                }
                assert!(
                    out[len..].iter().all(|&v| v == SENTINEL),
                    "{func:?} on {path:?} wrote past length {len}"
                );
            }
        }
    }
}

#[test]
#[should_panic(expected = "lengths differ")]
fn mismatched_lengths_panic() {
    super::exp(&[1.0, 2.0], &mut [0.0]);
}
