//! This process's holds of scoped objects, and what `fork` does to them.
//!
//! A hold is a descriptor of the object locked shared. `fork` copies descriptors but not
//! open file descriptions: parent and child would share one description and so one lock,
//! and the parent letting go (an upgrade to exclusive, which drops the shared lock when it
//! fails, and succeeds when nobody *else* holds a lock) could remove the name while the
//! child still uses the object. So, registered with `pthread_atfork`, each inherited hold
//! gets a description of its own in the child: *before* the fork (`prepare`) the parent
//! opens every held object again through `/proc/self/fd/N` and takes the shared lock on the
//! new description; the child puts that in place of descriptor N (`dup3`), and the parent
//! closes its copy. The lock exists before the parent resumes, so the parent letting go at
//! once cannot race the child. The child is then a holder in its own right, like any other
//! process. If that fails (no descriptors left, an exclusive lock held by someone for
//! long), the child's copy of the hold is marked inert: it never touches the lock the
//! parent holds.
//!
//! The registry is guarded by a `pthread_mutex_t`, locked across the fork by the
//! `prepare` handler, so the child finds it consistent; the child's handler makes only
//! async-signal-safe system calls on data prepared before the fork.

use std::cell::UnsafeCell;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// One hold: its descriptor, the path to reopen it by, its name, and its inert flag.
struct Entry {
    fd: RawFd,
    reopen: CString,
    name: String,
    inert: Arc<AtomicBool>,
    /// The description made for the child by `prepare`, or -1.
    spare: AtomicI32,
}

struct Registry {
    lock: UnsafeCell<libc::pthread_mutex_t>,
    entries: UnsafeCell<Vec<Entry>>,
}

// SAFETY: `entries` is only touched with `lock` held (see `with` and the fork handlers).
unsafe impl Sync for Registry {}

static REGISTRY: Registry = Registry {
    lock: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    entries: UnsafeCell::new(Vec::new()),
};

fn with<R>(f: impl FnOnce(&mut Vec<Entry>) -> R) -> R {
    // SAFETY: a static, initialised mutex; the entries are touched only while it is held.
    unsafe {
        libc::pthread_mutex_lock(REGISTRY.lock.get());
        let result = f(&mut *REGISTRY.entries.get());
        libc::pthread_mutex_unlock(REGISTRY.lock.get());
        result
    }
}

/// Records a hold of the object `name` on descriptor `fd`; returns its inert flag.
pub(super) fn register(fd: RawFd, name: &str) -> Arc<AtomicBool> {
    crate::sys::fork::register();
    let inert = Arc::new(AtomicBool::new(false));
    let reopen = CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL");
    let entry = Entry {
        fd,
        reopen,
        name: name.to_owned(),
        inert: Arc::clone(&inert),
        spare: AtomicI32::new(-1),
    };
    with(|entries| entries.push(entry));
    inert
}

/// Registers the fork handlers: only from `sys/fork.rs`'s `register`, which does it once,
/// in its order.
pub(crate) fn register_fork_handlers() {
    // SAFETY: registers handlers that lock/unlock the registry's mutex around fork and, in
    // the child, make only async-signal-safe calls.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

/// Forgets the hold on `fd` (before the descriptor is closed).
pub(super) fn unregister(fd: RawFd) {
    with(|entries| entries.retain(|e| e.fd != fd));
}

/// The holds this process has now, as (name, descriptor).
pub(super) fn all() -> Vec<(String, RawFd)> {
    with(|entries| {
        entries
            .iter()
            .filter(|e| !e.inert.load(Ordering::Relaxed))
            .map(|e| (e.name.clone(), e.fd))
            .collect()
    })
}

extern "C" fn prepare() {
    // SAFETY: the registry's mutex, held across fork so that the child sees consistent
    // entries; then, for each entry, a new description of its object, locked shared
    // (open, flock, nanosleep and close on our own descriptors).
    unsafe {
        libc::pthread_mutex_lock(REGISTRY.lock.get());
        for entry in (*REGISTRY.entries.get()).iter() {
            entry.spare.store(locked_description(entry), Ordering::Relaxed);
        }
    }
}

extern "C" fn parent() {
    // SAFETY: closes the parent's copies of the spare descriptors (the child keeps its
    // own, and with them the locks), then unlocks what `prepare` locked.
    unsafe {
        for entry in (*REGISTRY.entries.get()).iter() {
            let spare = entry.spare.swap(-1, Ordering::Relaxed);
            if spare >= 0 {
                libc::close(spare);
            }
        }
        libc::pthread_mutex_unlock(REGISTRY.lock.get());
    }
}

extern "C" fn child() {
    // SAFETY: the child is single-threaded; `prepare` holds the registry's mutex, so the
    // entries are consistent and ours to read; dup3 and close are async-signal-safe and
    // touch only this process's descriptors; the mutex is unlocked last.
    unsafe {
        for entry in (*REGISTRY.entries.get()).iter() {
            let spare = entry.spare.swap(-1, Ordering::Relaxed);
            let placed = spare >= 0 && libc::dup3(spare, entry.fd, libc::O_CLOEXEC) == entry.fd;
            if spare >= 0 {
                libc::close(spare);
            }
            if !placed {
                entry.inert.store(true, Ordering::Relaxed);
            }
        }
        libc::pthread_mutex_unlock(REGISTRY.lock.get());
    }
}

/// A new description of the entry's object, locked shared; -1 if it cannot be had.
///
/// # Safety
/// Called from `prepare` with the registry locked.
unsafe fn locked_description(entry: &Entry) -> RawFd {
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: a NUL-terminated path; open, flock, nanosleep and close on our descriptors.
    unsafe {
        let own = libc::open(entry.reopen.as_ptr(), flags);
        if own < 0 {
            return -1;
        }
        let pause = libc::timespec { tv_sec: 0, tv_nsec: 1_000_000 };
        // At most ~20 ms: an exclusive lock is held only for an instant by mmf, and a hostile
        // holder must not stall every fork (the child's hold is then inert).
        for _ in 0..20 {
            if libc::flock(own, libc::LOCK_SH | libc::LOCK_NB) == 0 {
                return own;
            }
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
        libc::close(own);
        -1
    }
}
