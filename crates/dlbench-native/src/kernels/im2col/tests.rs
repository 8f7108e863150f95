//! Every path against a naive per-element lowering in signed arithmetic (no `valid` ranges),
//! on geometries with padding (including padding wider than the kernel reach), stride 2 and
//! 3, dilation, rectangular kernels, and widths and channel counts on both sides of the 16-lane
//! vector. im2col and im2row must write every element (the output starts as NaN); col2im is checked
//! against an f64 sum of the contributions onto a non-zero input.

use super::{col2im_add_on, im2col_on, im2row_on, tap_of_channels_last, Isa, Lowering, Scratch};
use crate::kernels::test_rng::Rng;

/// A geometry with the output size PyTorch gives.
fn geometry(
    channels: usize,
    [height, width]: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
) -> Lowering {
    let size = [height, width];
    let out =
        |a: usize| (size[a] + 2 * padding[a] - dilation[a] * (kernel[a] - 1) - 1) / stride[a] + 1;
    Lowering {
        channels,
        height,
        width,
        kernel,
        stride,
        padding,
        dilation,
        out: [out(0), out(1)],
    }
}

fn geometries() -> Vec<Lowering> {
    vec![
        // The seed CNN's two layers.
        geometry(1, [32, 32], [3, 3], [1, 1], [0, 0], [1, 1]),
        geometry(32, [15, 15], [3, 3], [1, 1], [0, 0], [1, 1]),
        // Same padding; widths 16 and 17 put a run exactly at and just past one vector.
        geometry(3, [7, 16], [3, 3], [1, 1], [1, 1], [1, 1]),
        geometry(2, [5, 17], [3, 5], [1, 1], [1, 2], [1, 1]),
        geometry(2, [40, 37], [5, 5], [1, 1], [2, 2], [1, 1]),
        // Stride 2 and 3, odd sizes.
        geometry(3, [9, 11], [3, 3], [2, 2], [1, 1], [1, 1]),
        geometry(2, [10, 13], [4, 2], [3, 2], [2, 1], [1, 1]),
        // Dilation, with and without padding.
        geometry(2, [9, 10], [3, 3], [1, 1], [0, 0], [2, 2]),
        geometry(2, [8, 19], [3, 2], [2, 1], [2, 3], [2, 3]),
        // Padding beyond the kernel's reach: whole rows and runs of padding.
        geometry(1, [3, 4], [2, 2], [1, 1], [3, 3], [1, 1]),
        // A 1x1 kernel (identity lowering) and a kernel as wide as the input.
        geometry(4, [5, 6], [1, 1], [1, 1], [0, 0], [1, 1]),
        geometry(2, [3, 20], [3, 20], [1, 1], [0, 0], [1, 1]),
        // A kernel row wider than one vector, and channels past one vector (17, 33).
        geometry(1, [4, 40], [2, 18], [1, 1], [1, 1], [1, 1]),
        geometry(17, [6, 5], [3, 3], [1, 1], [1, 1], [1, 1]),
        geometry(33, [5, 7], [2, 3], [2, 2], [1, 0], [1, 2]),
    ]
}

/// The input element column-matrix element `(r, p)` reads, or `None` in the padding.
fn naive_source(l: &Lowering, r: usize, p: usize) -> Option<usize> {
    let (c, ky, kx) = (
        r / (l.kernel[0] * l.kernel[1]),
        r / l.kernel[1] % l.kernel[0],
        r % l.kernel[1],
    );
    let (oy, ox) = (p / l.out[1], p % l.out[1]);
    let at = |o: usize, k: usize, a: usize| {
        (o * l.stride[a] + k * l.dilation[a]) as i64 - l.padding[a] as i64
    };
    let (iy, ix) = (at(oy, ky, 0), at(ox, kx, 1));
    let inside = (0..l.height as i64).contains(&iy) && (0..l.width as i64).contains(&ix);
    inside.then(|| (c * l.height + iy as usize) * l.width + ix as usize)
}

fn naive_im2col(l: &Lowering, x: &[f32]) -> Vec<f32> {
    let (rows, positions) = (l.rows(), l.positions());
    let mut col = vec![0.0; rows * positions];
    for r in 0..rows {
        for p in 0..positions {
            col[r * positions + p] = naive_source(l, r, p).map_or(0.0, |i| x[i]);
        }
    }
    col
}

#[test]
fn im2col_matches_naive_lowering() {
    let mut rng = Rng(0x1234_5678);
    for l in geometries() {
        let x = rng.fill(l.input_len());
        let want = naive_im2col(&l, &x);
        for isa in Isa::available() {
            let mut col = vec![f32::NAN; want.len()];
            im2col_on(isa, &l, &x, &mut col);
            // Bitwise: a copy is exact, and a NaN left over means an element not written.
            let same = col
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{isa:?} {l:?}:\n got {col:?}\nwant {want:?}");
        }
    }
}

#[test]
fn im2row_is_the_transposed_channels_last_lowering() {
    let mut rng = Rng(0x9abc_def0);
    // One scratch across every geometry, as a convolution keeps it: what one call leaves in
    // it must not leak into the next.
    let mut scratch = Scratch::default();
    for l in geometries() {
        let x = rng.fill(l.input_len());
        let col = naive_im2col(&l, &x);
        let (rows, positions) = (l.rows(), l.positions());
        let kernel_taps = l.kernel[0] * l.kernel[1];
        for isa in Isa::available() {
            let mut out = vec![f32::NAN; col.len()];
            im2row_on(isa, &l, &x, &mut out, &mut scratch);
            for t in 0..rows {
                // Written out rather than through `tap_of_channels_last`, which is checked too.
                let r = (t % l.channels) * kernel_taps + t / l.channels;
                assert_eq!(tap_of_channels_last(&l, t), r);
                for p in 0..positions {
                    let (got, want) = (out[p * rows + t], col[r * positions + p]);
                    assert!(
                        got.to_bits() == want.to_bits(),
                        "{isa:?} {l:?}: element (p {p}, t {t}) is {got}, expected {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn col2im_adds_each_element_onto_its_source() {
    let mut rng = Rng(0x0f0f_1234);
    let mut scratch = Scratch::default();
    for l in geometries() {
        let x0 = rng.fill(l.input_len());
        let col = rng.fill(l.rows() * l.positions());
        let mut want: Vec<f64> = x0.iter().map(|&v| f64::from(v)).collect();
        for r in 0..l.rows() {
            for p in 0..l.positions() {
                if let Some(i) = naive_source(&l, r, p) {
                    want[i] += f64::from(col[r * l.positions() + p]);
                }
            }
        }
        // Each input element gets at most kh * kw terms, all in [-1, 1): f32 rounding of
        // that many additions stays far below 1e-5, one wrong or missing term far above.
        let taps = (l.kernel[0] * l.kernel[1]) as f64;
        for isa in Isa::available() {
            let mut x = x0.clone();
            col2im_add_on(isa, &l, &col, &mut x, &mut scratch);
            for (i, (&got, &want)) in x.iter().zip(&want).enumerate() {
                assert!(
                    (f64::from(got) - want).abs() <= 1e-6 * (taps + 1.0),
                    "{isa:?} {l:?}: x[{i}] is {got}, expected {want}"
                );
            }
        }
    }
}

#[test]
fn identity_lowering_is_detected() {
    let l = geometry(4, [5, 6], [1, 1], [1, 1], [0, 0], [1, 1]);
    assert!(l.is_identity());
    let x: Vec<f32> = (0..l.input_len()).map(|i| i as f32).collect();
    assert_eq!(naive_im2col(&l, &x), x);
    for l in [
        geometry(4, [5, 6], [1, 1], [2, 2], [0, 0], [1, 1]),
        geometry(4, [5, 6], [1, 1], [1, 1], [1, 1], [1, 1]),
        geometry(4, [5, 6], [3, 3], [1, 1], [1, 1], [1, 1]),
    ] {
        assert!(!l.is_identity(), "{l:?}");
    }
}
