//! Max and average pooling (PyTorch semantics, ceil_mode, count_include_pad), in f32.

use dlbench_core::ir::{Pool2d, PoolWindow};

use super::Buf;
use crate::kernels::pool::{self as tiles, Tiles};

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
pub fn max_pool2d(p: &Pool2d, x: &Buf, y: &mut [f32], keep_argmax: bool, argmax: &mut Vec<u8>) {
    argmax.clear();
    if let Some(t) = tiles(p, x) {
        if keep_argmax && tiles::keeps_argmax(&t) {
            argmax.resize(y.len(), 0);
            tiles::max_pool(&t, &x.data, y, Some(argmax));
        } else {
            tiles::max_pool(&t, &x.data, y, None);
        }
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
pub fn max_pool2d_backward(p: &Pool2d, x: &Buf, dy: &[f32], argmax: &[u8], dx: &mut [f32]) {
    if let Some(t) = tiles(p, x) {
        if argmax.len() == dy.len() {
            tiles::max_pool_backward_from_argmax(&t, argmax, dy, dx);
        } else {
            tiles::max_pool_backward(&t, &x.data, dy, dx);
        }
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
pub fn avg_pool2d(p: &Pool2d, x: &Buf, y: &mut [f32]) {
    if let Some(t) = tiles(p, x) {
        tiles::avg_pool(&t, &x.data, y);
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
pub fn avg_pool2d_backward(p: &Pool2d, x: &Buf, dy: &[f32], dx: &mut [f32]) {
    if let Some(t) = tiles(p, x) {
        tiles::avg_pool_backward(&t, dy, dx);
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
