//! Max and average pooling (PyTorch semantics, ceil_mode, count_include_pad), in f32.

use std::ops::Range;

use dlbench_core::ir::{Pool2d, PoolWindow};

use super::Buf;
use crate::kernels::pool::{self as tiles, Tiles};
use crate::kernels::split::{self, Disjoint};

/// Sizes of one pooling, read from the input shape.
struct Windows {
    planes: usize,
    h: usize,
    w: usize,
    rows: Vec<PoolWindow>,
    cols: Vec<PoolWindow>,
}

impl Windows {
    fn new(p: &Pool2d, x: &Buf) -> Self {
        let s = &x.shape;
        Windows {
            planes: s[0] * s[1],
            h: s[2],
            w: s[3],
            rows: p.windows(s[2], 0),
            cols: p.windows(s[3], 1),
        }
    }

    /// Calls `f(y_index, row_span, col_span, plane_offset)` for every output element.
    fn for_each(&self, mut f: impl FnMut(usize, &PoolWindow, &PoolWindow, usize)) {
        let mut yi = 0;
        for plane in 0..self.planes {
            let base = plane * self.h * self.w;
            for r in &self.rows {
                for c in &self.cols {
                    f(yi, r, c, base);
                    yi += 1;
                }
            }
        }
    }
}

/// The geometry of `p` on `x` when its windows are whole and disjoint (the fast kernels).
fn tiles(p: &Pool2d, x: &Buf) -> Option<Tiles> {
    let s = &x.shape;
    let out = [p.output_len(s[2], 0)?, p.output_len(s[3], 1)?];
    Tiles::fit([s[2], s[3]], p.kernel, p.stride, p.padding, out).then_some(Tiles {
        planes: s[0] * s[1],
        height: s[2],
        width: s[3],
        kernel: p.kernel,
        out,
    })
}

/// Runs `f(tiles, planes)` over the planes of `t` cut into one contiguous range per thread
/// (see `kernels::split`): `tiles` is `t` narrowed to the range's planes. Planes are
/// independent, so each task reads and writes only its own planes' parts of the buffers.
fn by_planes(t: &Tiles, threads: usize, f: impl Fn(&Tiles, Range<usize>) + Sync) {
    split::for_ranges(threads, t.planes, 1, t.height * t.width, &|planes| {
        f(
            &Tiles {
                planes: planes.len(),
                ..*t
            },
            planes,
        )
    });
}

/// Elements of one input plane and of one output plane of `t`.
fn plane_lens(t: &Tiles) -> (usize, usize) {
    (t.height * t.width, t.out[0] * t.out[1])
}

/// The flat input index of the first maximum of a window, in row-major order: strict `>`
/// keeps the earliest of equal values, which is where PyTorch sends the gradient on ties.
/// Padding is -inf, so it never wins; `None` only for a window with no real element.
fn argmax_of(x: &[f32], w: usize, base: usize, r: &PoolWindow, c: &PoolWindow) -> Option<usize> {
    let mut best: Option<usize> = None;
    for iy in r.start..r.end {
        for ix in c.start..c.end {
            let t = base + iy * w + ix;
            if best.is_none_or(|b| x[t] > x[b]) {
                best = Some(t);
            }
        }
    }
    best
}

/// The maximum of each window over the real input, into `y`; padding counts as -inf. With
/// `keep_argmax` (a training forward), whole-window pooling keeps where each maximum was in
/// `argmax`, so the backward pass need not read the input again; otherwise `argmax` is left
/// empty.
pub fn max_pool2d(
    p: &Pool2d,
    x: &Buf,
    y: &mut [f32],
    keep_argmax: bool,
    argmax: &mut Vec<u8>,
    threads: usize,
) {
    argmax.clear();
    if let Some(t) = tiles(p, x) {
        let keep = keep_argmax && tiles::keeps_argmax(&t);
        if keep {
            argmax.resize(y.len(), 0);
        }
        let (input, output) = plane_lens(&t);
        let (y, argmax) = (Disjoint::new(y), Disjoint::new(argmax.as_mut_slice()));
        by_planes(&t, threads, |sub, planes| {
            let outs = planes.start * output..planes.end * output;
            // SAFETY: each task takes its own planes' part, once (`by_planes`).
            let (y, argmax) = unsafe { (y.range(outs.clone()), keep.then(|| argmax.range(outs))) };
            let x = &x.data[planes.start * input..planes.end * input];
            tiles::max_pool(sub, x, y, argmax);
        });
        return;
    }
    let win = Windows::new(p, x);
    y.fill(f32::NEG_INFINITY);
    win.for_each(|yi, r, c, base| {
        if let Some(t) = argmax_of(&x.data, win.w, base, r, c) {
            y[yi] = x.data[t];
        }
    });
}

/// The gradient goes to the first maximum of each window (PyTorch's choice on ties), into
/// `dx`; `argmax` is what the forward pass kept (possibly nothing).
pub fn max_pool2d_backward(
    p: &Pool2d,
    x: &Buf,
    dy: &[f32],
    argmax: &[u8],
    dx: &mut [f32],
    threads: usize,
) {
    if let Some(t) = tiles(p, x) {
        let (input, output) = plane_lens(&t);
        let from_argmax = argmax.len() == dy.len();
        let dx = Disjoint::new(dx);
        by_planes(&t, threads, |sub, planes| {
            let (ins, outs) = (
                planes.start * input..planes.end * input,
                planes.start * output..planes.end * output,
            );
            // SAFETY: each task takes its own planes' part, once (`by_planes`).
            let dx = unsafe { dx.range(ins.clone()) };
            if from_argmax {
                tiles::max_pool_backward_from_argmax(sub, &argmax[outs.clone()], &dy[outs], dx);
            } else {
                tiles::max_pool_backward(sub, &x.data[ins], &dy[outs], dx);
            }
        });
        return;
    }
    let win = Windows::new(p, x);
    dx.fill(0.0);
    win.for_each(|yi, r, c, base| {
        if let Some(t) = argmax_of(&x.data, win.w, base, r, c) {
            dx[t] += dy[yi];
        }
    });
}

/// What each window's sum is divided by, as PyTorch's `avg_pool2d` (no divisor override).
fn divisor(p: &Pool2d, r: &PoolWindow, c: &PoolWindow) -> f32 {
    if p.count_include_pad {
        (r.padded_len * c.padded_len) as f32
    } else {
        ((r.end - r.start) * (c.end - c.start)) as f32
    }
}

/// The mean of each window into `y`; padding is zeros, counted in the divisor if
/// `count_include_pad`.
pub fn avg_pool2d(p: &Pool2d, x: &Buf, y: &mut [f32], threads: usize) {
    if let Some(t) = tiles(p, x) {
        let (input, output) = plane_lens(&t);
        let y = Disjoint::new(y);
        by_planes(&t, threads, |sub, planes| {
            // SAFETY: each task takes its own planes' part, once (`by_planes`).
            let y = unsafe { y.range(planes.start * output..planes.end * output) };
            tiles::avg_pool(sub, &x.data[planes.start * input..planes.end * input], y);
        });
        return;
    }
    let win = Windows::new(p, x);
    win.for_each(|yi, r, c, base| {
        let mut sum = 0.0f32;
        for iy in r.start..r.end {
            let row = base + iy * win.w;
            sum += x.data[row + c.start..row + c.end].iter().sum::<f32>();
        }
        y[yi] = sum / divisor(p, r, c);
    });
}

/// Spreads each output gradient evenly over its window's real elements, into `dx`.
pub fn avg_pool2d_backward(p: &Pool2d, x: &Buf, dy: &[f32], dx: &mut [f32], threads: usize) {
    if let Some(t) = tiles(p, x) {
        let (input, output) = plane_lens(&t);
        let dx = Disjoint::new(dx);
        by_planes(&t, threads, |sub, planes| {
            // SAFETY: each task takes its own planes' part, once (`by_planes`).
            let dx = unsafe { dx.range(planes.start * input..planes.end * input) };
            tiles::avg_pool_backward(sub, &dy[planes.start * output..planes.end * output], dx);
        });
        return;
    }
    let win = Windows::new(p, x);
    dx.fill(0.0);
    win.for_each(|yi, r, c, base| {
        let share = dy[yi] / divisor(p, r, c);
        for iy in r.start..r.end {
            let row = base + iy * win.w;
            for v in &mut dx[row + c.start..row + c.end] {
                *v += share;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use dlbench_core::ir::Pool2d;

    use super::{avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward, Buf};

    /// Split over threads by planes, every pooling writes the same bits as on one thread: the
    /// fast whole-window kernels (2 x 2) and the general code (3 x 3, stride 2, padded).
    #[test]
    fn pooling_split_over_threads_gives_the_same_bits() {
        let shape = vec![8, 16, 24, 24];
        let len: usize = shape.iter().product();
        let x = Buf::new(
            shape,
            (0..len)
                .map(|i| ((i * 7919 % 2003) as f32 - 1000.0) / 100.0)
                .collect(),
        );
        let mut padded = Pool2d::square(3);
        padded.stride = [2, 2];
        padded.padding = [1, 1];
        for p in [Pool2d::square(2), padded] {
            let out = [p.output_len(24, 0).unwrap(), p.output_len(24, 1).unwrap()];
            let out_len = 8 * 16 * out[0] * out[1];
            let dy: Vec<f32> = (0..out_len).map(|i| (i % 13) as f32 - 6.0).collect();
            let run = |threads| {
                let (mut y, mut argmax) = (vec![f32::NAN; out_len], Vec::new());
                max_pool2d(&p, &x, &mut y, true, &mut argmax, threads);
                let mut dx = vec![f32::NAN; len];
                max_pool2d_backward(&p, &x, &dy, &argmax, &mut dx, threads);
                let mut avg = vec![f32::NAN; out_len];
                avg_pool2d(&p, &x, &mut avg, threads);
                let mut davg = vec![f32::NAN; len];
                avg_pool2d_backward(&p, &x, &dy, &mut davg, threads);
                [y, dx, avg, davg].map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
            };
            let one = run(1);
            for threads in [2, 3] {
                assert!(run(threads) == one, "{p:?} on {threads} threads");
            }
        }
    }
}
