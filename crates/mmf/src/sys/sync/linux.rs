//! Linux: shared futexes for sleeping, open-file-description locks for liveness, and
//! `membarrier(2)` for the asymmetric mutex unlock.
//!
//! A participant claims its slot by taking an OFD write lock (`F_OFD_SETLK`) on one byte
//! of the mapping's file, far past any data (`2^62 + area offset · 1024 + slot`; fcntl
//! locks may lie beyond the end of a file). The kernel drops the lock however the process
//! ends, so a slot whose byte is unlocked (`F_OFD_GETLK`) belongs to nobody alive. Locks
//! are taken on a description of our own (`/proc/self/fd/N` opened again), which `flock`s
//! (the named layer's holds) never interact with. The lock lives on the open file
//! description, which `fork` would share with a child — a child would keep a dead parent
//! "alive" — so a `pthread_atfork` child handler closes every such descriptor in the child
//! and bumps [`fork_generation`]; the sync layer then makes the child join afresh. The
//! handlers of `fork` itself (`prepare`, `parent`) take a lock that opening and closing
//! such a descriptor hold, so that no `fork` happens between opening a descriptor and
//! registering it (the child would inherit it unregistered and keep the slot lock), nor
//! between unregistering and closing it. A raw `clone(2)` without `CLONE_VM` runs no
//! `pthread_atfork` handlers: it is not supported (`posix_spawn` and fork-then-exec are:
//! the descriptors are close-on-exec).
//!
//! Asymmetric unlocks (see the sync layer's `protocol.rs`): a process registers for
//! `MEMBARRIER_CMD_GLOBAL_EXPEDITED` barriers before it joins an area that uses them
//! ([`barrier_registered`]); a sleeper then calls [`process_barrier`], which runs a full
//! memory barrier on every CPU that runs a thread of a registered process. The
//! registration is inherited by a `fork` child (and dropped by `execve`); the child
//! handler forgets it anyway, so that a child registers again when it joins.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{AreaKey, Liveness, ProcessIdent};
use crate::sys::pal::{cvt, cvt_r};

/// Bumped in every fork child: memberships made under an older generation are the
/// parent's, not this process's.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// The descriptors that hold slot locks, for the fork child handler to close (-1: empty).
static LOCK_FDS: [AtomicI32; 1024] = [const { AtomicI32::new(-1) }; 1024];

/// This process's fork generation: 0, plus one per `fork` since the program was loaded
/// (the handlers are registered then: `sys/fork.rs`).
#[inline]
pub(crate) fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Held while a slot-lock descriptor is opened and registered, or unregistered and
/// closed, and across `fork` (0: free, 1: held). A spin lock: the `fork` handlers can take
/// and give back nothing else, and it is held only for an `open` or a `close`.
static FD_LOCK: AtomicU32 = AtomicU32::new(0);

fn lock_fds() {
    while FD_LOCK.compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
        std::thread::yield_now();
    }
}

fn unlock_fds() {
    FD_LOCK.store(0, Ordering::Release);
}

/// The fork gate: the sync layer's process-wide bookkeeping (the list of joined areas, an
/// area's membership) is changed and read inside it, and `fork` waits until no thread is
/// inside, so a child never inherits those locks held by a thread it does not have (a
/// child forked while another thread joined an area waited for ever at its own first
/// join). Bits 0–30 count the threads inside; [`GATE_SHUT`] is set by the fork
/// (`fork_prepare`) once the count is 0. Threads get in while a fork waits (a thread
/// inside may enter again: no deadlock); a fork waits only for sections that make a few
/// system calls.
static GATE: AtomicU32 = AtomicU32::new(0);
const GATE_SHUT: u32 = 1 << 31;

/// A thread's place inside the fork gate (see [`fork_gate`]).
pub(crate) struct ForkGate(());

/// Enters the fork gate (waits while a `fork` is under way in another thread); leaving is
/// dropping the value.
pub(crate) fn fork_gate() -> ForkGate {
    crate::sys::fork::register();
    loop {
        let s = GATE.load(Ordering::Relaxed);
        if s & GATE_SHUT == 0
            && GATE.compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            return ForkGate(());
        }
        std::thread::yield_now();
    }
}

impl Drop for ForkGate {
    fn drop(&mut self) {
        GATE.fetch_sub(1, Ordering::Release);
    }
}

/// Registers the fork handlers: only from `sys/fork.rs`'s `register`, which does it once,
/// in its order.
pub(crate) fn register_fork_handlers() {
    // SAFETY: registers handlers that only touch atomics, yield, and close(2) (the child's,
    // which must be async-signal-safe).
    unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
}

extern "C" fn fork_prepare() {
    // The gate first: a thread inside it may be waiting for the descriptor lock.
    while GATE.compare_exchange_weak(0, GATE_SHUT, Ordering::Acquire, Ordering::Relaxed).is_err() {
        std::thread::yield_now();
    }
    lock_fds();
}

extern "C" fn fork_parent() {
    unlock_fds();
    GATE.store(0, Ordering::Release);
}

extern "C" fn fork_child() {
    // Only atomics and close(2), which is async-signal-safe: the child of a multithreaded
    // process may call nothing else here.
    for fd in &LOCK_FDS {
        let fd = fd.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: the descriptor was registered by a Membership of the parent, whose
            // copy in this child will never close it (its generation is old).
            unsafe { libc::close(fd) };
        }
    }
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
    BARRIER.store(BARRIER_UNKNOWN, Ordering::Relaxed);
    // The parent held the locks across the fork (`fork_prepare`); the child's copies are
    // free (the threads that were waiting at the gate do not run here).
    unlock_fds();
    GATE.store(0, Ordering::Release);
}

/// The byte whose lock stands for `slot` of the area at `key`.
fn lock_offset(key: AreaKey, slot: u32) -> libc::off_t {
    let area = (key.offset % (1 << 50)) as libc::off_t;
    (1 << 62) + area * 1024 + libc::off_t::from(slot as u16 & 1023)
}

fn flock_at(kind: libc::c_int, start: libc::off_t) -> libc::flock {
    // SAFETY: `flock` is plain data; all-zero is a valid value that the fields below fill.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = start;
    lock.l_len = 1;
    lock
}

/// This process's claim on a participant slot: a description of the mapping's file of its
/// own, holding the slot's lock.
#[derive(Debug)]
pub(crate) struct Membership {
    fd: RawFd,
    /// Where `fd` is registered in `LOCK_FDS`.
    registered: usize,
    generation: u64,
}

impl Membership {
    /// A new description of `probe` (the mapping's file) to hold a slot lock on:
    /// `open("/proc/self/fd/N", O_RDWR | O_CLOEXEC)`.
    pub(crate) fn new(probe: Option<&File>) -> io::Result<Membership> {
        crate::sys::fork::register();
        let probe = probe.ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, "the view has no file behind it")
        })?;
        let path = std::ffi::CString::new(format!("/proc/self/fd/{}", probe.as_raw_fd()))
            .expect("no NUL in a path made of digits");
        // The descriptor is opened and registered under the fork lock: a fork waits until
        // it is registered, so the child handler closes it (a fork in between would leave
        // the child holding the slot lock's description, keeping a dead parent "alive").
        lock_fds();
        let generation = fork_generation();
        let Some(registered) = LOCK_FDS.iter().position(|s| s.load(Ordering::Relaxed) == -1) else {
            unlock_fds();
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "more than 1024 sync areas joined",
            ));
        };
        // SAFETY: a valid NUL-terminated path; the flags are valid.
        let fd = cvt_r(|| unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) });
        #[cfg(test)]
        tests::between_open_and_register(&fd);
        if let Ok(fd) = fd {
            LOCK_FDS[registered].store(fd, Ordering::Relaxed);
        }
        unlock_fds();
        Ok(Membership { fd: fd?, registered, generation })
    }

    /// Takes the lock of `slot` (`F_OFD_SETLK`, `F_WRLCK`): `Ok(false)` if another process
    /// holds it.
    pub(crate) fn try_claim(&mut self, key: AreaKey, slot: u32) -> io::Result<bool> {
        let lock = flock_at(libc::F_WRLCK, lock_offset(key, slot));
        // SAFETY: a descriptor we own and a pointer to a flock value.
        match cvt_r(|| unsafe { libc::fcntl(self.fd, libc::F_OFD_SETLK, &lock) }) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Gives back the lock of `slot` (`F_OFD_SETLK`, `F_UNLCK`) after a claim that lost the
    /// race for the slot's record. An error leaves the byte locked, which only costs the
    /// slot until this membership ends.
    pub(crate) fn release(&mut self, key: AreaKey, slot: u32) {
        let lock = flock_at(libc::F_UNLCK, lock_offset(key, slot));
        // SAFETY: a descriptor we own and a pointer to a flock value.
        let _ = cvt_r(|| unsafe { libc::fcntl(self.fd, libc::F_OFD_SETLK, &lock) });
    }

    /// Whether this membership is this process's (not a copy a fork child inherited).
    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        self.generation == fork_generation()
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if self.is_current() {
            // Unregistered and closed under the fork lock: a fork in between would leave
            // the child an unregistered copy of the description, holding the slot lock.
            lock_fds();
            if LOCK_FDS[self.registered].load(Ordering::Relaxed) == self.fd {
                LOCK_FDS[self.registered].store(-1, Ordering::Relaxed);
                // SAFETY: our descriptor, closed once; closing releases the slot lock.
                unsafe { libc::close(self.fd) };
            }
            unlock_fds();
        }
        // A fork child's copy: the child handler already closed the descriptor.
    }
}

/// [`BARRIER`]: not asked yet (or asked in the parent of this fork child).
const BARRIER_UNKNOWN: u8 = 0;
const BARRIER_REGISTERED: u8 = 1;
const BARRIER_UNAVAILABLE: u8 = 2;

/// Whether this process is registered for `membarrier` global expedited barriers.
static BARRIER: AtomicU8 = AtomicU8::new(BARRIER_UNKNOWN);

fn membarrier(cmd: libc::c_int) -> io::Result<libc::c_long> {
    // SAFETY: membarrier takes no pointers; flags 0 and cpu_id 0 are valid for every
    // command used here.
    cvt(unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_uint, 0 as libc::c_int) })
}

/// Registers this process for the sleepers' barriers of asymmetric areas, once:
/// `membarrier(MEMBARRIER_CMD_QUERY)` must offer `MEMBARRIER_CMD_GLOBAL_EXPEDITED` and its
/// registration (Linux 4.16), then `membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)`.
/// `false` where the kernel lacks it or a seccomp filter refuses it: the process then
/// unlocks with a locked instruction, and formats symmetric areas.
///
/// # References
/// [`membarrier(2)`](https://man7.org/linux/man-pages/man2/membarrier.2.html)
pub(crate) fn barrier_registered() -> bool {
    match BARRIER.load(Ordering::Relaxed) {
        BARRIER_REGISTERED => true,
        BARRIER_UNAVAILABLE => false,
        _ => register_barrier(),
    }
}

#[cold]
fn register_barrier() -> bool {
    let wanted = (libc::MEMBARRIER_CMD_GLOBAL_EXPEDITED
        | libc::MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) as libc::c_long;
    let registered = membarrier(libc::MEMBARRIER_CMD_QUERY)
        .is_ok_and(|offered| offered & wanted == wanted)
        && membarrier(libc::MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED).is_ok();
    let state = if registered { BARRIER_REGISTERED } else { BARRIER_UNAVAILABLE };
    BARRIER.store(state, Ordering::Relaxed);
    registered
}

/// The sleepers' barrier: `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, a full memory
/// barrier on every CPU running a thread of a registered process, before it returns.
/// `false` if the call failed (it does not, once the registration succeeded).
pub(crate) fn process_barrier() -> bool {
    membarrier(libc::MEMBARRIER_CMD_GLOBAL_EXPEDITED).is_ok()
}

/// Whether some process holds the lock of `slot` (`F_OFD_GETLK` on `probe`, any
/// description of the mapping's file). Locks of the description asking do not count, so
/// `probe` must not be a [`Membership`]'s.
pub(crate) fn alive(
    probe: Option<&File>,
    key: AreaKey,
    slot: u32,
    _ident: ProcessIdent,
) -> io::Result<Liveness> {
    let Some(probe) = probe else { return Ok(Liveness::Unknown) };
    let mut lock = flock_at(libc::F_WRLCK, lock_offset(key, slot));
    // SAFETY: a valid descriptor and a pointer to a flock value that F_OFD_GETLK fills.
    cvt_r(|| unsafe { libc::fcntl(probe.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) })?;
    Ok(if lock.l_type == libc::F_UNLCK as libc::c_short { Liveness::Dead } else { Liveness::Alive })
}

/// The file behind a mapping: `[st_dev, st_ino]` (`fstat`), `[0, 0]` without a file or if
/// `fstat` fails.
pub(crate) fn file_identity(probe: Option<&File>) -> [u64; 2] {
    use std::os::unix::fs::MetadataExt;
    probe.and_then(|f| f.metadata().ok()).map_or([0, 0], |m| [m.dev(), m.ino()])
}

/// This process's pid and start time (`/proc/self/stat` field 22, clock ticks since boot).
pub(crate) fn process_ident() -> ProcessIdent {
    let start_time = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // The command name (field 2) may hold spaces; fields after its ')' are plain.
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.split(' ').nth(19)?.parse().ok()
        })
        .unwrap_or(0);
    ProcessIdent { pid: std::process::id(), start_time }
}

/// The OS call named in a failed park's error.
pub(crate) const PARK_CALL: &str = "futex(FUTEX_WAIT_BITSET)";
/// The OS call named in a failed [`Parker::park_for`]'s error.
pub(crate) const PARK_FOR_CALL: &str = "futex(FUTEX_WAIT)";
/// The OS call named in a failed unpark's error.
pub(crate) const UNPARK_CALL: &str = "futex(FUTEX_WAKE)";

/// Sleeping on a shared futex.
#[derive(Debug, Default)]
pub(crate) struct Parker;

impl Parker {
    /// Nothing to look up: futexes are keyed by the word's physical page.
    pub(crate) fn new(_key: AreaKey) -> Parker {
        Parker
    }

    /// Nothing to prepare on Linux.
    #[inline]
    pub(crate) fn prepare(&self, _object: u32) -> io::Result<()> {
        Ok(())
    }

    /// `FUTEX_WAIT_BITSET` on `word` while it holds `expected`, until `deadline` (absolute
    /// `CLOCK_MONOTONIC`). Returns on a wake-up, a changed word, a signal or the deadline.
    /// `word` must point into a shared mapping (an invalid address is an `EFAULT` error).
    /// Always `Ok(false)`: no owner's process is watched here (the Windows parker's
    /// `Ok(true)` says that it ended).
    pub(crate) fn park(
        &self,
        word: *const u32,
        _object: u32,
        expected: u32,
        deadline: Option<Instant>,
        _owner: Option<ProcessIdent>,
    ) -> io::Result<bool> {
        let abs = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                // SAFETY: `timespec` is plain data that clock_gettime fills.
                let mut now: libc::timespec = unsafe { std::mem::zeroed() };
                // SAFETY: a valid clock id and a pointer to a timespec.
                cvt(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) })?;
                let nanos = now.tv_nsec as u64 + u64::from(left.subsec_nanos());
                let secs = (now.tv_sec as u64)
                    .saturating_add(left.as_secs())
                    .saturating_add(nanos / 1_000_000_000);
                let mut ts: libc::timespec = now;
                ts.tv_sec = secs.min(i64::MAX as u64) as libc::time_t;
                ts.tv_nsec = (nanos % 1_000_000_000) as libc::c_long;
                Some(ts)
            }
            None => None,
        };
        let ts_ptr = abs.as_ref().map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
        // SAFETY: FUTEX_WAIT_BITSET only reads the word at `word` (the kernel checks the
        // address: EFAULT if unmapped) and the timespec, which lives on this stack frame.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word,
                libc::FUTEX_WAIT_BITSET,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                libc::FUTEX_BITSET_MATCH_ANY,
            )
        };
        if ret == -1 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ETIMEDOUT) => Ok(false),
                _ => Err(e),
            };
        }
        Ok(false)
    }

    /// `FUTEX_WAIT` on `word` while it holds `expected`, for at most `timeout` (relative:
    /// no clock read, as the kernel takes its own `CLOCK_MONOTONIC` start). Returns on a
    /// wake-up, a changed word, a signal or the timeout; callers re-check. For waits that
    /// sleep in short slices (the channel's), where an absolute deadline would cost two
    /// clock reads per sleep. `word` must point into a shared mapping (an invalid address
    /// is an `EFAULT` error).
    #[inline]
    pub(crate) fn park_for(word: *const u32, expected: u32, timeout: Duration) -> io::Result<()> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: FUTEX_WAIT only reads the word at `word` (the kernel checks the address:
        // EFAULT if unmapped) and the timespec, which lives on this stack frame.
        let ret = unsafe {
            libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAIT, expected, &raw const ts)
        };
        if ret == -1 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ETIMEDOUT) => Ok(()),
                _ => Err(e),
            };
        }
        Ok(())
    }

    /// `FUTEX_WAKE` of up to `n` threads sleeping on `word`, in any process. `Ok(true)` if
    /// it woke nobody (the count of sleepers that made the caller wake may be stale).
    pub(crate) fn unpark(&self, word: *const u32, _object: u32, n: u32) -> io::Result<bool> {
        let n = n.min(i32::MAX as u32) as libc::c_int;
        // SAFETY: FUTEX_WAKE does not access the word's memory beyond looking up its key
        // (EFAULT if unmapped).
        cvt(unsafe { libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAKE, n) })
            .map(|woken| woken == 0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
    use std::time::Duration;

    /// Set by the test below: the next `Membership::new` stops between `open` and
    /// registering the descriptor, long enough for another thread to fork there.
    static STOP: AtomicBool = AtomicBool::new(false);
    /// The descriptor opened there (-1: not yet).
    static OPENED: AtomicI32 = AtomicI32::new(-1);

    pub(super) fn between_open_and_register(fd: &std::io::Result<i32>) {
        if let (true, Ok(fd)) = (STOP.swap(false, Ordering::AcqRel), fd) {
            OPENED.store(*fd, Ordering::Release);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A `fork` while another thread opens a slot-lock descriptor must not leave the child
    /// holding it unregistered: the child would keep the slot lock's description, and with
    /// it the parent's slot "alive" after the parent dies. The fork waits until the
    /// descriptor is registered, and the child handler closes it.
    #[test]
    fn a_fork_while_a_membership_opens_does_not_leak_its_descriptor() {
        let file = tempfile::tempfile().unwrap();
        STOP.store(true, Ordering::Release);
        std::thread::scope(|s| {
            let joining = s.spawn(|| super::Membership::new(Some(&file)).unwrap());
            while OPENED.load(Ordering::Acquire) < 0 {
                std::thread::yield_now();
            }
            let fd = OPENED.load(Ordering::Acquire);
            // SAFETY: the child makes only async-signal-safe calls (fcntl, _exit).
            let child = unsafe { libc::fork() };
            assert!(child >= 0);
            if child == 0 {
                // SAFETY: F_GETFD on a number: EBADF if this process has no such descriptor.
                let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(i32::from(open)) };
            }
            let mut status = 0;
            // SAFETY: our child.
            assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
            assert!(libc::WIFEXITED(status));
            assert_eq!(
                libc::WEXITSTATUS(status),
                0,
                "the fork child kept the slot-lock descriptor opened at the fork"
            );
            drop(joining.join().unwrap());
        });
    }
}
