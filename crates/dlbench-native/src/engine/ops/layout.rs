//! Ops that move elements without arithmetic: Flatten, Reshape, Transpose, Concat.

use super::Buf;

/// Flatten and Reshape: the same elements under the inferred output shape.
pub fn reshape(shape: &[usize], x: &Buf) -> Buf {
    Buf::new(shape.to_vec(), x.data.clone())
}

/// Row-major strides of a shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

/// Output dim `i` is input dim `perm[i]`: walks the output in row-major order with an
/// odometer over input offsets, copying the innermost run in one loop.
fn permute(perm: &[usize], in_shape: &[usize], x: &[f32]) -> (Vec<usize>, Vec<f32>) {
    let rank = in_shape.len();
    let in_strides = strides(in_shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| in_shape[p]).collect();
    let step: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut y = Vec::with_capacity(x.len());
    if rank == 0 || x.is_empty() {
        return (out_shape, x.to_vec());
    }
    let (inner_len, inner_step) = (out_shape[rank - 1], step[rank - 1]);
    let mut index = vec![0; rank - 1];
    let mut offset = 0;
    loop {
        for i in 0..inner_len {
            y.push(x[offset + i * inner_step]);
        }
        // Advance the outer dims, last first.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return (out_shape, y);
            }
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

/// A row-major `[rows, cols]` matrix transposed into a new row-major `[cols, rows]` buffer
/// (weights laid out once for `sgemm` to read in place).
pub(super) fn transposed_matrix(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for (r, row) in w.chunks_exact(cols.max(1)).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}

pub fn transpose(perm: &[usize], x: &Buf) -> Buf {
    let (shape, y) = permute(perm, &x.shape, &x.data);
    Buf::new(shape, y)
}

/// `dy` (of the output's shape `out_shape`) permuted back to the input's layout.
pub fn transpose_backward(perm: &[usize], out_shape: &[usize], dy: &[f32]) -> Vec<f32> {
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    permute(&inverse, out_shape, dy).1
}

/// The shape around `axis` as (outer, inner): the dims before it and after it, multiplied.
fn outer_inner(axis: usize, shape: &[usize]) -> (usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis + 1..].iter().product(),
    )
}

pub fn concat(axis: usize, xs: &[&Buf]) -> Buf {
    let (outer, inner) = outer_inner(axis, &xs[0].shape);
    let mut shape = xs[0].shape.clone();
    shape[axis] = xs.iter().map(|x| x.shape[axis]).sum();
    let mut y = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for x in xs {
            let chunk = x.shape[axis] * inner;
            y.extend_from_slice(&x.data[o * chunk..(o + 1) * chunk]);
        }
    }
    Buf::new(shape, y)
}

pub fn concat_backward(axis: usize, xs: &[&Buf], dy: &[f32]) -> Vec<Vec<f32>> {
    let (outer, _) = outer_inner(axis, &xs[0].shape);
    let inner: usize = xs[0].shape[axis + 1..].iter().product();
    let mut grads: Vec<Vec<f32>> = xs
        .iter()
        .map(|x| Vec::with_capacity(x.data.len()))
        .collect();
    let mut at = 0;
    for _ in 0..outer {
        for (x, g) in xs.iter().zip(&mut grads) {
            let chunk = x.shape[axis] * inner;
            g.extend_from_slice(&dy[at..at + chunk]);
            at += chunk;
        }
    }
    grads
}
