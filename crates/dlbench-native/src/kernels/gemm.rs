//! Single-precision matrix multiply, `C = alpha * A B + beta * C`, on strided views (so a
//! transpose is a view, not a copy). This file holds the interface and the portable path; the
//! packed, register-blocked SIMD paths are chosen at run time behind the same function.
//!
//! The fast paths follow the BLIS / GotoBLAS structure: for each `NC`-wide column block of
//! `B` and each `KC`-deep slice of `k`, the `KC x NC` block of `B` is packed into `NR`-wide
//! panels; for each `MC`-tall row block of `A`, the `MC x KC` block is packed into `MR`-tall
//! panels; then a micro-kernel accumulates each `MR x NR` tile of `C` in registers over the
//! `KC` slice. Packing absorbs every stride (so transposes cost nothing extra) and zero-pads
//! the edges, so the kernel always computes a full tile; edge tiles go through a small buffer.

#[cfg(target_arch = "x86_64")]
mod gemv;
mod pack;
mod scratch;
#[cfg(target_arch = "x86_64")]
mod transpose;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(test)]
mod tests;

use std::ops::Range;

use super::isa::Isa;
use super::threads;

/// A read-only matrix view: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    /// The elements; must reach the last element `(rows - 1, cols - 1)`.
    pub data: &'a [f32],
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Elements between `(i, j)` and `(i + 1, j)`.
    pub row_stride: usize,
    /// Elements between `(i, j)` and `(i, j + 1)`: 1 for a row-major view.
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, as a view.
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Rows `first..first + len` of this view.
    fn row_band(self, first: usize, len: usize) -> Self {
        MatRef {
            data: &self.data[first * self.row_stride..],
            rows: len,
            ..self
        }
    }

    /// Columns `first..first + len` of this view.
    fn col_band(self, first: usize, len: usize) -> Self {
        MatRef {
            data: &self.data[first * self.col_stride..],
            cols: len,
            ..self
        }
    }

    #[inline]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// `C = alpha * A B + beta * C` for `A` `m x k`, `B` `k x n` and row-major `C` `m x n` with
/// row stride `ldc`, using up to `threads` threads. With `beta == 0`, `C` is overwritten (NaNs
/// in it do not propagate), as BLAS does.
///
/// # Panics
/// When the shapes do not chain or a view reaches outside its slice.
pub fn sgemm(
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    assert_eq!(
        a.cols, b.rows,
        "sgemm: A is {}x{}, B is {}x{}",
        a.rows, a.cols, b.rows, b.cols
    );
    sgemm_on(Isa::chosen(), None, alpha, a, b, beta, c, ldc, threads);
}

/// `C = alpha * A B + bias`, the bias added to every row of `C` (`bias.len()` is `B`'s
/// columns): a Dense layer's forward pass. The same bits as `sgemm` with `beta = 1` onto rows
/// filled with the bias; but where the product is swapped (see `swap_pays`), the bias is added
/// as `Cᵀ` is transposed back, in the product's parallel loop, not copied into `C` first.
///
/// # Panics
/// As [`sgemm`], and when `bias` is not as long as a row of `C`.
pub fn sgemm_bias(
    alpha: f32,
    a: MatRef,
    b: MatRef,
    bias: &[f32],
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    sgemm_bias_on(Isa::chosen(), alpha, a, b, bias, c, ldc, threads);
}

/// `sgemm_bias` on a given path.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_bias_on(
    path: Isa,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    bias: &[f32],
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    assert_eq!(
        bias.len(),
        b.cols,
        "sgemm_bias: {} biases for {} columns",
        bias.len(),
        b.cols
    );
    let (m, n, k) = (a.rows, b.cols, a.cols);
    // One row goes to `gemv` (see `sgemm_on`), which adds onto `C`.
    let swaps = m > 1 && k > 0 && alpha != 0.0 && swap_pays(&a, &b);
    if let Some(micro) = Micro::of(path).filter(|_| swaps) {
        check_views(&a, &b, c, ldc);
        swapped(&micro, alpha, a, b, Onto::Bias(bias), c, ldc, threads);
        return;
    }
    for row in c.chunks_mut(ldc).take(m) {
        row[..n].copy_from_slice(bias);
    }
    sgemm_on(path, None, alpha, a, b, 1.0, c, ldc, threads);
}

/// Cache blocking: the depth of a `k` slice (`kc`), and the rows (`mc`) and columns (`nc`) of
/// the packed `A` and `B` blocks; and the least work (`m * n * k`) worth a second thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blocking {
    pub kc: usize,
    pub mc: usize,
    pub nc: usize,
    pub split_work: usize,
}

/// Where a micro-kernel reads its `mr` rows of `A`: element `(i, p)` (row `i` of the tile,
/// step `p` of `k`) is at `ptr + i * row + p * step`. A packed panel has `row = 1, step = mr`;
/// a row-major `A` read in place has `row = lda, step = 1`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct APanel {
    pub ptr: *const f32,
    pub row: usize,
    pub step: usize,
}

/// A micro-kernel: `C[0..mr, 0..nr] = alpha * Apanel Bpanel + beta * C` over `kc` steps (see
/// `avx512::kernel` for the contract).
type KernelFn = unsafe fn(usize, APanel, *const f32, usize, *mut f32, usize, f32, f32);

/// An edge micro-kernel: `(rows, cols, ...)` then `KernelFn`'s arguments, for a partial tile
/// written straight into `C` (see `avx512::kernel_edge`).
type EdgeFn = unsafe fn(usize, usize, usize, APanel, *const f32, usize, *mut f32, usize, f32, f32);

/// A micro-kernel with its tile shape and default blocking.
#[derive(Clone, Copy)]
struct Micro {
    mr: usize,
    nr: usize,
    kernel: KernelFn,
    /// Partial tiles, written straight into `C`.
    edge: EdgeFn,
    blocking: Blocking,
}

/// Below 256 K multiply-adds (~3 us on one core) waking the pool's second thread and joining
/// it is not repaid. Measured with the spinning pool (AMD EPYC Zen 5, AVX2 forced, 2 threads):
/// 128^3 (2 M) ran at 172-190 GFLOP/s split against 94-96 unsplit under the first bar of 4 M,
/// which dated from threads started per product; lowering the bar from 1 M to 256 K took the
/// LSTM's gate product (320 K) from 105 to 155 GFLOP/s, and the seed VAE's and RNN's training
/// steps from 1.58x and 0.99x to 1.68x and 1.35x of their one-thread speed (the VAE's mu,
/// logvar and decoder products are 410 K each).
pub(crate) const SPLIT_WORK: usize = 1 << 18;

impl Micro {
    /// The kernel of `path`, or `None` for the portable path. Only call with a path from
    /// `Isa::available()`: the kernel's CPU features are assumed from then on.
    fn of(path: Isa) -> Option<Micro> {
        match path {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(Micro {
                mr: avx512::MR,
                nr: avx512::NR,
                kernel: avx512::kernel,
                edge: avx512::kernel_edge,
                // A 6 x 512 A panel (12 KiB) stays in L1 while 64 x 512 B panels (128 KiB)
                // stream from L2; the 96 x 512 packed A block (192 KiB) sits in L2, the
                // 512 x 2048 B block (4 MiB) in L3. Measured (in-process, interleaved, best of
                // 4): kc = 512 beats 256 by 5-10% at n >= 1024, since each `kc` slice costs a
                // pass over C; mc and nc matter within noise.
                blocking: Blocking {
                    kc: 512,
                    mc: 96,
                    nc: 2048,
                    split_work: SPLIT_WORK,
                },
            }),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Some(Micro {
                mr: avx2::MR,
                nr: avx2::NR,
                kernel: avx2::kernel,
                edge: avx2::kernel_edge,
                // A 6 x 512 A panel (12 KiB) and a 16 x 512 B panel (32 KiB) stay in L1 while
                // the micro-kernel runs; the 96 x 512 packed A block (192 KiB) sits in L2.
                // Measured on one pinned Zen 5 core with AVX2 forced (`gemm_table`, 5 rounds):
                // kc = 512 ran 512^3 to 2048^3 at 114-118 GFLOP/s against 111-113 for 256,
                // and the CNN's conv2 product (k = 288, in one slice) at 122 against 100;
                // mc = 144 or nc = 2048 did no better.
                blocking: Blocking {
                    kc: 512,
                    mc: 96,
                    nc: 1024,
                    split_work: SPLIT_WORK,
                },
            }),
            _ => None,
        }
    }
}

/// Sizes this thread's packing buffers for the chosen path now, as its first product would.
/// Each pool worker calls it when it starts (at prepare), so that a worker that happens to run
/// its first product only after the warm-up steps does not allocate in a steady-state step.
/// Pages never written cost nothing.
pub(crate) fn prepare_thread() {
    if let Some(micro) = Micro::of(Isa::chosen()) {
        let Blocking { kc, mc, nc, .. } = micro.blocking;
        scratch::with_packing(kc * mc, kc * nc, |_, _| {});
    }
}

/// The largest index a view reads plus one (0 for an empty view).
fn extent(v: &MatRef) -> usize {
    if v.rows == 0 || v.cols == 0 {
        0
    } else {
        (v.rows - 1) * v.row_stride + (v.cols - 1) * v.col_stride + 1
    }
}

/// The checks that make the raw-pointer kernels sound, for a product with `m, n > 0`: every
/// packed read comes from inside the views, and every tile written lies inside `c`.
fn check_views(a: &MatRef, b: &MatRef, c: &[f32], ldc: usize) {
    let (m, n) = (a.rows, b.cols);
    assert_eq!(a.cols, b.rows, "sgemm: inner dimensions differ");
    assert!(
        extent(a) <= a.data.len(),
        "sgemm: A reaches outside its slice"
    );
    assert!(
        extent(b) <= b.data.len(),
        "sgemm: B reaches outside its slice"
    );
    assert!(ldc >= n, "sgemm: ldc {ldc} < n {n}");
    assert!(
        c.len() >= (m - 1) * ldc + n,
        "sgemm: C ({} floats) is too short for {m}x{n} with ldc {ldc}",
        c.len()
    );
}

/// `sgemm` on a given path, with optional blocking (tests force small blocks to exercise
/// every loop of the blocked driver on small shapes).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_on(
    path: Isa,
    blocking: Option<Blocking>,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        assert_eq!(a.cols, b.rows, "sgemm: inner dimensions differ");
        return;
    }
    check_views(&a, &b, c, ldc);
    if k == 0 || alpha == 0.0 {
        // No product to add: C = beta * C (and beta == 0 clears, NaNs included).
        for i in 0..m {
            for x in &mut c[i * ldc..i * ldc + n] {
                *x = if beta == 0.0 { 0.0 } else { beta * *x };
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if m == 1 && a.col_stride == 1 && path != Isa::Portable && blocking.is_none() {
        // SAFETY: a SIMD path is only chosen on CPUs with AVX2 and FMA (AVX-512 implies
        // both), and the views were checked to lie inside their slices above.
        if unsafe { gemv::gemv(alpha, a, b, beta, c) } {
            return;
        }
    }
    #[cfg(target_arch = "x86_64")]
    if n == 1 && ldc == 1 && b.row_stride == 1 && path != Isa::Portable && blocking.is_none() {
        // One column (a Dense layer with one unit, its dW and dx): as `Cᵀ = Bᵀ Aᵀ` it is a
        // one-row product, and `Cᵀ` is the same contiguous slice as `C`.
        // SAFETY: as above.
        if unsafe { gemv::gemv(alpha, b.t(), a.t(), beta, c) } {
            return;
        }
    }
    match Micro::of(path) {
        None => portable(alpha, a, b, beta, c, ldc),
        Some(mut micro) => {
            if let Some(blocking) = blocking {
                micro.blocking = blocking;
            }
            if blocking.is_none() && swap_pays(&a, &b) {
                swapped(&micro, alpha, a, b, Onto::Scaled(beta), c, ldc, threads);
            } else {
                threaded(&micro, alpha, a, b, beta, c, ldc, threads, &|_, _| {});
            }
        }
    }
}

/// Whether `C = A B` is cheaper as `Cᵀ = Bᵀ Aᵀ`: for `x Wᵀ` with fewer rows than outputs (a
/// batch through a Dense layer), `B` is the transposed weight, whose packing (a transpose of
/// `n x k` floats) costs about as much as the product. Swapped, the transposed operand to pack
/// is `xᵀ`, `m x k` floats, and `W` is read in place as a row-major `A`.
fn swap_pays(a: &MatRef, b: &MatRef) -> bool {
    a.col_stride == 1 && b.row_stride == 1 && b.col_stride != 1 && a.rows < b.cols
}

/// `C = alpha A B + beta C` as `Cᵀ = alpha Bᵀ Aᵀ` into this thread's scratch, then
/// transposed onto `C` (`m x n` floats, small next to the product): each block of `Cᵀ` as soon
/// as it is computed, by the thread that computed it, while it is still in that core's cache.
#[allow(clippy::too_many_arguments)]
fn swapped(
    micro: &Micro,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    onto: Onto,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    let (m, n) = (a.rows, b.cols);
    let to = CPtr(c.as_mut_ptr());
    scratch::with_transposed(m * n, |c_t| {
        let from = CPtr(c_t.as_mut_ptr());
        threaded(
            micro,
            alpha,
            b.t(),
            a.t(),
            0.0,
            c_t,
            m,
            threads,
            &|rows, cols| {
                // SAFETY: `threaded` hands over each block of `Cᵀ` (`n x m`, row stride `m`, in
                // `c_t`) once it is final, once, on the thread that wrote it; the blocks of `C`
                // they become (rows `cols`, columns `rows`) are disjoint and lie inside the
                // `m x n` block with row stride `ldc` that `c` holds (checked in `sgemm_on`), which
                // stays exclusively borrowed meanwhile.
                unsafe { transpose_onto(from, m, rows, cols, to, ldc, onto) }
            },
        );
    });
}

/// What the transpose of a swapped product adds to each element of `C`.
#[derive(Debug, Clone, Copy)]
enum Onto<'a> {
    /// `beta` times what `C` held (nothing, and `C` is only written, when `beta == 0`).
    Scaled(f32),
    /// `bias[j]` in column `j` (`C` is only written).
    Bias(&'a [f32]),
}

/// `C[j, i] = Cᵀ[i, j] + onto` for rows `i` in `rows` and columns `j` in `cols` of `Cᵀ` (at
/// `c_t`, row stride `ldt`), onto `C` (at `c`, row stride `ldc`): 8 x 8 blocks transposed in
/// registers, the ragged edges one float at a time.
///
/// # Safety
/// `c_t` must be readable at that block of `Cᵀ`, and `c` readable and writable at the block of
/// `C` it goes onto, which no other thread accesses meanwhile. On x86-64 the CPU must support
/// AVX (every path that swaps does).
///
/// # Panics
/// When a bias is shorter than `rows.end`.
unsafe fn transpose_onto(
    c_t: CPtr,
    ldt: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    c: CPtr,
    ldc: usize,
    onto: Onto,
) {
    if let Onto::Bias(bias) = onto {
        assert!(bias.len() >= rows.end, "a bias for {} columns", rows.end);
    }
    let from = |i: usize, j: usize| c_t.0.wrapping_add(i * ldt + j);
    let onto_c = |j: usize, i: usize| c.0.wrapping_add(j * ldc + i);
    #[cfg(target_arch = "x86_64")]
    let (rows_end, cols_end) = (
        rows.start + rows.len() / 8 * 8,
        cols.start + cols.len() / 8 * 8,
    );
    #[cfg(not(target_arch = "x86_64"))]
    let (rows_end, cols_end) = (rows.start, cols.start);
    #[cfg(target_arch = "x86_64")]
    for j0 in (cols.start..cols_end).step_by(8) {
        for i0 in (rows.start..rows_end).step_by(8) {
            // SAFETY: an 8 x 8 block inside the caller's blocks of `Cᵀ` and `C`, and 8 biases
            // from `i0 + 8 <= rows.end` (asserted above).
            unsafe {
                let (src, dst) = (from(i0, j0), onto_c(j0, i0));
                match onto {
                    Onto::Scaled(beta) => transpose::transpose8x8_onto(src, ldt, dst, ldc, beta),
                    Onto::Bias(bias) => {
                        transpose::transpose8x8_bias(src, ldt, dst, ldc, bias[i0..].as_ptr())
                    }
                }
            }
        }
    }
    for j in cols {
        let first = if j < cols_end { rows_end } else { rows.start };
        for i in first..rows.end {
            // SAFETY: inside the caller's blocks, as above.
            unsafe {
                let (t, x) = (*from(i, j), onto_c(j, i));
                *x = match onto {
                    Onto::Scaled(0.0) => t,
                    Onto::Scaled(beta) => t + beta * *x,
                    Onto::Bias(bias) => t + bias[i],
                };
            }
        }
    }
}

/// What [`threaded`] calls with each block of `C` (its rows, its columns) once the block is
/// final, on the thread that computed it: the swapped product's transpose.
type Done<'a> = dyn Fn(Range<usize>, Range<usize>) + Sync + 'a;

/// Splits the rows of `C` (and `A`) into `threads` bands of whole `mr` tiles, one task of the
/// kernels' thread pool each (or, with few rows, the columns: see below). Each thread packs its
/// own copy of `B`; that is `k * n` work against `m * n * k / threads` multiply-adds, cheap
/// once the problem is big enough to split at all.
#[allow(clippy::too_many_arguments)]
fn threaded(
    micro: &Micro,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
    done: &Done,
) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let (mr, nr) = (micro.mr, micro.nr);
    let row_threads = threads.min(m / mr).max(1);
    let col_threads = threads.min(n / nr).max(1);
    let base = CPtr(c.as_mut_ptr());
    if threads <= 1 || m * n * k < micro.blocking.split_work {
        // SAFETY: `c` is exclusively borrowed and `sgemm_on` checked that it holds the
        // `m x n` block with row stride `ldc`.
        unsafe { blocked(micro, alpha, a, b, beta, base, ldc) };
        done(0..m, 0..n);
        return;
    }
    if m <= micro.blocking.mc && n >= 2 * nr * col_threads && col_threads > 1 && k <= 2 * n {
        // Few rows (im2col convolutions): split the columns instead, so each thread reads
        // only its share of `B` (with few rows, reading `B` is a large part of the work).
        // With `k` much larger than `n` (a batch-32 Dense layer's dx, `dy W`, 32 x 256 x
        // 1000), `k` is split instead (below): each thread then reads half of `A` and half of
        // the rows of `B` (the weight rows its core read in the forward pass) rather than all
        // of `A` and half of every row of `B`, for `m x n` partial sums. Measured on the seed
        // VAE's training step, 2 threads, Zen 5: faster in 7 of 10 alternating runs, by 2-8%
        // (and by 10% when the two cores share no cache).
        let band = n.div_ceil(col_threads).div_ceil(nr) * nr;
        threads::pool(threads, prepare_thread).run(n.div_ceil(band), &|t| {
            let j0 = t * band;
            let b_band = b.col_band(j0, band.min(n - j0));
            // SAFETY: `c` stays exclusively borrowed until `run` returns (through `base`) and
            // holds the `m x n` block (checked in `sgemm_on`); each task writes only columns
            // `j0..j0 + cols` of it, disjoint from every other task's.
            unsafe { blocked(micro, alpha, a, b_band, beta, base.offset(j0), ldc) };
            done(0..m, j0..j0 + band.min(n - j0));
        });
        return;
    }
    if row_threads == 1 || m <= micro.blocking.mc {
        // One row block and too few columns to split (a batch-32 Dense layer, 32 x 2304 x
        // 100): row bands would each still read all of `B` for a few tiles, and measured no
        // faster than one thread. Split `k` instead: each thread multiplies its slice of `A`'s
        // columns by the same rows of `B`, and the small `m x n` partial products are added.
        split_k(micro, alpha, a, b, beta, c, ldc, threads);
        done(0..m, 0..n);
        return;
    }
    let band = m.div_ceil(row_threads).div_ceil(mr) * mr;
    threads::pool(threads, prepare_thread).run(m.div_ceil(band), &|t| {
        let i0 = t * band;
        let a_band = a.row_band(i0, band.min(m - i0));
        // SAFETY: as above; each task writes only rows `i0..i0 + rows` of the block.
        unsafe { blocked(micro, alpha, a_band, b, beta, base.offset(i0 * ldc), ldc) };
        done(i0..i0 + band.min(m - i0), 0..n);
    });
}

/// `threads` equal slices of `k`: the first thread's product goes into `C` (with `beta`), each
/// other's into its own `m x n` block of the calling thread's scratch, added onto `C` after.
#[allow(clippy::too_many_arguments)]
fn split_k(
    micro: &Micro,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let slice = k.div_ceil(threads);
    let slices = k.div_ceil(slice);
    // Each other slice's `m x n` product, row stride `n`, in this thread's buffer: the
    // tasks write disjoint parts of it, wherever they run, each from a cache line of its own
    // (no line written by two threads).
    let stride = (m * n).next_multiple_of(16);
    scratch::with_partials((slices - 1) * stride, |partials| {
        let (base, partial_base) = (CPtr(c.as_mut_ptr()), CPtr(partials.as_mut_ptr()));
        threads::pool(threads, prepare_thread).run(slices, &|t| {
            let p0 = t * slice;
            let len = slice.min(k - p0);
            let (a_slice, b_slice) = (a.col_band(p0, len), b.row_band(p0, len));
            if t == 0 {
                // SAFETY: only this task writes `c` (exclusively borrowed until `run`
                // returns, holding the `m x n` block with row stride `ldc`, checked in
                // `sgemm_on`).
                unsafe { blocked(micro, alpha, a_slice, b_slice, beta, base, ldc) };
            } else {
                let out = partial_base.offset((t - 1) * stride);
                // SAFETY: block `t - 1` of `partials` (`stride >= m * n` floats each, the
                // buffer exclusively borrowed until `run` returns), written by this task
                // alone. With beta 0 every element of it is written, so nothing stale is
                // added below.
                unsafe { blocked(micro, alpha, a_slice, b_slice, 0.0, out, n) };
            }
        });
        for partial in partials.chunks_exact(stride) {
            for (row, part) in c.chunks_mut(ldc).zip(partial[..m * n].chunks_exact(n)) {
                for (x, p) in row[..n].iter_mut().zip(part) {
                    *x += p;
                }
            }
        }
    });
}

/// Where `blocked` writes: the first element of its block of `C` (or where `transpose_onto`
/// reads and writes). A raw pointer, because threads that split the columns write interleaved
/// parts of the same rows.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);

impl CPtr {
    /// The element `offset` floats further on (only formed for offsets inside `C`).
    fn offset(self, offset: usize) -> CPtr {
        CPtr(self.0.wrapping_add(offset))
    }
}

// SAFETY: a `CPtr` is only dereferenced inside `blocked` and `transpose_onto`, whose callers
// hand each thread a disjoint block of `C` (and of `Cᵀ`) that outlives the parallel loop.
unsafe impl Send for CPtr {}
unsafe impl Sync for CPtr {}

/// The single-threaded blocked driver (see the module comment for the loop structure).
///
/// # Safety
/// `c` must point to an `a.rows x b.cols` block with row stride `ldc`, valid for reads and
/// writes, that nothing else accesses during the call. (`a` and `b` are bounds-checked views.)
unsafe fn blocked(micro: &Micro, alpha: f32, a: MatRef, b: MatRef, beta: f32, c: CPtr, ldc: usize) {
    let Blocking { kc, mc, nc, .. } = micro.blocking;
    // Sized for the largest blocks, not for this product, so that a thread's first product
    // sizes its buffers for good: which pool thread runs which band varies from call to call,
    // and sizing by band would let a warm step allocate. Pages never written cost nothing.
    scratch::with_packing(kc * mc, kc * nc, |a_pack, b_pack| {
        // SAFETY: this function's own contract, passed on.
        unsafe { blocked_with(micro, alpha, a, b, beta, c, ldc, a_pack, b_pack) }
    })
}

/// `blocked`, given its packing buffers (`kc * mc` and `kc * nc` floats at least).
///
/// # Safety
/// As `blocked`.
#[allow(clippy::too_many_arguments)]
unsafe fn blocked_with(
    micro: &Micro,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: CPtr,
    ldc: usize,
    a_pack: &mut [f32],
    b_pack: &mut [f32],
) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let (mr, nr) = (micro.mr, micro.nr);
    let Blocking { kc, mc, nc, .. } = micro.blocking;
    debug_assert!(mc % mr == 0 && nc % nr == 0);
    // With a single block of rows (small `m`, as in im2col convolutions and batch-32 dense
    // layers), each packed `B` panel would be read only `m / mr` times, so packing all of `B`
    // costs about as much as the product. A row-major `B` is then read in place (each row of
    // a panel is `nr` contiguous floats), ragged last panel included: the edge kernels read it
    // masked.
    let direct_b = b.col_stride == 1 && m <= mc;
    // A row-major `A` is read in place too (each step of `k` broadcasts one float from each
    // of the tile's rows, six streams the prefetchers follow), rather than packed per `k`
    // slice: packing cost a fifth of a batch-32 Dense layer's product, and even at 512^3 to
    // 2048^3 reading in place measured 4-12% faster on one Zen 5 core.
    let direct_a = a.col_stride == 1;
    for jc in (0..n).step_by(nc) {
        let ncb = nc.min(n - jc);
        for pc in (0..k).step_by(kc) {
            let kcb = kc.min(k - pc);
            // Later k slices accumulate onto what the first one wrote.
            let beta_k = if pc == 0 { beta } else { 1.0 };
            if !direct_b {
                pack::pack_b(&b, pc, kcb, jc, ncb, nr, b_pack);
            }
            for ic in (0..m).step_by(mc) {
                let mcb = mc.min(m - ic);
                if !direct_a {
                    pack::pack_a(&a, ic, mcb, pc, kcb, mr, a_pack);
                }
                for jr in (0..ncb).step_by(nr) {
                    let nrb = nr.min(ncb - jr);
                    let (b_panel, ldb) = if direct_b {
                        // Rows `pc..pc+kcb`, columns `jc+jr..jc+jr+nrb` of `B`, in place.
                        let start = pc * b.row_stride + jc + jr;
                        let end = start + (kcb - 1) * b.row_stride + nrb;
                        (&b.data[start..end], b.row_stride)
                    } else {
                        (&b_pack[jr * kcb..(jr + nr) * kcb], nr)
                    };
                    for ir in (0..mcb).step_by(mr) {
                        let mrb = mr.min(mcb - ir);
                        let a_panel = if direct_a {
                            // Rows `ic+ir..ic+ir+mrb`, columns `pc..pc+kcb` of `A`, in place.
                            let start = (ic + ir) * a.row_stride + pc;
                            let end = start + (mrb - 1) * a.row_stride + kcb;
                            let rows = &a.data[start..end];
                            APanel {
                                ptr: rows.as_ptr(),
                                row: a.row_stride,
                                step: 1,
                            }
                        } else {
                            let panel = &a_pack[ir * kcb..(ir + mr) * kcb];
                            APanel {
                                ptr: panel.as_ptr(),
                                row: 1,
                                step: mr,
                            }
                        };
                        let at = (ic + ir) * ldc + jc + jr;
                        if mrb == mr && nrb == nr {
                            // SAFETY: `Micro::of` only hands out kernels of available paths;
                            // the A panel lays out `mr` rows of `kcb` floats and the B panel
                            // `kcb` rows of `nr` floats `ldb` apart (packed or in place, both
                            // sliced above, bounds-checked);
                            // the tile's last element, `at + (mr-1)*ldc + nr-1`, is at most
                            // `(m-1)*ldc + n-1`, inside the block at `c` (this fn's contract).
                            unsafe {
                                (micro.kernel)(
                                    kcb,
                                    a_panel,
                                    b_panel.as_ptr(),
                                    ldb,
                                    c.0.add(at),
                                    ldc,
                                    alpha,
                                    beta_k,
                                )
                            }
                        } else {
                            // SAFETY: as above, for the `mrb x nrb` block at `at`, whose last
                            // element is at most `(m-1)*ldc + n-1`; the B panel holds `kcb`
                            // rows of at least `nrb` floats (packed: `nr`), which is what the
                            // edge kernel reads.
                            unsafe {
                                (micro.edge)(
                                    mrb,
                                    nrb,
                                    kcb,
                                    a_panel,
                                    b_panel.as_ptr(),
                                    ldb,
                                    c.0.add(at),
                                    ldc,
                                    alpha,
                                    beta_k,
                                )
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The reference path: plain loops, any strides.
fn portable(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut [f32], ldc: usize) {
    for i in 0..a.rows {
        let row = &mut c[i * ldc..i * ldc + b.cols];
        for (j, out) in row.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            for p in 0..a.cols {
                acc += a.at(i, p) * b.at(p, j);
            }
            *out = if beta == 0.0 {
                alpha * acc
            } else {
                alpha * acc + beta * *out
            };
        }
    }
}
