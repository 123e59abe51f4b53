//! The reaper: a small process that the creator of a named object starts, that outlives
//! it, and that unlinks the name once every holder is gone — also when the last holders
//! were killed with SIGKILL and could not do it themselves.
//!
//! It is a double fork (so nobody has to wait for it) into its own session (so a terminal's
//! Ctrl-C does not reach it). It closes every descriptor it inherited, opens the object by
//! path, checks it is the same inode the creator made, and waits for the exclusive `flock`:
//! the kernel grants it when the last shared lock is gone. It then unlinks the name if the
//! name still refers to that inode, and exits. Views of named objects are `MADV_DONTFORK`,
//! so the fork copies no mapping that would keep a lock alive.
//!
//! Between `fork` and `_exit` the children call only async-signal-safe system calls on
//! data prepared before the fork: the parent may have other threads holding locks.

use std::ffi::CStr;

use crate::sys::pal::cvt_r;

/// Starts the reaper for the object at `path` (`/dev/shm/NAME`) with the given identity.
/// If it cannot be started, the last orderly holder (or `named::list`) still removes the
/// name; only holders that all die abruptly would then leave it behind.
pub(super) fn spawn(path: &CStr, dev: u64, ino: u64) {
    let max_fd = max_fd();
    // No named view is half made (mapped but not yet MADV_DONTFORK) while we fork.
    let _no_maps = crate::sys::pal::forking_now();
    // SAFETY: fork duplicates this process; the child runs only `intermediate`, which makes
    // async-signal-safe calls on `path`, `dev`, `ino` and `max_fd` (prepared before the
    // fork) and ends in `_exit`.
    let pid = unsafe { libc::fork() };
    match pid {
        // SAFETY: in the child, as said above.
        0 => unsafe { intermediate(path, dev, ino, max_fd) },
        -1 => {}
        child => {
            let mut status = 0;
            // SAFETY: waits for our own child, which exits at once.
            let _ = cvt_r(|| unsafe { libc::waitpid(child, &mut status, 0) });
        }
    }
}

/// The highest descriptor number to close when `close_range` is missing (Linux < 5.9).
fn max_fd() -> libc::c_int {
    // SAFETY: `rlimit` is plain data that getrlimit fills.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid resource and a pointer to a rlimit buffer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(65_536) as libc::c_int
    } else {
        1024
    }
}

/// The first child: leaves the session, forks the reaper, and exits.
///
/// # Safety
/// Only in a freshly forked child.
unsafe fn intermediate(path: &CStr, dev: u64, ino: u64, max_fd: libc::c_int) -> ! {
    // SAFETY: setsid, the raw fork system call (no pthread_atfork handlers, which need
    // not be async-signal-safe) and _exit are async-signal-safe.
    unsafe {
        libc::setsid();
        if libc::syscall(libc::SYS_fork) == 0 {
            reap(path, dev, ino, max_fd);
        }
        libc::_exit(0)
    }
}

/// The reaper itself.
///
/// # Safety
/// Only in a freshly forked child.
unsafe fn reap(path: &CStr, dev: u64, ino: u64, max_fd: libc::c_int) -> ! {
    // SAFETY: every call is an async-signal-safe system call on data prepared before the
    // fork; the stat buffers are plain data on this stack.
    unsafe {
        // Inherited descriptors would keep the parent's pipes, sockets and locks alive.
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
            for fd in 0..max_fd {
                libc::close(fd);
            }
        }
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC);
        if fd < 0 {
            libc::_exit(0); // already gone
        }
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 || st.st_dev != dev || st.st_ino != ino {
            libc::_exit(0); // the name already names another object
        }
        // (cvt_r reads errno into an `io::Error` without allocating: async-signal-safe.)
        if cvt_r(|| libc::flock(fd, libc::LOCK_EX)).is_err() {
            libc::_exit(1);
        }
        let mut now: libc::stat = std::mem::zeroed();
        if libc::lstat(path.as_ptr(), &mut now) == 0 && now.st_dev == dev && now.st_ino == ino {
            libc::unlink(path.as_ptr());
        }
        libc::_exit(0)
    }
}
