//! 8 x 8 block transposes, in registers: for packing a transposed `B` (`x Wᵀ` in every Dense
//! layer: the panel wants `nr` consecutive columns of `B` per row, which are `nr` different
//! rows of the stored `W`), and for turning a swapped product's `Cᵀ` back into `C`. Gathering
//! one float at a time costs a load and a store per element; eight rows loaded as vectors and
//! transposed in registers cost two instructions per eight.

use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_permute2f128_ps, _mm256_set1_ps,
    _mm256_shuffle_ps, _mm256_storeu_ps, _mm256_unpackhi_ps, _mm256_unpacklo_ps,
};

/// Rows `q` of the result hold column `q` of the 8 x 8 block at `src` (rows `src_stride`
/// apart).
///
/// # Safety
/// The CPU must support AVX; `src` must be readable at 8 rows of 8 floats `src_stride` apart.
#[inline]
#[target_feature(enable = "avx")]
unsafe fn transposed(src: *const f32, src_stride: usize) -> [__m256; 8] {
    // SAFETY: the caller's contract.
    let r: [__m256; 8] =
        std::array::from_fn(|i| unsafe { _mm256_loadu_ps(src.add(i * src_stride)) });
    // Interleave pairs of rows, then pairs of pairs, then swap 128-bit halves.
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// `dst[q * dst_stride + r] = src[r * src_stride + q]` for `r, q` in `0..8`.
///
/// # Safety
/// The CPU must support AVX; `src` must be readable at 8 rows of 8 floats `src_stride` apart,
/// and `dst` writable at 8 rows of 8 floats `dst_stride` apart.
#[target_feature(enable = "avx")]
pub(super) unsafe fn transpose8x8(
    src: *const f32,
    src_stride: usize,
    dst: *mut f32,
    dst_stride: usize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        for (q, v) in transposed(src, src_stride).into_iter().enumerate() {
            _mm256_storeu_ps(dst.add(q * dst_stride), v);
        }
    }
}

/// `dst[q * dst_stride + r] = src[r * src_stride + q] + beta * dst[q * dst_stride + r]` for
/// `r, q` in `0..8`; with `beta == 0`, `dst` is only written.
///
/// # Safety
/// As [`transpose8x8`], with `dst` also readable unless `beta == 0`.
#[target_feature(enable = "avx")]
pub(super) unsafe fn transpose8x8_onto(
    src: *const f32,
    src_stride: usize,
    dst: *mut f32,
    dst_stride: usize,
    beta: f32,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let vb = _mm256_set1_ps(beta);
        for (q, v) in transposed(src, src_stride).into_iter().enumerate() {
            let at = dst.add(q * dst_stride);
            let out = if beta == 0.0 {
                v
            } else {
                _mm256_add_ps(v, _mm256_mul_ps(vb, _mm256_loadu_ps(at)))
            };
            _mm256_storeu_ps(at, out);
        }
    }
}

/// `dst[q * dst_stride + r] = src[r * src_stride + q] + bias[r]` for `r, q` in `0..8`.
///
/// # Safety
/// As [`transpose8x8`], with `bias` readable at 8 floats.
#[target_feature(enable = "avx")]
pub(super) unsafe fn transpose8x8_bias(
    src: *const f32,
    src_stride: usize,
    dst: *mut f32,
    dst_stride: usize,
    bias: *const f32,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let b = _mm256_loadu_ps(bias);
        for (q, v) in transposed(src, src_stride).into_iter().enumerate() {
            _mm256_storeu_ps(dst.add(q * dst_stride), _mm256_add_ps(v, b));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn transposes_an_8x8_block_between_strided_rows() {
        if !is_x86_feature_detected!("avx") {
            return;
        }
        let src: Vec<f32> = (0..8 * 11).map(|v| v as f32).collect();
        let mut dst = vec![-1.0f32; 8 * 13];
        // SAFETY: AVX checked; 8 rows of 8 floats fit at strides 11 and 13.
        unsafe { super::transpose8x8(src.as_ptr(), 11, dst.as_mut_ptr(), 13) };
        for q in 0..8 {
            for r in 0..8 {
                assert_eq!(dst[q * 13 + r], src[r * 11 + q], "({q}, {r})");
            }
            assert!(dst[q * 13 + 8..(q + 1) * 13].iter().all(|&v| v == -1.0));
        }
    }

    #[test]
    fn transposes_an_8x8_block_onto_a_scaled_one() {
        if !is_x86_feature_detected!("avx") {
            return;
        }
        let src: Vec<f32> = (0..8 * 11).map(|v| v as f32).collect();
        for beta in [0.0f32, 1.0, -0.5] {
            let before: Vec<f32> = (0..8 * 13).map(|v| (v as f32) * 0.25 - 3.0).collect();
            let mut dst = before.clone();
            // SAFETY: AVX checked; 8 rows of 8 floats fit at strides 11 and 13.
            unsafe { super::transpose8x8_onto(src.as_ptr(), 11, dst.as_mut_ptr(), 13, beta) };
            for q in 0..8 {
                for r in 0..8 {
                    let at = q * 13 + r;
                    let want = src[r * 11 + q] + beta * before[at];
                    assert_eq!(dst[at], want, "beta {beta}: ({q}, {r})");
                }
                assert_eq!(
                    dst[q * 13 + 8..(q + 1) * 13],
                    before[q * 13 + 8..(q + 1) * 13]
                );
            }
        }
    }

    #[test]
    fn transposes_an_8x8_block_and_adds_a_bias_per_column() {
        if !is_x86_feature_detected!("avx") {
            return;
        }
        let src: Vec<f32> = (0..8 * 11).map(|v| v as f32).collect();
        let bias: Vec<f32> = (0..8).map(|v| v as f32 * 0.5 - 1.0).collect();
        let mut dst = vec![-1.0f32; 8 * 13];
        // SAFETY: AVX checked; 8 rows of 8 floats fit at strides 11 and 13, and 8 biases.
        unsafe { super::transpose8x8_bias(src.as_ptr(), 11, dst.as_mut_ptr(), 13, bias.as_ptr()) };
        for q in 0..8 {
            for r in 0..8 {
                assert_eq!(dst[q * 13 + r], src[r * 11 + q] + bias[r], "({q}, {r})");
            }
            assert!(dst[q * 13 + 8..(q + 1) * 13].iter().all(|&v| v == -1.0));
        }
    }
}
