//! Cross-process synchronization in a shared mapping: a robust [`Mutex`], [`Event`]s
//! (manual and auto reset) and [`Semaphore`]s, with Windows' semantics on Linux and
//! Windows, living in a [`SyncArea`] of any writable shared view.
//!
//! ```
//! use mmf::Mapping;
//! use mmf::sync::{ResetMode, SyncArea, SyncAreaOptions};
//!
//! // Normally a named mapping that other processes open (or see the `named` forms).
//! let mapping = Mapping::anonymous(4096)?;
//! let view = mapping.view_mut(..)?;
//! let area = SyncArea::open_or_init(&view, 0, SyncAreaOptions::new().objects(3))?;
//! let lock = area.mutex(0)?;
//! let data_ready = area.event(1, ResetMode::Auto, false)?;
//! {
//!     let _guard = lock.lock().expect("free");
//!     view.write_at(1024, b"payload")?;
//! }
//! data_ready.set()?;
//! # Ok::<(), mmf::Error>(())
//! ```
//!
//! # Design
//!
//! - Own format and protocol (`#[repr(C)]` atomics, the same bytes on every platform), no
//!   pthread objects (a libc ABI, not a format) and no kernel robust list (glibc owns each
//!   thread's one list).
//! - A participant table gives every process a slot and a generation; a lock word holds
//!   the owner's token (slot and generation), so a reused slot never stands for its dead
//!   predecessor. Liveness: Linux, a lock on one byte per slot of the mapping's file (the
//!   kernel drops it however the process ends; it works across PID namespaces; a `fork`
//!   child does not inherit it); Windows, pid and creation time, watched through a
//!   process handle.
//! - Waiting: spin briefly, then declare a sleeper, look again, sleep; a waker makes a
//!   system call only when someone sleeps. A sleeper killed asleep is taken out of the count
//!   again (participant slots record where their threads sleep).
//! - Unlocking (Linux with `membarrier(2)`): a plain store, the ordering it skips paid by
//!   the rare side — a thread about to sleep on the mutex issues a process-wide barrier.
//! - A peer that truncates a named object's memory (Linux): its view is registered for zero
//!   pages in place of lost ones, and every operation checks the registration's flag after
//!   it ran, so the truncation is an error, never a SIGBUS or a lock taken on a zero page.
//!
//! # Condition variables
//!
//! There is no `Condvar`. On Windows the only cross-process wake-ups are kernel objects,
//! and a semaphore of wake-up tokens is only right when every waiter waits for the same
//! thing (the lock free, the event set, a positive count): with a condition variable's
//! waiters waiting for different predicates, a newcomer can take the token meant for an
//! older waiter and a wake-up is lost. Doing it right needs a per-waiter parking table
//! (each sleeper its own event); until then, use an [`Event`] per condition.

pub(crate) mod layout;
pub(crate) mod protocol;

#[cfg(not(mmf_loom))]
mod area;
#[cfg(not(mmf_loom))]
mod event;
#[cfg(not(mmf_loom))]
mod inspect;
#[cfg(not(mmf_loom))]
mod join;
#[cfg(not(mmf_loom))]
mod mutex;
#[cfg(not(mmf_loom))]
mod named;
#[cfg(not(mmf_loom))]
mod reap;
#[cfg(not(mmf_loom))]
mod semaphore;

#[cfg(not(mmf_loom))]
pub use area::{SyncArea, SyncAreaOptions};
#[cfg(not(mmf_loom))]
pub use event::{Event, ResetMode};
#[cfg(not(mmf_loom))]
pub use inspect::{AreaInfo, ObjectInfo, ObjectKind, ParticipantInfo, inspect};
#[cfg(not(mmf_loom))]
pub use mutex::{LockError, Mutex, MutexGuard};
#[cfg(not(mmf_loom))]
pub use named::{NamedEvent, NamedMutex, NamedSemaphore};
#[cfg(not(mmf_loom))]
pub use semaphore::Semaphore;

pub use crate::sys::sync::Liveness;

#[cfg(all(test, mmf_loom))]
mod loom_tests;
