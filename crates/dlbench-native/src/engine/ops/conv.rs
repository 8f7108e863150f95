//! 2-D convolution (cross-correlation, PyTorch semantics), OIHW weights, as one `sgemm` per
//! image and group on the lowered input: `Y = W col` (im2col), `dW += dY col^T` (im2row,
//! the transposed lowering, which `sgemm` reads in place; its taps are channels-last, so dW
//! is reordered once at the end), `dcol = W^T dY` raised onto the input by col2im.
//!
//! One image's column matrix (tens to hundreds of KiB) stays in L2 between its lowering and
//! its product, and each product writes its image's output in place. Lowering the whole
//! batch into one wide product instead was measured (seed CNN, batch 32, forward) at 2.43 ms
//! against 2.48 ms for the second layer, before counting the 6 MiB column matrix's trip
//! through memory, and 0.30 against 0.28 ms for the first (the output then needs a transpose
//! to NCHW): not worth a second code path.

use std::cell::RefCell;

use dlbench_core::ir::Conv2d;

use super::Buf;
use crate::kernels::dot::dot_rows_add;
use crate::kernels::gemm::{sgemm, MatRef};
use crate::kernels::im2col::{col2im_add, im2col, im2row, Lowering};

/// Taps per output (rows of the column matrix) below which the weight gradient is computed as
/// dot products of rows (`dW[o, t] = dY[o, :] · col[t, :]`) rather than by `sgemm`: fewer
/// taps than one 64-wide `sgemm` tile leave every tile partly empty. Measured (batch of 32,
/// lowering included): 9 taps on 30x30 outputs, 32 filters, 0.28 ms against 2.4 ms; 36 taps
/// on 14x14, 0.22 against 0.43 ms; at 72 taps the dot products still win with 32 filters
/// (0.44 against 0.58 ms) but lose with 64 (1.15 against 0.96 ms), and at 288 taps (the seed
/// CNN's second layer) take twice as long.
const DOT_TAPS: usize = 64;

/// Sizes of one convolution, read from the input and weight shapes.
struct Geometry {
    n: usize,
    c: usize,
    o: usize,
    groups: usize,
    /// The window geometry of one image over one group's channels.
    low: Lowering,
}

impl Geometry {
    fn new(attrs: &Conv2d, x: &Buf, w: &Buf) -> Self {
        let (xs, ws) = (&x.shape, &w.shape);
        let out_len = |size: usize, k: usize, axis: usize| {
            let span = attrs.dilation[axis] * (k - 1) + 1;
            (size + 2 * attrs.padding[axis] - span) / attrs.stride[axis] + 1
        };
        Geometry {
            n: xs[0],
            c: xs[1],
            o: ws[0],
            groups: attrs.groups,
            low: Lowering {
                channels: xs[1] / attrs.groups,
                height: xs[2],
                width: xs[3],
                kernel: [ws[2], ws[3]],
                stride: attrs.stride,
                padding: attrs.padding,
                dilation: attrs.dilation,
                out: [out_len(xs[2], ws[2], 0), out_len(xs[3], ws[3], 1)],
            },
        }
    }

    fn o_per_group(&self) -> usize {
        self.o / self.groups
    }

    /// Rows of a group's column matrix: its input channels times the kernel taps.
    fn rows(&self) -> usize {
        self.low.rows()
    }

    /// Output positions per channel.
    fn plane(&self) -> usize {
        self.low.positions()
    }

    /// Where group `grp` of image `n` starts in the input (its channels are contiguous).
    fn input_at(&self, n: usize, grp: usize) -> usize {
        (n * self.c + grp * self.low.channels) * self.low.height * self.low.width
    }

    /// Where group `grp` of image `n` starts in the output.
    fn output_at(&self, n: usize, grp: usize) -> usize {
        (n * self.o + grp * self.o_per_group()) * self.plane()
    }

    /// Group `grp`'s weights, `[O/g, C/g * kh * kw]` row-major.
    fn weights<'a>(&self, w: &'a [f32], grp: usize) -> MatRef<'a> {
        let (opg, rows) = (self.o_per_group(), self.rows());
        MatRef::row_major(&w[grp * opg * rows..(grp + 1) * opg * rows], opg, rows)
    }
}

/// `y[n, o] = b[o] + sum over the group's channels of x[n, c] ⋆ w[o, c]`, with stride,
/// symmetric zero padding, dilation and groups as PyTorch's `conv2d`.
pub fn conv2d(attrs: &Conv2d, x: &Buf, w: &Buf, b: Option<&Buf>, threads: usize) -> Buf {
    let g = Geometry::new(attrs, x, w);
    let (plane, opg, rows) = (g.plane(), g.o_per_group(), g.rows());
    // Built an image at a time: each image's block is written (bias or zeros) just before its
    // product accumulates onto it, while it is still in cache.
    let mut y = Vec::with_capacity(g.n * g.o * plane);
    let col_len = if g.low.is_identity() { 0 } else { rows * plane };
    with_scratch(col_len, |col| {
        for n in 0..g.n {
            for grp in 0..g.groups {
                let image = &x.data[g.input_at(n, grp)..][..g.low.input_len()];
                let lowered: &[f32] = if g.low.is_identity() {
                    image
                } else {
                    im2col(&g.low, image, col);
                    col
                };
                let at = y.len();
                let beta = match b {
                    Some(b) => {
                        for &bias in &b.data[grp * opg..(grp + 1) * opg] {
                            y.resize(y.len() + plane, bias);
                        }
                        1.0
                    }
                    None => {
                        y.resize(at + opg * plane, 0.0);
                        0.0
                    }
                };
                sgemm(
                    1.0,
                    g.weights(&w.data, grp),
                    MatRef::row_major(lowered, rows, plane),
                    beta,
                    &mut y[at..],
                    plane,
                    threads,
                );
            }
        }
    });
    Buf::new(vec![g.n, g.o, g.low.out[0], g.low.out[1]], y)
}

/// Returns (dx if `need_dx`, dw, db if `has_bias`).
pub fn conv2d_backward(
    attrs: &Conv2d,
    x: &Buf,
    w: &Buf,
    has_bias: bool,
    dy: &[f32],
    need_dx: bool,
    threads: usize,
) -> (Option<Vec<f32>>, Vec<f32>, Option<Vec<f32>>) {
    let g = Geometry::new(attrs, x, w);
    let (plane, opg, rows) = (g.plane(), g.o_per_group(), g.rows());
    let dot_taps = rows < DOT_TAPS;
    let mut dw = vec![0.0; w.data.len()];
    // Through `sgemm`, dW comes out with im2row's channels-last taps, reordered at the end.
    let mut dw_channels_last = vec![0.0; if dot_taps { 0 } else { w.data.len() }];
    // W^T of each group, `[C/g * kh * kw, O/g]`: `sgemm` packs a row-major A faster than a
    // transposed view, and this is done once per call rather than once per image.
    let w_t = need_dx.then(|| transposed_weights(&g, &w.data));
    let image_len = g.c * g.low.height * g.low.width;
    let mut dx = need_dx.then(|| Vec::with_capacity(g.n * image_len));
    // Summed in f64 an image at a time, while its part of `dy` is in cache.
    let mut db = vec![0.0f64; if has_bias { g.o } else { 0 }];
    // The lowered input (im2col for the dot products, im2row for `sgemm`) and, if wanted,
    // the column gradient.
    let scratch_len = rows * plane * if need_dx { 2 } else { 1 };
    with_scratch(scratch_len, |scratch| {
        let (lowered, dcol) = scratch.split_at_mut(rows * plane);
        for n in 0..g.n {
            if let Some(dx) = &mut dx {
                // This image's gradient, cleared while in cache, then accumulated onto.
                dx.resize(dx.len() + image_len, 0.0);
            }
            for grp in 0..g.groups {
                let image = &x.data[g.input_at(n, grp)..][..g.low.input_len()];
                let at = g.output_at(n, grp);
                let dy_g = &dy[at..at + opg * plane];
                if has_bias {
                    for (sum, row) in db[grp * opg..]
                        .iter_mut()
                        .zip(dy_g.chunks_exact(plane.max(1)))
                    {
                        *sum += sum_f64(row);
                    }
                }
                let w_range = grp * opg * rows..(grp + 1) * opg * rows;
                if dot_taps {
                    im2col(&g.low, image, lowered);
                    dot_rows_add(dy_g, lowered, opg, rows, plane, &mut dw[w_range], rows);
                } else {
                    // dW_g += dy_g col^T: [O/g, oh*ow] x [oh*ow, C/g*kh*kw].
                    im2row(&g.low, image, lowered);
                    sgemm(
                        1.0,
                        MatRef::row_major(dy_g, opg, plane),
                        MatRef::row_major(lowered, plane, rows),
                        1.0,
                        &mut dw_channels_last[w_range],
                        rows,
                        threads,
                    );
                }
                if let (Some(dx), Some(w_t)) = (&mut dx, &w_t) {
                    let w_t_g =
                        MatRef::row_major(&w_t[grp * rows * opg..][..rows * opg], rows, opg);
                    let dy_m = MatRef::row_major(dy_g, opg, plane);
                    let dx_g = &mut dx[g.input_at(n, grp)..][..g.low.input_len()];
                    if g.low.is_identity() {
                        // The column matrix is the input: its gradient is dx itself (still zero).
                        sgemm(1.0, w_t_g, dy_m, 0.0, dx_g, plane, threads);
                    } else {
                        // dcol = W_g^T dy_g, then added onto the input it was read from.
                        sgemm(1.0, w_t_g, dy_m, 0.0, dcol, plane, threads);
                        col2im_add(&g.low, dcol, dx_g);
                    }
                }
            }
        }
    });
    if !dot_taps {
        // Column `kernel_tap * channels + c` of each row goes to `c * kernel_taps + kernel_tap`
        // (`tap_of_channels_last`, without its divisions per element).
        let (channels, kernel_taps) = (g.low.channels, g.low.kernel[0] * g.low.kernel[1]);
        for (out, row) in dw
            .chunks_exact_mut(rows)
            .zip(dw_channels_last.chunks_exact(rows))
        {
            for (kernel_tap, taps) in row.chunks_exact(channels).enumerate() {
                for (c, &v) in taps.iter().enumerate() {
                    out[c * kernel_taps + kernel_tap] = v;
                }
            }
        }
    }
    let db = has_bias.then(|| db.into_iter().map(|v| v as f32).collect());
    (dx, dw, db)
}

thread_local! {
    /// Lowering buffers reused from call to call: every lowering overwrites all of what it
    /// uses, so they are neither cleared nor reallocated per call (at batch 1 that was a
    /// visible share of an inference).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` floats of this thread's scratch buffer (contents unspecified).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with_borrow_mut(|scratch| {
        if scratch.len() < len {
            scratch.resize(len, 0.0);
        }
        f(&mut scratch[..len])
    })
}

/// Each group's weights transposed, `[C/g * kh * kw, O/g]` row-major, groups one after the
/// other.
fn transposed_weights(g: &Geometry, w: &[f32]) -> Vec<f32> {
    let (opg, rows) = (g.o_per_group(), g.rows());
    let mut w_t = Vec::with_capacity(w.len());
    for grp in 0..g.groups {
        let w_g = &w[grp * opg * rows..(grp + 1) * opg * rows];
        for r in 0..rows {
            w_t.extend((0..opg).map(|o| w_g[o * rows + r]));
        }
    }
    w_t
}

/// The sum of `row` in f64.
fn sum_f64(row: &[f32]) -> f64 {
    /// Independent partial sums, so the additions do not form one chain of dependent adds.
    const LANES: usize = 8;
    let mut lanes = [0.0f64; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest: f64 = chunks.remainder().iter().map(|&v| f64::from(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(v);
        }
    }
    lanes.iter().sum::<f64>() + rest
}

#[cfg(test)]
mod tests;
