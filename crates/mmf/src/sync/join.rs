//! Joining and leaving a sync area: this process's participant slot (shared by all its
//! handles of one area, and made afresh in a `fork` child), the liveness of other
//! participants, and the [`Host`] that the state machines of `protocol.rs` run on.
//!
//! A handle caches what its lock path needs in one word, `joined`: the fork generation it
//! joined in (high half), and this process's token with two mode bits (low half):
//! [`PLAIN`] (an asymmetric area, and this process registered for the sleepers' barrier:
//! it unlocks with a plain store) or [`DEGRADED`] (an asymmetric area this process cannot
//! take part in: it unlocks with a compare-and-swap and sleeps in short slices).

use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::Instant;

use super::area::{SyncArea, area_error};
use super::layout::{self, Ident, Object};
use super::protocol::Host;
use crate::error::{Error, Result};
use crate::primitive::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::sys::sync::{self as sys, AreaKey, Liveness, ProcessIdent};

/// Mode bit of `joined`: this process unlocks with a plain store (see the module docs).
pub(super) const PLAIN: u32 = 1 << 31;
/// Mode bit of `joined`: this process cannot order itself against plain unlocks.
pub(super) const DEGRADED: u32 = 1 << 30;
/// The token's bits of `joined`'s low half (a token has 30 bits: `layout::token`).
pub(super) const TOKEN: u32 = (1 << 30) - 1;

/// This process's membership of one area (shared by all its `SyncArea`s of that area).
#[derive(Debug)]
pub(super) struct Member {
    pub(super) key: AreaKey,
    pub(super) slot: u32,
    pub(super) token: u32,
    /// [`PLAIN`], [`DEGRADED`] or 0.
    pub(super) mode: u32,
    pub(super) fork_generation: u64,
    pub(super) _membership: sys::Membership,
    pub(super) parker: sys::Parker,
}

/// Every area this process has joined, so that two views of one area share one slot.
/// Locked, like each area's `member`, only inside the fork gate (`sys::fork_gate`): a
/// `fork` never copies them locked into a child, which has none of the other threads.
static MEMBERS: StdMutex<Vec<Weak<Member>>> = StdMutex::new(Vec::new());

impl SyncArea<'_> {
    pub(super) fn current_member(&self) -> Option<Arc<Member>> {
        let _gate = sys::fork_gate();
        let member = self.member.lock().unwrap_or_else(|e| e.into_inner());
        member.as_ref().filter(|m| m.fork_generation == sys::fork_generation()).cloned()
    }

    /// This process's token and mode bits ([`PLAIN`], [`DEGRADED`]), joining the area
    /// first if needed.
    #[inline]
    pub(super) fn me(&self) -> Result<u32> {
        let joined = self.joined.load(std::sync::atomic::Ordering::Acquire);
        if joined != 0 && joined >> 32 == sys::fork_generation() & 0xffff_ffff {
            return Ok(joined as u32);
        }
        self.join()
    }

    /// This process's token, joining the area first if needed.
    #[inline]
    fn my_token(&self) -> Result<u32> {
        self.me().map(|me| me & TOKEN)
    }

    #[cold]
    fn join(&self) -> Result<u32> {
        let _gate = sys::fork_gate();
        let mut member = self.member.lock().unwrap_or_else(|e| e.into_inner());
        let generation = sys::fork_generation();
        if let Some(m) = member.as_ref().filter(|m| m.fork_generation == generation) {
            return Ok(m.token | m.mode);
        }
        let mut members = MEMBERS.lock().unwrap_or_else(|e| e.into_inner());
        members.retain(|m| m.strong_count() > 0);
        let found = members.iter().filter_map(Weak::upgrade).find(|m| {
            m.key.id == self.key.id
                && m.key.offset == self.key.offset
                && m.key.file == self.key.file
                && m.fork_generation == generation
        });
        let m = match found {
            Some(m) => m,
            None => {
                let m = Arc::new(self.claim_slot(generation)?);
                members.push(Arc::downgrade(&m));
                m
            }
        };
        drop(members);
        let me = m.token | m.mode;
        *member = Some(m);
        self.joined.store(
            (generation & 0xffff_ffff) << 32 | u64::from(me),
            std::sync::atomic::Ordering::Release,
        );
        Ok(me)
    }

    fn claim_slot(&self, generation: u64) -> Result<Member> {
        // Registered for the sleepers' barrier before this process has a token, so before
        // it can hold a lock it would unlock with a plain store.
        let mode = match (self.asymmetric, sys::barrier_registered()) {
            (false, _) => 0,
            (true, true) => PLAIN,
            (true, false) => DEGRADED,
        };
        let me = sys::process_ident();
        let mut membership = sys::Membership::new(self.probe.as_deref())
            .map_err(Error::os("open (sync area membership)"))?;
        for slot in 0..self.participants {
            let p = self.participant(slot)?;
            let id = Ident::unpack(p.ident.load(Acquire));
            if !id.is_free() && self.liveness(slot, id)? != Liveness::Dead {
                continue;
            }
            if !membership.try_claim(self.key, slot).map_err(Error::os("fcntl(F_OFD_SETLK)"))? {
                continue;
            }
            let new = Ident { generation: id.next_generation(), ready: false, pid: me.pid };
            if p.ident.compare_exchange(id.pack(), new.pack(), AcqRel, Acquire).is_err() {
                membership.release(self.key, slot);
                continue;
            }
            // The sleepers a dead predecessor left counted go before this process's own.
            self.clear_records(slot, |g| g != new.generation);
            p.start_time.store(me.start_time, Release);
            p.ident.store(Ident { ready: true, ..new }.pack(), Release);
            return Ok(Member {
                key: self.key,
                slot,
                token: layout::token(slot, new.generation),
                mode,
                fork_generation: generation,
                _membership: membership,
                parker: sys::Parker::new(self.key),
            });
        }
        Err(area_error(
            self.offset,
            format!(
                "all {} participant slots are taken by live processes: make the area with more participants",
                self.participants
            ),
        ))
    }

    /// Whether the process recorded in `slot` (as `id`) runs.
    pub(crate) fn liveness(&self, slot: u32, id: Ident) -> Result<Liveness> {
        if id.is_free() {
            return Ok(Liveness::Dead);
        }
        let start_time =
            if id.ready { self.participant(slot)?.start_time.load(Acquire) } else { 0 };
        sys::alive(self.probe.as_deref(), self.key, slot, ProcessIdent { pid: id.pid, start_time })
            .map_err(Error::os("fcntl(F_OFD_GETLK)"))
    }

    /// This process's member (joining first): its parker caches what waking needs.
    fn joined_member(&self) -> Result<Arc<Member>> {
        loop {
            self.my_token()?;
            if let Some(m) = self.current_member() {
                return Ok(m);
            }
        }
    }
}

impl Drop for SyncArea<'_> {
    fn drop(&mut self) {
        let _gate = sys::fork_gate();
        let Ok(mut member) = self.member.lock() else { return };
        let Some(m) = member.take() else { return };
        if m.fork_generation != sys::fork_generation() {
            return; // the parent's membership, inherited by a fork child: not ours to end
        }
        let members = MEMBERS.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&m) == 1 {
            // The last of this process's handles to the area: give the slot back (the
            // membership's descriptor, and with it the slot lock, closes as `m` drops).
            if let Ok(p) = self.participant(m.slot) {
                let id = Ident::unpack(p.ident.load(Acquire));
                if layout::token(m.slot, id.generation) == m.token && !id.is_free() {
                    let free = Ident { generation: id.generation, ready: false, pid: 0 };
                    let _ = p.ident.compare_exchange(id.pack(), free.pack(), AcqRel, Relaxed);
                }
            }
        }
        drop(m);
        drop(members);
    }
}

/// Windows: a sleep lasts at most 50 ms, after which the caller looks at the state again.
/// Processes that name one mapping differently (one maps the file, another opens it by
/// name), or a waiter refused another user's semaphore, do not share wake semaphores
/// (`sys::sync` on Windows): their wake-ups never arrive, and this polling is what still
/// ends such a wait. (Linux: the futex is the shared word itself; no cap.)
fn polling_slice(deadline: Option<Instant>) -> Option<Instant> {
    if cfg!(windows) {
        let slice = Instant::now() + std::time::Duration::from_millis(50);
        Some(deadline.map_or(slice, |d| d.min(slice)))
    } else {
        deadline
    }
}

// This thread's number for relock detection (0: not drawn yet). A `const` thread local:
// no lazy-initialisation check on the lock's fast path.
thread_local! {
    // Clippy 1.96 with -Zbuild-std (the Windows leg) asks for `const` although it is there.
    #[allow(clippy::missing_const_for_thread_local)]
    static THREAD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Draws the calling thread's number on its first lock.
#[cold]
fn draw_thread_number() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).max(1);
    THREAD.with(|t| t.set(n));
    n
}

impl Host for SyncArea<'_> {
    #[inline]
    fn token(&self) -> Result<u32> {
        self.my_token()
    }

    #[inline]
    fn intact(&self) -> Result<()> {
        let Some(flag) = self.lost_pages else { return Ok(()) };
        // The flag is raised by the SIGBUS handler on this very thread when it was this
        // thread's access that faulted: keep the compiler from loading it before the
        // operation's accesses (`atomic_signal_fence`; no instruction).
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        // A cut grown back before this process touched a lost page raised no flag but left
        // the area zeroed, the header's magic with it.
        let regrown = || {
            super::area::header(self.view(), self.offset).is_ok_and(|h| {
                h.magic.load(crate::primitive::sync::atomic::Ordering::Relaxed) != layout::MAGIC
            })
        };
        if flag.load(std::sync::atomic::Ordering::Relaxed) || regrown() {
            return Err(area_error(
                self.offset,
                "the named object's shared memory was truncated under this process (by \
                 another process, or `truncate` on /dev/shm): its state is gone; close every \
                 handle and create it again",
            ));
        }
        Ok(())
    }

    #[inline]
    fn plain_unlock(&self) -> bool {
        self.me().is_ok_and(|me| me & PLAIN != 0)
    }

    fn sleep_begin(&self, index: u32) -> bool {
        self.my_token().is_ok_and(|token| self.record_sleep(token, index))
    }

    fn sleep_end(&self, index: u32, recorded: bool) {
        if let (true, Ok(token)) = (recorded, self.my_token()) {
            self.unrecord_sleep(token, index);
        }
    }

    fn sleeper_barrier(&self) -> bool {
        match self.me() {
            Ok(me) if me & PLAIN != 0 => sys::process_barrier(),
            Ok(me) => me & DEGRADED == 0,
            Err(_) => true, // not joined: it cannot have got this far
        }
    }

    #[inline]
    fn thread(&self) -> u32 {
        match THREAD.with(std::cell::Cell::get) {
            0 => draw_thread_number(),
            n => n,
        }
    }

    fn owner_dead(&self, token: u32) -> Result<bool> {
        let (slot, generation) = layout::untoken(token);
        if slot >= self.participants {
            return Err(area_error(
                self.offset,
                format!(
                    "a lock names participant slot {slot}, past the table's {} (corrupted by a peer?)",
                    self.participants
                ),
            ));
        }
        let id = Ident::unpack(self.participant(slot)?.ident.load(Acquire));
        if id.is_free() || id.generation != generation {
            return Ok(true);
        }
        if self.current_member().is_some_and(|m| m.slot == slot) {
            return Ok(false); // another thread of this process
        }
        Ok(self.liveness(slot, id)? == Liveness::Dead)
    }

    fn prepare(&self, index: u32) -> Result<()> {
        self.joined_member()?.parker.prepare(index).map_err(Error::os("CreateSemaphore"))
    }

    fn park(
        &self,
        object: &Object,
        index: u32,
        expected: u32,
        deadline: Option<Instant>,
        owner: Option<u32>,
    ) -> Result<()> {
        let owner = match owner {
            Some(token) => self.owner_ident(token),
            None => None,
        };
        let word =
            (&object.state as *const crate::primitive::sync::atomic::AtomicU32).cast::<u32>();
        let m = self.joined_member()?;
        let deadline = polling_slice(deadline);
        let parked = m.parker.park(word, index, expected, deadline, owner);
        // An owner that ended is seen by the caller's own look at the object's state.
        self.lost_word(word, parked).map(drop).map_err(Error::os(sys::PARK_CALL))
    }

    fn unpark(&self, object: &Object, index: u32, n: u32) -> Result<()> {
        let word =
            (&object.state as *const crate::primitive::sync::atomic::AtomicU32).cast::<u32>();
        // Only as many as sleep (Windows releases that many tokens). Waking takes no
        // participant slot: a process that cannot join (the table is full) still wakes.
        let n = n.min(object.sleepers.load(std::sync::atomic::Ordering::SeqCst));
        if n == 0 {
            return Ok(());
        }
        let woken = self.waker.unpark(word, index, n);
        let nobody = self.lost_word(word, woken).map_err(Error::os(sys::UNPARK_CALL))?;
        if nobody {
            // Counted sleepers, none asleep (Windows: perhaps): maybe one that died asleep,
            // or one between counting itself and sleeping. Take back what dead processes
            // left counted (rate-limited).
            self.reap_sleepers(index);
        }
        Ok(())
    }

    #[inline]
    fn spins(&self) -> u32 {
        self.spins.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl SyncArea<'_> {
    /// Sleeps on any 32-bit word of the area's view (not only an object's state) while it
    /// holds `expected`, until `deadline`, or (Windows) until the process `owner` names
    /// ends. `index` names the Windows wake semaphore: give each word its own, apart from
    /// the area's object indices. For the channel layer's sleep handshakes (on Windows;
    /// Linux sleeps through [`park_word_for`](Self::park_word_for)). `Ok(true)`: `owner`'s
    /// process has ended (the caller looks at its peers now: the sleep would end at once
    /// again).
    #[cfg_attr(target_os = "linux", allow(dead_code, reason = "Linux uses park_word_for"))]
    pub(crate) fn park_word(
        &self,
        word: &crate::primitive::sync::atomic::AtomicU32,
        index: u32,
        expected: u32,
        deadline: Option<Instant>,
        owner: Option<u32>,
    ) -> Result<bool> {
        let owner = owner.and_then(|token| self.owner_ident(token));
        let word = (word as *const crate::primitive::sync::atomic::AtomicU32).cast::<u32>();
        let m = self.joined_member()?;
        let deadline = polling_slice(deadline);
        let parked = m.parker.park(word, index, expected, deadline, owner);
        self.lost_word(word, parked).map_err(Error::os(sys::PARK_CALL))
    }

    /// Linux: sleeps on any 32-bit word of the area's view while it holds `expected`, for
    /// at most `timeout`, as [`park_word`](Self::park_word) does, minus what a futex does
    /// not need: no participant lookup (a futex is the word itself, and no owner is
    /// watched: the caller's slices end the sleep), no clock read (a relative timeout). The
    /// channel's sleeps take this path on every wait.
    #[cfg(target_os = "linux")]
    #[inline]
    pub(crate) fn park_word_for(
        &self,
        word: &crate::primitive::sync::atomic::AtomicU32,
        expected: u32,
        timeout: std::time::Duration,
    ) -> Result<()> {
        let word = (word as *const crate::primitive::sync::atomic::AtomicU32).cast::<u32>();
        let parked = sys::Parker::park_for(word, expected, timeout);
        self.lost_word(word, parked).map_err(Error::os(sys::PARK_FOR_CALL))
    }

    /// Creates what [`park_word`](Self::park_word) sleeps on (Windows: the semaphore of
    /// `index`) before a thread declares itself a sleeper.
    pub(crate) fn prepare_word(&self, index: u32) -> Result<()> {
        self.joined_member()?.parker.prepare(index).map_err(Error::os("CreateSemaphore"))
    }

    /// Wakes up to `n` threads sleeping on `word` (the caller knows how many sleep).
    pub(crate) fn unpark_word(
        &self,
        word: &crate::primitive::sync::atomic::AtomicU32,
        index: u32,
        n: u32,
    ) -> Result<()> {
        let word = (word as *const crate::primitive::sync::atomic::AtomicU32).cast::<u32>();
        let woken = self.waker.unpark(word, index, n);
        self.lost_word(word, woken).map(drop).map_err(Error::os(sys::UNPARK_CALL))
    }

    /// A futex call's result, with `EFAULT` on a registered area (a peer truncated the page
    /// of `word` away between the last access and the call: the kernel found no page)
    /// turned into a spurious wake-up, after one load of the word: the load faults, the
    /// handler puts a zero page there and raises the flag, and the caller's next look
    /// reports the truncation (`Host::intact`, `Inner::intact`) instead of "Bad address".
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables, reason = "no lost pages"))]
    fn lost_word<T: Default>(&self, word: *const u32, r: std::io::Result<T>) -> std::io::Result<T> {
        match r {
            #[cfg(target_os = "linux")]
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) && self.lost_pages.is_some() => {
                // SAFETY: `word` points into the area's view, mapped while `self` lives; an
                // atomic load, as every other access to the word.
                let _ = unsafe { std::sync::atomic::AtomicU32::from_ptr(word.cast_mut()) }
                    .load(std::sync::atomic::Ordering::Relaxed);
                Ok(T::default())
            }
            r => r,
        }
    }

    /// The pid and start time of the process a token names, for a waiter to watch.
    fn owner_ident(&self, token: u32) -> Option<ProcessIdent> {
        let (slot, _) = layout::untoken(token);
        let p = self.participant(slot).ok()?;
        let id = Ident::unpack(p.ident.load(Acquire));
        (!id.is_free()).then(|| ProcessIdent {
            pid: id.pid,
            start_time: if id.ready { p.start_time.load(Acquire) } else { 0 },
        })
    }
}
