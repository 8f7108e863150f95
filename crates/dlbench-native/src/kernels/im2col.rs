//! Lowering a convolution's input to a matrix, so that the convolution becomes one `sgemm`
//! per image (im2col, and the transposed, channels-last im2row), and raising a matrix of the
//! im2col layout back onto the input (col2im, for the input gradient).
//!
//! The column matrix of one image has a row per (input channel, kernel row, kernel column)
//! tap, `r = (c * kh + ky) * kw + kx`, and a column per output position `p = oy * ow + ox`;
//! element `(r, p)` is the input at row `oy * sh + ky * dh - ph`, column `ox * sw + kx * dw -
//! pw` of channel `c`, or 0 in the zero padding. For a given tap, the output columns that read
//! the real input form one range `lo..hi` (the same for every row and channel), so each
//! output row of a tap is padding, a run copied from one input row, and padding: no
//! per-element bounds checks. With unit stride along the width the run is contiguous in the
//! input, and the AVX-512 path copies it with masked loads and stores, the mask doing the
//! padding at both ends.
//!
//! im2row is the transpose (a row per output position), with the taps in channels-last order
//! `(ky * kw + kx) * channels + c`: each (position, kernel row, kernel column) is then a run of
//! `channels` values, contiguous in a channels-last copy of the image. (In the im2col order a
//! position's taps are scattered over the image, and transposing the column matrix costs
//! several times more than lowering it.)

#[cfg(target_arch = "x86_64")]
mod avx512;
mod runs;
#[cfg(test)]
mod tests;

use super::isa::Isa;

/// The window geometry of one image's convolution over one group's input channels (PyTorch
/// semantics: symmetric zero padding, then dilated taps, then the stride).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lowering {
    /// Input channels of the group (`in_channels / groups`).
    pub channels: usize,
    /// Input rows, before padding.
    pub height: usize,
    /// Input columns, before padding.
    pub width: usize,
    /// Kernel rows and columns.
    pub kernel: [usize; 2],
    /// Stride per spatial axis `[h, w]`, PyTorch's `stride`.
    pub stride: [usize; 2],
    /// Zeros added on both sides per spatial axis `[h, w]`, PyTorch's `padding`.
    pub padding: [usize; 2],
    /// Spacing between kernel taps per spatial axis `[h, w]`, PyTorch's `dilation`.
    pub dilation: [usize; 2],
    /// Output rows and columns (as shape inference computed them).
    pub out: [usize; 2],
}

impl Lowering {
    /// Rows of the column matrix: taps per output position.
    pub fn rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// Columns of the column matrix: output positions.
    pub fn positions(&self) -> usize {
        self.out[0] * self.out[1]
    }

    /// Floats of the input image (this group's channels).
    pub fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether the column matrix is the input itself (a 1x1 kernel, unit stride, no
    /// padding), so the lowering can be skipped.
    pub fn is_identity(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.padding == [0, 0]
            && self.out == [self.height, self.width]
    }

    /// The output positions along `axis` (0: rows, 1: columns) whose tap `k` reads the real
    /// input rather than the padding, as a range `lo..hi` (`lo <= hi <= out`).
    pub(crate) fn valid(&self, axis: usize, k: usize) -> (usize, usize) {
        let size = [self.height, self.width][axis];
        let (s, pad, out) = (self.stride[axis], self.padding[axis], self.out[axis]);
        let offset = k * self.dilation[axis];
        // Input index o*s + offset - pad must lie in 0..size. (Unit stride, the common case,
        // skips the divisions: this runs once per tap and row of a lowering.)
        let ceil_div = |v: usize| if s == 1 { v } else { v.div_ceil(s) };
        let hi = ceil_div((size + pad).saturating_sub(offset)).min(out);
        let lo = ceil_div(pad.saturating_sub(offset)).min(hi);
        (lo, hi)
    }

    /// The input index along `axis` that output position `o` reads at tap `k`; only for `o`
    /// inside `valid(axis, k)`.
    pub(crate) fn source(&self, axis: usize, o: usize, k: usize) -> usize {
        o * self.stride[axis] + k * self.dilation[axis] - self.padding[axis]
    }

    /// Checks the buffers against the geometry: the one check the unsafe paths rely on.
    fn check(&self, x: usize, matrix: usize) {
        assert!(
            x >= self.input_len(),
            "lowering: input of {x} floats, expected {}",
            self.input_len()
        );
        assert!(
            matrix >= self.rows() * self.positions(),
            "lowering: matrix of {matrix} floats, expected {} x {}",
            self.rows(),
            self.positions()
        );
        assert!(
            self.stride[0] > 0 && self.stride[1] > 0,
            "lowering: zero stride"
        );
    }
}

/// The working memory of the lowering kernels (index tables, a channels-last copy of the
/// image, transpose blocks), reused from call to call by whoever owns it: a convolution keeps
/// one per chunk of images, so that a steady-state step allocates nothing whichever thread
/// runs the chunk.
#[derive(Debug, Default)]
pub struct Scratch {
    pub(crate) floats: Vec<f32>,
    pub(crate) spans: Vec<(usize, usize)>,
    pub(crate) reach: Vec<(u16, isize)>,
}

/// Writes the `rows() x positions()` column matrix of image `x` (`channels x height x width`)
/// into `col`, every element (padding included), so `col` need not be cleared first.
pub fn im2col(l: &Lowering, x: &[f32], col: &mut [f32]) {
    im2col_on(Isa::chosen(), l, x, col);
}

/// Writes the transposed column matrix with channels-last taps into `out`, every element:
/// `positions() x rows()`, element `(p, (ky * kw + kx) * channels + c)` being element
/// `((c * kh + ky) * kw + kx, p)` of the column matrix. Row `p` holds the taps output position
/// `p` reads: the `B` operand of a weight gradient `dW = dY col^T` that `sgemm` reads in
/// place (with the weight's taps in the same order; see [`tap_of_channels_last`]).
pub fn im2row(l: &Lowering, x: &[f32], out: &mut [f32], scratch: &mut Scratch) {
    im2row_on(Isa::chosen(), l, x, out, scratch);
}

/// The column-matrix row (`(c * kh + ky) * kw + kx`) of im2row's column `t` (`(ky * kw + kx)
/// * channels + c`).
pub fn tap_of_channels_last(l: &Lowering, t: usize) -> usize {
    let (kernel_tap, c) = (t / l.channels, t % l.channels);
    c * l.kernel[0] * l.kernel[1] + kernel_tap
}

/// Adds each element of the column matrix `col` onto the input element it was read from (the
/// adjoint of `im2col`; padding taps are dropped).
pub fn col2im_add(l: &Lowering, col: &[f32], x: &mut [f32], scratch: &mut Scratch) {
    col2im_add_on(Isa::chosen(), l, col, x, scratch);
}

pub(crate) fn im2col_on(isa: Isa, l: &Lowering, x: &[f32], col: &mut [f32]) {
    l.check(x.len(), col.len());
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && l.stride[1] == 1 {
        // SAFETY: `Isa::Avx512` is only available on CPUs with AVX-512F; the buffers were
        // checked against the geometry, and the width stride is 1.
        unsafe { avx512::im2col(l, x, col) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: `Isa::Avx2` is only available on CPUs with AVX2 and FMA.
        unsafe { avx2::im2col(l, x, col) };
        return;
    }
    let _ = isa;
    im2col_portable(l, x, col);
}

/// Channels from which im2row copies channels-last runs rather than transposing blocks of
/// the column matrix. Measured (3x3, same padding, per output element): at 1 and 2 channels
/// the transposes take 0.54 and 0.44 ns against 1.7 and 0.84 ns, at 4 both about 0.4 ns, at
/// 8 and 32 the runs take 0.25 and 0.12 ns against 0.41 and 0.40 ns.
const CHANNELS_LAST_RUNS: usize = 8;

pub(crate) fn im2row_on(isa: Isa, l: &Lowering, x: &[f32], out: &mut [f32], scratch: &mut Scratch) {
    l.check(x.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: `Isa::Avx512` is only available on CPUs with AVX-512F; the buffers were
        // checked against the geometry, and the width stride is 1 for the block transposes.
        unsafe {
            if l.channels >= CHANNELS_LAST_RUNS || l.stride[1] != 1 {
                avx512::im2row(l, x, out, scratch);
            } else {
                avx512::im2row_by_blocks(l, x, out, &mut scratch.floats);
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: `Isa::Avx2` is only available on CPUs with AVX2 and FMA.
        unsafe { avx2::im2row(l, x, out, scratch) };
        return;
    }
    let _ = isa;
    im2row_portable(l, x, out, scratch);
}

pub(crate) fn col2im_add_on(
    isa: Isa,
    l: &Lowering,
    col: &[f32],
    x: &mut [f32],
    scratch: &mut Scratch,
) {
    l.check(x.len(), col.len());
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && l.stride[1] == 1 {
        // SAFETY: as in `im2col_on`.
        unsafe { avx512::col2im_add(l, col, x, &mut scratch.reach) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: `Isa::Avx2` is only available on CPUs with AVX2 and FMA.
        unsafe { avx2::col2im_add(l, col, x) };
        return;
    }
    let _ = (isa, scratch);
    col2im_add_portable(l, col, x);
}

/// The AVX2 paths: the portable loops compiled with AVX2 enabled, which the compiler
/// vectorises 8 floats wide (the portable build may assume only SSE2).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Lowering, Scratch};

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn im2col(l: &Lowering, x: &[f32], col: &mut [f32]) {
        super::im2col_portable(l, x, col)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn im2row(l: &Lowering, x: &[f32], out: &mut [f32], scratch: &mut Scratch) {
        super::im2row_portable(l, x, out, scratch)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn col2im_add(l: &Lowering, col: &[f32], x: &mut [f32]) {
        super::col2im_add_portable(l, col, x)
    }
}

/// Every tap `(c, ky, kx, r)`, in column-matrix row order. An iterator rather than a closure
/// taken by a helper, so that the loops that use it stay in their own function's body and are
/// compiled for its instruction set (the AVX2 paths).
fn taps(l: &Lowering) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let [kh, kw] = l.kernel;
    (0..l.rows()).map(move |r| (r / (kh * kw), r / kw % kh, r % kw, r))
}

#[inline(always)]
fn im2col_portable(l: &Lowering, x: &[f32], col: &mut [f32]) {
    let (plane, w, ow, positions) = (l.height * l.width, l.width, l.out[1], l.positions());
    if positions == 0 {
        return;
    }
    let sw = l.stride[1];
    for (c, ky, kx, r) in taps(l) {
        let (ylo, yhi) = l.valid(0, ky);
        let (xlo, xhi) = l.valid(1, kx);
        let row = &mut col[r * positions..(r + 1) * positions];
        for (oy, dst) in row.chunks_exact_mut(ow).enumerate() {
            if !(ylo..yhi).contains(&oy) || xlo == xhi {
                dst.fill(0.0);
                continue;
            }
            let start = c * plane + l.source(0, oy, ky) * w + l.source(1, xlo, kx);
            dst[..xlo].fill(0.0);
            if sw == 1 {
                dst[xlo..xhi].copy_from_slice(&x[start..start + xhi - xlo]);
            } else {
                for (d, s) in dst[xlo..xhi].iter_mut().zip(x[start..].iter().step_by(sw)) {
                    *d = *s;
                }
            }
            dst[xhi..].fill(0.0);
        }
    }
}

/// im2row without SIMD intrinsics: by channels-last runs (`runs`) from
/// [`CHANNELS_LAST_RUNS`] channels, else value by value.
#[inline(always)]
fn im2row_portable(l: &Lowering, x: &[f32], out: &mut [f32], scratch: &mut Scratch) {
    if l.channels < CHANNELS_LAST_RUNS {
        im2row_by_values(l, x, out);
        return;
    }
    let Scratch {
        floats: xt, spans, ..
    } = scratch;
    let plane = l.height * l.width;
    xt.resize(l.channels * plane, 0.0);
    // The image to channels-last, in 8 x 8 blocks (each block's reads and writes stay in a
    // few cache lines).
    for c0 in (0..l.channels).step_by(8) {
        for q0 in (0..plane).step_by(8) {
            for c in c0..(c0 + 8).min(l.channels) {
                let row = &x[c * plane..(c + 1) * plane];
                for q in q0..(q0 + 8).min(plane) {
                    xt[q * l.channels + c] = row[q];
                }
            }
        }
    }
    runs::im2row_runs(l, xt, out, spans, |src, dst| match src {
        Some(src) => dst.copy_from_slice(src),
        None => dst.fill(0.0),
    });
}

#[inline(always)]
fn im2row_by_values(l: &Lowering, x: &[f32], out: &mut [f32]) {
    let (plane, w, rows) = (l.height * l.width, l.width, l.rows());
    let [kh, kw] = l.kernel;
    let mut dst = out[..l.positions() * rows].iter_mut();
    for oy in 0..l.out[0] {
        for ox in 0..l.out[1] {
            for ky in 0..kh {
                let (ylo, yhi) = l.valid(0, ky);
                for kx in 0..kw {
                    let (xlo, xhi) = l.valid(1, kx);
                    let inside = (ylo..yhi).contains(&oy) && (xlo..xhi).contains(&ox);
                    let at = if inside {
                        l.source(0, oy, ky) * w + l.source(1, ox, kx)
                    } else {
                        0
                    };
                    for c in 0..l.channels {
                        let value = if inside { x[c * plane + at] } else { 0.0 };
                        *dst.next().expect("im2row: out holds positions x rows") = value;
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn col2im_add_portable(l: &Lowering, col: &[f32], x: &mut [f32]) {
    let (plane, w, ow, positions) = (l.height * l.width, l.width, l.out[1], l.positions());
    let sw = l.stride[1];
    for (c, ky, kx, r) in taps(l) {
        let (ylo, yhi) = l.valid(0, ky);
        let (xlo, xhi) = l.valid(1, kx);
        if xlo == xhi {
            continue;
        }
        for oy in ylo..yhi {
            let start = c * plane + l.source(0, oy, ky) * w + l.source(1, xlo, kx);
            let src = &col[r * positions + oy * ow + xlo..r * positions + oy * ow + xhi];
            if sw == 1 {
                for (d, s) in x[start..start + src.len()].iter_mut().zip(src) {
                    *d += *s;
                }
            } else {
                for (d, s) in x[start..].iter_mut().step_by(sw).zip(src) {
                    *d += *s;
                }
            }
        }
    }
}
