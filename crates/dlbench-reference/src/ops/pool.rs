//! Max and average pooling (PyTorch semantics, ceil_mode, count_include_pad).

use dlbench_core::ir::{Pool2d, PoolWindow};
use dlbench_core::Tensor;

/// Sizes of one pooling, read from the input shape.
struct Windows {
    planes: usize,
    h: usize,
    w: usize,
    rows: Vec<PoolWindow>,
    cols: Vec<PoolWindow>,
}

impl Windows {
    fn new(p: &Pool2d, x: &Tensor) -> Self {
        let s = x.shape();
        Windows {
            planes: s[0] * s[1],
            h: s[2],
            w: s[3],
            rows: p.windows(s[2], 0),
            cols: p.windows(s[3], 1),
        }
    }

    fn output_shape(&self, x: &Tensor) -> Vec<usize> {
        let s = x.shape();
        vec![s[0], s[1], self.rows.len(), self.cols.len()]
    }

    /// Calls `f(y_index, window)` for every output element, with the flat input indices of
    /// the window's real elements in row-major order.
    fn for_each(&self, mut f: impl FnMut(usize, &PoolWindow, &PoolWindow, &[usize])) {
        let mut taps = Vec::new();
        let mut yi = 0;
        for plane in 0..self.planes {
            for r in &self.rows {
                for c in &self.cols {
                    taps.clear();
                    for iy in r.start..r.end {
                        for ix in c.start..c.end {
                            taps.push((plane * self.h + iy) * self.w + ix);
                        }
                    }
                    f(yi, r, c, &taps);
                    yi += 1;
                }
            }
        }
    }
}

fn f64s(t: &Tensor) -> &[f64] {
    t.as_f64().expect("reference tensors are f64")
}

/// The flat input index of the first maximum: strict `>` keeps the earliest of equal values,
/// which is where PyTorch sends the gradient on ties. Padding is -inf, so it never wins.
fn argmax(xd: &[f64], taps: &[usize]) -> usize {
    let mut best = taps[0];
    for &t in &taps[1..] {
        if xd[t] > xd[best] {
            best = t;
        }
    }
    best
}

/// The maximum of each window over the real input; padding counts as -inf.
pub fn max_pool2d(p: &Pool2d, x: &Tensor) -> Tensor {
    let win = Windows::new(p, x);
    let xd = f64s(x);
    let mut y = vec![0.0; win.output_shape(x).iter().product()];
    win.for_each(|yi, _, _, taps| y[yi] = xd[argmax(xd, taps)]);
    Tensor::f64(win.output_shape(x), y).expect("output shape matches its data")
}

/// The gradient goes to the first maximum of each window (PyTorch's choice on ties).
pub fn max_pool2d_backward(p: &Pool2d, x: &Tensor, dy: &Tensor) -> Tensor {
    let win = Windows::new(p, x);
    let (xd, dyd) = (f64s(x), f64s(dy));
    let mut dx = vec![0.0; xd.len()];
    win.for_each(|yi, _, _, taps| dx[argmax(xd, taps)] += dyd[yi]);
    Tensor::f64(x.shape().to_vec(), dx).expect("input shape matches its data")
}

/// What each window's sum is divided by, as PyTorch's `avg_pool2d` (no divisor override).
fn divisor(p: &Pool2d, r: &PoolWindow, c: &PoolWindow, taps: &[usize]) -> f64 {
    if p.count_include_pad {
        (r.padded_len * c.padded_len) as f64
    } else {
        taps.len() as f64
    }
}

/// The mean of each window; padding is zeros, counted in the divisor if `count_include_pad`.
pub fn avg_pool2d(p: &Pool2d, x: &Tensor) -> Tensor {
    let win = Windows::new(p, x);
    let xd = f64s(x);
    let mut y = vec![0.0; win.output_shape(x).iter().product()];
    win.for_each(|yi, r, c, taps| {
        let sum: f64 = taps.iter().map(|&t| xd[t]).sum();
        y[yi] = sum / divisor(p, r, c, taps);
    });
    Tensor::f64(win.output_shape(x), y).expect("output shape matches its data")
}

/// Spreads each output gradient evenly over its window's real elements.
pub fn avg_pool2d_backward(p: &Pool2d, x: &Tensor, dy: &Tensor) -> Tensor {
    let win = Windows::new(p, x);
    let dyd = f64s(dy);
    let mut dx = vec![0.0; x.len()];
    win.for_each(|yi, r, c, taps| {
        let share = dyd[yi] / divisor(p, r, c, taps);
        for &t in taps {
            dx[t] += share;
        }
    });
    Tensor::f64(x.shape().to_vec(), dx).expect("input shape matches its data")
}
