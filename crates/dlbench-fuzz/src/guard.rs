//! The guards a worker runs its inputs under: a counting allocator that ends the process when
//! live memory would pass the cap, a panic hook, and a watchdog thread for inputs that run too
//! long. Each reports one `FAIL <kind>: <message>` line on stderr and exits with its own code,
//! so that the supervisor, which knows which input was running, can record it.
//!
//! The allocator cannot allocate while it reports (it is the allocator), so its message is
//! formatted into a buffer on the stack and written with `write(2)`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Exit code of a worker whose input passed the memory cap.
pub const EXIT_MEMORY: i32 = 3;
/// Exit code of a worker whose input ran past the hang limit.
pub const EXIT_HANG: i32 = 4;
/// Exit code of a worker whose input panicked.
pub const EXIT_PANIC: i32 = 5;

/// The allocator every fuzz worker runs on: the system allocator, counting live bytes.
pub struct CountingAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// `usize::MAX` until [`set_memory_cap`]: the seeds and the harness are not capped.
static CAP: AtomicUsize = AtomicUsize::new(usize::MAX);

impl CountingAllocator {
    /// Counts `size` more bytes, or reports and exits if that would pass the cap.
    fn claim(size: usize) {
        let live = LIVE.fetch_add(size, Ordering::Relaxed).saturating_add(size);
        if live > CAP.load(Ordering::Relaxed) {
            over_cap(size, live);
        }
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to `System` unchanged; only a counter is kept beside it.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::claim(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::claim(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            Self::claim(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Caps live heap memory from now on; an allocation that would pass it ends the process.
pub fn set_memory_cap(bytes: usize) {
    CAP.store(bytes, Ordering::Relaxed);
}

/// The most heap memory live at once so far, in bytes.
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Heap memory live now, in bytes.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Reports without allocating, then exits.
#[cold]
fn over_cap(size: usize, live: usize) -> ! {
    let mut line = StackLine::default();
    line.push(b"FAIL memory: an allocation of ");
    line.number(size as u64);
    line.push(b" bytes would bring live heap memory to ");
    line.number(live as u64);
    line.push(b" bytes, over the cap of ");
    line.number(CAP.load(Ordering::Relaxed) as u64);
    line.push(b" bytes\n");
    line.write_stderr();
    // SAFETY: `_exit` ends the process without running destructors or allocating.
    unsafe { libc::_exit(EXIT_MEMORY) }
}

/// A line built on the stack, for the allocator's report.
struct StackLine {
    bytes: [u8; 256],
    len: usize,
}

impl Default for StackLine {
    fn default() -> Self {
        StackLine {
            bytes: [0; 256],
            len: 0,
        }
    }
}

impl StackLine {
    fn push(&mut self, text: &[u8]) {
        let n = text.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&text[..n]);
        self.len += n;
    }

    fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn write_stderr(&self) {
        // SAFETY: the pointer and length describe initialised bytes of `self`.
        unsafe { libc::write(2, self.bytes.as_ptr().cast(), self.len) };
    }
}

/// Reports a panic as `FAIL panic: ...` and exits, instead of unwinding into the next input.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        // A panic inside the standard library (an overflow in `product()`, an index in a
        // slice method) names the library's line: add the first frame in the workspace.
        let caller = if place.contains("/rustc/") {
            workspace_frame()
                .map(|f| format!(", called from {f}"))
                .unwrap_or_default()
        } else {
            String::new()
        };
        eprintln!("FAIL panic: {message}{place}{caller}");
        std::process::exit(EXIT_PANIC);
    }));
}

/// The innermost frame of the backtrace that is in this workspace's crates, as `file:line`.
fn workspace_frame() -> Option<String> {
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    trace
        .lines()
        .filter_map(|line| line.trim().strip_prefix("at "))
        .find(|place| place.contains("/crates/") && !place.contains("/dlbench-fuzz/src/guard.rs"))
        .map(str::to_string)
}

/// Milliseconds since the watchdog's epoch at which the current input started; 0 when none
/// is running.
static STARTED_MS: AtomicU64 = AtomicU64::new(0);

/// Watches the inputs a worker runs: one that runs longer than `limit` is reported as a hang
/// and the process exits.
pub struct Watchdog {
    epoch: Instant,
}

impl Watchdog {
    /// Starts the watchdog thread.
    pub fn start(limit: Duration) -> Watchdog {
        let epoch = Instant::now();
        std::thread::spawn(move || loop {
            std::thread::sleep(
                (limit / 20).clamp(Duration::from_millis(5), Duration::from_millis(100)),
            );
            let started = STARTED_MS.load(Ordering::Relaxed);
            let now = epoch.elapsed().as_millis() as u64 + 1;
            if started != 0 && now.saturating_sub(started) > limit.as_millis() as u64 {
                eprintln!("FAIL hang: the input ran for over {} ms", limit.as_millis());
                // SAFETY: ends the process at once; the input is still running on another thread.
                unsafe { libc::_exit(EXIT_HANG) }
            }
        });
        Watchdog { epoch }
    }

    /// Runs `f` as one input: the watchdog times it.
    pub fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        // +1 so that an input started at the epoch is not read as "none running".
        STARTED_MS.store(
            self.epoch.elapsed().as_millis() as u64 + 1,
            Ordering::Relaxed,
        );
        let out = f();
        STARTED_MS.store(0, Ordering::Relaxed);
        out
    }
}
