//! Single-row products (`m == 1`: a batch of one through a Dense layer). Packing B for one row
//! of A costs more than the product itself, so these read the operands in place: a dot product
//! per output when B's columns are contiguous (`x W^T` with W row-major), an axpy per row of B
//! when its rows are.

use super::MatRef;

/// Independent accumulators per dot product: enough lanes for the compiler to keep two
/// 256-bit FMA chains busy.
const LANES: usize = 16;

/// `c[j] = alpha * sum_p a[p] b[p, j] + beta * c[j]` for a one-row, unit-stride `a`, when B is
/// contiguous along one of its axes. Returns false (nothing done) otherwise.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and the views must lie inside their slices (the caller
/// checked both).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gemv(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32]) -> bool {
    let (k, n) = (a.cols, b.cols);
    let x = &a.data[..k];
    let scale = |acc: f32, out: &mut f32| {
        *out = if beta == 0.0 {
            alpha * acc
        } else {
            alpha * acc + beta * *out
        };
    };
    if b.row_stride == 1 {
        // Column j of B is contiguous: one dot product per output.
        for (j, out) in c[..n].iter_mut().enumerate() {
            let col = &b.data[j * b.col_stride..j * b.col_stride + k];
            let mut lanes = [0.0f32; LANES];
            let (xs, cs) = (x.chunks_exact(LANES), col.chunks_exact(LANES));
            let (x_rest, c_rest) = (xs.remainder(), cs.remainder());
            for (xc, cc) in xs.zip(cs) {
                for l in 0..LANES {
                    lanes[l] = xc[l].mul_add(cc[l], lanes[l]);
                }
            }
            let mut acc: f32 = lanes.iter().sum();
            for (xv, cv) in x_rest.iter().zip(c_rest) {
                acc = xv.mul_add(*cv, acc);
            }
            scale(acc, out);
        }
        true
    } else if b.col_stride == 1 {
        // Row p of B is contiguous: accumulate x[p] * row p into every output.
        let mut acc = vec![0.0f32; n];
        for (p, &xp) in x.iter().enumerate() {
            let row = &b.data[p * b.row_stride..p * b.row_stride + n];
            for (o, r) in acc.iter_mut().zip(row) {
                *o = xp.mul_add(*r, *o);
            }
        }
        for (out, v) in c[..n].iter_mut().zip(acc) {
            scale(v, out);
        }
        true
    } else {
        false
    }
}
