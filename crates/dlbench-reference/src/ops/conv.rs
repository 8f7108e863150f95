//! 2-D convolution (cross-correlation, PyTorch semantics), OIHW weights.

use dlbench_core::ir::Conv2d;
use dlbench_core::Tensor;

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
}

impl Geometry {
    fn new(attrs: &Conv2d, x: &Tensor, w: &Tensor) -> Self {
        let (xs, ws) = (x.shape(), w.shape());
        let out_len = |size: usize, k: usize, axis: usize| {
            attrs
                .output_len(size, k, axis)
                .expect("shape inference checked the kernel fits")
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
        }
    }

    fn output_shape(&self) -> Vec<usize> {
        vec![self.n, self.o, self.oh, self.ow]
    }

    /// Calls `f(y_index, x_index, w_index)` for every product that contributes to the output;
    /// taps that land in the zero padding contribute nothing and are skipped. Forward and
    /// backward share this one enumeration, so they cannot disagree on the indexing.
    fn for_each_tap(&self, attrs: &Conv2d, mut f: impl FnMut(usize, usize, usize)) {
        let groups = attrs.groups;
        let (c_per_group, o_per_group) = (self.c / groups, self.o / groups);
        let [sh, sw] = attrs.stride;
        let [ph, pw] = attrs.padding;
        let [dh, dw] = attrs.dilation;
        for n in 0..self.n {
            for o in 0..self.o {
                let group = o / o_per_group;
                for oy in 0..self.oh {
                    for ox in 0..self.ow {
                        let yi = ((n * self.o + o) * self.oh + oy) * self.ow + ox;
                        for cg in 0..c_per_group {
                            let c = group * c_per_group + cg;
                            for ky in 0..self.kh {
                                // Position in padded coordinates; below `ph` is top padding.
                                let py = oy * sh + ky * dh;
                                if py < ph || py - ph >= self.h {
                                    continue;
                                }
                                let iy = py - ph;
                                for kx in 0..self.kw {
                                    let px = ox * sw + kx * dw;
                                    if px < pw || px - pw >= self.w {
                                        continue;
                                    }
                                    let ix = px - pw;
                                    let xi = ((n * self.c + c) * self.h + iy) * self.w + ix;
                                    let wi = ((o * c_per_group + cg) * self.kh + ky) * self.kw + kx;
                                    f(yi, xi, wi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn f64s(t: &Tensor) -> &[f64] {
    t.as_f64().expect("reference tensors are f64")
}

/// `y[n, o] = b[o] + sum over the group's channels of x[n, c] ⋆ w[o, c]`, with stride,
/// symmetric zero padding, dilation and groups as PyTorch's `conv2d`.
pub fn conv2d(attrs: &Conv2d, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    let g = Geometry::new(attrs, x, w);
    let (xd, wd) = (f64s(x), f64s(w));
    let plane = g.oh * g.ow;
    let mut y = vec![0.0; g.n * g.o * plane];
    if let Some(b) = b {
        let bd = f64s(b);
        for (i, v) in y.iter_mut().enumerate() {
            *v = bd[(i / plane) % g.o];
        }
    }
    g.for_each_tap(attrs, |yi, xi, wi| y[yi] += xd[xi] * wd[wi]);
    Tensor::f64(g.output_shape(), y).expect("output shape matches its data")
}

/// Returns (dx, dw, db if has_bias).
pub fn conv2d_backward(
    attrs: &Conv2d,
    x: &Tensor,
    w: &Tensor,
    has_bias: bool,
    dy: &Tensor,
) -> (Tensor, Tensor, Option<Tensor>) {
    let g = Geometry::new(attrs, x, w);
    let (xd, wd, dyd) = (f64s(x), f64s(w), f64s(dy));
    let mut dx = vec![0.0; xd.len()];
    let mut dw = vec![0.0; wd.len()];
    g.for_each_tap(attrs, |yi, xi, wi| {
        dx[xi] += dyd[yi] * wd[wi];
        dw[wi] += dyd[yi] * xd[xi];
    });
    let db = has_bias.then(|| {
        let plane = g.oh * g.ow;
        let mut db = vec![0.0; g.o];
        for (i, v) in dyd.iter().enumerate() {
            db[(i / plane) % g.o] += v;
        }
        Tensor::f64(vec![g.o], db).expect("bias shape matches its data")
    });
    (
        Tensor::f64(x.shape().to_vec(), dx).expect("input shape matches its data"),
        Tensor::f64(w.shape().to_vec(), dw).expect("weight shape matches its data"),
        db,
    )
}
