//! The AVX-512F lowering paths, for unit stride along the width: each run of an output row is
//! contiguous in the input, so 16 output columns move with one masked load and one masked
//! store, the load's mask leaving the padding lanes zero. Masked-off lanes are never accessed,
//! so a vector may start before or end after the input row (its address is only formed,
//! with wrapping arithmetic, never dereferenced there).

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_add_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
    _mm512_setzero_ps, _mm512_shuffle_f32x4, _mm512_shuffle_ps, _mm512_unpackhi_ps,
    _mm512_unpacklo_ps,
};

use super::{Lowering, Scratch};

/// The mask of lanes `lo..hi` (`lo <= hi <= 16`).
fn lanes(lo: usize, hi: usize) -> __mmask16 {
    (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as __mmask16
}

/// The lanes of the `n` output columns from `j` that read the real input, given the tap's
/// valid range `lo..hi`.
fn run_lanes(j: usize, n: usize, lo: usize, hi: usize) -> __mmask16 {
    lanes(lo.clamp(j, j + n) - j, hi.clamp(j, j + n) - j)
}

/// The input column that output column 0 reads at tap `kx` (negative inside the padding).
fn column_shift(l: &Lowering, kx: usize) -> isize {
    (kx * l.dilation[1]) as isize - l.padding[1] as isize
}

/// As `super::im2col`.
///
/// # Safety
/// The CPU must support AVX-512F; `l.stride[1] == 1`; `x` and `col` hold at least
/// `l.input_len()` and `l.rows() * l.positions()` floats (`Lowering::check`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn im2col(l: &Lowering, x: &[f32], col: &mut [f32]) {
    let mut row = col.as_mut_ptr();
    for c in 0..l.channels {
        for ky in 0..l.kernel[0] {
            for kx in 0..l.kernel[1] {
                // SAFETY: forwarded; the rows of `col` follow one another.
                unsafe {
                    lower_row(l, x, [c, ky, kx], row);
                    row = row.add(l.positions());
                }
            }
        }
    }
}

/// The column-matrix row of tap `[c, ky, kx]` into the `positions()` floats at `dst`.
///
/// # Safety
/// As `im2col`, with `dst` valid for `positions()` writes and the tap inside the kernel.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn lower_row(l: &Lowering, x: &[f32], [c, ky, kx]: [usize; 3], dst: *mut f32) {
    let [oh, ow] = l.out;
    let (h, w) = (l.height, l.width);
    let step = l.stride[0] * w;
    let zero = _mm512_setzero_ps();
    let (ylo, yhi) = l.valid(0, ky);
    let (xlo, xhi) = l.valid(1, kx);
    // The input row read by output row `ylo` (not read when no row is valid).
    let first = if ylo < yhi {
        x.as_ptr().wrapping_add((c * h + l.source(0, ylo, ky)) * w)
    } else {
        x.as_ptr()
    };
    for j in (0..ow).step_by(16) {
        let n = (ow - j).min(16);
        let (store, load) = (lanes(0, n), run_lanes(j, n, xlo, xhi));
        let mut d = dst.wrapping_add(j);
        let mut s = first.wrapping_offset(j as isize + column_shift(l, kx));
        // SAFETY: each store is `n` columns of one output row at `dst`; the loaded lanes are
        // output columns in `xlo..xhi` of rows in `ylo..yhi`, whose input elements lie
        // inside the image (`valid`).
        unsafe {
            for _ in 0..ylo {
                _mm512_mask_storeu_ps(d, store, zero);
                d = d.wrapping_add(ow);
            }
            for _ in ylo..yhi {
                _mm512_mask_storeu_ps(d, store, _mm512_maskz_loadu_ps(load, s));
                s = s.wrapping_add(step);
                d = d.wrapping_add(ow);
            }
            for _ in yhi..oh {
                _mm512_mask_storeu_ps(d, store, zero);
                d = d.wrapping_add(ow);
            }
        }
    }
}

/// As `super::im2row`, for few channels: 16 rows of the column matrix at a time, in
/// im2row's channels-last tap order, are lowered into a small buffer (in L1) and transposed
/// into `out` in 16 x 16 blocks. (With few channels, channels-last runs are a few floats
/// each, and copying them one by one costs more than the transposes.)
///
/// # Safety
/// As `im2col` (including `l.stride[1] == 1`), with `out` holding `l.rows() *
/// l.positions()` floats.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn im2row_by_blocks(
    l: &Lowering,
    x: &[f32],
    out: &mut [f32],
    block: &mut Vec<f32>,
) {
    let (rows, positions) = (l.rows(), l.positions());
    let kernel_taps = l.kernel[0] * l.kernel[1];
    // Every row read below is written first (`lower_row` writes whole rows).
    block.resize(16 * positions, 0.0);
    let op = out.as_mut_ptr();
    for t0 in (0..rows).step_by(16) {
        let nt = (rows - t0).min(16);
        for i in 0..nt {
            let (kernel_tap, c) = ((t0 + i) / l.channels, (t0 + i) % l.channels);
            let tap = [c, kernel_tap / l.kernel[1], kernel_tap % l.kernel[1]];
            debug_assert!(kernel_tap < kernel_taps);
            // SAFETY: forwarded; row `i < 16` of `block`.
            unsafe { lower_row(l, x, tap, block.as_mut_ptr().add(i * positions)) };
        }
        for p0 in (0..positions).step_by(16) {
            let np = (positions - p0).min(16);
            let tile: [__m512; 16] = std::array::from_fn(|i| {
                if i < nt {
                    // SAFETY: row `i < nt` of the block, columns `p0..p0 + np`.
                    unsafe {
                        _mm512_maskz_loadu_ps(lanes(0, np), block.as_ptr().add(i * positions + p0))
                    }
                } else {
                    _mm512_setzero_ps()
                }
            });
            for (j, v) in transpose(tile).iter().take(np).enumerate() {
                // SAFETY: position `p0 + j < positions()`, taps `t0..t0 + nt <= rows()`:
                // inside `out`.
                unsafe { _mm512_mask_storeu_ps(op.add((p0 + j) * rows + t0), lanes(0, nt), *v) };
            }
        }
    }
}

/// As `super::im2row`: the image is first transposed to channels-last (16 x 16 blocks), so
/// that the taps of one position and kernel row are one run of `kw * channels` floats to copy
/// (or `channels` per kernel column, with dilation), padding being zeros at the run's ends.
///
/// # Safety
/// The CPU must support AVX-512F; `x` and `out` hold at least `l.input_len()` and
/// `l.rows() * l.positions()` floats (`Lowering::check`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn im2row(l: &Lowering, x: &[f32], out: &mut [f32], scratch: &mut Scratch) {
    let Scratch {
        floats: xt, spans, ..
    } = scratch;
    xt.resize(l.channels * l.height * l.width, 0.0);
    // SAFETY: forwarded (`x` holds the image); `xt` holds as many floats.
    unsafe { channels_last(x, l.channels, l.height * l.width, xt) };
    super::runs::im2row_runs(l, xt, out, spans, |src, dst| {
        // SAFETY: AVX-512F (this function's contract); `src`, when given, holds as many
        // floats as `dst` (`im2row_runs` slices both to the run).
        unsafe { copy_or_zero(src.map(<[f32]>::as_ptr), dst.as_mut_ptr(), dst.len()) }
    });
}

/// `len` floats from `src` (or zeros, for `None`) to `dst`, 16 at a time.
///
/// # Safety
/// AVX-512F; `src` readable and `dst` writable for `len` floats.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn copy_or_zero(src: Option<*const f32>, dst: *mut f32, len: usize) {
    for j in (0..len).step_by(16) {
        let m = lanes(0, (len - j).min(16));
        // SAFETY: the lanes of `m` are elements `j..min(j + 16, len)`.
        unsafe {
            let v = match src {
                Some(s) => _mm512_maskz_loadu_ps(m, s.add(j)),
                None => _mm512_setzero_ps(),
            };
            _mm512_mask_storeu_ps(dst.add(j), m, v);
        }
    }
}

/// The image `x` (`channels x plane`) transposed to `plane x channels` into `xt` (every
/// element written).
///
/// # Safety
/// AVX-512F; `x` and `xt` hold at least `channels * plane` floats.
#[target_feature(enable = "avx512f")]
unsafe fn channels_last(x: &[f32], channels: usize, plane: usize, xt: &mut [f32]) {
    let (xp, tp) = (x.as_ptr(), xt.as_mut_ptr());
    for c0 in (0..channels).step_by(16) {
        let nc = (channels - c0).min(16);
        for q0 in (0..plane).step_by(16) {
            let nq = (plane - q0).min(16);
            // SAFETY: channels `c0 + i < channels`, pixels `q0..q0 + nq <= plane`: inside `x`.
            let tile: [__m512; 16] = std::array::from_fn(|i| {
                if i < nc {
                    unsafe { _mm512_maskz_loadu_ps(lanes(0, nq), xp.add((c0 + i) * plane + q0)) }
                } else {
                    _mm512_setzero_ps()
                }
            });
            for (j, v) in transpose(tile).iter().take(nq).enumerate() {
                // SAFETY: pixel `q0 + j < plane`, channels `c0..c0 + nc`: inside `xt`.
                unsafe {
                    _mm512_mask_storeu_ps(tp.add((q0 + j) * channels + c0), lanes(0, nc), *v)
                };
            }
        }
    }
}

/// The 16 x 16 transpose of `r` (row `i` becomes column `i`): 2-, 4-, 8- then 16-lane
/// interleaves.
#[target_feature(enable = "avx512f")]
fn transpose(r: [__m512; 16]) -> [__m512; 16] {
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    let mut u = [_mm512_setzero_ps(); 16];
    for g in (0..16).step_by(4) {
        u[g] = _mm512_shuffle_ps::<0x44>(t[g], t[g + 2]);
        u[g + 1] = _mm512_shuffle_ps::<0xEE>(t[g], t[g + 2]);
        u[g + 2] = _mm512_shuffle_ps::<0x44>(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_shuffle_ps::<0xEE>(t[g + 1], t[g + 3]);
    }
    for b in [0, 8] {
        for i in 0..4 {
            t[b + i] = _mm512_shuffle_f32x4::<0x88>(u[b + i], u[b + 4 + i]);
            t[b + 4 + i] = _mm512_shuffle_f32x4::<0xDD>(u[b + i], u[b + 4 + i]);
        }
    }
    for i in 0..8 {
        u[i] = _mm512_shuffle_f32x4::<0x88>(t[i], t[8 + i]);
        u[8 + i] = _mm512_shuffle_f32x4::<0xDD>(t[i], t[8 + i]);
    }
    u
}

/// As `super::col2im_add`, gathered per input row: each 16 input columns of a row are
/// loaded once, every tap that reads them is added in a register (one masked load of the
/// column matrix each, its mask dropping the lanes the tap does not reach), and the sum is
/// stored once. (Scattering tap by tap instead re-reads each input row right after storing
/// it at another offset, which stalls on store-to-load forwarding.)
///
/// # Safety
/// As `im2col`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn col2im_add(
    l: &Lowering,
    col: &[f32],
    x: &mut [f32],
    reach: &mut Vec<(__mmask16, isize)>,
) {
    let [oh, ow] = l.out;
    let [kh, kw] = l.kernel;
    let (h, w, positions) = (l.height, l.width, l.positions());
    let (sh, dh, ph) = (l.stride[0], l.dilation[0], l.padding[0]);
    // Per 16-column chunk of an input row and kernel column: the lanes the tap reaches and
    // the offset of lane 0 in the tap's output row (lane i is input column j + i, read by
    // output column j + i - shift). The same for every row and channel.
    let chunks = w.div_ceil(16);
    reach.clear();
    reach.reserve(chunks * kw);
    for j in (0..w).step_by(16) {
        let n = (w - j).min(16) as isize;
        for kx in 0..kw {
            let ((xlo, xhi), shift) = (l.valid(1, kx), column_shift(l, kx));
            let lo = (xlo as isize + shift - j as isize).clamp(0, n);
            let hi = (xhi as isize + shift - j as isize).clamp(lo, n);
            reach.push((lanes(lo as usize, hi as usize), j as isize - shift));
        }
    }
    let (cp, xp) = (col.as_ptr(), x.as_mut_ptr());
    for c in 0..l.channels {
        for iy in 0..h {
            // SAFETY: row `iy` of channel `c`: inside `x`.
            let x_row = unsafe { xp.add((c * h + iy) * w) };
            for (chunk, j) in (0..w).step_by(16).enumerate() {
                let all = lanes(0, (w - j).min(16));
                // SAFETY: lanes `0..n` are input columns `j..j + n` of this row.
                let mut acc = unsafe { _mm512_maskz_loadu_ps(all, x_row.add(j)) };
                for ky in 0..kh {
                    // The output row whose tap `ky` reads input row `iy`, if any.
                    let Some(t) = (iy + ph).checked_sub(ky * dh) else {
                        continue;
                    };
                    let oy = if sh == 1 { t } else { t / sh };
                    if oy * sh != t || oy >= oh {
                        continue;
                    }
                    let row = cp.wrapping_add(((c * kh + ky) * kw) * positions + oy * ow);
                    for (kx, &(mask, offset)) in
                        reach[chunk * kw..(chunk + 1) * kw].iter().enumerate()
                    {
                        // SAFETY: the lanes of `mask` are output columns in `valid(1, kx)` of
                        // row `(c, ky, kx)`, output row `oy < oh`: inside `col`.
                        let v = unsafe {
                            _mm512_maskz_loadu_ps(
                                mask,
                                row.wrapping_add(kx * positions).wrapping_offset(offset),
                            )
                        };
                        acc = _mm512_add_ps(acc, v);
                    }
                }
                // SAFETY: as the load above.
                unsafe { _mm512_mask_storeu_ps(x_row.add(j), all, acc) };
            }
        }
    }
}
