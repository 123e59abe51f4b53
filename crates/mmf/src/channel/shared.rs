//! What every endpoint of one channel shares in a process: the mapping, the embedded sync
//! area (participants, liveness, wake-ups, the side locks), the validated parameters; and
//! the endpoint table that tells each side whether the other is there.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::AtomicBool; // the fault table's flag (std's, also under loom)
use std::time::{Duration, Instant};

use super::layout::{
    self, ENDPOINTS, ENDPOINTS_AT, Header, LINES_AT, Lines, NOT_EMPTY_INDEX, NOT_FULL_INDEX,
    Params, Signal,
};
use super::ring::{Bytes, Park, Ring, Which};
use crate::error::{Error, Result};
use crate::primitive::sync::atomic::Ordering::{self, AcqRel, Acquire, Relaxed};
use crate::primitive::sync::atomic::{AtomicU32, AtomicU64};
use crate::sync::SyncArea;
use crate::sync::layout::Kind as ObjectKind;
use crate::sync::layout::Object;
use crate::sync::protocol::Host;
use crate::sys::fault::zero_fill;
use crate::{Mapping, ViewMut};

/// An endpoint's role, as the endpoint table stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Sender = 1,
    Receiver = 2,
}

/// One channel as this process sees it; shared by the channel handle and its endpoints.
#[derive(Debug)]
pub(crate) struct Inner {
    pub name: String,
    pub params: Params,
    /// The words every message touches, found (bounds and alignment checked) once.
    hot: Hot,
    /// Raised when a page of the channel's view was lost (a peer truncated the object) and
    /// replaced by a zero page ([`guard`]; the view keeps the registration).
    lost_pages: &'static AtomicBool,
    pub area: SyncArea<'static>,
    pub _mapping: Mapping,
    /// Whether this CPU has `CLDEMOTE` ([`has_cldemote`]): where it has not, the sender
    /// neither demotes nor reads the time stamp counter for it.
    pub cldemote: bool,
}

/// Whether this CPU has `CLDEMOTE` (CPUID leaf 7, ECX bit 25), read once per process.
fn has_cldemote() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__cpuid_count, __get_cpuid_max};
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| __get_cpuid_max(0).0 >= 7 && __cpuid_count(7, 0).ecx & 1 << 25 != 0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// References into the channel's view, which `Inner::area` owns: made once when the
/// channel is opened, so that a message costs no view lookups (each a bounds, alignment
/// and write-through check, ~15 instructions, and there were nine a message). Private to
/// this module, and lent out only for as long as the `Inner` is borrowed.
struct Hot {
    lines: &'static Lines,
    epoch: &'static AtomicU32,
    /// The header's magic, which a truncation grown back (or any zeroing) clears.
    magic: &'static AtomicU64,
    /// The ring's data, `capacity / 8` words.
    data: &'static [AtomicU64],
}

impl std::fmt::Debug for Hot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hot").field("data_words", &self.data.len()).finish_non_exhaustive()
    }
}

impl Hot {
    /// The references into `view` (the view `Inner` keeps in its sync area).
    fn new(view: &ViewMut, params: &Params) -> Result<Hot> {
        let lines: &Lines = view.get(LINES_AT)?;
        let header: &Header = view.get(0)?;
        let data = view.at(layout::DATA_AT as usize, params.capacity as usize)?;
        if data as usize % align_of::<AtomicU64>() != 0 || params.capacity % 8 != 0 {
            return Err(Error::Corrupted {
                reason: format!("channel data at {data:p}, capacity {}", params.capacity),
            });
        }
        let words = (params.capacity / 8) as usize;
        // SAFETY: every reference points into `view`, bounds and alignment checked above
        // (`get`, `at`). `AtomicU64` admits any bit pattern and changes through shared
        // references (as `ViewMut::get` hands out; payload bytes in between are only
        // touched by the guarded copies, which are opaque byte-wise accesses). The view
        // is moved into `Inner::area` and stays mapped until `Inner` drops; `Hot` is a
        // private field of `Inner`, and its references are lent out only with the
        // lifetime of a borrow of that `Inner` (`Inner::lines`, `epoch`, `data`), so
        // none is used after the view is unmapped.
        unsafe {
            Ok(Hot {
                lines: &*std::ptr::from_ref(lines),
                epoch: &*std::ptr::from_ref(&header.epoch),
                magic: &*std::ptr::from_ref(&header.magic),
                data: std::slice::from_raw_parts(data.cast::<AtomicU64>(), words),
            })
        }
    }
}

/// Registers the channel's `view` for zero pages in place of pages a peer truncates away
/// (`sys::fault::zero_fill`; the view keeps the registration): its atomics then never die
/// of `SIGBUS`, and the channel reports the truncation instead ([`Inner::intact`], which
/// checks the returned flag). Call it before the first access.
///
/// # Errors
/// [`Error::Channel`] if this process already has [`zero_fill::SLOTS`] channels open.
pub(crate) fn guard(name: &str, view: &mut ViewMut) -> Result<&'static AtomicBool> {
    view.zero_fill_lost_pages().ok_or_else(|| Error::Channel {
        name: name.to_owned(),
        reason: format!(
            "this process has {} channel handles open, the most it can guard against a peer \
             truncating their memory: drop some (endpoints share their channel's handle)",
            zero_fill::SLOTS
        ),
    })
}

#[cold]
fn truncated(name: &str) -> Error {
    Error::Channel {
        name: name.to_owned(),
        reason: "its shared-memory object was truncated under this process (by another \
                 process, or `truncate` on /dev/shm): pages of the ring are gone, and with \
                 them queued messages; close every endpoint and create the channel again"
            .into(),
    }
}

/// The header's magic is gone while this process uses the channel: a truncation grown
/// back before this process touched a lost page (zeros), or another program writing the
/// object (review 55: that was reported as a truncation alone).
#[cold]
fn overwritten(name: &str) -> Error {
    Error::Channel {
        name: name.to_owned(),
        reason: "its header was overwritten under this process (the magic at byte 0 is gone): \
                 another program wrote the channel's shared-memory object, or truncated it and \
                 grew it back; queued messages cannot be trusted: close every endpoint and \
                 create the channel again"
            .into(),
    }
}

/// The record headers as words of the ring's data (`offset`: 8-aligned, inside the
/// capacity: the ring masks every position; anything else is `Corrupted`, never a
/// wild access).
pub(crate) struct DataWords<'a>(&'a [AtomicU64]);

impl DataWords<'_> {
    #[inline(always)]
    fn word(&self, offset: u64) -> Result<&AtomicU64> {
        match self.0.get((offset / 8) as usize) {
            Some(w) if offset % 8 == 0 => Ok(w),
            _ => Err(Error::Corrupted {
                reason: format!("channel record header at data offset {offset}"),
            }),
        }
    }
}

impl Bytes for DataWords<'_> {
    #[inline(always)]
    fn load_header(&self, offset: u64, order: Ordering) -> Result<u64> {
        Ok(self.word(offset)?.load(order))
    }
    #[inline(always)]
    fn store_header(&self, offset: u64, word: u64, order: Ordering) -> Result<()> {
        self.word(offset)?.store(word, order);
        Ok(())
    }
}

/// Sleeping through the sync area's parker; a sleeper also watches `owner` (Windows: the
/// peer's process handle, so its death ends the sleep; Linux watches nothing: a sleep
/// lasts at most its slice).
pub(crate) struct AreaPark<'a> {
    pub area: &'a SyncArea<'static>,
    #[cfg_attr(target_os = "linux", allow(dead_code, reason = "watched on Windows only"))]
    owner: Cell<Option<u32>>,
}

impl AreaPark<'_> {
    /// Watches the endpoint of `token` while asleep from now on (a waiter sets it after
    /// each look at its peers: the one a wait began with may have died and another
    /// taken its place, and a dead one's handle would end every sleep at once).
    #[inline]
    pub(crate) fn watch(&self, token: Option<u32>) {
        self.owner.set(token);
    }
}

fn index(which: Which) -> u32 {
    match which {
        Which::NotEmpty => NOT_EMPTY_INDEX,
        Which::NotFull => NOT_FULL_INDEX,
    }
}

impl Park for AreaPark<'_> {
    fn prepare(&self, which: Which) -> Result<()> {
        // Windows creates the semaphore; a futex needs nothing (and the endpoint joined the
        // area when it attached), so Linux skips the area's member lookup per sleep.
        if cfg!(windows) { self.area.prepare_word(index(which)) } else { Ok(()) }
    }
    #[inline]
    fn park(
        &self,
        signal: &Signal,
        which: Which,
        expected: u32,
        timeout: Duration,
    ) -> Result<bool> {
        // Linux: a futex with a relative timeout, straight (no lookups, no clock read:
        // this runs on every sleep). Windows: the area's parker, which also watches the
        // owner's process.
        #[cfg(target_os = "linux")]
        {
            let _ = which;
            self.area.park_word_for(&signal.seq, expected, timeout).map(|()| false)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let deadline = Instant::now().checked_add(timeout);
            self.area.park_word(&signal.seq, index(which), expected, deadline, self.owner.get())
        }
    }
    fn unpark(&self, signal: &Signal, which: Which, n: u32) -> Result<()> {
        self.area.unpark_word(&signal.seq, index(which), n)
    }
}

impl Inner {
    #[inline]
    pub(crate) fn view(&self) -> &ViewMut {
        self.area.view()
    }

    #[inline]
    pub(crate) fn header(&self) -> Result<&Header> {
        self.view().get(0)
    }

    #[inline(always)]
    pub(crate) fn lines(&self) -> Result<&Lines> {
        Ok(self.hot.lines)
    }

    /// The header's epoch word (bumped on every attach and detach).
    #[inline(always)]
    pub(crate) fn epoch(&self) -> &AtomicU32 {
        self.hot.epoch
    }

    /// The channel as this process sees it: `area` owns the channel's view, whose
    /// `lost_pages` flag [`guard`] gave.
    pub(crate) fn new(
        name: &str,
        params: Params,
        lost_pages: &'static AtomicBool,
        area: SyncArea<'static>,
        mapping: Mapping,
    ) -> Result<Inner> {
        let hot = Hot::new(area.view(), &params)?;
        Ok(Inner {
            name: name.to_owned(),
            params,
            hot,
            lost_pages,
            area,
            _mapping: mapping,
            cldemote: has_cldemote(),
        })
    }

    /// Asks the CPU to move the cache lines of data bytes `offset..offset + len` toward the
    /// cache all CPUs share (`CLDEMOTE`, x86-64; a no-op elsewhere and on CPUs without it):
    /// a consumer that polls for them then reads them from there instead of from this
    /// CPU's own cache. For lines just written: the caller's stores reached them.
    /// <https://www.felixcloutier.com/x86/cldemote>
    #[inline(always)]
    pub(crate) fn demote(&self, offset: u64, len: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            let base = self.hot.data.as_ptr().cast::<u8>();
            let end = (offset + len).min(self.hot.data.len() as u64 * 8);
            let mut line = offset & !63;
            while line < end {
                // SAFETY: CLDEMOTE is a hint (in the NOP space where the CPU lacks it) that
                // changes no memory and no register (Intel SDM, CLDEMOTE). The address lies
                // in the ring's data, mapped while `self` lives, on a line the caller has
                // just written (its page is there: the instruction cannot fault on it).
                unsafe {
                    std::arch::asm!(
                        "cldemote [{}]",
                        in(reg) base.wrapping_add(line as usize),
                        options(nostack, preserves_flags, readonly)
                    );
                }
                line += 64;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (offset, len);
    }

    /// `Ok` unless a peer truncated the channel's object under this process: then a page
    /// of the ring reads as zeros here and this process's stores no longer reach the peers,
    /// so whatever the operation read or did is an error. A cut grown back before this
    /// process touched a lost page raised no flag, but left the header zeroed with the
    /// rest: the magic says so (a load of the header's line, which only attaches write).
    #[inline(always)]
    pub(crate) fn intact(&self) -> Result<()> {
        // The flag is raised by the SIGBUS handler on this very thread (when it was this
        // thread's access that faulted): keep the compiler from loading it before the
        // operation's accesses (`atomic_signal_fence`; no instruction).
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        if self.lost_pages.load(std::sync::atomic::Ordering::Relaxed) {
            Err(truncated(&self.name))
        } else if self.hot.magic.load(Relaxed) != layout::MAGIC {
            Err(overwritten(&self.name))
        } else {
            Ok(())
        }
    }

    fn entry(&self, i: usize) -> Result<&AtomicU64> {
        self.view().get(ENDPOINTS_AT + i * 8)
    }

    /// The side lock of `index` (`SEND_LOCK`, `RECV_LOCK`).
    pub(crate) fn lock_object(&self, index: u32) -> Result<&Object> {
        Ok(self.area.object(index, ObjectKind::Mutex, 0)?.0)
    }

    /// Takes the side lock `index` (MPMC: per operation; SPSC: for the endpoint's life),
    /// waiting until `deadline` (`None`: forever, `Some(past)`: only looks). `Ok(false)` if
    /// it is held (by a live owner, or by this very thread). A lock whose holder died is
    /// taken: the ring is consistent whatever the holder was doing, as only a store of a
    /// position ever publishes anything.
    pub(crate) fn lock(&self, index: u32, deadline: Option<Instant>) -> Result<bool> {
        use crate::sync::protocol::{self, LockFailure};
        let m = self.lock_object(index)?;
        let taken = if deadline.is_some_and(|d| d <= Instant::now()) {
            protocol::mutex_try_lock(m, &self.area).map(|l| l.is_some())
        } else {
            protocol::mutex_lock(m, index, &self.area, deadline).map(|_| true)
        };
        match taken {
            Ok(taken) => {
                if taken {
                    protocol::mutex_mark_consistent(m);
                }
                Ok(taken)
            }
            Err(LockFailure::Timeout) => Ok(false),
            Err(LockFailure::WouldDeadlock) => Err(Error::Channel {
                name: self.name.clone(),
                reason: "this thread already holds this side of the channel (a reservation or \
                         a message of another endpoint, or the SPSC endpoint itself): \
                         drop it first"
                    .into(),
            }),
            Err(LockFailure::Error(e)) => Err(e),
        }
    }

    /// MPMC: takes the side lock `index` (as [`lock`](Self::lock)) and loads this side's
    /// positions from the ring into `local` with `load`; `Ok(false)` if the lock was not
    /// had by `deadline`. A failed load gives the lock back and is the error.
    #[inline]
    pub(crate) fn lock_side<T>(
        &self,
        index: u32,
        deadline: Option<Instant>,
        local: &mut T,
        load: impl FnOnce(&Ring<'_, DataWords<'_>>) -> Result<T>,
    ) -> Result<bool> {
        if !self.lock(index, deadline)? {
            return Ok(false);
        }
        match self.with_ring(None, |r, _| load(r)) {
            Ok(Ok(loaded)) => {
                *local = loaded;
                Ok(true)
            }
            Ok(Err(e)) | Err(e) => {
                let _ = self.unlock(index);
                Err(e)
            }
        }
    }

    /// Gives the side lock `index` back.
    pub(crate) fn unlock(&self, index: u32) -> Result<()> {
        let m = self.lock_object(index)?;
        let token = crate::sync::protocol::Host::token(&self.area)?;
        crate::sync::protocol::mutex_unlock(m, index, &self.area, token, false)
    }

    /// Runs `f` on the ring, with a parker that watches `owner`; the truncation error
    /// ([`intact`](Self::intact)) instead of `f`'s result if a page was lost meanwhile.
    /// (`f` must not end holding a side's lock: the error would drop the result that says
    /// so. The MPMC operations check what `with_ring` returns and unlock on an error.)
    #[inline(always)]
    pub(crate) fn with_ring<R>(
        &self,
        owner: Option<u32>,
        f: impl FnOnce(&Ring<'_, DataWords<'_>>, &AreaPark<'_>) -> R,
    ) -> Result<R> {
        let r = self.with_ring_unchecked(owner, f);
        // What `f` read from a page that had gone was zeros, not the peers' words.
        self.intact()?;
        Ok(r)
    }

    /// [`with_ring`](Self::with_ring) without the check after `f`: for the waits, whose
    /// every attempt is an operation that checks (`next_in`, `try_claim_in`) and whose
    /// result may be a record or claim that holds the MPMC side's lock, which a check
    /// failing after it would lose, lock held.
    #[inline(always)]
    pub(crate) fn with_ring_unchecked<R>(
        &self,
        owner: Option<u32>,
        f: impl FnOnce(&Ring<'_, DataWords<'_>>, &AreaPark<'_>) -> R,
    ) -> R {
        let bytes = DataWords(self.hot.data);
        let ring = Ring {
            lines: self.hot.lines,
            bytes: &bytes,
            capacity: self.params.capacity,
            max_message: self.params.max_message,
        };
        f(&ring, &AreaPark { area: &self.area, owner: Cell::new(owner) })
    }

    /// Takes an entry in the endpoint table for `role`: a free one, or one whose process
    /// died. Returns its index.
    pub(crate) fn attach(&self, role: Role) -> Result<usize> {
        let token = self.area.token()?;
        let mine = layout::endpoint(role as u32, token);
        let h = self.header()?;
        for i in 0..ENDPOINTS {
            let e = self.entry(i)?;
            let found = e.load(Acquire);
            self.role_in(i, found)?;
            if found != 0 && !self.entry_dead(found)? {
                continue;
            }
            if e.compare_exchange(found, mine, AcqRel, Acquire).is_ok() {
                match role {
                    Role::Sender => h.sender_attaches.fetch_add(1, AcqRel),
                    Role::Receiver => h.receiver_attaches.fetch_add(1, AcqRel),
                };
                h.epoch.fetch_add(1, AcqRel);
                return Ok(i);
            }
        }
        Err(Error::Channel {
            name: self.name.clone(),
            reason: format!(
                "all {ENDPOINTS} endpoint entries are taken by live senders and receivers: \
                 close some first"
            ),
        })
    }

    /// Gives an entry back (an orderly close) and lets the other side know.
    pub(crate) fn detach(&self, i: usize, role: Role) {
        let (Ok(e), Ok(h)) = (self.entry(i), self.header()) else { return };
        let found = e.load(Acquire);
        if found >> 32 == role as u64 {
            let _ = e.compare_exchange(found, 0, AcqRel, Acquire);
        }
        h.epoch.fetch_add(1, AcqRel);
    }

    fn entry_dead(&self, entry: u64) -> Result<bool> {
        self.area.owner_dead(entry as u32)
    }

    /// The role in entry `i`, which holds `found` (`0`: free), checked: an entry is free
    /// or names a sender or a receiver; anything else is a peer's bytes over the table,
    /// `Error::Corrupted` (review 55: random bytes there made the sender say the receiver
    /// had gone and the receiver end without error with part of the stream).
    fn role_in(&self, i: usize, found: u64) -> Result<u64> {
        let role = found >> 32;
        if found == 0 || role == Role::Sender as u64 || role == Role::Receiver as u64 {
            return Ok(role);
        }
        Err(Error::Corrupted {
            reason: format!(
                "channel {:?}: endpoint table entry {i} holds {found:#018x}, which names no \
                 sender or receiver (another program wrote over the channel's table); close \
                 every endpoint and create the channel again",
                self.name
            ),
        })
    }

    /// The token of a live endpoint of `role`, if there is one.
    pub(crate) fn live(&self, role: Role) -> Result<Option<u32>> {
        for i in 0..ENDPOINTS {
            let found = self.entry(i)?.load(Acquire);
            if self.role_in(i, found)? == role as u64 && !self.entry_dead(found)? {
                return Ok(Some(found as u32));
            }
        }
        Ok(None)
    }

    /// How many endpoints of `role` are attached and alive.
    pub(crate) fn count_live(&self, role: Role) -> Result<u32> {
        let mut n = 0;
        for i in 0..ENDPOINTS {
            let found = self.entry(i)?.load(Acquire);
            if self.role_in(i, found)? == role as u64 && !self.entry_dead(found)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// How many endpoints of `role` ever attached.
    pub(crate) fn attaches(&self, role: Role) -> Result<u32> {
        let h = self.header()?;
        Ok(match role {
            Role::Sender => h.sender_attaches.load(Acquire),
            Role::Receiver => h.receiver_attaches.load(Acquire),
        })
    }
}

/// An `Arc<Inner>` with the calls both endpoints make.
pub(crate) type Shared = Arc<Inner>;
