//! Spreading a convolution's images over the kernels' thread pool.
//!
//! One image's product is small (the seed CNN's second layer: 64 x 169 x 288, 3.1 M
//! multiply-adds), under the size at which `sgemm` splits its own work, so a batch run an
//! image at a time never used a second thread. Instead the batch is cut into one contiguous
//! chunk of images per thread, each chunk's products run on one thread, and each chunk
//! writes its own images' part of the output.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use crate::kernels::gemm::SPLIT_WORK;
use crate::kernels::threads::pool;

/// The images of each chunk, contiguous and as even as they can be: one chunk (all images)
/// when the call is too small to split or `threads` is 1, otherwise one per thread (or per
/// image, when there are fewer images than threads).
pub(super) fn image_chunks(
    images: usize,
    work_per_image: usize,
    threads: usize,
) -> Vec<Range<usize>> {
    // Below `sgemm`'s own bar for a second thread, waking the pool and joining it is not
    // repaid.
    let chunks = if images.saturating_mul(work_per_image) < SPLIT_WORK {
        1
    } else {
        threads.min(images).max(1)
    };
    (0..chunks)
        .map(|t| t * images / chunks..(t + 1) * images / chunks)
        .collect()
}

/// `data`, `per_image` floats per image, cut into the disjoint parts of `chunks`' images.
pub(super) fn split_images<'a>(
    mut data: &'a mut [f32],
    chunks: &[Range<usize>],
    per_image: usize,
) -> Vec<&'a mut [f32]> {
    chunks
        .iter()
        .map(|images| {
            let (part, rest) = std::mem::take(&mut data).split_at_mut(images.len() * per_image);
            data = rest;
            part
        })
        .collect()
}

/// Runs `task(t, &mut states[t])` for every chunk `t` on the pool of `threads` threads and
/// returns the states. Each state sits behind its own lock, taken only by its task, so the
/// locks never contend; they only let a shared closure reach one `&mut` per task safely.
pub(super) fn run_chunks<S: Send>(
    threads: usize,
    states: Vec<S>,
    task: impl Fn(usize, &mut S) + Sync,
) -> Vec<S> {
    let states: Vec<Mutex<S>> = states.into_iter().map(Mutex::new).collect();
    pool(threads).run(states.len(), &|t| {
        let mut state = states[t].lock().unwrap_or_else(PoisonError::into_inner);
        task(t, &mut state);
    });
    states
        .into_iter()
        .map(|state| state.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect()
}
