//! Ops that move elements without arithmetic: Flatten, Reshape, Transpose, Concat.

use dlbench_core::Tensor;

fn f64s(t: &Tensor) -> &[f64] {
    t.as_f64().expect("reference tensors are f64")
}

fn tensor(shape: Vec<usize>, data: Vec<f64>) -> Tensor {
    Tensor::f64(shape, data).expect("element count matches shape")
}

pub fn flatten(axis: usize, x: &Tensor) -> Tensor {
    let mut shape = x.shape()[..axis].to_vec();
    shape.push(x.shape()[axis..].iter().product());
    tensor(shape, f64s(x).to_vec())
}

/// ONNX Reshape: `0` copies the input dim, one `-1` is inferred.
pub fn reshape(shape: &[i64], x: &Tensor) -> Tensor {
    let mut out: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| match d {
            0 => x.shape()[i],
            -1 => 1,
            d => usize::try_from(d).unwrap_or_else(|_| panic!("bad reshape dim {d} in {shape:?}")),
        })
        .collect();
    if let Some(i) = shape.iter().position(|&d| d == -1) {
        let known: usize = out.iter().product();
        out[i] = x.len() / known;
    }
    assert_eq!(
        out.iter().product::<usize>(),
        x.len(),
        "cannot reshape {:?} to {shape:?}",
        x.shape()
    );
    tensor(out, f64s(x).to_vec())
}

/// `dy` with the shape of `like` (the backward of Flatten and Reshape).
pub fn reshape_like(dy: &Tensor, like: &Tensor) -> Tensor {
    tensor(like.shape().to_vec(), f64s(dy).to_vec())
}

pub fn transpose(perm: &[usize], x: &Tensor) -> Tensor {
    let in_shape = x.shape();
    let rank = in_shape.len();
    let mut in_strides = vec![1; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        in_strides[d] = in_strides[d + 1] * in_shape[d + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| in_shape[p]).collect();
    // Walking the output in row-major order, output dim i moves along input dim perm[i].
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let xs = f64s(x);
    let mut index = vec![0; rank];
    let mut y = Vec::with_capacity(xs.len());
    for _ in 0..xs.len() {
        y.push(
            xs[index
                .iter()
                .zip(&strides)
                .map(|(i, s)| i * s)
                .sum::<usize>()],
        );
        for d in (0..rank).rev() {
            index[d] += 1;
            if index[d] < out_shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    tensor(out_shape, y)
}

pub fn transpose_backward(perm: &[usize], dy: &Tensor) -> Tensor {
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    transpose(&inverse, dy)
}

/// The shape around `axis` as (outer, inner): the dims before it and after it, multiplied.
fn outer_inner(axis: usize, shape: &[usize]) -> (usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis + 1..].iter().product(),
    )
}

pub fn concat(axis: usize, xs: &[&Tensor]) -> Tensor {
    let (outer, inner) = outer_inner(axis, xs[0].shape());
    let mut shape = xs[0].shape().to_vec();
    shape[axis] = xs.iter().map(|x| x.shape()[axis]).sum();
    let mut y = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for x in xs {
            let chunk = x.shape()[axis] * inner;
            y.extend_from_slice(&f64s(x)[o * chunk..(o + 1) * chunk]);
        }
    }
    tensor(shape, y)
}

pub fn concat_backward(axis: usize, xs: &[&Tensor], dy: &Tensor) -> Vec<Tensor> {
    let (outer, inner) = outer_inner(axis, dy.shape());
    let dys = f64s(dy);
    let mut grads: Vec<Vec<f64>> = xs.iter().map(|x| Vec::with_capacity(x.len())).collect();
    let mut at = 0;
    for _ in 0..outer {
        for (x, g) in xs.iter().zip(&mut grads) {
            let chunk = x.shape()[axis] * inner;
            g.extend_from_slice(&dys[at..at + chunk]);
            at += chunk;
        }
    }
    xs.iter()
        .zip(grads)
        .map(|(x, g)| tensor(x.shape().to_vec(), g))
        .collect()
}
