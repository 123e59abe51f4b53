//! [`Sender`] and the zero-copy [`Reservation`].

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::errors::SendError;
use super::layout::{Kind, SEND_LOCK};
use super::peers::{Look, PeerWatch};
use super::ring::{Claim, Producer, Which};
use super::shared::{Inner, Role, Shared};
use super::wait;
use crate::error::{Error, Result};

/// The sending end of a channel: copies (`send`, `try_send`, `send_timeout`) or writes in
/// place ([`reserve`](Self::reserve) → [`Reservation::write_at`] →
/// [`Reservation::commit`]).
///
/// An SPSC channel has one sender at a time (a second is refused while the first lives;
/// one that replaces a killed sender continues after the last message it committed). An
/// MPMC channel has any number; each operation takes the send side's robust lock, so a
/// reservation keeps other senders waiting until it is committed or dropped.
///
/// Blocking forms spin briefly ([`set_spins`](Self::set_spins)), then sleep until a
/// receiver makes room; a receiver is woken only if it sleeps.
///
/// ```
/// use mmf::channel::{self, ChannelOptions};
///
/// # let name = format!("doc-sender-{}", std::process::id());
/// let ch = channel::create(&name, &ChannelOptions::new())?;
/// let (mut tx, mut rx) = (ch.sender()?, ch.receiver()?); // normally two processes
/// tx.send(b"copied")?;
/// let mut r = tx.reserve(5)?;
/// r.write_at(0, b"in pl")?;
/// r.commit()?;
/// assert_eq!(rx.recv()?.to_vec()?, b"copied");
/// assert_eq!(rx.recv()?.to_vec()?, b"in pl");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Sender {
    inner: Shared,
    entry: usize,
    producer: Producer,
    watch: PeerWatch,
    spins: u32,
    /// The time stamp counter at the last fast-path send ([`demote_after_a_pause`]).
    last_send: u64,
}

/// How long a send may wait.
#[derive(Clone, Copy)]
enum Wait {
    No,
    Until(Option<Instant>),
}

impl Sender {
    pub(crate) fn new(inner: Shared) -> Result<Sender> {
        let spsc = inner.params.kind == Kind::Spsc;
        // This thread's own endpoint (relock) is as taken as another process's.
        let free = match spsc.then(|| inner.lock(SEND_LOCK, Some(Instant::now()))) {
            None | Some(Ok(true)) => true,
            Some(Ok(false) | Err(Error::Channel { .. })) => false,
            Some(Err(e)) => return Err(e),
        };
        if !free {
            return Err(Error::Channel {
                name: inner.name.clone(),
                reason: "an SPSC channel has one sender, and a live process has it: close it \
                         first, or create an MPMC channel"
                    .into(),
            });
        }
        let attached = inner.attach(Role::Sender).and_then(|entry| {
            if spsc {
                // Any sleeper count left is a dead sender's (trap 7): only one sender sleeps.
                wait::clear_sleepers(&inner.lines()?.not_full);
            }
            // An MPMC sender starts from `producer()` under the send lock before each claim;
            // here the positions only have to check out.
            let producer = inner
                .with_ring(None, |r, _| if spsc { r.producer() } else { r.producer_unlocked() })
                .and_then(|p| p);
            // Its peers: the receivers alive now or attaching later.
            let watch = producer
                .and_then(|p| Ok((p, PeerWatch::attached(&inner, Role::Receiver, || Ok(false))?)));
            // Attached but failed (a corrupt or cut ring): the entry goes back, or peers
            // would count a sender for as long as this process lives.
            watch.inspect_err(|_| inner.detach(entry, Role::Sender)).map(|(p, w)| (entry, p, w))
        });
        let (entry, producer, watch) = match attached {
            Ok(v) => v,
            Err(e) => {
                if spsc {
                    let _ = inner.unlock(SEND_LOCK);
                }
                return Err(e);
            }
        };
        Ok(Sender { inner, entry, producer, watch, spins: super::default_spins(), last_send: 0 })
    }

    /// How many times a blocked send polls before it sleeps (default 20,000 where there is
    /// more than one CPU, else 0): what a send waiting for room costs in CPU against how
    /// soon it notices room.
    ///
    /// Past 4,096 polls a waiter gives the CPU up now and then (`sched_yield` /
    /// `SwitchToThread`) when the other side last ran on this CPU, so that two spinning
    /// processes sharing a CPU take turns without waiting for the scheduler to preempt one
    /// (and every 65,536 polls regardless). A deadline (`*_timeout`) is looked at while
    /// spinning too. `u32::MAX` polls last about 2 minutes (SPSC; ~6 MPMC) on a 2025 AMD EPYC.
    pub fn set_spins(&mut self, spins: u32) {
        self.spins = spins;
    }

    /// The largest message this channel takes, in bytes.
    pub fn max_message(&self) -> u32 {
        self.inner.params.max_message
    }

    /// Sends a copy of `message` if there is room now.
    ///
    /// # Errors
    /// [`SendError::Full`] (MPMC: also while another sender holds the send lock, a
    /// reservation); [`SendError::Disconnected`] once every receiver this sender had (alive
    /// when it attached, or attached since) has closed or died; [`SendError::Failed`] with [`Error::MessageTooLarge`] or
    /// [`Error::Corrupted`]. Each gives the message back.
    pub fn try_send<T: AsRef<[u8]>>(&mut self, message: T) -> Result<(), SendError<T>> {
        self.send_with(message, Wait::No)
    }

    /// Sends a copy of `message`, waiting for room as long as it takes.
    ///
    /// # Errors
    /// As [`try_send`](Self::try_send), without `Full`: a full ring whose receivers have
    /// all gone is `Disconnected`, never a wait forever. With no receiver yet (a kept
    /// channel whose last session ended), a full ring waits for one: bound it with
    /// [`send_timeout`](Self::send_timeout).
    #[inline]
    pub fn send<T: AsRef<[u8]>>(&mut self, message: T) -> Result<(), SendError<T>> {
        self.send_with(message, Wait::Until(None))
    }

    /// Sends a copy of `message`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`SendError::Timeout`].
    pub fn send_timeout<T: AsRef<[u8]>>(
        &mut self,
        message: T,
        timeout: Duration,
    ) -> Result<(), SendError<T>> {
        self.send_with(message, Wait::Until(Instant::now().checked_add(timeout)))
    }

    #[inline]
    fn send_with<T: AsRef<[u8]>>(&mut self, message: T, wait: Wait) -> Result<(), SendError<T>> {
        match self.send_cached(message.as_ref()) {
            Some(Ok(())) => Ok(()),
            // Committed; the wake-up, or the check after it, failed.
            Some(Err(error)) => Err(SendError::Failed { message, error }),
            None => self.send_general(message, wait),
        }
    }

    /// The common send on its own, so that nothing on its way moves a `Result` of an
    /// [`Error`] (48 bytes, through memory): an SPSC sender whose look at the receivers
    /// is not due, a message that fits before the end of the data with room by the cached
    /// head. `None`: nothing was published, and the general path sends (and says what
    /// went wrong, if something did). Half of a round trip's instructions were the
    /// general path's layers (`examples/chan_loop.rs` under callgrind).
    #[inline(always)]
    fn send_cached(&mut self, bytes: &[u8]) -> Option<Result<()>> {
        let Sender { inner, producer, watch, last_send, .. } = self;
        let inner: &Inner = inner;
        if inner.params.kind != Kind::Spsc || !watch.quiet(inner) {
            return None;
        }
        let len = u32::try_from(bytes.len()).ok().filter(|&l| l <= inner.params.max_message)?;
        let start = if inner.cldemote { time_stamp() } else { 0 };
        inner.with_ring_unchecked(None, |r, park| {
            let claim = r.claim_cached(producer, len)?;
            let at = super::layout::DATA_AT + claim.payload;
            // A copy that faulted: the general path copies again and says what happened.
            inner.view().write_at(at as usize, bytes).ok()?;
            let committed = r.commit(producer, claim, park);
            demote_after_a_pause(inner, start, last_send, claim);
            Some(committed.and_then(|()| inner.intact()))
        })
    }

    /// [`send_with`](Self::send_with) through claim, reservation and commit.
    #[inline(never)]
    fn send_general<T: AsRef<[u8]>>(&mut self, message: T, wait: Wait) -> Result<(), SendError<T>> {
        let bytes = message.as_ref();
        let len = bytes.len();
        let result = self.claim(len, wait).and_then(|claim| {
            let r = Reservation { tx: self, claim, done: false };
            r.write_at(0, bytes)?;
            r.commit().map_err(SendError::from)
        });
        result.map_err(|e| e.with(message))
    }

    /// Room for a message of `len` bytes, written in place and sent by
    /// [`Reservation::commit`]; waits for room as long as it takes. Dropping the
    /// reservation without committing sends nothing.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn reserve(&mut self, len: usize) -> Result<Reservation<'_>, SendError<()>> {
        self.reserve_with(len, Wait::Until(None))
    }

    /// [`reserve`](Self::reserve) if there is room now.
    ///
    /// # Errors
    /// As [`try_send`](Self::try_send).
    pub fn try_reserve(&mut self, len: usize) -> Result<Reservation<'_>, SendError<()>> {
        self.reserve_with(len, Wait::No)
    }

    /// [`reserve`](Self::reserve), waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`send_timeout`](Self::send_timeout).
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<Reservation<'_>, SendError<()>> {
        self.reserve_with(len, Wait::Until(Instant::now().checked_add(timeout)))
    }

    fn reserve_with(&mut self, len: usize, wait: Wait) -> Result<Reservation<'_>, SendError<()>> {
        let claim = self.claim(len, wait)?;
        Ok(Reservation { tx: self, claim, done: false })
    }

    #[inline]
    fn mpmc(&self) -> bool {
        self.inner.params.kind == Kind::Mpmc
    }

    /// Claims room, as `wait` allows.
    #[inline(always)]
    fn claim(&mut self, len: usize, wait: Wait) -> Result<Claim, SendError<()>> {
        let max = self.inner.params.max_message;
        let Some(len) = u32::try_from(len).ok().filter(|&l| l <= max) else {
            return Err(Error::MessageTooLarge { len, max }.into());
        };
        if self.watch.gone(&self.inner, Look::Op)? {
            return Err(SendError::Disconnected(()));
        }
        // MPMC: the send lock looked at (`try_send`) or waited for until the deadline.
        let first = match wait {
            Wait::No => self.mpmc().then(Instant::now),
            Wait::Until(deadline) => deadline,
        };
        match self.try_claim(len, first)? {
            Some(claim) => Ok(claim),
            None => self.claim_wait(len, wait),
        }
    }

    /// [`claim`](Self::claim) when the ring is full: spin, then sleep, as `wait` allows.
    #[inline(never)]
    fn claim_wait(&mut self, len: u32, wait: Wait) -> Result<Claim, SendError<()>> {
        let deadline = match wait {
            Wait::No => {
                return Err(if self.watch.gone(&self.inner, Look::Op)? {
                    SendError::Disconnected(())
                } else {
                    SendError::Full(())
                });
            }
            Wait::Until(deadline) => deadline,
        };
        // The fields apart (not a clone of the `Arc`: two read-modify-writes per wait).
        let mpmc = self.mpmc();
        let Sender { inner, producer, watch, spins, .. } = &mut *self;
        let inner: &Inner = inner;
        let owner = if mpmc { None } else { watch.token };
        // SPSC: the head, polled alone while spinning until it moves (MPMC: another sender
        // may fill the room; look every time).
        let seen = producer.head_cache;
        // Unchecked: each attempt checks (`next_in`, `try_claim_in`), and what one found
        // holds the MPMC side's lock.
        let waited = inner.with_ring_unchecked(owner, |ring, park| {
            let head = &ring.lines.head.pos;
            let ready = || mpmc || head.load(Relaxed) != seen;
            wait::wait(ring.lines, Which::NotFull, park, *spins, deadline, ready, |look| {
                if let Some(claim) = try_claim_in(inner, producer, len, deadline)? {
                    return Ok(Some(Ok(claim)));
                }
                if watch.gone_while_waiting(inner, look, park, mpmc)? {
                    return Ok(Some(Err(SendError::Disconnected(()))));
                }
                Ok(None)
            })
        })?;
        waited.unwrap_or(Err(SendError::Timeout(())))
    }

    /// One look for room: MPMC takes the send lock first (kept with the claim).
    #[inline(always)]
    fn try_claim(&mut self, len: u32, deadline: Option<Instant>) -> Result<Option<Claim>> {
        try_claim_in(&self.inner, &mut self.producer, len, deadline)
    }
}

/// Time stamp counter ticks (~0.3 µs at 3 GHz) between the starts of two fast-path sends
/// past which a send is taken for one a consumer waits for, not one of a stream (a send
/// through the general path, after a wait for room say, leaves the last start as it was:
/// the next may demote, which costs speed only).
const PAUSE_TICKS: u64 = 1000;

/// The largest record [`demote_after_a_pause`] demotes: a small message's round trip is
/// its lines' latency; a large one's, its copies.
const DEMOTE_MAX: u64 = 128;

/// The time stamp counter (x86-64; 0 elsewhere, where nothing is demoted).
#[inline(always)]
fn time_stamp() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC reads the time stamp counter; it has no other effect.
    return unsafe { std::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// After a send of a small record that began a pause after the last one began (`start`,
/// `last_send`), pushes the record's lines toward the shared cache ([`Inner::demote`]): a
/// consumer polling for it reads them from there, not from this CPU (a polled 64-byte
/// round trip: 636–640 → 548–560 ns here). Not in a stream: a record's last line also
/// holds the next record's header, which the next send writes, and demoting after every
/// send made one-way throughput 2–3x slower (64 B: 87 → 205 ns a message; 4 KiB: 0.36 →
/// 1.1 µs).
#[inline(always)]
fn demote_after_a_pause(inner: &Inner, start: u64, last_send: &mut u64, claim: Claim) {
    let size = super::layout::record_size(claim.len);
    if inner.cldemote && size <= DEMOTE_MAX && start.wrapping_sub(*last_send) > PAUSE_TICKS {
        inner.demote(claim.at, size + super::layout::RECORD_HEADER); // and the next header
    }
    *last_send = start;
}

/// [`Sender::try_claim`] on the sender's fields.
#[inline(always)]
fn try_claim_in(
    inner: &Inner,
    producer: &mut Producer,
    len: u32,
    deadline: Option<Instant>,
) -> Result<Option<Claim>> {
    let mpmc = inner.params.kind == Kind::Mpmc;
    let was = *producer;
    if mpmc
        && !inner.lock_side(SEND_LOCK, deadline, producer, |r| {
            r.producer().map(|p| p.counting_on(&was))
        })?
    {
        return Ok(None);
    }
    // A claim is written by a guarded copy and published by `commit`, which checks; "full"
    // or an error may come from zeros, so those check here. A truncation error gives the
    // lock back too.
    let claimed = match inner.with_ring_unchecked(None, |r, park| r.try_claim(producer, len, park))
    {
        Ok(Some(claim)) => Ok(Some(claim)),
        other => inner.intact().and(other),
    };
    if mpmc && !matches!(claimed, Ok(Some(_))) {
        inner.unlock(SEND_LOCK)?;
    }
    claimed
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Errors are ignored: the process may be going away; a dead entry is taken back
        // by liveness anyway.
        self.inner.detach(self.entry, Role::Sender);
        let _ = self.inner.with_ring(None, |r, park| {
            // Wake sleeping receivers, so that they see the close.
            let _ = r.wake_all(park);
        });
        if !self.mpmc() {
            let _ = self.inner.unlock(SEND_LOCK);
        }
    }
}

/// Room for one message in the ring, written in place and sent by
/// [`commit`](Self::commit); dropped without committing, it sends nothing.
///
/// ```
/// use mmf::channel::{self, ChannelOptions};
///
/// # let name = format!("doc-reserve-{}", std::process::id());
/// let ch = channel::create(&name, &ChannelOptions::new())?;
/// let mut tx = ch.sender()?;
/// let r = tx.reserve(8)?;
/// r.write_at(0, &42u64.to_le_bytes())?;
/// drop(r); // aborted: nothing sent
/// let r = tx.reserve(8)?;
/// r.write_at(0, &43u64.to_le_bytes())?;
/// r.commit()?;
/// let mut rx = ch.receiver()?;
/// assert_eq!(rx.try_recv()?.to_vec()?, 43u64.to_le_bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a reservation sends nothing until it is committed"]
#[derive(Debug)]
pub struct Reservation<'s> {
    tx: &'s mut Sender,
    claim: Claim,
    done: bool,
}

impl Reservation<'_> {
    /// The message's length in bytes (as reserved).
    pub fn len(&self) -> usize {
        self.claim.len as usize
    }

    /// Whether the message is empty (a reservation of 0 bytes).
    pub fn is_empty(&self) -> bool {
        self.claim.len == 0
    }

    /// Copies `data` into the message at byte `offset`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] past the reserved length; the view's copy errors.
    #[inline]
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        let len = self.claim.len as usize;
        if offset.checked_add(data.len()).is_none_or(|end| end > len) {
            return Err(Error::OutOfRange {
                offset: offset as u64,
                len: data.len() as u64,
                size: len as u64,
            });
        }
        let at = super::layout::DATA_AT + self.claim.payload + offset as u64;
        let inner = &self.tx.inner;
        // A copy that faulted on a cut page: the channel's truncation error, if the cut
        // reached the words the claim was made from too (the claim does not check).
        inner.view().write_at(at as usize, data).or_else(|e| inner.intact().and(Err(e)))
    }

    /// Sends the message: publishes it with one store and wakes a receiver if one sleeps.
    ///
    /// # Errors
    /// [`Error::Corrupted`] or an OS error from the wake-up; the message is committed
    /// unless the header write failed.
    #[inline]
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let tx = &mut *self.tx;
        let (claim, producer) = (self.claim, &mut tx.producer);
        let committed =
            tx.inner.with_ring(None, |r, park| r.commit(producer, claim, park)).and_then(|c| c);
        if tx.mpmc() {
            tx.inner.unlock(SEND_LOCK)?;
        }
        committed
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done && self.tx.mpmc() {
            let _ = self.tx.inner.unlock(SEND_LOCK); // aborted: nothing was published
        }
    }
}
