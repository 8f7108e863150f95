//! 2-D convolution (cross-correlation, PyTorch semantics), OIHW weights, as im2col + `sgemm`
//! per image and group; the input gradient goes back through col2im.

use dlbench_core::ir::Conv2d;

use super::Buf;
use crate::kernels::gemm::{sgemm, MatRef};

/// Sizes of one convolution, read from the input and weight shapes.
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    groups: usize,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
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
            h: xs[2],
            w: xs[3],
            o: ws[0],
            kh: ws[2],
            kw: ws[3],
            oh: out_len(xs[2], ws[2], 0),
            ow: out_len(xs[3], ws[3], 1),
            groups: attrs.groups,
            stride: attrs.stride,
            padding: attrs.padding,
            dilation: attrs.dilation,
        }
    }

    fn c_per_group(&self) -> usize {
        self.c / self.groups
    }

    fn o_per_group(&self) -> usize {
        self.o / self.groups
    }

    /// Rows of a group's column matrix: its input channels times the kernel taps.
    fn col_rows(&self) -> usize {
        self.c_per_group() * self.kh * self.kw
    }

    fn plane(&self) -> usize {
        self.oh * self.ow
    }

    /// The input row (or column) read by output position `o` at kernel tap `k` on `axis`,
    /// or `None` in the zero padding.
    fn source(&self, axis: usize, o: usize, k: usize, size: usize) -> Option<usize> {
        let padded = o * self.stride[axis] + k * self.dilation[axis];
        padded.checked_sub(self.padding[axis]).filter(|&i| i < size)
    }

    /// Calls `f(col_index, x_index)` for every element of the column matrix of image `n`,
    /// group `g` that reads the input (padding taps are skipped: they stay zero). im2col and
    /// col2im share this one enumeration, so they cannot disagree on the indexing.
    fn for_each_tap(&self, n: usize, g: usize, mut f: impl FnMut(usize, usize)) {
        let cpg = self.c_per_group();
        let plane = self.plane();
        for cg in 0..cpg {
            let c = g * cpg + cg;
            let x_plane = (n * self.c + c) * self.h * self.w;
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = ((cg * self.kh + ky) * self.kw + kx) * plane;
                    for oy in 0..self.oh {
                        let Some(iy) = self.source(0, oy, ky, self.h) else {
                            continue;
                        };
                        let x_row = x_plane + iy * self.w;
                        let col_row = row + oy * self.ow;
                        for ox in 0..self.ow {
                            if let Some(ix) = self.source(1, ox, kx, self.w) {
                                f(col_row + ox, x_row + ix);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The column matrix `[C/g * kh * kw, oh * ow]` of image `n`, group `g`, into `col`.
    fn im2col(&self, x: &[f32], n: usize, g: usize, col: &mut [f32]) {
        col.fill(0.0);
        self.for_each_tap(n, g, |ci, xi| col[ci] = x[xi]);
    }
}

/// `y[n, o] = b[o] + sum over the group's channels of x[n, c] ⋆ w[o, c]`, with stride,
/// symmetric zero padding, dilation and groups as PyTorch's `conv2d`.
pub fn conv2d(attrs: &Conv2d, x: &Buf, w: &Buf, b: Option<&Buf>, threads: usize) -> Buf {
    let g = Geometry::new(attrs, x, w);
    let (plane, opg, rows) = (g.plane(), g.o_per_group(), g.col_rows());
    let mut y = vec![0.0; g.n * g.o * plane];
    let beta = match b {
        Some(b) => {
            for (i, v) in y.iter_mut().enumerate() {
                *v = b.data[(i / plane.max(1)) % g.o];
            }
            1.0
        }
        None => 0.0,
    };
    let mut col = vec![0.0; rows * plane];
    for n in 0..g.n {
        for grp in 0..g.groups {
            g.im2col(&x.data, n, grp, &mut col);
            let w_g = &w.data[grp * opg * rows..(grp + 1) * opg * rows];
            let at = (n * g.o + grp * opg) * plane;
            sgemm(
                1.0,
                MatRef::row_major(w_g, opg, rows),
                MatRef::row_major(&col, rows, plane),
                beta,
                &mut y[at..at + opg * plane],
                plane,
                threads,
            );
        }
    }
    Buf::new(vec![g.n, g.o, g.oh, g.ow], y)
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
    let (plane, opg, rows) = (g.plane(), g.o_per_group(), g.col_rows());
    let mut dx = need_dx.then(|| vec![0.0; x.data.len()]);
    let mut dw = vec![0.0; w.data.len()];
    let mut col = vec![0.0; rows * plane];
    let mut dcol = vec![0.0; rows * plane];
    for n in 0..g.n {
        for grp in 0..g.groups {
            g.im2col(&x.data, n, grp, &mut col);
            let at = (n * g.o + grp * opg) * plane;
            let dy_g = MatRef::row_major(&dy[at..at + opg * plane], opg, plane);
            let w_range = grp * opg * rows..(grp + 1) * opg * rows;
            // dW_g += dy_g col^T: [O/g, oh*ow] x [oh*ow, C/g*kh*kw].
            sgemm(
                1.0,
                dy_g,
                MatRef::row_major(&col, rows, plane).t(),
                1.0,
                &mut dw[w_range.clone()],
                rows,
                threads,
            );
            if let Some(dx) = &mut dx {
                // dcol = W_g^T dy_g, then scattered back onto the input it was read from.
                let w_g = MatRef::row_major(&w.data[w_range], opg, rows);
                sgemm(1.0, w_g.t(), dy_g, 0.0, &mut dcol, plane, threads);
                g.for_each_tap(n, grp, |ci, xi| dx[xi] += dcol[ci]);
            }
        }
    }
    let db = has_bias.then(|| {
        // Sum over batch and positions: each (n, o) plane is one row of `dy`.
        let mut db = vec![0.0f64; g.o];
        for (i, chunk) in dy.chunks_exact(plane.max(1)).enumerate() {
            db[i % g.o] += chunk.iter().map(|v| f64::from(*v)).sum::<f64>();
        }
        db.into_iter().map(|v| v as f32).collect()
    });
    (dx, dw, db)
}
