//! Add, Sub, Mul with numpy broadcasting.

use dlbench_core::{BinaryOp, Tensor};

fn f64s(t: &Tensor) -> &[f64] {
    t.as_f64().expect("reference tensors are f64")
}

fn tensor(shape: Vec<usize>, data: Vec<f64>) -> Tensor {
    Tensor::f64(shape, data).expect("element count matches shape")
}

/// numpy's result shape: align trailing dims, a dim of 1 stretches to the other.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        let offset = rank - s.len();
        if i < offset {
            1
        } else {
            s[i - offset]
        }
    };
    (0..rank)
        .map(|i| {
            let (x, y) = (dim(a, i), dim(b, i));
            assert!(
                x == y || x == 1 || y == 1,
                "cannot broadcast {a:?} with {b:?}"
            );
            if x == 1 {
                y
            } else {
                x
            }
        })
        .collect()
}

/// For each element of `out` (row-major), the flat index of the element of `src` it reads.
fn source_indices(out: &[usize], src: &[usize]) -> Vec<usize> {
    let offset = out.len() - src.len();
    // A broadcast dim gets stride 0, so moving along it keeps reading the same element.
    let mut strides = vec![0; out.len()];
    let mut step = 1;
    for d in (0..src.len()).rev() {
        if src[d] != 1 {
            strides[offset + d] = step;
        }
        step *= src[d];
    }
    let total: usize = out.iter().product();
    let mut index = vec![0; out.len()];
    let mut result = Vec::with_capacity(total);
    for _ in 0..total {
        result.push(index.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for d in (0..out.len()).rev() {
            index[d] += 1;
            if index[d] < out[d] {
                break;
            }
            index[d] = 0;
        }
    }
    result
}

pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Tensor {
    let shape = broadcast_shape(a.shape(), b.shape());
    let (ia, ib) = (
        source_indices(&shape, a.shape()),
        source_indices(&shape, b.shape()),
    );
    let (xa, xb) = (f64s(a), f64s(b));
    let y = ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| match op {
            BinaryOp::Add => xa[i] + xb[j],
            BinaryOp::Sub => xa[i] - xb[j],
            BinaryOp::Mul => xa[i] * xb[j],
        })
        .collect();
    tensor(shape, y)
}

/// Gradients reduced back to each operand's own shape.
pub fn binary_backward(op: BinaryOp, a: &Tensor, b: &Tensor, dy: &Tensor) -> (Tensor, Tensor) {
    let shape = broadcast_shape(a.shape(), b.shape());
    let (ia, ib) = (
        source_indices(&shape, a.shape()),
        source_indices(&shape, b.shape()),
    );
    let (xa, xb, dys) = (f64s(a), f64s(b), f64s(dy));
    let mut da = vec![0.0; a.len()];
    let mut db = vec![0.0; b.len()];
    for (e, (&i, &j)) in ia.iter().zip(&ib).enumerate() {
        let g = dys[e];
        let (ga, gb) = match op {
            BinaryOp::Add => (g, g),
            BinaryOp::Sub => (g, -g),
            BinaryOp::Mul => (g * xb[j], g * xa[i]),
        };
        da[i] += ga;
        db[j] += gb;
    }
    (
        tensor(a.shape().to_vec(), da),
        tensor(b.shape().to_vec(), db),
    )
}
