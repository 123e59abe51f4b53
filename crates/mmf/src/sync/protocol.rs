//! The state machines of the mutex, the events and the semaphore, written once over
//! `primitive` atomics and a [`Host`] that sleeps, wakes and tells liveness — so loom can
//! run the very same code (`loom_tests.rs`) with a model host.
//!
//! The sleeper handshake (research/wave2.md §1.4 D4): a waiter that found the object
//! unavailable adds itself to `sleepers`, checks the state again, and only then parks; a
//! waker changes the state and wakes only if it then sees a sleeper. Either the waiter's
//! re-check sees the change, or the waker sees the sleeper: no lost wake-up. That needs
//! the waker's store to the state and its load of `sleepers` ordered (a StoreLoad order),
//! and the same on the waiter's side. Linux parks while the word still holds what the
//! waiter saw (the futex compares atomically); Windows releases tokens on a semaphore,
//! which a late sleeper still finds.
//!
//! Events and semaphores change their state with a read-modify-write (a set counts, a
//! count is bounded), which orders the waker's side for free. A mutex unlock need not:
//!
//! - *Symmetric* areas (Windows, or Linux without `membarrier(2)`): the unlock is a
//!   compare-and-swap of the lock word (a locked instruction), then a load of `sleepers`.
//! - *Asymmetric* areas (Linux with `membarrier(2)`; the header's `ASYMMETRIC` flag): the
//!   unlock is a plain release store of 0 and a plain load of `sleepers` — about the cost
//!   of the lock's own compare-and-swap saved. The StoreLoad order the unlocker skips is
//!   paid by the rare side: a sleeper, after counting itself, calls
//!   `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` ([`Host::sleeper_barrier`]), which runs
//!   a full barrier on every CPU running a thread of a registered process (a thread that
//!   is not running has passed one when it was switched out). Wherever that barrier lands
//!   in the unlocker's store-then-load, either its store is visible to the sleeper's
//!   re-check, or its load sees the sleeper. Every process that may unlock registers
//!   (`MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`) before it joins, so before it can hold a
//!   lock; a process that cannot (seccomp) unlocks with the compare-and-swap, and its own
//!   mutex sleeps, which no barrier protects, are capped at [`DEGRADED_SLICE`].
//!
//! Whatever the mode, a mutex waiter sleeps in slices of at most 50 ms to look at its
//! owner's liveness, so even a wake-up lost to a peer's bug costs a slice, not a hang.

use std::time::{Duration, Instant};

use super::layout::{INCONSISTENT, Object};
use crate::error::{Error, Result};
use crate::primitive::spin_loop;
use crate::primitive::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

/// The handshake's order point of events and semaphores, and of symmetric unlocks. Both
/// sides already use SeqCst read-modify-writes and loads, which the C++/Rust model orders
/// in one total order; loom models SeqCst accesses only as acquire/release, so under loom
/// the same order is stated with a SeqCst fence.
#[inline(always)]
fn handshake_fence() {
    #[cfg(mmf_loom)]
    crate::primitive::sync::atomic::fence(SeqCst);
}

/// The unlocker's half of the asymmetric handshake: only the compiler is kept from moving
/// the load of `sleepers` above the store of the lock word; the CPU may (a StoreLoad
/// reordering), and the sleeper's `membarrier` orders it. Under loom, a SeqCst fence: the
/// model has no cross-thread barrier, so it states what `membarrier` guarantees — that
/// the unlocker behaves as if it had a full fence here — see `loom_tests.rs` for what this
/// model cannot check.
#[inline(always)]
fn light_fence() {
    #[cfg(not(mmf_loom))]
    std::sync::atomic::compiler_fence(SeqCst);
    #[cfg(mmf_loom)]
    crate::primitive::sync::atomic::fence(SeqCst);
}

/// What the state machines need from the world around them.
pub(crate) trait Host {
    /// This process's owner token (joins the area on first use).
    fn token(&self) -> Result<u32>;
    /// Whether this process's mutex unlocks may be a plain store (asymmetric area, and
    /// this process registered for the sleepers' barrier).
    fn plain_unlock(&self) -> bool;
    /// A number for the calling thread, unique within this process (relock detection).
    fn thread(&self) -> u32;
    /// Whether the process that `token` names has ended for sure.
    fn owner_dead(&self, token: u32) -> Result<bool>;
    /// Called before declaring a sleeper on object `index`.
    fn prepare(&self, index: u32) -> Result<()>;
    /// Called once the calling thread is counted in object `index`'s `sleepers`: records it
    /// in this process's participant slot, so that if the process dies asleep its count is
    /// taken back. `false`: not recorded (no record free), and `sleep_end` is told so.
    fn sleep_begin(&self, index: u32) -> bool;
    /// Called before the calling thread takes itself out of `sleepers` again.
    fn sleep_end(&self, index: u32, recorded: bool);
    /// The sleeper's half of the mutex unlock handshake, after counting itself: nothing in
    /// a symmetric area, `membarrier(2)` in an asymmetric one. `false`: this process cannot
    /// order itself against plain unlocks, and must not sleep long (degraded).
    fn sleeper_barrier(&self) -> bool;
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
    /// `Ok` unless the area's memory lost pages under this process (a peer truncated a
    /// named object: zero pages stand in, `sys::fault::zero_fill`); what an operation read
    /// or did since is then void, and it reports this error instead.
    fn intact(&self) -> Result<()> {
        Ok(())
    }
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
/// The longest a mutex waiter sleeps when it could not order itself against plain unlocks
/// (a process that cannot use `membarrier(2)` in an asymmetric area): a wake-up it misses
/// costs at most this.
pub(crate) const DEGRADED_SLICE: Duration = Duration::from_millis(2);

fn earliest(a: Option<Instant>, b: Instant) -> Instant {
    a.map_or(b, |a| a.min(b))
}

/// What a mutex's `owner_thread` holds while thread `thread` of the process whose token is
/// `me` owns it: the thread number mixed with the token (never 0), so that threads of two
/// processes hardly ever share a value. It tells a relock by the owning thread
/// (`WouldDeadlock`), and lets a guard's unlock see that its lock was taken over (a
/// takeover writes its own tag) without loading the lock word back: a load of the word
/// that the lock's compare-and-swap just wrote waits for that locked store to complete
/// (no store forwarding from a locked instruction), the uncontended path's largest cost
/// after the compare-and-swap itself.
#[inline]
pub(crate) fn owner_tag(me: u32, thread: u32) -> u32 {
    match thread.wrapping_mul(0x9e37_79b9) ^ me {
        0 => 1,
        tag => tag,
    }
}

/// Records the new owner thread and reports whether the data is consistent.
#[inline]
fn taken<H: Host>(m: &Object, host: &H, me: u32) -> Locked {
    m.owner_thread.store(owner_tag(me, host.thread()), Relaxed);
    if m.flags.load(Relaxed) & INCONSISTENT != 0 { Locked::OwnerDied } else { Locked::Clean }
}

/// Tries once: `Ok(None)` if another owner holds it (alive, as far as one look tells).
pub(crate) fn mutex_try_lock<H: Host>(m: &Object, host: &H) -> Result<Option<Locked>, LockFailure> {
    mutex_try_lock_as(m, host, host.token()?)
}

/// [`mutex_try_lock`] for the owner token `me` (this process's, found by the caller).
pub(crate) fn mutex_try_lock_as<H: Host>(
    m: &Object,
    host: &H,
    me: u32,
) -> Result<Option<Locked>, LockFailure> {
    let r = match m.state.compare_exchange(0, me, SeqCst, Relaxed) {
        Ok(_) => Ok(Some(taken(m, host, me))),
        Err(owner) => {
            if owner == me && m.owner_thread.load(Relaxed) == owner_tag(me, host.thread()) {
                return Err(LockFailure::WouldDeadlock);
            }
            if owner != me && host.owner_dead(owner)? {
                Ok(steal(m, host, owner, me))
            } else {
                Ok(None)
            }
        }
    };
    if let Err(e) = host.intact() {
        if matches!(r, Ok(Some(_))) {
            give_back(m, me);
        }
        return Err(e.into());
    }
    r
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
        m.owner_thread.store(owner_tag(me, host.thread()), Relaxed);
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
    mutex_lock_as(m, index, host, host.token()?, deadline)
}

/// [`mutex_lock`] for the owner token `me` (this process's, found by the caller).
#[inline]
pub(crate) fn mutex_lock_as<H: Host>(
    m: &Object,
    index: u32,
    host: &H,
    me: u32,
    deadline: Option<Instant>,
) -> Result<Locked, LockFailure> {
    let r = match m.state.compare_exchange(0, me, SeqCst, Relaxed) {
        Ok(_) => Ok(taken(m, host, me)),
        Err(owner) => mutex_lock_slow(m, index, host, me, owner, deadline),
    };
    if let Err(e) = host.intact() {
        if r.is_ok() {
            give_back(m, me);
        }
        return Err(e.into());
    }
    r
}

/// A lock just taken, given back because the area's memory was found truncated: on a page
/// still shared (the cut spared it, or a cut grown back) a lock kept would block the other
/// processes' lockers for as long as this one lives. Sleepers are not woken: they look
/// again within their slice.
#[cold]
fn give_back(m: &Object, me: u32) {
    m.owner_thread.store(0, Relaxed);
    let _ = m.state.compare_exchange(me, 0, SeqCst, Relaxed);
}

#[cold]
fn mutex_lock_slow<H: Host>(
    m: &Object,
    index: u32,
    host: &H,
    me: u32,
    owner: u32,
    deadline: Option<Instant>,
) -> Result<Locked, LockFailure> {
    if owner == me && m.owner_thread.load(Relaxed) == owner_tag(me, host.thread()) {
        return Err(LockFailure::WouldDeadlock);
    }
    for _ in 0..host.spins() {
        spin_loop();
        if m.state.load(Relaxed) == 0 && m.state.compare_exchange(0, me, SeqCst, Relaxed).is_ok() {
            return Ok(taken(m, host, me));
        }
    }
    host.prepare(index)?;
    m.sleepers.fetch_add(1, SeqCst);
    let recorded = host.sleep_begin(index);
    // The sleeper's side of the unlock handshake (membarrier in an asymmetric area): from
    // here on, every unlock either shows its store to the loads below or sees this sleeper.
    let slice = if host.sleeper_barrier() { MAX_SLICE } else { DEGRADED_SLICE };
    let result = mutex_sleep(m, index, host, deadline, me, slice);
    host.sleep_end(index, recorded);
    m.sleepers.fetch_sub(1, SeqCst);
    result
}

fn mutex_sleep<H: Host>(
    m: &Object,
    index: u32,
    host: &H,
    deadline: Option<Instant>,
    me: u32,
    max_slice: Duration,
) -> Result<Locked, LockFailure> {
    let mut slice = FIRST_SLICE.min(max_slice);
    loop {
        host.intact()?; // a lost page reads as a free lock: never take that
        let owner = m.state.load(SeqCst);
        if owner == 0 {
            if m.state.compare_exchange(0, me, SeqCst, Relaxed).is_ok() {
                return Ok(taken(m, host, me));
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
        slice = (slice * 2).min(max_slice);
    }
}

/// Unlocks the lock `token` holds, from any thread of this process (the channel layer's
/// side locks belong to an endpoint, which may move between threads); `poison` marks the
/// data inconsistent first (a guard dropped in a panic). If the lock word no longer holds
/// `token` (the lock was taken over by a locker that found this owner dead, or a peer wrote
/// the word), nothing is unlocked: the lock is someone else's now.
pub(crate) fn mutex_unlock<H: Host>(
    m: &Object,
    index: u32,
    host: &H,
    token: u32,
    poison: bool,
) -> Result<()> {
    mutex_unlock_as(m, index, host, token, None, host.plain_unlock(), poison)
}

/// [`mutex_unlock`] with the unlock's kind decided by the caller: `plain` (a store, in an
/// asymmetric area by a registered process) or a compare-and-swap; and, for an unlock by
/// the thread that locked (a [`MutexGuard`](super::MutexGuard)), its [`owner_tag`]: then
/// the tag, not the lock word, tells whether the lock is still this thread's.
#[inline]
pub(crate) fn mutex_unlock_as<H: Host>(
    m: &Object,
    index: u32,
    host: &H,
    token: u32,
    tag: Option<u32>,
    plain: bool,
    poison: bool,
) -> Result<()> {
    let ours = match tag {
        Some(tag) => m.owner_thread.load(Relaxed) == tag,
        None => m.state.load(Relaxed) == token,
    };
    if !ours {
        return Ok(()); // not ours any more: the new owner's lock, its thread, its flags
    }
    if poison {
        m.flags.fetch_or(INCONSISTENT, SeqCst);
    }
    m.owner_thread.store(0, Relaxed);
    let sleepers = if plain {
        // A locker that found this owner dead could take the lock over between the look
        // above and this store, and the store would free its lock (the compare-and-swap
        // below cannot). A live owner is only found dead when it gave up its liveness
        // (closed the slot lock's descriptor), where exclusion is lost already.
        m.state.store(0, Release);
        light_fence();
        m.sleepers.load(Relaxed)
    } else {
        // The handshake's SeqCst read-modify-write; a failure means the lock was taken
        // over in the meantime, which is then not ours to release nor to wake for.
        if m.state.compare_exchange(token, 0, SeqCst, Relaxed).is_err() {
            return Ok(());
        }
        handshake_fence();
        m.sleepers.load(SeqCst)
    };
    if sleepers > 0 {
        host.unpark(m, index, 1)?;
    }
    host.intact()
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
        return host.intact().map(|()| true);
    }
    for _ in 0..host.spins() {
        spin_loop();
        if ready(o.state.load(Acquire)) {
            return host.intact().map(|()| true);
        }
    }
    host.prepare(index)?;
    o.sleepers.fetch_add(1, SeqCst);
    let recorded = host.sleep_begin(index);
    handshake_fence();
    let result = loop {
        if let Err(e) = host.intact() {
            break Err(e);
        }
        let state = o.state.load(SeqCst);
        if ready(state) {
            break host.intact().map(|()| true);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break Ok(false);
        }
        // In slices, so that a sleeper whose memory a peer truncated (no wake-up will come)
        // looks at `intact` at least every 50 ms; an early return just looks again.
        if let Err(e) = host.park(o, index, state, Some(earliest(deadline, now + MAX_SLICE)), None)
        {
            break Err(e);
        }
    };
    host.sleep_end(index, recorded);
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
            return host.intact(); // already set: nothing changes, nobody is waiting for it
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
    host.intact()
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
            return host.intact().map(|()| true);
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
        let Some(next) = count.checked_add(n).filter(|&c| c <= max) else {
            return host.intact().map(|()| None);
        };
        match s.state.compare_exchange_weak(count, next, SeqCst, Relaxed) {
            Ok(_) => break,
            Err(now) => count = now,
        }
    }
    handshake_fence();
    if n > 0 && s.sleepers.load(SeqCst) > 0 {
        host.unpark(s, index, n)?;
    }
    host.intact().map(|()| Some(count))
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
