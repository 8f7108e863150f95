//! Workers die with their parent. A `dlbench run` killed with `kill -9` cannot clean up, and a
//! worker left behind would go on burning a core until its own end (for ever in a hang), so
//! two mechanisms tie each worker to the orchestrator that started it:
//!
//! - the kernel's parent-death signal (`prctl(PR_SET_PDEATHSIG, SIGKILL)`), set in the child
//!   between fork and exec, then a check that the parent had not already gone before it was
//!   set. Linux sends it when the *thread* that forked exits; [`super::run_worker`] waits for
//!   its worker on the thread that started it, so that thread outlives the worker.
//! - a watchdog thread in the worker ([`watch_parent`]) that ends the process when its parent
//!   process changes (it was re-parented to init or a subreaper): a second line where the
//!   signal is not delivered (another kernel, a ptrace'd parent).

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::thread;
use std::time::Duration;

/// How often the worker's watchdog looks at its parent.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);

/// The exit code of a worker that ended because its parent died.
pub const ORPHANED_EXIT: i32 = 70;

/// Makes the process `command` starts receive SIGKILL when this process dies.
pub(super) fn bind_to_parent(command: &mut Command) {
    // SAFETY: getpid is async-signal-safe; read here, before the fork.
    let parent = unsafe { libc::getpid() };
    // SAFETY: between fork and exec only async-signal-safe calls are allowed: prctl, getppid
    // and _exit are, and the closure allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between the fork and the prctl: then no signal comes.
            if libc::getppid() != parent {
                libc::_exit(ORPHANED_EXIT);
            }
            Ok(())
        });
    }
}

/// In a worker: ends this process (exit code [`ORPHANED_EXIT`]) as soon as its parent process
/// is no longer the one that started it.
pub fn watch_parent() {
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    let watchdog = thread::Builder::new()
        .name("dlbench-worker-watchdog".into())
        .spawn(move || loop {
            thread::sleep(WATCH_INTERVAL);
            // SAFETY: as above.
            if unsafe { libc::getppid() } != parent {
                eprintln!("dlbench worker: the orchestrator (pid {parent}) is gone; stopping");
                // SAFETY: _exit ends the process at once, without running destructors or
                // atexit handlers that a framework's threads may be blocking.
                unsafe { libc::_exit(ORPHANED_EXIT) };
            }
        });
    if let Err(e) = watchdog {
        // The parent-death signal still covers the worker.
        eprintln!("dlbench worker: could not start the parent watchdog: {e}");
    }
}
