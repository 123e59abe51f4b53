//! Contract: what the sync layer needs from the OS — to sleep and wake across processes,
//! and to tell whether a participant process is alive. The lock and event state machines
//! are written above `sys`, in the sync layer, on `primitive` atomics.
//!
//! Every platform provides:
//!
//! - `Membership`: this process's claim on slots of a sync area's participant table,
//!   released by the kernel however the process ends. `Membership::new(probe)` makes one,
//!   `try_claim(area, slot)` takes a slot (`Ok(false)`: the slot is someone else's),
//!   `release(area, slot)` gives it back. A `fork` child never holds its parent's claims.
//! - `fork_generation()`: bumped in every `fork` child, so that the layer above can tell
//!   its parent's memberships from its own. `fork_gate()`: a section no `fork` falls in
//!   (a `fork` waits for the threads inside it), for the process-wide locks of the layer
//!   above, which a child would otherwise inherit held by a thread it does not have.
//! - `alive(probe, area, slot, ident) -> Liveness`: whether the process recorded in a slot
//!   still runs (Linux: the slot's lock is held; Windows: the pid names a process with the
//!   recorded creation time that has not exited). Doubt is [`Liveness::Unknown`], which
//!   callers treat as alive: never steal a lock on a guess.
//! - `process_ident() -> ProcessIdent`: this process's pid and start time.
//! - `Parker`: per-process sleeping and waking on an object's state word. `park(word,
//!   object, expected, deadline, owner)` sleeps until woken, until the deadline, (Linux)
//!   once the word no longer holds `expected`, or (Windows) once the `owner` process exits;
//!   it may return early, callers re-check. `unpark(word, object, n)` wakes up to `n`
//!   sleepers, and says whether it may have found nobody waiting (`Ok(true)`: the caller's
//!   count of sleepers may be stale; Linux: the futex woke nobody; Windows: always, as a
//!   semaphore does not tell). `prepare(object)` is called before a thread declares itself a
//!   sleeper (Windows creates the object's wake semaphore there, so that a waker finds it).
//! - `barrier_registered()`: whether this process is registered for the sleepers'
//!   process-wide barrier of asymmetric unlocks (Linux `membarrier(2)`; Windows never),
//!   registering on first call; `process_barrier()` runs that barrier.
//!
//! Linux parks on a shared futex (`FUTEX_WAIT_BITSET`, absolute `CLOCK_MONOTONIC`
//! deadline; never `FUTEX_PRIVATE_FLAG`); `Parker::park_for(word, expected, timeout)`
//! (Linux only) is a plain `FUTEX_WAIT` with a relative timeout, for the channel's sleeps in
//! short slices, which then read no clock. Windows cannot: `WaitOnAddress` and keyed events
//! wake only threads of the calling process, so each object has a named semaphore that
//! carries wake-up tokens only — every piece of state is in the mapping.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{
    Membership, PARK_CALL, PARK_FOR_CALL, Parker, UNPARK_CALL, alive, barrier_registered,
    file_identity, fork_gate, fork_generation, process_barrier, process_ident,
    register_fork_handlers,
};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{
    Membership, PARK_CALL, Parker, UNPARK_CALL, alive, barrier_registered, file_identity,
    fork_gate, fork_generation, process_barrier, process_ident,
};

/// Where a sync area is, so that each platform can name what belongs to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AreaKey {
    /// The area's random id (its header's `area_id`).
    pub id: [u64; 2],
    /// The area's offset in its mapping (Linux: places the slot locks; two areas in one
    /// mapping never share a byte).
    #[cfg_attr(windows, allow(dead_code, reason = "Windows names objects by id alone"))]
    pub offset: u64,
    /// The identity of the file behind the mapping ([`file_identity`]; 0 without one): a
    /// copy of an area's file holds the same area id, and must not be taken for the same
    /// area (one participant slot for both would not stand for this process in the copy).
    pub file: [u64; 2],
    /// A hash of the named object's name, for an area in a named mapping (0 otherwise):
    /// what every process of a named mapping can name it by (Windows wake semaphores).
    #[cfg_attr(unix, allow(dead_code, reason = "futexes need no names"))]
    pub name: u64,
    /// The named mapping is in Windows' `Global\` namespace.
    #[cfg_attr(unix, allow(dead_code, reason = "Linux has one namespace"))]
    pub global: bool,
}

/// A process as a participant slot records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcessIdent {
    /// The process id, as this process sees it (Linux: in its own PID namespace).
    pub pid: u32,
    /// When the process started: Linux `/proc/self/stat` field 22 (clock ticks since boot),
    /// Windows the creation `FILETIME`. With the pid, it tells a process from a later one
    /// that reuses its pid.
    pub start_time: u64,
}

/// Whether a participant's process still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// It runs.
    Alive,
    /// It has ended (or the slot names a process that no longer exists).
    Dead,
    /// The OS would not say (Windows: access denied to another user's process). Treated as
    /// alive.
    Unknown,
}
