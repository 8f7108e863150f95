//! The GEMM drivers' working memory, kept per thread across calls so that a warm `sgemm`
//! allocates nothing (a training step calls it dozens of times). Each thread, pool workers
//! included, owns its buffers: a thread only ever writes memory that sits in its own core's
//! cache, and no lock is taken.
//!
//! Buffers grow and are never shrunk, nor cleared: every caller writes each element it later
//! reads (packing writes the zero padding of edge panels too). Unit tests fill the buffers
//! with NaN on every use, so a read of stale memory shows in a result.

use std::cell::RefCell;

/// A heap buffer of floats whose usable part starts 64-byte aligned (one cache line, one
/// `zmm`), so packed panels never split vector loads across lines.
pub(super) struct AlignedBuf {
    buf: Vec<f32>,
    /// Where the aligned part starts in `buf`.
    offset: usize,
}

/// Floats of slack for alignment: 64 bytes.
const SLACK: usize = 16;

impl AlignedBuf {
    const fn new() -> Self {
        AlignedBuf {
            buf: Vec::new(),
            offset: 0,
        }
    }

    /// The first `len` floats of the buffer, grown first if it is shorter. Their contents are
    /// whatever the previous user left.
    fn take(&mut self, len: usize) -> &mut [f32] {
        if self.buf.len() < len + SLACK {
            // Free the old buffer before asking for the new one; zeroed memory, which large
            // requests get as fresh pages that cost nothing until written.
            self.buf = Vec::new();
            self.buf = vec![0.0; len + SLACK];
            self.offset = self.buf.as_ptr().align_offset(64).min(SLACK);
        }
        let taken = &mut self.buf[self.offset..self.offset + len];
        #[cfg(test)]
        taken.fill(f32::NAN);
        taken
    }
}

thread_local! {
    /// The packed blocks of `A` and `B` of `blocked`, in one buffer (see `with_packing`).
    static PACKING: RefCell<AlignedBuf> = const { RefCell::new(AlignedBuf::new()) };
    static PARTIALS: RefCell<AlignedBuf> = const { RefCell::new(AlignedBuf::new()) };
    static TRANSPOSED: RefCell<AlignedBuf> = const { RefCell::new(AlignedBuf::new()) };
}

/// Calls `f` with this thread's packing buffers for `A` and `B`, of at least `a_len` and
/// `b_len` floats.
///
/// Both come from one allocation, `B`'s block right after `A`'s (64-byte aligned), so that
/// where they lie relative to each other is fixed by this code, not by the allocator. It
/// matters more than it should: shifting the blocks by a few cache lines, in one process,
/// moved the VAE training step by up to 4% either way (isolated products did not move), with
/// no rule that we could find; a fixed placement at least keeps A/B measurements comparable.
///
/// # Panics
/// When called again from inside `f` (the drivers never do).
pub(super) fn with_packing<R>(
    a_len: usize,
    b_len: usize,
    f: impl FnOnce(&mut [f32], &mut [f32]) -> R,
) -> R {
    let b_start = a_len.next_multiple_of(16);
    PACKING.with_borrow_mut(|packing| {
        let (a, b) = packing.take(b_start + b_len).split_at_mut(b_start);
        f(&mut a[..a_len], &mut b[..b_len])
    })
}

/// Calls `f` with this thread's buffer for the partial products of a split `k`, of `len`
/// floats. Held while other threads write into it, so it is a separate buffer from the
/// packing ones, which this thread's own tasks borrow meanwhile.
///
/// # Panics
/// When called again from inside `f`.
pub(super) fn with_partials<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    PARTIALS.with_borrow_mut(|partials| f(partials.take(len)))
}

/// Calls `f` with this thread's buffer for the transposed product of a swapped `sgemm`, of
/// `len` floats; apart from the others, which the swapped product borrows meanwhile.
///
/// # Panics
/// When called again from inside `f`.
pub(super) fn with_transposed<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    TRANSPOSED.with_borrow_mut(|transposed| f(transposed.take(len)))
}
