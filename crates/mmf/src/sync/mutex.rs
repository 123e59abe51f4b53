//! [`Mutex`]: a robust lock across processes, its guard and its errors.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::area::SyncArea;
use super::join::{PLAIN, TOKEN};
use super::layout::{INCONSISTENT, Kind, Object};
use super::protocol::{self, Host, LockFailure, Locked};
use crate::error::{Error, Result};
use crate::primitive::sync::atomic::Ordering::Acquire;

/// A mutex that lives in a [`SyncArea`] and excludes threads of every process that opened
/// the area: `CreateMutex` / `pthread_mutex_t` with `PTHREAD_PROCESS_SHARED` and
/// `PTHREAD_MUTEX_ROBUST`, in mmf's own format.
///
/// It is robust: if its owner's process dies while holding it (killed, crashed), the next
/// locker gets [`LockError::OwnerDied`] with the guard — the lock is its, the data it
/// protects may be half-changed. It repairs the data and calls
/// [`MutexGuard::mark_consistent`]; until someone does, every locker gets `OwnerDied`. The
/// lock is never lost for good (no `ENOTRECOVERABLE`) and a waiter never hangs on a dead
/// owner. A guard dropped while its thread panics marks the data inconsistent too, as
/// `std`'s poisoning does.
///
/// The owner is a process (and, for relock detection, one of its threads): a thread that
/// locks a mutex its own thread holds gets [`LockError::WouldDeadlock`].
///
/// ```
/// use std::time::Duration;
///
/// use mmf::Mapping;
/// use mmf::sync::{LockError, SyncArea, SyncAreaOptions};
///
/// let mapping = Mapping::anonymous(4096)?;
/// let view = mapping.view_mut(..)?;
/// let area = SyncArea::init(&view, 0, &SyncAreaOptions::new())?;
/// let mutex = area.mutex(0)?;
/// match mutex.lock_timeout(Duration::from_millis(50)) {
///     Ok(guard) => drop(guard),
///     Err(LockError::OwnerDied(guard)) => {
///         // repair what the dead owner left half-done, then:
///         guard.mark_consistent();
///     }
///     Err(LockError::Timeout) => { /* busy */ }
///     Err(e) => return Err(std::io::Error::from(e).into()),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Platform-specific behaviour
///
/// Linux: waiters sleep on a shared futex and look at the owner's liveness at least every
/// 50 ms (sleeping in slices of 1 ms doubling to 50 ms), so a dead owner is found within
/// 100 ms without spinning. An unlock is a plain store where the kernel offers
/// `membarrier(2)` (the waiter about to sleep calls it instead: a lock + unlock costs about
/// one compare-and-swap), a compare-and-swap otherwise ([`SyncArea::plain_unlock`]).
/// Windows: waiters sleep on a named semaphore and on the owner's process handle, so they
/// learn of its death at once; an unlock is a compare-and-swap.
///
/// # References
/// [`CreateMutexW`](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-createmutexw),
/// [`pthread_mutexattr_setrobust(3)`](https://man7.org/linux/man-pages/man3/pthread_mutexattr_setrobust.3.html),
/// [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html),
/// [`membarrier(2)`](https://man7.org/linux/man-pages/man2/membarrier.2.html)
#[doc(alias = "CreateMutex")]
#[doc(alias = "CreateMutexW")]
#[doc(alias = "pthread_mutex_t")]
#[doc(alias = "PTHREAD_MUTEX_ROBUST")]
#[derive(Clone, Copy)]
pub struct Mutex<'a> {
    area: &'a SyncArea<'a>,
    object: &'a Object,
    index: u32,
}

impl fmt::Debug for Mutex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("index", &self.index)
            .field("owner", &self.owner_slot())
            .field("inconsistent", &self.is_inconsistent())
            .finish()
    }
}

impl SyncArea<'_> {
    /// The mutex at object `index` (0-based), making the object a mutex if it is unused.
    ///
    /// # Errors
    /// [`Error::SyncArea`] if `index` is past the area's objects or the object is an event
    /// or semaphore.
    #[doc(alias = "OpenMutex")]
    pub fn mutex(&self, index: u32) -> Result<Mutex<'_>> {
        let (object, _) = self.object(index, Kind::Mutex, 0)?;
        Ok(Mutex { area: self, object, index })
    }
}

impl<'a> Mutex<'a> {
    /// The mutex of an object found before (the named forms resolve theirs once).
    pub(super) fn from_parts(area: &'a SyncArea<'a>, object: &'a Object, index: u32) -> Self {
        Mutex { area, object, index }
    }

    /// The object's words.
    pub(super) fn object(&self) -> &'a Object {
        self.object
    }

    /// Locks, waiting as long as it takes (`WaitForSingleObject(m, INFINITE)`).
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (locked, data to repair), [`LockError::WouldDeadlock`]
    /// (this thread holds it), [`LockError::Os`] (joining the area or sleeping failed:
    /// the participant table is full, or the area is corrupted).
    #[doc(alias = "WaitForSingleObject")]
    #[doc(alias = "pthread_mutex_lock")]
    #[inline]
    pub fn lock(&self) -> Result<MutexGuard<'a>, LockError<'a>> {
        self.lock_until(None)
    }

    /// Locks, waiting at most `timeout` (`WaitForSingleObject(m, ms)`,
    /// `pthread_mutex_timedlock`, on the monotonic clock).
    ///
    /// # Errors
    /// [`LockError::Timeout`] if it could not be taken in time; the rest as
    /// [`lock`](Self::lock).
    #[doc(alias = "pthread_mutex_timedlock")]
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'a>, LockError<'a>> {
        self.lock_until(Instant::now().checked_add(timeout))
    }

    /// Locks if nobody else holds it now, without waiting (`pthread_mutex_trylock`). An
    /// owner found dead is taken over ([`LockError::OwnerDied`]).
    ///
    /// # Errors
    /// [`LockError::WouldBlock`] if another live owner holds it; the rest as
    /// [`lock`](Self::lock).
    #[doc(alias = "pthread_mutex_trylock")]
    pub fn try_lock(&self) -> Result<MutexGuard<'a>, LockError<'a>> {
        // The token the lock word will hold and how this process unlocks (joins first;
        // stable while this process's membership lasts), for the guard to unlock only its
        // own lock, its own way.
        let me = self.area.me().map_err(LockError::Os)?;
        match protocol::mutex_try_lock_as(self.object, self.area, me & TOKEN) {
            Ok(Some(how)) => self.guard(how, me),
            Ok(None) => Err(LockError::WouldBlock),
            Err(e) => Err(e.into()),
        }
    }

    #[inline]
    fn lock_until(&self, deadline: Option<Instant>) -> Result<MutexGuard<'a>, LockError<'a>> {
        let me = self.area.me().map_err(LockError::Os)?;
        match protocol::mutex_lock_as(self.object, self.index, self.area, me & TOKEN, deadline) {
            Ok(how) => self.guard(how, me),
            Err(e) => Err(e.into()),
        }
    }

    #[inline]
    fn guard(&self, how: Locked, me: u32) -> Result<MutexGuard<'a>, LockError<'a>> {
        let guard = MutexGuard {
            mutex: *self,
            me,
            tag: protocol::owner_tag(me & TOKEN, self.area.thread()),
            fork_generation: crate::sys::sync::fork_generation(),
            _not_send: PhantomData,
        };
        match how {
            Locked::Clean => Ok(guard),
            Locked::OwnerDied => Err(LockError::OwnerDied(guard)),
        }
    }

    /// Whether the data is marked inconsistent (an owner died or panicked and nobody has
    /// called [`MutexGuard::mark_consistent`] since).
    pub fn is_inconsistent(&self) -> bool {
        self.object.flags.load(Acquire) & INCONSISTENT != 0
    }

    /// The participant slot of the process that holds the lock now, if any (a snapshot).
    pub fn owner_slot(&self) -> Option<u32> {
        match self.object.state.load(Acquire) {
            0 => None,
            token => Some(super::layout::untoken(token).0),
        }
    }

    /// The object's index in its area.
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// Proof of holding a [`Mutex`]; unlocks when dropped (`ReleaseMutex`,
/// `pthread_mutex_unlock`). Not `Send`: the thread that locked unlocks. A `fork` child's
/// copy of a guard its parent held unlocks nothing when dropped (the lock stays the
/// parent's), and a guard whose lock was taken over (its process looked dead) does not
/// unlock the new owner.
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
#[doc(alias = "ReleaseMutex")]
pub struct MutexGuard<'a> {
    mutex: Mutex<'a>,
    /// The owner token the lock word held when this guard took it, with this process's
    /// unlock mode (`join::PLAIN`).
    me: u32,
    /// The owner tag this thread wrote (`protocol::owner_tag`): gone if the lock was taken
    /// over.
    tag: u32,
    /// The fork generation it was taken in: a `fork` child's copy of the guard is not
    /// the child's lock, and its drop must not release the parent's.
    fork_generation: u64,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a guard only reads its mutex's atomics and area; sharing `&MutexGuard` between
// threads lets them call `mark_consistent`, an atomic operation.
unsafe impl Sync for MutexGuard<'_> {}

impl MutexGuard<'_> {
    /// Marks the protected data consistent again after an [`LockError::OwnerDied`]: the
    /// repair is done (`pthread_mutex_consistent`). Without it, the next locker gets
    /// `OwnerDied` too.
    #[doc(alias = "pthread_mutex_consistent")]
    pub fn mark_consistent(&self) {
        protocol::mutex_mark_consistent(self.mutex.object);
    }

    /// The mutex this guard holds.
    pub fn mutex(&self) -> &Mutex<'_> {
        &self.mutex
    }
}

impl fmt::Debug for MutexGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard").field("index", &self.mutex.index).finish()
    }
}

impl Drop for MutexGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.fork_generation != crate::sys::sync::fork_generation() {
            return; // a fork child's copy of its parent's guard: the lock is the parent's
        }
        let poison = std::thread::panicking();
        // A failed wake-up cannot be reported from a destructor; the lock word is free
        // already, and sleepers look again within their time slice. A lock taken over
        // from this owner (found dead) is not released: `mutex_unlock` compares tokens.
        let (m, token, plain) = (&self.mutex, self.me & TOKEN, self.me & PLAIN != 0);
        let tag = Some(self.tag);
        let _ = protocol::mutex_unlock_as(m.object, m.index, m.area, token, tag, plain, poison);
    }
}

/// Why [`Mutex::lock`] did not give a plain guard.
#[must_use]
pub enum LockError<'a> {
    /// The lock is yours, but its previous owner died holding it (or a guard was dropped
    /// in a panic): repair the data, then [`MutexGuard::mark_consistent`]
    /// (`WAIT_ABANDONED`, `EOWNERDEAD`).
    #[doc(alias = "WAIT_ABANDONED")]
    #[doc(alias = "EOWNERDEAD")]
    OwnerDied(MutexGuard<'a>),
    /// Not taken before the timeout (`WAIT_TIMEOUT`, `ETIMEDOUT`).
    Timeout,
    /// [`Mutex::try_lock`]: a live owner holds it (`EBUSY`).
    WouldBlock,
    /// This thread holds the lock already (`EDEADLK`).
    WouldDeadlock,
    /// Joining the area or sleeping failed.
    Os(Error),
}

impl From<LockFailure> for LockError<'_> {
    fn from(f: LockFailure) -> Self {
        match f {
            LockFailure::Timeout => LockError::Timeout,
            LockFailure::WouldDeadlock => LockError::WouldDeadlock,
            LockFailure::Error(e) => LockError::Os(e),
        }
    }
}

impl fmt::Display for LockError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str(
                "the mutex's previous owner died holding it: the lock is yours; repair the \
                 data and call mark_consistent()",
            ),
            LockError::Timeout => f.write_str("the mutex was not free before the timeout"),
            LockError::WouldBlock => f.write_str("the mutex is held by another live owner"),
            LockError::WouldDeadlock => {
                f.write_str("this thread holds the mutex already: locking again would deadlock")
            }
            LockError::Os(e) => write!(f, "locking failed: {e}"),
        }
    }
}

impl fmt::Debug for LockError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for LockError<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LockError<'_>> for std::io::Error {
    fn from(e: LockError<'_>) -> std::io::Error {
        let kind = match &e {
            LockError::Os(e) => e.kind(),
            LockError::Timeout => std::io::ErrorKind::TimedOut,
            LockError::WouldBlock => std::io::ErrorKind::WouldBlock,
            LockError::WouldDeadlock => std::io::ErrorKind::Deadlock,
            LockError::OwnerDied(_) => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e.to_string())
    }
}
