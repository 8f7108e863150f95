//! Single-row products (`m == 1`: a batch of one through a Dense layer). Packing B for one row
//! of A costs more than the product itself, so these read the operands in place: a dot product
//! per output when B's columns are contiguous (`x W^T` with W row-major), an axpy per row of B
//! when its rows are.

use super::MatRef;

/// Independent accumulators per dot product: enough lanes for the compiler to keep two
/// 256-bit FMA chains busy.
const LANES: usize = 16;

/// Outputs accumulated at a time when B's rows are contiguous: 1 KiB of accumulators on the
/// stack, which stay in L1 while the rows of B stream past, and cost little to clear for the
/// short rows of small layers.
const BLOCK: usize = 256;

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
        // Row p of B is contiguous: accumulate x[p] * row p into every output, a block of
        // outputs at a time in a stack buffer (the heap is not touched in steady state).
        let mut block = [0.0f32; BLOCK];
        for j0 in (0..n).step_by(BLOCK) {
            let width = BLOCK.min(n - j0);
            let acc = &mut block[..width];
            acc.fill(0.0);
            for (p, &xp) in x.iter().enumerate() {
                let start = p * b.row_stride + j0;
                for (o, r) in acc.iter_mut().zip(&b.data[start..start + width]) {
                    *o = xp.mul_add(*r, *o);
                }
            }
            for (out, &v) in c[j0..j0 + width].iter_mut().zip(acc.iter()) {
                scale(v, out);
            }
        }
        true
    } else {
        false
    }
}
