//! Packing of the GEMM operands into the contiguous, zero-padded panels the micro-kernels
//! stream. Packing is where strides and transposes are absorbed: the kernels only ever see
//! unit-stride panels, so one kernel serves `A`, `Aᵀ`, `B` and `Bᵀ` alike.

use super::MatRef;

/// Packs rows `i0..i0 + mc` and columns `p0..p0 + kc` of `a` into panels of `mr` rows: panel
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
                dst[..rows].copy_from_slice(&a.data[base..base + rows]);
                dst[rows..].fill(0.0);
            }
            continue;
        }
        for i in 0..rows {
            let base = (i0 + r * mr + i) * a.row_stride + p0 * a.col_stride;
            for p in 0..kc {
                panel[p * mr + i] = a.data[base + p * a.col_stride];
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
