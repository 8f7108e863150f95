//! Ops that move elements without arithmetic: Transpose, Concat. (Flatten and Reshape keep
//! the elements as they are: the dispatcher copies them.)

use super::{Args, Buf};

/// Row-major strides of a shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

/// Output dim `i` is input dim `perm[i]`: walks the output in row-major order with an
/// odometer over input offsets, copying the innermost run in one loop. (Its stride and index
/// tables, a few words each, are allocated per call: no seed workload transposes.)
fn permute(perm: &[usize], in_shape: &[usize], x: &[f32], y: &mut [f32]) {
    let rank = in_shape.len();
    let in_strides = strides(in_shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| in_shape[p]).collect();
    let step: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    if rank == 0 || x.is_empty() {
        y.copy_from_slice(x);
        return;
    }
    let (inner_len, inner_step) = (out_shape[rank - 1], step[rank - 1]);
    let mut index = vec![0; rank - 1];
    let mut offset = 0;
    for run in y.chunks_exact_mut(inner_len) {
        for (i, out) in run.iter_mut().enumerate() {
            *out = x[offset + i * inner_step];
        }
        // Advance the outer dims, last first.
        let mut d = rank - 1;
        while d > 0 {
            d -= 1;
            index[d] += 1;
            offset += step[d];
            if index[d] < out_shape[d] {
                break;
            }
            offset -= step[d] * out_shape[d];
            index[d] = 0;
        }
    }
}

/// A row-major `[rows, cols]` matrix transposed into `t`, row-major `[cols, rows]` (weights
/// laid out once per pass for `sgemm` to read in place).
pub(super) fn transpose_matrix(w: &[f32], rows: usize, cols: usize, t: &mut [f32]) {
    for (r, row) in w.chunks_exact(cols.max(1)).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
}

pub fn transpose(perm: &[usize], x: &Buf, y: &mut [f32]) {
    permute(perm, &x.shape, &x.data, y);
}

/// `dy` (of the output's shape `out_shape`) permuted back to the input's layout, into `dx`.
pub fn transpose_backward(perm: &[usize], out_shape: &[usize], dy: &[f32], dx: &mut [f32]) {
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    permute(&inverse, out_shape, dy, dx);
}

/// The shape around `axis` as (outer, inner): the dims before it and after it, multiplied.
fn outer_inner(axis: usize, shape: &[usize]) -> (usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis + 1..].iter().product(),
    )
}

pub fn concat(axis: usize, xs: Args, y: &mut [f32]) {
    let (outer, inner) = outer_inner(axis, &xs[0].shape);
    let mut at = 0;
    for o in 0..outer {
        for x in xs.iter() {
            let chunk = x.shape[axis] * inner;
            y[at..at + chunk].copy_from_slice(&x.data[o * chunk..(o + 1) * chunk]);
            at += chunk;
        }
    }
}

/// Each wanted input's share of `dy` into its gradient (empty when not wanted).
pub fn concat_backward(axis: usize, xs: Args, dy: &[f32], grads: &mut [Vec<f32>]) {
    let (outer, inner) = outer_inner(axis, &xs[0].shape);
    let mut at = 0;
    for o in 0..outer {
        for (x, g) in xs.iter().zip(grads.iter_mut()) {
            let chunk = x.shape[axis] * inner;
            if !g.is_empty() {
                g[o * chunk..(o + 1) * chunk].copy_from_slice(&dy[at..at + chunk]);
            }
            at += chunk;
        }
    }
}
