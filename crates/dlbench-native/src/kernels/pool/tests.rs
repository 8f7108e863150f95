//! Every path against naive window loops in f64, on 2 x 2 windows (the vectorized path) and
//! others, with input rows and columns past the last window, and with values drawn from a few
//! levels so that windows hold ties (the gradient must go to the first maximum).

use super::{
    avg_pool, avg_pool_backward, max_pool_backward_from_argmax_on, max_pool_backward_on,
    max_pool_on, Isa, Tiles,
};
use crate::kernels::test_rng::Rng;

/// Values from a fixed xorshift sequence: `levels` distinct values in [-1, 1) (ties when
/// `levels` is small).
fn values(seed: u64, len: usize, levels: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    (0..len)
        .map(|_| ((rng.bits() >> 11) % levels) as f32 / levels as f32 * 2.0 - 1.0)
        .collect()
}

fn cases() -> Vec<Tiles> {
    let tiles = |planes, height, width, kernel: [usize; 2]| Tiles {
        planes,
        height,
        width,
        kernel,
        out: [height / kernel[0], width / kernel[1]],
    };
    vec![
        tiles(3, 30, 30, [2, 2]),
        tiles(2, 13, 13, [2, 2]),
        tiles(2, 5, 40, [2, 2]),
        tiles(1, 2, 2, [2, 2]),
        tiles(2, 9, 10, [3, 3]),
        tiles(2, 7, 8, [2, 3]),
        tiles(1, 4, 4, [1, 1]),
    ]
}

/// Window `(oy, ox)` of plane `n` as flat input indices, in row-major order.
fn window(t: &Tiles, n: usize, oy: usize, ox: usize) -> Vec<usize> {
    let [kh, kw] = t.kernel;
    let base = n * t.height * t.width;
    (0..kh * kw)
        .map(|i| base + (oy * kh + i / kw) * t.width + ox * kw + i % kw)
        .collect()
}

/// Calls `f(output_index, window)` for every window.
fn for_each_window(t: &Tiles, mut f: impl FnMut(usize, Vec<usize>)) {
    let mut yi = 0;
    for n in 0..t.planes {
        for oy in 0..t.out[0] {
            for ox in 0..t.out[1] {
                f(yi, window(t, n, oy, ox));
                yi += 1;
            }
        }
    }
}

/// Checks every path's forward (with and without argmax), its argmax, and both backward
/// passes against the naive first maximum of each window, bitwise (NaN and signed zeros
/// included).
fn check_max_pool(t: &Tiles, x: &[f32], dy: &[f32]) {
    let out_len = dy.len();
    let mut want_y = vec![0.0f32; out_len];
    let mut want_argmax = vec![0u8; out_len];
    let mut want_dx = vec![0.0f32; x.len()];
    for_each_window(t, |yi, win| {
        let first_max = (0..win.len()).fold(0, |b, k| if x[win[k]] > x[win[b]] { k } else { b });
        want_y[yi] = x[win[first_max]];
        want_argmax[yi] = first_max as u8;
        want_dx[win[first_max]] = dy[yi];
    });
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    // Outputs start as NaN (and argmax as 255), so an element a kernel leaves unwritten
    // shows.
    let poisoned = |len: usize| vec![f32::NAN; len];
    for isa in Isa::available() {
        let (mut y, mut argmax) = (poisoned(out_len), vec![255u8; out_len]);
        max_pool_on(isa, t, x, &mut y, Some(&mut argmax));
        assert_eq!(bits(&y), bits(&want_y), "{isa:?} forward {t:?}");
        assert_eq!(argmax, want_argmax, "{isa:?} argmax {t:?}");
        let mut y = poisoned(out_len);
        max_pool_on(isa, t, x, &mut y, None);
        assert_eq!(bits(&y), bits(&want_y), "{isa:?} forward {t:?}");
        let mut dx = poisoned(x.len());
        max_pool_backward_on(isa, t, x, dy, &mut dx);
        assert_eq!(bits(&dx), bits(&want_dx), "{isa:?} backward {t:?}");
        let mut dx = poisoned(x.len());
        max_pool_backward_from_argmax_on(isa, t, &want_argmax, dy, &mut dx);
        assert_eq!(
            bits(&dx),
            bits(&want_dx),
            "{isa:?} backward from argmax {t:?}"
        );
    }
}

#[test]
fn max_pool_matches_naive_windows() {
    for (case, t) in cases().iter().enumerate() {
        let len = t.planes * t.height * t.width;
        let x = values(case as u64 + 1, len, 5);
        let dy = values(case as u64 + 100, t.planes * t.out[0] * t.out[1], 1 << 20);
        check_max_pool(t, &x, &dy);
    }
}

/// Signed zeros and NaN: the first maximum in row-major order under strict `>` decides the
/// value (which zero, whether NaN) and where the gradient goes, on every path alike.
#[test]
fn max_pool_keeps_the_first_maximum_of_zeros_and_nan() {
    let palette = [0.0f32, -0.0, 0.0, -1.0, f32::NAN, -0.0];
    for t in cases() {
        let len = t.planes * t.height * t.width;
        let x: Vec<f32> = (0..len)
            .map(|i| palette[(i * 7 + i / 5) % palette.len()])
            .collect();
        let dy = values(3, t.planes * t.out[0] * t.out[1], 1 << 20);
        check_max_pool(&t, &x, &dy);
    }
}

#[test]
fn avg_pool_matches_naive_windows() {
    for (case, t) in cases().iter().enumerate() {
        let len = t.planes * t.height * t.width;
        let x = values(case as u64 + 7, len, 1 << 20);
        let out_len = t.planes * t.out[0] * t.out[1];
        let dy = values(case as u64 + 200, out_len, 1 << 20);
        let size = (t.kernel[0] * t.kernel[1]) as f64;
        let mut want_y = vec![0.0; out_len];
        let mut want_dx = vec![0.0; len];
        for_each_window(t, |yi, win| {
            want_y[yi] = win.iter().map(|&i| f64::from(x[i])).sum::<f64>() / size;
            for &i in &win {
                want_dx[i] = f64::from(dy[yi]) / size;
            }
        });
        // A sum of at most 9 values in [-1, 1), in f32: off by far less than 1e-6.
        let close = |got: &[f32], want: &[f64]| {
            got.len() == want.len()
                && got
                    .iter()
                    .zip(want)
                    .all(|(g, w)| (f64::from(*g) - w).abs() <= 1e-6)
        };
        let (mut y, mut dx) = (vec![f32::NAN; out_len], vec![f32::NAN; len]);
        avg_pool(t, &x, &mut y);
        avg_pool_backward(t, &dy, &mut dx);
        assert!(close(&y, &want_y), "forward {t:?}");
        assert!(close(&dx, &want_dx), "backward {t:?}");
    }
}

#[test]
fn tiles_fit_only_whole_disjoint_windows() {
    let fit = |kernel, stride, padding, out| Tiles::fit([7, 8], kernel, stride, padding, out);
    assert!(fit([2, 2], [2, 2], [0, 0], [3, 4]));
    assert!(fit([3, 2], [3, 2], [0, 0], [2, 4]));
    // Overlapping, padded, or a partial last window (ceil mode).
    assert!(!fit([3, 3], [2, 2], [0, 0], [3, 3]));
    assert!(!fit([2, 2], [2, 2], [1, 1], [4, 5]));
    assert!(!fit([2, 2], [2, 2], [0, 0], [4, 4]));
}
