//! Pooling over whole, non-overlapping windows: stride equal to the kernel, no padding, every
//! window inside the input (PyTorch's `MaxPool2d(k)` / `AvgPool2d(k)`; input rows and columns
//! past the last window are ignored, as floor mode does). Each input element then belongs to
//! at most one window, so a backward pass writes every input gradient exactly once instead of
//! accumulating into a cleared buffer. Windows with padding, overlap or a partial window of
//! ceil mode stay with the general code in `engine::ops::pool`.
//!
//! Results are written a plane at a time (a few KiB, in L1) into the caller's buffers.

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(test)]
mod tests;

use super::isa::Isa;

/// `planes` planes of `height x width`, pooled by `kernel`-sized windows `kernel` apart into
/// `out` windows per axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiles {
    /// Independent planes: batch times channels.
    pub planes: usize,
    /// Input rows per plane.
    pub height: usize,
    /// Input columns per plane.
    pub width: usize,
    /// Window rows and columns; also the stride.
    pub kernel: [usize; 2],
    /// Output rows and columns; `out * kernel` fits in `[height, width]`.
    pub out: [usize; 2],
}

impl Tiles {
    /// Whether windows of `kernel` with the given stride, padding and output size are whole
    /// and disjoint on an input of `size`.
    pub fn fit(
        size: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        out: [usize; 2],
    ) -> bool {
        padding == [0, 0]
            && stride == kernel
            && (0..2).all(|a| kernel[a] > 0 && out[a] > 0 && out[a] * kernel[a] <= size[a])
    }

    fn plane_len(&self) -> usize {
        self.height * self.width
    }

    fn out_len(&self) -> usize {
        self.out[0] * self.out[1]
    }

    /// Checks the lengths of the input and output against the geometry (the windows must be
    /// whole: the loops index without further checks of their own).
    fn check(&self, x: usize, y: usize) {
        assert!(
            (0..2).all(|a| self.kernel[a] > 0)
                && self.out[0] * self.kernel[0] <= self.height
                && self.out[1] * self.kernel[1] <= self.width,
            "pool: windows {:?} x {:?} outside {} x {}",
            self.out,
            self.kernel,
            self.height,
            self.width
        );
        assert_eq!(x, self.planes * self.plane_len(), "pool: input length");
        assert_eq!(y, self.planes * self.out_len(), "pool: output length");
    }

    /// The window-relative index (`ky * kw + kx`) of the first maximum of window `i` of
    /// `plane`, in row-major order: strict `>` keeps the earliest of equal values (where
    /// PyTorch sends the gradient on ties), and a NaN wins only as the first element.
    fn argmax(&self, plane: &[f32], i: usize) -> usize {
        let (mut best, mut value) = (0, plane[element(self, i, 0)]);
        for k in 1..self.kernel[0] * self.kernel[1] {
            let v = plane[element(self, i, k)];
            if v > value {
                (best, value) = (k, v);
            }
        }
        best
    }
}

/// The maximum of each window into `y`; with `argmax` (for windows of at most 256
/// elements), also each window's first maximum as a window-relative index `ky * kw + kx`,
/// for `max_pool_backward_from_argmax`.
pub fn max_pool(t: &Tiles, x: &[f32], y: &mut [f32], argmax: Option<&mut [u8]>) {
    max_pool_on(Isa::chosen(), t, x, y, argmax)
}

/// Whether `max_pool` can keep the argmax of windows of this size (in a `u8`).
pub fn keeps_argmax(t: &Tiles) -> bool {
    t.kernel[0] * t.kernel[1] <= 256
}

/// The output gradient of each window goes to its first maximum; other elements get 0.
pub fn max_pool_backward(t: &Tiles, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    max_pool_backward_on(Isa::chosen(), t, x, dy, dx)
}

/// As `max_pool_backward`, from the argmax `max_pool` kept (without reading the input).
pub fn max_pool_backward_from_argmax(t: &Tiles, argmax: &[u8], dy: &[f32], dx: &mut [f32]) {
    max_pool_backward_from_argmax_on(Isa::chosen(), t, argmax, dy, dx)
}

/// Where window `i` of a plane has its element `k` (window-relative, row-major).
fn element(t: &Tiles, i: usize, k: usize) -> usize {
    let [kh, kw] = t.kernel;
    let (oy, ox) = (i / t.out[1], i % t.out[1]);
    (oy * kh + k / kw) * t.width + ox * kw + k % kw
}

// The loops below go a plane at a time (a few KiB, in L1): a backward pass clears a plane of
// dx just before writing its windows' gradients (rows and columns no window covers stay 0).

pub(crate) fn max_pool_on(
    isa: Isa,
    t: &Tiles,
    x: &[f32],
    y: &mut [f32],
    mut argmax: Option<&mut [u8]>,
) {
    let out_len = t.out_len();
    t.check(x.len(), y.len());
    assert!(
        argmax
            .as_ref()
            .is_none_or(|a| keeps_argmax(t) && a.len() == y.len()),
        "pool: argmax length"
    );
    let planes = x
        .chunks_exact(t.plane_len().max(1))
        .zip(y.chunks_exact_mut(out_len.max(1)));
    for (p, (plane, dst)) in planes.take(t.planes).enumerate() {
        let mut best = argmax
            .as_deref_mut()
            .map(|a| &mut a[p * out_len..(p + 1) * out_len]);
        if t.kernel == [2, 2] {
            max_2x2(isa, t, plane, dst, best);
            continue;
        }
        for (i, d) in dst.iter_mut().enumerate() {
            let k = t.argmax(plane, i);
            *d = plane[element(t, i, k)];
            if let Some(best) = &mut best {
                best[i] = k as u8;
            }
        }
    }
}

pub(crate) fn max_pool_backward_on(isa: Isa, t: &Tiles, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    t.check(x.len(), dy.len());
    assert_eq!(dx.len(), x.len(), "pool: dx length");
    let out_len = t.out_len();
    let planes = x
        .chunks_exact(t.plane_len().max(1))
        .zip(dy.chunks_exact(out_len.max(1)))
        .zip(dx.chunks_exact_mut(t.plane_len().max(1)));
    for ((plane, g), dst) in planes {
        dst.fill(0.0);
        if t.kernel == [2, 2] {
            max_2x2_backward(isa, t, plane, g, dst);
            continue;
        }
        for (i, &gi) in g.iter().enumerate() {
            dst[element(t, i, t.argmax(plane, i))] = gi;
        }
    }
}

pub(crate) fn max_pool_backward_from_argmax_on(
    isa: Isa,
    t: &Tiles,
    argmax: &[u8],
    dy: &[f32],
    dx: &mut [f32],
) {
    let out_len = t.out_len();
    t.check(t.planes * t.plane_len(), dy.len());
    assert_eq!(argmax.len(), dy.len(), "pool: argmax length");
    assert_eq!(dx.len(), t.planes * t.plane_len(), "pool: dx length");
    let planes = argmax
        .chunks_exact(out_len.max(1))
        .zip(dy.chunks_exact(out_len.max(1)))
        .zip(dx.chunks_exact_mut(t.plane_len().max(1)));
    for ((best, g), dst) in planes {
        dst.fill(0.0);
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 && t.kernel == [2, 2] {
            // SAFETY: `Isa::Avx512` is only available on CPUs with AVX-512F; the kernel checks
            // the plane lengths against `t`.
            unsafe { avx512::max_2x2_backward_from_argmax(t, best, g, dst) };
            continue;
        }
        if t.kernel == [2, 2] {
            max_2x2_backward_from_argmax(isa, t, best, g, dst);
            continue;
        }
        let window = t.kernel[0] * t.kernel[1];
        for (i, (&k, &gi)) in best.iter().zip(g).enumerate() {
            assert!(
                usize::from(k) < window,
                "pool: argmax {k} outside a window of {window}"
            );
            dst[element(t, i, usize::from(k))] = gi;
        }
    }
    let _ = isa;
}

/// The mean of each window (its sum row by row, divided by the window's size), into `y`.
pub fn avg_pool(t: &Tiles, x: &[f32], y: &mut [f32]) {
    t.check(x.len(), y.len());
    let [kh, kw] = t.kernel;
    let scale = (kh * kw) as f32;
    let planes = x
        .chunks_exact(t.plane_len().max(1))
        .zip(y.chunks_exact_mut(t.out_len().max(1)));
    for (plane, dst) in planes.take(t.planes) {
        for (oy, row) in dst.chunks_exact_mut(t.out[1].max(1)).enumerate() {
            for (ox, d) in row.iter_mut().enumerate() {
                let mut sum = 0.0f32;
                for ky in 0..kh {
                    let at = (oy * kh + ky) * t.width + ox * kw;
                    sum += plane[at..at + kw].iter().sum::<f32>();
                }
                *d = sum / scale;
            }
        }
    }
}

/// Each window's output gradient, divided by the window's size, on each of its elements.
pub fn avg_pool_backward(t: &Tiles, dy: &[f32], dx: &mut [f32]) {
    t.check(t.planes * t.plane_len(), dy.len());
    assert_eq!(dx.len(), t.planes * t.plane_len(), "pool: dx length");
    let [kh, kw] = t.kernel;
    let scale = (kh * kw) as f32;
    let planes = dy
        .chunks_exact(t.out_len().max(1))
        .zip(dx.chunks_exact_mut(t.plane_len().max(1)));
    for (g, dst) in planes.take(t.planes) {
        dst.fill(0.0);
        for (oy, g_row) in g.chunks_exact(t.out[1].max(1)).enumerate() {
            for ky in 0..kh {
                let row = &mut dst[(oy * kh + ky) * t.width..][..t.out[1] * kw];
                for (window, &gi) in row.chunks_exact_mut(kw).zip(g_row) {
                    window.fill(gi / scale);
                }
            }
        }
    }
}

/// The 2 x 2 maximum of one plane (and its argmax, if wanted): per window, the sequential
/// strict-`>` comparisons of `Tiles::argmax`.
#[inline(always)]
fn max_2x2_portable(t: &Tiles, plane: &[f32], y: &mut [f32], mut argmax: Option<&mut [u8]>) {
    let ow = t.out[1];
    for (oy, y_row) in y.chunks_exact_mut(ow).enumerate() {
        let r0 = &plane[2 * oy * t.width..][..2 * ow];
        let r1 = &plane[(2 * oy + 1) * t.width..][..2 * ow];
        let windows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
        for (ox, (d, (top, bottom))) in y_row.iter_mut().zip(windows).enumerate() {
            let (mut m, mut best) = (top[0], 0);
            for (k, v) in [(1, top[1]), (2, bottom[0]), (3, bottom[1])] {
                if v > m {
                    (m, best) = (v, k);
                }
            }
            *d = m;
            if let Some(a) = &mut argmax {
                a[oy * ow + ox] = best;
            }
        }
    }
}

/// The 2 x 2 backward pass of one plane: each window's gradient to its first maximum, zeros
/// elsewhere in the window (`dx` arrives cleared, for the rows and columns no window covers).
#[inline(always)]
fn max_2x2_backward_portable(t: &Tiles, plane: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (w, ow) = (t.width, t.out[1]);
    for (oy, g_row) in dy.chunks_exact(ow).enumerate() {
        let r0 = &plane[2 * oy * w..][..2 * ow];
        let r1 = &plane[(2 * oy + 1) * w..][..2 * ow];
        let (d0, d1) = dx[2 * oy * w..(2 * oy + 2) * w].split_at_mut(w);
        let rows = r0.chunks_exact(2).zip(r1.chunks_exact(2));
        let grads = d0.chunks_exact_mut(2).zip(d1.chunks_exact_mut(2));
        for (((top, bottom), (g0, g1)), &g) in rows.zip(grads).zip(g_row) {
            let mut m = top[0];
            let mut best = 0;
            if top[1] > m {
                (m, best) = (top[1], 1);
            }
            if bottom[0] > m {
                (m, best) = (bottom[0], 2);
            }
            if bottom[1] > m {
                best = 3;
            }
            g0[0] = if best == 0 { g } else { 0.0 };
            g0[1] = if best == 1 { g } else { 0.0 };
            g1[0] = if best == 2 { g } else { 0.0 };
            g1[1] = if best == 3 { g } else { 0.0 };
        }
    }
}

fn max_2x2(isa: Isa, t: &Tiles, plane: &[f32], y: &mut [f32], argmax: Option<&mut [u8]>) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: `Isa::Avx512` is only available on CPUs with AVX-512F; the kernel checks
        // the plane lengths against `t`.
        unsafe { avx512::max_2x2(t, plane, y, argmax) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: `Isa::Avx2` is only available on CPUs with AVX2 and FMA.
        unsafe { avx2::max_2x2(t, plane, y, argmax) };
        return;
    }
    let _ = isa;
    max_2x2_portable(t, plane, y, argmax);
}

fn max_2x2_backward(isa: Isa, t: &Tiles, plane: &[f32], dy: &[f32], dx: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // SAFETY: as in `max_2x2`.
        unsafe { avx512::max_2x2_backward(t, plane, dy, dx) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: `Isa::Avx2` is only available on CPUs with AVX2 and FMA.
        unsafe { avx2::max_2x2_backward(t, plane, dy, dx) };
        return;
    }
    let _ = isa;
    max_2x2_backward_portable(t, plane, dy, dx);
}

/// The 2 x 2 backward pass of one plane from the kept argmax (`dx` arrives cleared): each
/// window's gradient to the element its argmax names, row by row (no index division per
/// window, as the general `element` does).
#[inline(always)]
fn max_2x2_backward_from_argmax_portable(t: &Tiles, best: &[u8], dy: &[f32], dx: &mut [f32]) {
    let (w, ow) = (t.width, t.out[1]);
    let rows = best.chunks_exact(ow).zip(dy.chunks_exact(ow));
    for (oy, (best_row, g_row)) in rows.enumerate() {
        let (d0, d1) = dx[2 * oy * w..(2 * oy + 2) * w].split_at_mut(w);
        for (ox, (&k, &g)) in best_row.iter().zip(g_row).enumerate() {
            let row = if k < 2 { &mut *d0 } else { &mut *d1 };
            row[2 * ox + usize::from(k & 1)] = g;
        }
    }
}

fn max_2x2_backward_from_argmax(isa: Isa, t: &Tiles, best: &[u8], dy: &[f32], dx: &mut [f32]) {
    assert!(
        best.iter().all(|&k| k < 4),
        "pool: argmax outside a 2 x 2 window"
    );
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 {
        // SAFETY: `Isa::Avx2` is only available on CPUs with AVX2 and FMA.
        unsafe { avx2::max_2x2_backward_from_argmax(t, best, dy, dx) };
        return;
    }
    let _ = isa;
    max_2x2_backward_from_argmax_portable(t, best, dy, dx);
}

/// The AVX2 paths: the portable loops compiled with AVX2 enabled, which the compiler
/// vectorises 8 floats wide (the portable build may assume only SSE2).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Tiles;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn max_2x2(
        t: &Tiles,
        plane: &[f32],
        y: &mut [f32],
        argmax: Option<&mut [u8]>,
    ) {
        super::max_2x2_portable(t, plane, y, argmax)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn max_2x2_backward(t: &Tiles, plane: &[f32], dy: &[f32], dx: &mut [f32]) {
        super::max_2x2_backward_portable(t, plane, dy, dx)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn max_2x2_backward_from_argmax(
        t: &Tiles,
        best: &[u8],
        dy: &[f32],
        dx: &mut [f32],
    ) {
        super::max_2x2_backward_from_argmax_portable(t, best, dy, dx)
    }
}
