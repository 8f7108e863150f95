//! Spreading a convolution's images over the kernels' thread pool.
//!
//! One image's product is small (the seed CNN's second layer: 64 x 169 x 288, 3.1 M
//! multiply-adds), under the size at which `sgemm` splits its own work, so a batch run an
//! image at a time never used a second thread. Instead the batch is cut into one contiguous
//! chunk of images per thread, each chunk's products run on one thread, and each chunk
//! writes its own images' part of the output.

use std::marker::PhantomData;
use std::ops::Range;

use crate::kernels::gemm::{self, SPLIT_WORK};
use crate::kernels::threads::pool;

/// The batch cut into contiguous chunks of images, as even as they can be: one chunk (all
/// images) when the call is too small to split or `threads` is 1, otherwise one per thread
/// (or per image, when there are fewer images than threads). Computed, not listed, so that
/// nothing is allocated per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chunks {
    images: usize,
    count: usize,
}

impl Chunks {
    pub(super) fn new(images: usize, work_per_image: usize, threads: usize) -> Self {
        // Below `sgemm`'s own bar for a second thread, waking the pool and joining it is not
        // repaid.
        let count = if images.saturating_mul(work_per_image) < SPLIT_WORK {
            1
        } else {
            threads.min(images).max(1)
        };
        Chunks { images, count }
    }

    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// The images of chunk `t`.
    pub(super) fn get(&self, t: usize) -> Range<usize> {
        t * self.images / self.count..(t + 1) * self.images / self.count
    }
}

/// A buffer of `per_image` floats per image, from which each chunk's task takes its own
/// images' part. The parts are disjoint, so tasks on other threads write them at once.
pub(super) struct Parts<'a> {
    data: *mut f32,
    chunks: Chunks,
    per_image: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: `Parts` hands out disjoint parts of a buffer it borrows exclusively (see `part`).
unsafe impl Send for Parts<'_> {}
unsafe impl Sync for Parts<'_> {}

impl<'a> Parts<'a> {
    pub(super) fn new(data: &'a mut [f32], chunks: Chunks, per_image: usize) -> Self {
        assert_eq!(data.len(), chunks.images * per_image, "one part per image");
        Parts {
            data: data.as_mut_ptr(),
            chunks,
            per_image,
            _borrow: PhantomData,
        }
    }

    /// Chunk `t`'s images' part.
    ///
    /// # Safety
    /// At most one part of each chunk may be alive at a time (each task takes its own, once).
    pub(super) unsafe fn part(&self, t: usize) -> &'a mut [f32] {
        let images = self.chunks.get(t);
        // SAFETY: chunks are disjoint ranges of images inside the buffer (checked in `new`),
        // and the caller takes each at most once.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.data.add(images.start * self.per_image),
                images.len() * self.per_image,
            )
        }
    }
}

/// Runs `task(t)` for every chunk `t` on the pool of `threads` threads.
pub(super) fn run_chunks(threads: usize, chunks: Chunks, task: impl Fn(usize) + Sync) {
    pool(threads, gemm::prepare_thread).run(chunks.len(), &task);
}
