//! im2row by runs: with the image transposed to channels-last, the taps of one output position
//! and kernel row are one run of `kw * channels` contiguous floats (or `channels` per kernel
//! column, with dilation), the padding being zeros at the run's ends. The walk over positions
//! is shared by every instruction set; each brings its own copy of a run.

use super::Lowering;

/// Writes the im2row matrix of the channels-last image `xt` (`height x width x channels`)
/// into `out` (`positions() x rows()`, every element), calling `copy(Some(src), dst)` to copy
/// a run and `copy(None, dst)` to zero one. `spans` is working memory.
#[inline(always)]
pub(super) fn im2row_runs(
    l: &Lowering,
    xt: &[f32],
    out: &mut [f32],
    spans: &mut Vec<(usize, usize)>,
    copy: impl Fn(Option<&[f32]>, &mut [f32]),
) {
    let [kh, kw] = l.kernel;
    let (channels, w) = (l.channels, l.width);
    let dw = l.dilation[1];
    // One table: the valid output rows of each kernel row, the valid output columns of each
    // kernel column, then per output column the kernel columns that read the real input (an
    // interval, since the input column grows with the kernel column).
    spans.clear();
    spans.extend((0..kh).map(|ky| l.valid(0, ky)));
    spans.extend((0..kw).map(|kx| l.valid(1, kx)));
    for ox in 0..l.out[1] {
        let cols_valid = &spans[kh..kh + kw];
        let reads = |kx: &usize| (cols_valid[*kx].0..cols_valid[*kx].1).contains(&ox);
        let lo = (0..kw).find(reads).unwrap_or(kw);
        let hi = (lo..kw).find(|kx| !reads(kx)).unwrap_or(kw);
        spans.push((lo, hi));
    }
    let (rows_valid, rest) = spans.split_at(kh);
    let kernel_cols = &rest[kw..];
    let run = kw * channels;
    let mut runs = out[..l.positions() * l.rows()].chunks_exact_mut(run);
    for oy in 0..l.out[0] {
        for (ox, &(lo, hi)) in kernel_cols.iter().enumerate() {
            for (ky, &(ylo, yhi)) in rows_valid.iter().enumerate() {
                let dst = runs.next().expect("out holds positions x rows");
                let inside = (ylo..yhi).contains(&oy);
                // The input pixel of kernel column `kx` (real for `kx` in `lo..hi`).
                let pixel = |kx| l.source(0, oy, ky) * w + l.source(1, ox, kx);
                let from = |kx, len| &xt[pixel(kx) * channels..][..len];
                if !inside || lo == hi {
                    copy(None, dst);
                    continue;
                }
                let (head, rest) = dst.split_at_mut(lo * channels);
                let (body, tail) = rest.split_at_mut((hi - lo) * channels);
                copy(None, head);
                if dw == 1 {
                    copy(Some(from(lo, body.len())), body);
                } else {
                    for (kx, part) in (lo..hi).zip(body.chunks_exact_mut(channels)) {
                        copy(Some(from(kx, channels)), part);
                    }
                }
                copy(None, tail);
            }
        }
    }
}
