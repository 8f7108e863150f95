//! Add, Sub, Mul with numpy broadcasting. Equal shapes (the common case) take a flat loop;
//! otherwise an odometer walks the output with per-operand strides, 0 along broadcast dims.

use dlbench_core::Op;

use super::Buf;

/// numpy's result shape: align trailing dims, a dim of 1 stretches to the other. Shape
/// inference has checked that the shapes broadcast.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    let rank = a.len().max(b.len());
    (0..rank)
        .map(|i| {
            let (x, y) = (dim(a, rank, i), dim(b, rank, i));
            if x == 1 {
                y
            } else {
                x
            }
        })
        .collect()
}

/// Dim `i` of `s` right-aligned to `rank` dims (1 where `s` has no such dim).
fn dim(s: &[usize], rank: usize, i: usize) -> usize {
    let offset = rank - s.len();
    if i < offset {
        1
    } else {
        s[i - offset]
    }
}

/// Strides of `src` read along the dims of `out`: 0 along a broadcast dim.
fn broadcast_strides(out: &[usize], src: &[usize]) -> Vec<usize> {
    let offset = out.len() - src.len();
    let mut strides = vec![0; out.len()];
    let mut step = 1;
    for d in (0..src.len()).rev() {
        if src[d] != 1 {
            strides[offset + d] = step;
        }
        step *= src[d];
    }
    strides
}

/// Calls `f(e, i, j)` for every output element `e` (row-major) with the flat indices of the
/// elements of `a` and `b` it reads.
fn for_each_pair(out: &[usize], a: &[usize], b: &[usize], mut f: impl FnMut(usize, usize, usize)) {
    let total: usize = out.iter().product();
    if a == b {
        (0..total).for_each(|e| f(e, e, e));
        return;
    }
    let (sa, sb) = (broadcast_strides(out, a), broadcast_strides(out, b));
    let rank = out.len();
    let mut index = vec![0; rank];
    let (mut i, mut j) = (0, 0);
    for e in 0..total {
        f(e, i, j);
        for d in (0..rank).rev() {
            index[d] += 1;
            i += sa[d];
            j += sb[d];
            if index[d] < out[d] {
                break;
            }
            i -= sa[d] * out[d];
            j -= sb[d] * out[d];
            index[d] = 0;
        }
    }
}

/// The per-element function of a binary op (Add for anything else: never sent here).
fn function(op: &Op) -> fn(f32, f32) -> f32 {
    match op {
        Op::Sub => |x, y| x - y,
        Op::Mul => |x, y| x * y,
        _ => |x, y| x + y,
    }
}

pub fn binary(op: &Op, a: &Buf, b: &Buf) -> Buf {
    let shape = broadcast_shape(&a.shape, &b.shape);
    let f = function(op);
    let mut y = vec![0.0; shape.iter().product()];
    for_each_pair(&shape, &a.shape, &b.shape, |e, i, j| {
        y[e] = f(a.data[i], b.data[j]);
    });
    Buf::new(shape, y)
}

/// Gradients reduced back to each operand's own shape.
pub fn binary_backward(op: &Op, a: &Buf, b: &Buf, dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let shape = broadcast_shape(&a.shape, &b.shape);
    let mut da = vec![0.0; a.data.len()];
    let mut db = vec![0.0; b.data.len()];
    let is_mul = matches!(op, Op::Mul);
    let sign = if matches!(op, Op::Sub) { -1.0 } else { 1.0 };
    for_each_pair(&shape, &a.shape, &b.shape, |e, i, j| {
        let g = dy[e];
        if is_mul {
            da[i] += g * b.data[j];
            db[j] += g * a.data[i];
        } else {
            da[i] += g;
            db[j] += sign * g;
        }
    });
    (da, db)
}
