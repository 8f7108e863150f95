//! The kernels' own thread pool: persistent workers that run the tasks of one parallel loop at
//! a time, with the calling thread working alongside them.
//!
//! Spawning threads for every product (what `std::thread::scope` does) costs tens of
//! microseconds per call, as much as a small product itself; the pool's workers are started
//! once and then only woken. One pool exists per thread count ([`pool`]), created on first use,
//! which a session does at `prepare` so that no training step starts a thread.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a thread spins for the next event (a job for a worker, the workers' end for the
/// caller) before it sleeps. A training step posts a parallel loop every few hundred
/// microseconds; waking a sleeping thread takes tens of microseconds on this machine, as long
/// as a small product, so threads stay awake across the gaps between products.
const SPIN: Duration = Duration::from_micros(100);

/// `threads` threads in all: the caller of [`Pool::run`] and `threads - 1` workers.
pub struct Pool {
    threads: usize,
    shared: Arc<Shared>,
    /// One parallel loop at a time; callers on other threads wait here.
    running: Mutex<()>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads)
            .finish()
    }
}

struct Shared {
    /// Bumped for every job (under `sleep`); a worker runs each generation exactly once.
    generation: AtomicU64,
    /// The current job, posted before its generation is.
    job: Mutex<Option<Job>>,
    /// Workers that have not yet finished the current job.
    busy: AtomicUsize,
    /// Whether a task panicked on a worker during the current job.
    panicked: AtomicBool,
    /// Guards sleeping, and counts the threads asleep: a sleeper checks its condition under
    /// it, a waker changes the condition under it, so no wake-up is lost; and a waker that
    /// finds no one asleep skips the notification, a system call even with no waiter.
    sleep: Mutex<usize>,
    /// Signals workers that a new generation is posted.
    wake: Condvar,
    /// Signals the caller that the last worker has left the job.
    idle: Condvar,
}

/// A posted loop: `tasks` calls of `task`, indices handed out by `next`. Both pointers refer to
/// the caller's stack frame in [`Pool::run`], which does not return before every worker has
/// left the job (`busy == 0`), so they never dangle while a worker holds them.
#[derive(Clone, Copy)]
struct Job {
    task: *const (dyn Fn(usize) + Sync),
    next: *const AtomicUsize,
    tasks: usize,
}

// SAFETY: the pointees are `Sync` (a `Fn + Sync` closure, an atomic) and outlive every use
// (see `Job`).
unsafe impl Send for Job {}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a thread panicked while holding it; what it guards is left
    // consistent by every path, so carry on.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Spins until `ready()` or [`SPIN`] has passed; whether it became ready.
fn spin_until(ready: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if started.elapsed() > SPIN {
            return ready();
        }
    }
}

/// Waits on `condvar` until `ready()`, spinning first.
fn wait_until(shared: &Shared, condvar: &Condvar, ready: impl Fn() -> bool) {
    if spin_until(&ready) {
        return;
    }
    let mut asleep = lock(&shared.sleep);
    *asleep += 1;
    while !ready() {
        asleep = condvar.wait(asleep).unwrap_or_else(PoisonError::into_inner);
    }
    *asleep -= 1;
}

impl Pool {
    /// A pool of `threads` threads (at least 1): the caller plus `threads - 1` workers. Each
    /// worker runs `on_start` before it takes work (the kernels size their per-thread buffers
    /// there), and `new` returns once every worker has.
    pub fn new(threads: usize, on_start: fn()) -> Pool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            job: Mutex::new(None),
            busy: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleep: Mutex::new(0),
            wake: Condvar::new(),
            idle: Condvar::new(),
        });
        // Returns once every worker has started and sized its buffers, so that none of that
        // (thread start-up allocates too) happens during a step timed later.
        let started = Arc::new(Barrier::new(threads));
        for k in 1..threads {
            let (shared, started) = (Arc::clone(&shared), Arc::clone(&started));
            thread::Builder::new()
                .name(format!("dlbench-native-{k}"))
                .spawn(move || {
                    on_start();
                    started.wait();
                    work(&shared)
                })
                .expect("the OS refused to start a kernel thread");
        }
        started.wait();
        Pool {
            threads,
            shared,
            running: Mutex::new(()),
        }
    }

    /// Threads that run tasks, the caller's included (at least 1).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Calls `task(i)` for every `i` in `0..tasks`, spread over the pool's threads (the
    /// caller's included), and returns when all are done. A panicking task is re-raised here
    /// after the other tasks have finished.
    pub fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        if self.threads == 1 || tasks <= 1 {
            (0..tasks).for_each(task);
            return;
        }
        let _one_at_a_time = lock(&self.running);
        let shared = &*self.shared;
        let next = AtomicUsize::new(0);
        // SAFETY (of the lifetime erasure): see `Job`; this function waits for `busy == 0`
        // below on every path, a panic in `task` included (it is caught first).
        let erased: *const (dyn Fn(usize) + Sync) = unsafe {
            std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(task)
        };
        *lock(&shared.job) = Some(Job {
            task: erased,
            next: &next,
            tasks,
        });
        shared.panicked.store(false, Ordering::Relaxed);
        shared.busy.store(self.threads - 1, Ordering::Release);
        let asleep = {
            let asleep = lock(&shared.sleep);
            shared.generation.fetch_add(1, Ordering::AcqRel);
            *asleep
        };
        if asleep > 0 {
            shared.wake.notify_all();
        }
        let mine = panic::catch_unwind(AssertUnwindSafe(|| claim(&next, tasks, task)));
        wait_until(shared, &shared.idle, || {
            shared.busy.load(Ordering::Acquire) == 0
        });
        *lock(&shared.job) = None;
        if let Err(payload) = mine {
            panic::resume_unwind(payload);
        }
        assert!(
            !shared.panicked.load(Ordering::Relaxed),
            "a kernel task panicked on a pool thread"
        );
    }
}

/// Runs tasks until none is left.
fn claim(next: &AtomicUsize, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= tasks {
            return;
        }
        task(i);
    }
}

/// A worker's life: wait for each new generation, take part in its job, report done.
fn work(shared: &Shared) {
    let mut seen = 0;
    loop {
        wait_until(shared, &shared.wake, || {
            shared.generation.load(Ordering::Acquire) != seen
        });
        seen = shared.generation.load(Ordering::Acquire);
        let job = lock(&shared.job).expect("a new generation always posts a job");
        // SAFETY: the job's pointers stay valid until this worker decrements `busy` below
        // (see `Job`).
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
            claim(&*job.next, job.tasks, &*job.task)
        }));
        if outcome.is_err() {
            shared.panicked.store(true, Ordering::Relaxed);
        }
        if shared.busy.fetch_sub(1, Ordering::AcqRel) == 1 && *lock(&shared.sleep) > 0 {
            shared.idle.notify_one();
        }
    }
}

/// The process's pool of `threads` threads, created on first use (its workers then run
/// `on_start`) and kept for the life of the process (a worker process runs one thread count; a
/// few idle threads per distinct count otherwise). Every caller passes the same `on_start`:
/// the pool is found by its thread count alone.
pub fn pool(threads: usize, on_start: fn()) -> &'static Pool {
    static POOLS: Mutex<Vec<&'static Pool>> = Mutex::new(Vec::new());
    let threads = threads.max(1);
    let mut pools = lock(&POOLS);
    if let Some(found) = pools.iter().find(|p| p.threads == threads) {
        return found;
    }
    let created: &'static Pool = Box::leak(Box::new(Pool::new(threads, on_start)));
    pools.push(created);
    created
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{pool, Pool};

    #[test]
    fn every_task_runs_exactly_once() {
        for threads in [1, 2, 3] {
            let pool = Pool::new(threads, || {});
            for tasks in [0, 1, 2, 7, 100] {
                let counts: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                pool.run(tasks, &|i| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn tasks_really_run_on_other_threads() {
        let pool = Pool::new(2, || {});
        let caller = std::thread::current().id();
        let elsewhere = AtomicUsize::new(0);
        // Each task waits a little so that the worker, once woken, gets some of them.
        pool.run(64, &|_| {
            std::thread::sleep(std::time::Duration::from_millis(1));
            if std::thread::current().id() != caller {
                elsewhere.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert!(elsewhere.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn a_panicking_task_is_reraised_and_the_pool_still_works() {
        let pool = Pool::new(2, || {});
        let result = std::panic::catch_unwind(|| {
            pool.run(16, &|i| {
                std::thread::sleep(std::time::Duration::from_micros(200));
                assert!(i != 5, "task 5 fails");
            })
        });
        assert!(result.is_err());
        let sum = AtomicUsize::new(0);
        pool.run(10, &|i| {
            sum.fetch_add(i, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 45);
    }

    #[test]
    fn one_pool_per_thread_count() {
        assert!(std::ptr::eq(pool(2, || {}), pool(2, || {})));
        assert_eq!(pool(3, || {}).threads(), 3);
        assert_eq!(pool(0, || {}).threads(), 1);
    }
}
