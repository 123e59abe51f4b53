//! The state machines of the mutex, the events and the semaphore, written once over
//! `primitive` atomics and a [`Host`] that sleeps, wakes and tells liveness — so loom can
//! run the very same code (`loom_tests.rs`) with a model host.
//!
//! The sleeper handshake (research/wave2.md §1.4 D4): a waiter that found the object
//! unavailable adds itself to `sleepers` (SeqCst), checks the state again (SeqCst), and only
//! then parks; a waker changes the state (SeqCst) and wakes only if it then sees a sleeper.
//! Either the waiter's re-check sees the change, or the waker sees the sleeper: no lost
//! wake-up. Linux parks while the word still holds what the waiter saw (the futex compares
//! atomically); Windows releases tokens on a semaphore, which a late sleeper still finds.

use std::time::{Duration, Instant};

use super::layout::{INCONSISTENT, Object};
use crate::error::{Error, Result};
use crate::primitive::spin_loop;
use crate::primitive::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};

/// The handshake's order point. Both sides already use SeqCst read-modify-writes and
/// loads, which the C++/Rust model orders in one total order; loom models SeqCst accesses
/// only as acquire/release, so under loom the same order is stated with a SeqCst fence.
#[inline(always)]
fn handshake_fence() {
    #[cfg(mmf_loom)]
    crate::primitive::sync::atomic::fence(SeqCst);
}

/// What the state machines need from the world around them.
pub(crate) trait Host {
    /// This process's owner token (joins the area on first use).
    fn token(&self) -> Result<u32>;
    /// A number for the calling thread, unique within this process (relock detection).
    fn thread(&self) -> u32;
    /// Whether the process that `token` names has ended for sure.
    fn owner_dead(&self, token: u32) -> Result<bool>;
    /// Called before declaring a sleeper on object `index`.
    fn prepare(&self, index: u32) -> Result<()>;
    /// Sleeps on `object` while its state holds `expected` (see `sys::sync::Parker`).
    fn park(
        &self,
        object: &Object,
        index: u32,
        expected: u32,
        deadline: Option<Instant>,
        owner: Option<u32>,
    ) -> Result<()>;
    /// Wakes up to `n` sleepers of `object`.
    fn unpark(&self, object: &Object, index: u32, n: u32) -> Result<()>;
    /// Busy-wait iterations before sleeping.
    fn spins(&self) -> u32;
}

/// How a wait ended that did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Locked {
    /// Taken; the data is consistent.
    Clean,
    /// Taken; a previous owner died or panicked (now or before, and nobody has called
    /// `mark_consistent` since).
    OwnerDied,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub(crate) enum LockFailure {
    Timeout,
    WouldDeadlock,
    Error(Error),
}

impl From<Error> for LockFailure {
    fn from(e: Error) -> Self {
        LockFailure::Error(e)
    }
}

/// The longest a mutex waiter sleeps before looking at its owner's liveness again.
const MAX_SLICE: Duration = Duration::from_millis(50);
const FIRST_SLICE: Duration = Duration::from_millis(1);

fn earliest(a: Option<Instant>, b: Instant) -> Instant {
    a.map_or(b, |a| a.min(b))
}

/// Records the new owner thread and reports whether the data is consistent.
fn taken<H: Host>(m: &Object, host: &H) -> Locked {
    m.owner_thread.store(host.thread(), Relaxed);
    if m.flags.load(Relaxed) & INCONSISTENT != 0 { Locked::OwnerDied } else { Locked::Clean }
}

/// Tries once: `Ok(None)` if another owner holds it (alive, as far as one look tells).
pub(crate) fn mutex_try_lock<H: Host>(m: &Object, host: &H) -> Result<Option<Locked>, LockFailure> {
    let me = host.token()?;
    match m.state.compare_exchange(0, me, SeqCst, Relaxed) {
        Ok(_) => Ok(Some(taken(m, host))),
        Err(owner) => {
            if owner == me && m.owner_thread.load(Relaxed) == host.thread() {
                return Err(LockFailure::WouldDeadlock);
            }
            if owner != me && host.owner_dead(owner)? {
                return Ok(steal(m, host, owner, me));
            }
            Ok(None)
        }
    }
}

/// Takes the lock of a dead owner: `Some(OwnerDied)` if this thread won the race.
fn steal<H: Host>(m: &Object, host: &H, dead: u32, me: u32) -> Option<Locked> {
    // INCONSISTENT before the lock changes hands, so no later owner can miss it.
    m.flags.fetch_or(INCONSISTENT, SeqCst);
    // The dead owner's thread number goes first: between the exchange and the store
    // below, another thread of this process that happens to bear that number would
    // otherwise take the lock for its own and get a false `WouldDeadlock`.
    if m.state.load(Relaxed) == dead {
        m.owner_thread.store(0, Relaxed);
    }
    if m.state.compare_exchange(dead, me, SeqCst, Relaxed).is_ok() {
        m.owner_thread.store(host.thread(), Relaxed);
        Some(Locked::OwnerDied)
    } else {
        None
    }
}

/// Locks, waiting until `deadline` (`None`: forever).
pub(crate) fn mutex_lock<H: Host>(
    m: &Object,
    index: u32,
    host: &H,
    deadline: Option<Instant>,
) -> Result<Locked, LockFailure> {
    let me = host.token()?;
    match m.state.compare_exchange(0, me, SeqCst, Relaxed) {
        Ok(_) => return Ok(taken(m, host)),
        Err(owner) if owner == me && m.owner_thread.load(Relaxed) == host.thread() => {
            return Err(LockFailure::WouldDeadlock);
        }
        Err(_) => {}
    }
    for _ in 0..host.spins() {
        spin_loop();
        if m.state.load(Relaxed) == 0 && m.state.compare_exchange(0, me, SeqCst, Relaxed).is_ok() {
            return Ok(taken(m, host));
        }
    }
    host.prepare(index)?;
    m.sleepers.fetch_add(1, SeqCst);
    handshake_fence();
    let result = mutex_sleep(m, index, host, deadline, me);
    m.sleepers.fetch_sub(1, SeqCst);
    result
}

fn mutex_sleep<H: Host>(
    m: &Object,
    index: u32,
    host: &H,
    deadline: Option<Instant>,
    me: u32,
) -> Result<Locked, LockFailure> {
    let mut slice = FIRST_SLICE;
    loop {
        let owner = m.state.load(SeqCst);
        if owner == 0 {
            if m.state.compare_exchange(0, me, SeqCst, Relaxed).is_ok() {
                return Ok(taken(m, host));
            }
            continue;
        }
        if owner != me && host.owner_dead(owner)? {
            if let Some(done) = steal(m, host, owner, me) {
                return Ok(done);
            }
            continue;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(LockFailure::Timeout);
        }
        // Sleep in slices: the owner's death is looked for at least every 50 ms (on
        // Windows the park also ends when the owner's process does).
        host.park(m, index, owner, Some(earliest(deadline, now + slice)), Some(owner))?;
        slice = (slice * 2).min(MAX_SLICE);
    }
}

/// Unlocks the lock `token` holds; `poison` marks the data inconsistent first (a guard
/// dropped in a panic). If the word no longer holds `token` (the lock was taken over by a
/// locker that found this owner dead, or a peer wrote the word), nothing is unlocked: the
/// lock is someone else's now.
pub(crate) fn mutex_unlock<H: Host>(
    m: &Object,
    index: u32,
    host: &H,
    token: u32,
    poison: bool,
) -> Result<()> {
    if m.state.load(Relaxed) != token {
        return Ok(()); // not ours any more: the new owner's lock, its thread, its flags
    }
    if poison {
        m.flags.fetch_or(INCONSISTENT, SeqCst);
    }
    m.owner_thread.store(0, Relaxed);
    // The handshake's SeqCst read-modify-write; a failure means the lock was taken over
    // in the meantime, which is then not ours to release nor to wake for.
    if m.state.compare_exchange(token, 0, SeqCst, Relaxed).is_err() {
        return Ok(());
    }
    handshake_fence();
    if m.sleepers.load(SeqCst) > 0 {
        host.unpark(m, index, 1)?;
    }
    Ok(())
}

/// Clears the inconsistent mark (the owner repaired the data).
pub(crate) fn mutex_mark_consistent(m: &Object) {
    m.flags.fetch_and(!INCONSISTENT, SeqCst);
}

/// Waits until `ready` takes the object (returns true), spinning first, then sleeping
/// while the state is unchanged. `ready(state)` tries to take it: `Ok(true)` done,
/// `Ok(false)` not available now. `Ok(false)` from here: the deadline passed.
fn wait_until<H: Host>(
    o: &Object,
    index: u32,
    host: &H,
    deadline: Option<Instant>,
    mut ready: impl FnMut(u32) -> bool,
) -> Result<bool> {
    if ready(o.state.load(Acquire)) {
        return Ok(true);
    }
    for _ in 0..host.spins() {
        spin_loop();
        if ready(o.state.load(Acquire)) {
            return Ok(true);
        }
    }
    host.prepare(index)?;
    o.sleepers.fetch_add(1, SeqCst);
    handshake_fence();
    let result = loop {
        let state = o.state.load(SeqCst);
        if ready(state) {
            break Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Ok(false);
        }
        if let Err(e) = host.park(o, index, state, deadline, None) {
            break Err(e);
        }
    };
    o.sleepers.fetch_sub(1, SeqCst);
    result
}

/// Sets an event: manual reset wakes every sleeper, auto reset one.
pub(crate) fn event_set<H: Host>(e: &Object, index: u32, host: &H, manual: bool) -> Result<()> {
    // `sets << 1 | 1`: a set also counts, so that a manual-reset waiter that was asleep
    // when the event was set is released even if it is reset before the waiter runs (as
    // SetEvent releases every waiting thread).
    let mut state = e.state.load(Relaxed);
    loop {
        if state & 1 == 1 {
            return Ok(()); // already set: nothing changes, nobody is waiting for it
        }
        let next = (state.wrapping_add(2)) | 1;
        match e.state.compare_exchange_weak(state, next, SeqCst, Relaxed) {
            Ok(_) => break,
            Err(now) => state = now,
        }
    }
    handshake_fence();
    if e.sleepers.load(SeqCst) > 0 {
        host.unpark(e, index, if manual { u32::MAX } else { 1 })?;
    }
    Ok(())
}

/// Resets an event (state unsignalled; the count of sets stays).
pub(crate) fn event_reset(e: &Object) {
    e.state.fetch_and(!1, SeqCst);
}

/// Whether the event is set now.
pub(crate) fn event_is_set(e: &Object) -> bool {
    e.state.load(Acquire) & 1 == 1
}

/// Waits for an event; an auto-reset event is reset by the one waiter it releases.
/// `Ok(false)`: the deadline passed.
pub(crate) fn event_wait<H: Host>(
    e: &Object,
    index: u32,
    host: &H,
    deadline: Option<Instant>,
    manual: bool,
) -> Result<bool> {
    if manual {
        let start = e.state.load(Acquire);
        if start & 1 == 1 {
            return Ok(true);
        }
        // Released by the event being set, or by a set (and reset) since we started.
        wait_until(e, index, host, deadline, |s| s & 1 == 1 || s >> 1 != start >> 1)
    } else {
        wait_until(e, index, host, deadline, |s| {
            s & 1 == 1 && e.state.compare_exchange(s, s & !1, SeqCst, Relaxed).is_ok()
        })
    }
}

/// Adds `n` to a semaphore's count, at most `max`: the previous count, or `None` (nothing
/// changed) if the count would pass the maximum.
pub(crate) fn semaphore_release<H: Host>(
    s: &Object,
    index: u32,
    host: &H,
    n: u32,
    max: u32,
) -> Result<Option<u32>> {
    let mut count = s.state.load(Relaxed);
    loop {
        let Some(next) = count.checked_add(n).filter(|&c| c <= max) else { return Ok(None) };
        match s.state.compare_exchange_weak(count, next, SeqCst, Relaxed) {
            Ok(_) => break,
            Err(now) => count = now,
        }
    }
    handshake_fence();
    if n > 0 && s.sleepers.load(SeqCst) > 0 {
        host.unpark(s, index, n)?;
    }
    Ok(Some(count))
}

/// Takes one unit of a semaphore's count, waiting until `deadline`. `Ok(false)`: timed out.
pub(crate) fn semaphore_acquire<H: Host>(
    s: &Object,
    index: u32,
    host: &H,
    deadline: Option<Instant>,
) -> Result<bool> {
    wait_until(s, index, host, deadline, |c| {
        c > 0 && s.state.compare_exchange(c, c - 1, SeqCst, Relaxed).is_ok()
    })
}
