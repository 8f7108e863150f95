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
//!
//! On several threads the batch is split into contiguous chunks of images run on the kernels'
//! pool (`parallel`), each image's products on one thread: one image's product is too small
//! for `sgemm` to split. The per-image bodies are shared with the one-thread path.

use std::ops::Range;
use std::sync::{LockResult, Mutex};

use dlbench_core::ir::Conv2d;

use self::parallel::{Chunks, Parts};
use super::layout::transpose_matrix;
use super::{sized, Buf};
use crate::kernels::dot::dot_rows_add;
use crate::kernels::gemm::{sgemm, MatRef};
use crate::kernels::im2col::{self, col2im_add, im2col, im2row, Lowering};

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
            attrs
                .output_len(size, k, axis)
                .expect("shape inference checked the kernel fits")
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
    /// Multiply-adds of one image's forward product (the backward's two products each match).
    fn work_per_image(&self) -> usize {
        self.o * self.rows() * self.plane()
    }

    fn weights<'a>(&self, w: &'a [f32], grp: usize) -> MatRef<'a> {
        let (opg, rows) = (self.o_per_group(), self.rows());
        MatRef::row_major(&w[grp * opg * rows..(grp + 1) * opg * rows], opg, rows)
    }
}

/// `y[n, o] = b[o] + sum over the group's channels of x[n, c] ⋆ w[o, c]`, with stride,
/// symmetric zero padding, dilation and groups as PyTorch's `conv2d`, into `y`.
pub fn conv2d(
    attrs: &Conv2d,
    x: &Buf,
    w: &Buf,
    b: Option<&Buf>,
    y: &mut [f32],
    scratch: &mut Scratch,
    threads: usize,
) {
    let g = Geometry::new(attrs, x, w);
    let image_out = g.o * g.plane();
    // Each image's block is overwritten (bias, or the product with beta 0) just before its
    // product, while in cache.
    let col_len = if g.low.is_identity() {
        0
    } else {
        g.rows() * g.plane()
    };
    let pass = Forward {
        g: &g,
        x: &x.data,
        w: &w.data,
        b: b.map(|b| b.data.as_slice()),
    };
    let forward_images =
        |images: Range<usize>, y: &mut [f32], chunk: &mut Chunk, sgemm_threads: usize| {
            let col = sized(&mut chunk.lowered, col_len);
            for (k, n) in images.enumerate() {
                let y_image = &mut y[k * image_out..(k + 1) * image_out];
                forward_image(&pass, n, y_image, col, sgemm_threads);
            }
        };
    let chunks = Chunks::new(g.n, g.work_per_image(), threads);
    let states = chunk_states(&mut scratch.chunks, chunks.len());
    if chunks.len() <= 1 {
        forward_images(0..g.n, y, unpoisoned(states[0].get_mut()), threads);
    } else {
        let parts = Parts::new(y, chunks, image_out);
        parallel::run_chunks(threads, chunks, |t| {
            // SAFETY: each chunk's task runs once and takes only its own part.
            let y_part = unsafe { parts.part(t) };
            let mut chunk = unpoisoned(states[t].lock());
            forward_images(chunks.get(t), y_part, &mut chunk, 1);
        });
    }
}

/// What every image's forward pass reads.
struct Forward<'a> {
    g: &'a Geometry,
    x: &'a [f32],
    w: &'a [f32],
    b: Option<&'a [f32]>,
}

/// Image `n`'s output, `[O, oh * ow]`, written over `y_image`; `col` holds the lowering.
fn forward_image(pass: &Forward, n: usize, y_image: &mut [f32], col: &mut [f32], threads: usize) {
    let Forward { g, x, w, b } = *pass;
    let (plane, opg, rows) = (g.plane(), g.o_per_group(), g.rows());
    for grp in 0..g.groups {
        let image = &x[g.input_at(n, grp)..][..g.low.input_len()];
        let lowered: &[f32] = if g.low.is_identity() {
            image
        } else {
            im2col(&g.low, image, col);
            col
        };
        let y_g = &mut y_image[grp * opg * plane..(grp + 1) * opg * plane];
        let beta = match b {
            Some(b) => {
                for (row, &bias) in y_g
                    .chunks_exact_mut(plane.max(1))
                    .zip(&b[grp * opg..(grp + 1) * opg])
                {
                    row.fill(bias);
                }
                1.0
            }
            None => 0.0,
        };
        sgemm(
            1.0,
            g.weights(w, grp),
            MatRef::row_major(lowered, rows, plane),
            beta,
            y_g,
            plane,
            threads,
        );
    }
}

/// The weight and bias gradients summed over some images: all of them on one thread, or one
/// chunk's share, the chunks' sums added in chunk order afterwards (so a thread count always
/// gives the same bits).
#[derive(Debug, Default)]
struct Gradients {
    /// Through the row dot products, OIHW.
    dw: Vec<f32>,
    /// Through `sgemm`, with im2row's channels-last taps, reordered at the end.
    dw_channels_last: Vec<f32>,
    /// Summed in f64 an image at a time, while its part of `dy` is in cache.
    db: Vec<f64>,
}

impl Gradients {
    /// Cleared and sized for `g` (reusing the buffers of the last call).
    fn clear(&mut self, g: &Geometry, dot_taps: bool, has_bias: bool) {
        let len = g.o * g.rows();
        let zeros = |v: &mut Vec<f32>, len: usize| {
            v.clear();
            v.resize(len, 0.0);
        };
        zeros(&mut self.dw, if dot_taps { len } else { 0 });
        zeros(&mut self.dw_channels_last, if dot_taps { 0 } else { len });
        self.db.clear();
        self.db.resize(if has_bias { g.o } else { 0 }, 0.0);
    }

    fn add(&mut self, other: &Gradients) {
        let add =
            |sum: &mut [f32], part: &[f32]| sum.iter_mut().zip(part).for_each(|(s, p)| *s += p);
        add(&mut self.dw, &other.dw);
        add(&mut self.dw_channels_last, &other.dw_channels_last);
        self.db.iter_mut().zip(&other.db).for_each(|(s, p)| *s += p);
    }
}

/// What one chunk of images works in: the chunk's own buffers, whichever thread runs it, so
/// that they are sized once (on the first call) and a steady-state step allocates nothing.
#[derive(Debug, Default)]
struct Chunk {
    /// The lowered input (im2col for the forward product and the dot products, im2row for
    /// the weight gradient's `sgemm`) and the column gradient.
    lowered: Vec<f32>,
    dcol: Vec<f32>,
    lowering: im2col::Scratch,
    /// Backward's gradient sums over the chunk's images.
    sums: Gradients,
}

/// What a convolution reuses from call to call.
#[derive(Debug, Default)]
pub struct Scratch {
    /// `W^T` of each group.
    w_t: Vec<f32>,
    /// One per chunk of images (one on one thread), each locked only by its chunk's task.
    chunks: Vec<Mutex<Chunk>>,
}

/// The buffers of `count` chunks. Kept when fewer are wanted (a batch of one runs as one
/// chunk between batches of 32 that run as two), so that they are not made again.
fn chunk_states(states: &mut Vec<Mutex<Chunk>>, count: usize) -> &mut [Mutex<Chunk>] {
    let count = count.max(1);
    if states.len() < count {
        states.resize_with(count, Mutex::default);
    }
    &mut states[..count]
}

/// What every image's backward pass reads.
struct Backward<'a> {
    g: &'a Geometry,
    x: &'a [f32],
    dy: &'a [f32],
    /// W^T of each group, when dx is wanted.
    w_t: Option<&'a [f32]>,
    has_bias: bool,
    dot_taps: bool,
}

/// Writes dx, dw and db where wanted.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    attrs: &Conv2d,
    x: &Buf,
    w: &Buf,
    dy: &[f32],
    dx: Option<&mut [f32]>,
    dw: Option<&mut [f32]>,
    db: Option<&mut [f32]>,
    scratch: &mut Scratch,
    threads: usize,
) {
    let g = Geometry::new(attrs, x, w);
    let (plane, rows) = (g.plane(), g.rows());
    let need_dx = dx.is_some();
    let has_bias = db.is_some();
    // W^T of each group, `[C/g * kh * kw, O/g]`: `sgemm` packs a row-major A faster than a
    // transposed view, and this is done once per call rather than once per image.
    let Scratch {
        w_t,
        chunks: states,
    } = scratch;
    if need_dx {
        w_t.resize(w.data.len(), 0.0);
        transposed_weights(&g, &w.data, w_t);
    }
    let pass = Backward {
        g: &g,
        x: &x.data,
        dy,
        w_t: need_dx.then_some(w_t.as_slice()),
        has_bias,
        dot_taps: rows < DOT_TAPS,
    };
    let image_len = g.c * g.low.height * g.low.width;
    let dcol_len = if need_dx { rows * plane } else { 0 };
    let backward_images =
        |images: Range<usize>, mut dx: Option<&mut [f32]>, chunk: &mut Chunk, threads| {
            let Chunk {
                lowered,
                dcol,
                lowering,
                sums,
            } = chunk;
            let (lowered, dcol) = (sized(lowered, rows * plane), sized(dcol, dcol_len));
            for (k, n) in images.enumerate() {
                let dx_image = dx
                    .as_deref_mut()
                    .map(|dx| &mut dx[k * image_len..(k + 1) * image_len]);
                let work = Work {
                    sums: &mut *sums,
                    lowered: &mut *lowered,
                    dcol: &mut *dcol,
                    lowering: &mut *lowering,
                };
                backward_image(&pass, n, dx_image, work, threads);
            }
        };
    let chunks = Chunks::new(g.n, g.work_per_image(), threads);
    let states = chunk_states(states, chunks.len());
    for state in states.iter_mut() {
        let sums = &mut unpoisoned(state.get_mut()).sums;
        sums.clear(&g, pass.dot_taps, has_bias);
    }
    if chunks.len() <= 1 {
        backward_images(0..g.n, dx, unpoisoned(states[0].get_mut()), threads);
    } else {
        let dx_parts = dx.map(|dx| Parts::new(dx, chunks, image_len));
        parallel::run_chunks(threads, chunks, |t| {
            // SAFETY: each chunk's task runs once and takes only its own part.
            let dx = dx_parts.as_ref().map(|parts| unsafe { parts.part(t) });
            let mut chunk = unpoisoned(states[t].lock());
            backward_images(chunks.get(t), dx, &mut chunk, 1);
        });
        let (first, rest) = states.split_first_mut().expect("at least two chunks");
        let total = &mut unpoisoned(first.get_mut()).sums;
        rest.iter_mut()
            .for_each(|part| total.add(&unpoisoned(part.get_mut()).sums));
    }
    let total = &unpoisoned(states[0].get_mut()).sums;
    if let Some(dw) = dw {
        if pass.dot_taps {
            dw.copy_from_slice(&total.dw);
        } else {
            oihw_of_channels_last(&g, &total.dw_channels_last, dw);
        }
    }
    if let Some(db) = db {
        db.iter_mut()
            .zip(&total.db)
            .for_each(|(d, &s)| *d = s as f32);
    }
}

/// Where an image's backward pass works: the sums its dW and db are added onto, and scratch
/// (`lowered` of `rows * plane` floats, `dcol` as many when dx is wanted).
struct Work<'a> {
    sums: &'a mut Gradients,
    lowered: &'a mut [f32],
    dcol: &'a mut [f32],
    lowering: &'a mut im2col::Scratch,
}

/// Image `n`'s share of the gradients: its dx (written over) if wanted, its dW and db added
/// onto `work.sums`.
fn backward_image(
    pass: &Backward,
    n: usize,
    mut dx_image: Option<&mut [f32]>,
    work: Work,
    threads: usize,
) {
    let Work {
        sums,
        lowered,
        dcol,
        lowering,
    } = work;
    let g = pass.g;
    let (plane, opg, rows) = (g.plane(), g.o_per_group(), g.rows());
    let image_at = g.input_at(n, 0);
    if let Some(dx) = dx_image.as_deref_mut() {
        // col2im adds onto it; cleared here, an image at a time, while it is in cache.
        dx.fill(0.0);
    }
    for grp in 0..g.groups {
        let image = &pass.x[g.input_at(n, grp)..][..g.low.input_len()];
        let at = g.output_at(n, grp);
        let dy_g = &pass.dy[at..at + opg * plane];
        if pass.has_bias {
            for (sum, row) in sums.db[grp * opg..]
                .iter_mut()
                .zip(dy_g.chunks_exact(plane.max(1)))
            {
                *sum += sum_f64(row);
            }
        }
        let w_range = grp * opg * rows..(grp + 1) * opg * rows;
        if pass.dot_taps {
            im2col(&g.low, image, lowered);
            dot_rows_add(dy_g, lowered, opg, rows, plane, &mut sums.dw[w_range], rows);
        } else {
            // dW_g += dy_g col^T: [O/g, oh*ow] x [oh*ow, C/g*kh*kw].
            im2row(&g.low, image, lowered, lowering);
            sgemm(
                1.0,
                MatRef::row_major(dy_g, opg, plane),
                MatRef::row_major(lowered, plane, rows),
                1.0,
                &mut sums.dw_channels_last[w_range],
                rows,
                threads,
            );
        }
        if let (Some(dx), Some(w_t)) = (dx_image.as_deref_mut(), pass.w_t) {
            let w_t_g = MatRef::row_major(&w_t[grp * rows * opg..][..rows * opg], rows, opg);
            let dy_m = MatRef::row_major(dy_g, opg, plane);
            let dx_g = &mut dx[g.input_at(n, grp) - image_at..][..g.low.input_len()];
            if g.low.is_identity() {
                // The column matrix is the input: its gradient is dx itself (still zero).
                sgemm(1.0, w_t_g, dy_m, 0.0, dx_g, plane, threads);
            } else {
                // dcol = W_g^T dy_g, then added onto the input it was read from.
                sgemm(1.0, w_t_g, dy_m, 0.0, dcol, plane, threads);
                col2im_add(&g.low, dcol, dx_g, lowering);
            }
        }
    }
}

/// dW in OIHW, into `dw`, from `sgemm`'s channels-last taps: column
/// `kernel_tap * channels + c` of each row goes to `c * kernel_taps + kernel_tap`
/// (`tap_of_channels_last`, without its divisions per element).
fn oihw_of_channels_last(g: &Geometry, dw_channels_last: &[f32], dw: &mut [f32]) {
    let rows = g.rows();
    let (channels, kernel_taps) = (g.low.channels, g.low.kernel[0] * g.low.kernel[1]);
    for (out, row) in dw
        .chunks_exact_mut(rows.max(1))
        .zip(dw_channels_last.chunks_exact(rows.max(1)))
    {
        for (kernel_tap, taps) in row.chunks_exact(channels.max(1)).enumerate() {
            for (c, &v) in taps.iter().enumerate() {
                out[c * kernel_taps + kernel_tap] = v;
            }
        }
    }
}

/// Each group's weights transposed into `w_t`, `[C/g * kh * kw, O/g]` row-major, groups one
/// after the other.
fn transposed_weights(g: &Geometry, w: &[f32], w_t: &mut [f32]) {
    let (opg, rows) = (g.o_per_group(), g.rows());
    let group = (opg * rows).max(1);
    for (w_g, t_g) in w.chunks_exact(group).zip(w_t.chunks_exact_mut(group)) {
        transpose_matrix(w_g, opg, rows, t_g);
    }
}

/// The value behind a lock whose holder panicked: the panic is re-raised by the pool anyway,
/// and the sums are cleared before each use.
fn unpoisoned<T>(result: LockResult<T>) -> T {
    result.unwrap_or_else(|e| e.into_inner())
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

mod parallel;
#[cfg(test)]
mod tests;
