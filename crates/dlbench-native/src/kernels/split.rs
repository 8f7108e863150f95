//! Cutting a memory-bound pass (an activation, a pooling, a copy) into one contiguous range
//! per thread of the kernels' pool, each range written by one task.
//!
//! On two threads, a training step whose products are split but whose element-wise passes run
//! on the calling thread alone gains little from the second core: in the seed CNN these passes
//! were a quarter of the step. Split, each thread streams its own part of the buffers.

use std::marker::PhantomData;
use std::ops::Range;

use super::gemm;
use super::threads::pool;

/// Elements per thread below which a pass is not split: waking the pool and joining it takes
/// a few microseconds, as long as streaming this many floats.
pub const MIN_PER_THREAD: usize = 1 << 14;

/// An element's worth (in streamed floats) when it takes an exp or a log: the vectorised
/// functions cost several times a copy, so such passes split from fewer elements.
pub const TRANSCENDENTAL: usize = 4;

/// A mutable slice that the tasks of one parallel loop write in disjoint ranges.
pub struct Disjoint<'a, T> {
    data: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: `Disjoint` only hands out ranges its user promises are disjoint (see `range`), so
// sharing it between threads is sharing disjoint `&mut [T]`, which is `Send` for `T: Send`.
unsafe impl<T: Send> Send for Disjoint<'_, T> {}
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    /// Borrows `data` exclusively for the loop.
    pub fn new(data: &'a mut [T]) -> Self {
        Disjoint {
            data: data.as_mut_ptr(),
            len: data.len(),
            _borrow: PhantomData,
        }
    }

    /// Whether the slice holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements `range` of the slice.
    ///
    /// # Safety
    /// No other live reference from this `Disjoint` may overlap `range`: each task of a loop
    /// takes its own range, once.
    ///
    /// # Panics
    /// When `range` reaches past the slice.
    pub unsafe fn range(&self, range: Range<usize>) -> &'a mut [T] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "range {range:?} of a slice of {}",
            self.len
        );
        // SAFETY: inside the borrowed slice (checked above), and not aliased (the contract).
        unsafe { std::slice::from_raw_parts_mut(self.data.add(range.start), range.len()) }
    }
}

/// The ranges `0..items` is cut into: one per thread, each a whole number of `align` items
/// (but the last), or a single range when an item is worth `item_len` elements of streaming
/// work (a plane's floats; several for an element that takes a logarithm) and a thread's share
/// would be worth fewer than [`MIN_PER_THREAD`].
fn ranges(threads: usize, items: usize, align: usize, item_len: usize) -> (usize, usize) {
    let align = align.max(1);
    let units = items.div_ceil(align);
    let worth = items.saturating_mul(item_len) / threads.max(1) >= MIN_PER_THREAD;
    let count = if worth { threads.min(units).max(1) } else { 1 };
    let per = units.div_ceil(count) * align;
    (per, items.div_ceil(per.max(1)).max(1))
}

/// Calls `task(t, range)` for the ranges `t` that cover `0..items` (see [`ranges`]), on the
/// pool of `threads` when there are several, else once, on this thread; returns how many.
fn run_ranges(
    threads: usize,
    items: usize,
    align: usize,
    item_len: usize,
    task: &(dyn Fn(usize, Range<usize>) + Sync),
) -> usize {
    let (per, count) = ranges(threads, items, align, item_len);
    if count <= 1 {
        task(0, 0..items);
    } else {
        pool(threads, gemm::prepare_thread).run(count, &|t| {
            task(t, t * per..((t + 1) * per).min(items));
        });
    }
    count
}

/// Calls `task(range)` for contiguous ranges that cover `0..items`, in parallel on the pool
/// of `threads` when the pass is large enough (see [`ranges`]), else once, on this thread.
/// `item_len` is the elements per item (a plane's floats, or 1), `align` keeps ranges whole
/// multiples of it.
pub fn for_ranges(
    threads: usize,
    items: usize,
    align: usize,
    item_len: usize,
    task: &(dyn Fn(Range<usize>) + Sync),
) {
    run_ranges(threads, items, align, item_len, &|_, range| task(range));
}

/// The most ranges [`sum_ranges`] adds (its partial sums live on the stack).
const MAX_PARTS: usize = 64;

/// The sum of `part(range)` over ranges that cover `0..len` (whole multiples of `align`, but
/// the last), one per thread when worth it (see [`ranges`]; `work` is an element's worth),
/// else `part(0..len)`. The partial sums are added in range order: a thread count always
/// gives the same result.
pub fn sum_ranges(
    threads: usize,
    len: usize,
    align: usize,
    work: usize,
    part: &(dyn Fn(Range<usize>) -> f64 + Sync),
) -> f64 {
    let mut partials = [0.0f64; MAX_PARTS];
    let sums = Disjoint::new(&mut partials);
    let count = run_ranges(threads.min(MAX_PARTS), len, align, work, &|t, range| {
        // SAFETY: task `t` alone writes partial sum `t`.
        let slot = unsafe { sums.range(t..t + 1) };
        slot[0] = part(range);
    });
    if count == 1 {
        return partials[0];
    }
    partials[..count].iter().sum()
}

/// `task(start, part)` over `out` cut into contiguous parts, one per thread when worth it
/// (`work` is an element's worth, see [`ranges`]): `part` is `out[start..start + part.len()]`,
/// for the task to read the matching ranges of its inputs.
pub fn split_mut<T: Send>(
    threads: usize,
    out: &mut [T],
    work: usize,
    task: impl Fn(usize, &mut [T]) + Sync,
) {
    let len = out.len();
    let out = Disjoint::new(out);
    for_ranges(threads, len, 16, work, &|range| {
        let start = range.start;
        // SAFETY: `for_ranges` hands each task its own range, disjoint from the others'.
        task(start, unsafe { out.range(range) })
    });
}

#[cfg(test)]
mod tests {
    use super::{ranges, split_mut, sum_ranges, MIN_PER_THREAD};

    #[test]
    fn ranges_cover_everything_once_and_keep_alignment() {
        for threads in [1, 2, 3] {
            for items in [0, 1, 15, 16, 17, 1000, 3 * MIN_PER_THREAD + 5] {
                for align in [1, 16] {
                    let (per, count) = ranges(threads, items, align, 1);
                    assert!(count >= 1 && count <= threads.max(1));
                    assert!(per % align == 0 || count == 1);
                    assert!(per * count >= items && per * (count - 1) < items.max(1));
                }
            }
        }
        // Too small to be worth a second thread; large enough for two.
        assert_eq!(ranges(2, MIN_PER_THREAD, 1, 1).1, 1);
        assert_eq!(ranges(2, 2 * MIN_PER_THREAD, 1, 1).1, 2);
        // Items of many elements: few items can still be split.
        assert_eq!(ranges(2, 4, 1, MIN_PER_THREAD).1, 2);
    }

    #[test]
    fn sum_ranges_covers_everything_once_in_order() {
        for threads in [1, 2, 3, 200] {
            for len in [0, 5, 4 * MIN_PER_THREAD + 3] {
                let sum = sum_ranges(threads, len, 16, 1, &|r| r.map(|i| i as f64).sum());
                assert_eq!(sum, (len * len.saturating_sub(1) / 2) as f64);
            }
        }
    }

    #[test]
    fn split_mut_writes_every_element_once() {
        for threads in [1, 2, 3] {
            for len in [0, 7, 4 * MIN_PER_THREAD + 3] {
                let mut out = vec![0u32; len];
                split_mut(threads, &mut out, 1, |start, part| {
                    for (i, v) in part.iter_mut().enumerate() {
                        *v += (start + i) as u32 + 1;
                    }
                });
                assert!(out.iter().enumerate().all(|(i, &v)| v == i as u32 + 1));
            }
        }
    }
}
