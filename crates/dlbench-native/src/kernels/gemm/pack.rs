//! Packing of the GEMM operands into the contiguous, zero-padded panels the micro-kernels
//! stream. Packing is where strides and transposes are absorbed: the kernels only ever see
//! unit-stride panels, so one kernel serves `A`, `Aᵀ`, `B` and `Bᵀ` alike.

use super::MatRef;

/// Packs rows `i0..i0 + mc` and columns `p0..p0 + kc` of `a` into panels of `mr` rows (for a
/// transposed or strided `A`: a row-major one is read in place, see `blocked_with`): panel
/// `r` holds, for each `p`, the `mr` values `a[i0 + r*mr + i, p0 + p]` contiguously (the
/// micro-kernel broadcasts them one by one). Rows past `mc` are zero so the kernel can always
/// run a full tile; their results are discarded.
pub(crate) fn pack_a(
    a: &MatRef,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    mr: usize,
    out: &mut [f32],
) {
    let panels = mc.div_ceil(mr);
    debug_assert!(out.len() >= panels * mr * kc);
    for r in 0..panels {
        let panel = &mut out[r * mr * kc..(r + 1) * mr * kc];
        let rows = mr.min(mc - r * mr);
        if a.row_stride == 1 {
            // A transposed view (`Xᵀ` of a row-major X, as in weight gradients): the `mr`
            // values a panel row needs are contiguous, so copy them rather than gather each
            // one from `col_stride` apart.
            let first = i0 + r * mr;
            for p in 0..kc {
                let base = (p0 + p) * a.col_stride + first;
                let dst = &mut panel[p * mr..(p + 1) * mr];
                let src = &a.data[base..base + rows];
                // A full row of the kernels' 6-row panels as one fixed-size copy: through
                // `copy_from_slice` each six floats cost a call to `memmove`.
                if let (Ok(dst), Ok(src)) = (
                    <&mut [f32; 6]>::try_from(&mut *dst),
                    <&[f32; 6]>::try_from(src),
                ) {
                    *dst = *src;
                    continue;
                }
                dst[..rows].copy_from_slice(src);
                dst[rows..].fill(0.0);
            }
            continue;
        }
        for i in 0..rows {
            let base = (i0 + r * mr + i) * a.row_stride + p0 * a.col_stride;
            // Row `i` of the panel is every `mr`-th float from `i`: iterated, not indexed, so
            // the copy carries no bounds check per float.
            let dst = panel[i..].iter_mut().step_by(mr);
            for (d, &v) in dst.zip(a.data[base..].iter().step_by(a.col_stride).take(kc)) {
                *d = v;
            }
        }
        for i in rows..mr {
            for p in 0..kc {
                panel[p * mr + i] = 0.0;
            }
        }
    }
}

/// Packs rows `p0..p0 + kc` and columns `j0..j0 + nc` of `b` into panels of `nr` columns:
/// panel `s` holds, for each `p`, the `nr` values `b[p0 + p, j0 + s*nr + j]` contiguously
/// (the micro-kernel loads them as vectors). Columns past `nc` are zero.
pub(crate) fn pack_b(
    b: &MatRef,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    out: &mut [f32],
) {
    let panels = nc.div_ceil(nr);
    debug_assert!(out.len() >= panels * nr * kc);
    for s in 0..panels {
        let panel = &mut out[s * nr * kc..(s + 1) * nr * kc];
        let cols = nr.min(nc - s * nr);
        let jb = j0 + s * nr;
        #[cfg(target_arch = "x86_64")]
        if b.row_stride == 1 && is_x86_feature_detected!("avx") {
            transposed_panel(b, p0, kc, jb, cols, nr, panel);
            continue;
        }
        for p in 0..kc {
            let dst = &mut panel[p * nr..(p + 1) * nr];
            let base = (p0 + p) * b.row_stride + jb * b.col_stride;
            if b.col_stride == 1 {
                // Row-major B: each panel row is a contiguous slice, a plain copy.
                dst[..cols].copy_from_slice(&b.data[base..base + cols]);
            } else {
                for (j, d) in dst[..cols].iter_mut().enumerate() {
                    *d = b.data[base + j * b.col_stride];
                }
            }
            dst[cols..].fill(0.0);
        }
    }
}

/// One panel of a transposed `B` (`b[p, j]` at `data[j * col_stride + p]`): 8 x 8 blocks
/// transposed in registers, the ragged edges one float at a time, zero columns past `cols`.
#[cfg(target_arch = "x86_64")]
fn transposed_panel(
    b: &MatRef,
    p0: usize,
    kc: usize,
    jb: usize,
    cols: usize,
    nr: usize,
    panel: &mut [f32],
) {
    let stride = b.col_stride;
    let at = |p: usize, j: usize| (jb + j) * stride + p0 + p;
    let (full_p, full_j) = (kc / 8 * 8, cols / 8 * 8);
    for p in (0..full_p).step_by(8) {
        for j in (0..full_j).step_by(8) {
            // The block's last read, row j+7 at column p+7, lies inside the view.
            let last = at(p + 7, j + 7);
            assert!(last < b.data.len() && (p + 7) * nr + j + 7 < panel.len());
            // SAFETY: AVX was detected by the caller; the reads are the 8 x 8 block of the
            // view (bounds-checked by its last element above, rows `stride` apart) and the
            // writes the panel's 8 x 8 block (rows `nr` apart, checked likewise).
            unsafe {
                super::transpose::transpose8x8(
                    b.data.as_ptr().add(at(p, j)),
                    stride,
                    panel.as_mut_ptr().add(p * nr + j),
                    nr,
                );
            }
        }
    }
    for p in 0..kc {
        let row = &mut panel[p * nr..(p + 1) * nr];
        let from = if p < full_p { full_j } else { 0 };
        for (j, d) in row.iter_mut().enumerate().take(cols).skip(from) {
            *d = b.data[at(p, j)];
        }
        row[cols..].fill(0.0);
    }
}
