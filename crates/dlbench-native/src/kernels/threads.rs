//! The kernels' own thread pool: persistent workers that run the tasks of one parallel loop at
//! a time, with the calling thread working alongside them.
//!
//! Spawning threads for every product (what `std::thread::scope` does) costs tens of
//! microseconds per call, as much as a small product itself; the pool's workers are started
//! once and then only woken. One pool exists per thread count ([`pool`]), created on first use,
//! which a session does at `prepare` so that no training step starts a thread.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
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

/// What the threads share. Posting a job and joining it touch only atomics: a lock on the
/// way cost a cache-line transfer each between the two cores, a good part of the few
/// hundred nanoseconds a parallel loop's start and end take.
struct Shared {
    /// Bumped for every job, after the job is posted; a worker runs each generation exactly
    /// once.
    generation: AtomicU64,
    /// The current job, in the caller's frame (see [`Job`]).
    job: AtomicPtr<Job>,
    /// Workers that have not yet finished the current job.
    busy: AtomicUsize,
    /// Whether a task panicked on a worker during the current job.
    panicked: AtomicBool,
    /// Threads asleep, or about to sleep, on `wake` or `idle`. A sleeper counts itself and
    /// then checks its condition; a waker changes the condition and then reads the count
    /// (all sequentially consistent): so either the sleeper sees the change, or the waker sees
    /// the sleeper and notifies it under `sleep`, which the sleeper holds until it waits. A
    /// waker that finds no one asleep skips the notification, a system call even with no
    /// waiter.
    asleep: AtomicUsize,
    /// Held by a sleeper from counting itself until it waits, and by a notifying waker.
    sleep: Mutex<()>,
    /// Signals workers that a new generation is posted.
    wake: Condvar,
    /// Signals the caller that the last worker has left the job.
    idle: Condvar,
}

/// A posted loop: `tasks` calls of `task`, indices handed out by `next`. It lives in the
/// caller's frame in [`Pool::run`] (as does `task`), which does not return before every
/// worker has left the job (`busy == 0`), so it never dangles while a worker reads it.
struct Job {
    task: *const (dyn Fn(usize) + Sync),
    tasks: usize,
    next: AtomicUsize,
}

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

/// Waits on `condvar` until `ready()` (which must read its atomics sequentially consistent;
/// see `Shared::asleep`), spinning first.
fn wait_until(shared: &Shared, condvar: &Condvar, ready: impl Fn() -> bool) {
    if spin_until(&ready) {
        return;
    }
    let mut guard = lock(&shared.sleep);
    shared.asleep.fetch_add(1, Ordering::SeqCst);
    while !ready() {
        guard = condvar.wait(guard).unwrap_or_else(PoisonError::into_inner);
    }
    shared.asleep.fetch_sub(1, Ordering::SeqCst);
}

/// Wakes the threads asleep on `condvar`, if any, once their condition has changed (with a
/// sequentially consistent write; see `Shared::asleep`).
fn notify(shared: &Shared, condvar: &Condvar) {
    if shared.asleep.load(Ordering::SeqCst) > 0 {
        let _guard = lock(&shared.sleep);
        condvar.notify_all();
    }
}

impl Pool {
    /// A pool of `threads` threads (at least 1): the caller plus `threads - 1` workers. Each
    /// worker runs `on_start` before it takes work (the kernels size their per-thread buffers
    /// there), and `new` returns once every worker has.
    pub fn new(threads: usize, on_start: fn()) -> Pool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            busy: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            asleep: AtomicUsize::new(0),
            sleep: Mutex::new(()),
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
        // SAFETY (of the lifetime erasure): see `Job`; this function waits for `busy == 0`
        // below on every path, a panic in `task` included (it is caught first).
        let erased: *const (dyn Fn(usize) + Sync) = unsafe {
            std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(task)
        };
        let job = Job {
            task: erased,
            tasks,
            next: AtomicUsize::new(0),
        };
        shared
            .job
            .store(std::ptr::from_ref(&job).cast_mut(), Ordering::Relaxed);
        shared.panicked.store(false, Ordering::Relaxed);
        shared.busy.store(self.threads - 1, Ordering::Relaxed);
        // Publishes the stores above to the workers that see this generation.
        shared.generation.fetch_add(1, Ordering::SeqCst);
        notify(shared, &shared.wake);
        let mine = panic::catch_unwind(AssertUnwindSafe(|| claim(&job.next, tasks, task)));
        wait_until(shared, &shared.idle, || {
            shared.busy.load(Ordering::SeqCst) == 0
        });
        shared.job.store(std::ptr::null_mut(), Ordering::Relaxed);
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
            shared.generation.load(Ordering::SeqCst) != seen
        });
        seen = shared.generation.load(Ordering::Acquire);
        // Posted before the generation this thread has just read (with acquire ordering).
        let job = shared.job.load(Ordering::Relaxed);
        // SAFETY: a new generation always has its job posted, and the job (with its task)
        // stays valid until this worker decrements `busy` below (see `Job`).
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
            let job = &*job;
            claim(&job.next, job.tasks, &*job.task)
        }));
        if outcome.is_err() {
            shared.panicked.store(true, Ordering::Relaxed);
        }
        if shared.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            notify(shared, &shared.idle);
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
