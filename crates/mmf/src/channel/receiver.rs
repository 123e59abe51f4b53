//! [`Receiver`] and the [`Message`] it reads in place.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::errors::RecvError;
use super::layout::{DATA_AT, Kind, RECV_LOCK};
use super::peers::{Look, PeerWatch};
use super::ring::{Consumer, Record, Which};
use super::shared::{Inner, Role, Shared};
use super::wait;
use crate::Shared as SharedType;
use crate::error::{Error, Result};

/// The receiving end of a channel. A message is read in place and released when the
/// [`Message`] is dropped.
///
/// An SPSC channel has one receiver at a time; one that replaces a killed receiver gets
/// the message the dead one held (it was never released) and everything after it. An
/// MPMC channel has any number; a [`Message`] holds the receive side's robust lock until
/// it is dropped, so drop it promptly (copy out what you keep).
///
/// Blocking forms spin briefly ([`set_spins`](Self::set_spins)), then sleep until a sender
/// commits; a sender is woken only if it sleeps.
///
/// ```
/// use std::time::Duration;
///
/// use mmf::channel::{self, ChannelOptions, RecvError};
///
/// # let name = format!("doc-receiver-{}", std::process::id());
/// let ch = channel::create(&name, &ChannelOptions::new())?;
/// let mut rx = ch.receiver()?;
/// assert!(matches!(rx.try_recv(), Err(RecvError::Empty)));
/// let mut tx = ch.sender()?; // normally another process
/// tx.send(b"hello")?;
/// let m = rx.recv_timeout(Duration::from_secs(1))?;
/// let mut buf = [0u8; 5];
/// m.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// drop(m); // released: its room is the sender's again
/// drop(tx); // closed: the receiver sees it once the ring is empty
/// assert!(matches!(rx.try_recv(), Err(RecvError::Disconnected)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Receiver {
    inner: Shared,
    entry: usize,
    consumer: Consumer,
    watch: PeerWatch,
    spins: u32,
}

impl Receiver {
    pub(crate) fn new(inner: Shared) -> Result<Receiver> {
        let spsc = inner.params.kind == Kind::Spsc;
        // This thread's own endpoint (relock) is as taken as another process's.
        let free = match spsc.then(|| inner.lock(RECV_LOCK, Some(Instant::now()))) {
            None | Some(Ok(true)) => true,
            Some(Ok(false) | Err(Error::Channel { .. })) => false,
            Some(Err(e)) => return Err(e),
        };
        if !free {
            return Err(Error::Channel {
                name: inner.name.clone(),
                reason: "an SPSC channel has one receiver, and a live process has it: close \
                         it first, or create an MPMC channel"
                    .into(),
            });
        }
        let attached = inner.attach(Role::Receiver).and_then(|entry| {
            if spsc {
                wait::clear_sleepers(&inner.lines()?.not_empty);
            }
            let consumer = inner.with_ring(None, |r, _| r.consumer()).and_then(|c| c);
            // Its peers: the senders alive now or attaching later, and those whose messages
            // are queued (a consumer started after its producer ended drains, then ends).
            let watch = consumer.and_then(|c| {
                let queued = || Ok(inner.with_ring(None, |r, _| r.queued_bytes())? > 0);
                Ok((c, PeerWatch::attached(&inner, Role::Sender, queued)?))
            });
            // Attached but failed (a corrupt or cut ring): the entry goes back, or peers
            // would count a receiver for as long as this process lives.
            watch.inspect_err(|_| inner.detach(entry, Role::Receiver)).map(|(c, w)| (entry, c, w))
        });
        let (entry, consumer, watch) = match attached {
            Ok(v) => v,
            Err(e) => {
                if spsc {
                    let _ = inner.unlock(RECV_LOCK);
                }
                return Err(e);
            }
        };
        Ok(Receiver { inner, entry, consumer, watch, spins: super::default_spins() })
    }

    /// How many times a blocked receive polls before it sleeps (default 20,000 where
    /// there is more than one CPU, else 0).
    ///
    /// Past 4,096 polls a waiter gives the CPU up now and then (`sched_yield` /
    /// `SwitchToThread`) when the other side last ran on this CPU, so that two spinning
    /// processes sharing a CPU take turns without waiting for the scheduler to preempt one
    /// (and every 65,536 polls regardless). A deadline (`*_timeout`) is looked at while
    /// spinning too. `u32::MAX` polls last about 2 minutes (SPSC; ~6 MPMC) on a 2025 AMD EPYC.
    pub fn set_spins(&mut self, spins: u32) {
        self.spins = spins;
    }

    #[inline]
    fn mpmc(&self) -> bool {
        self.inner.params.kind == Kind::Mpmc
    }

    /// The next message, if one is queued now.
    ///
    /// # Errors
    /// [`RecvError::Empty`] (MPMC: also while another receiver holds a message, and with it
    /// the receive lock); [`RecvError::Disconnected`] once the ring is empty and every
    /// sender this receiver had has closed or died (those alive when it attached, attached
    /// since, or whose messages it found queued; with none, an empty ring is `Empty`); [`RecvError::Failed`] with
    /// [`Error::Corrupted`] if a peer wrote positions or records that cannot be.
    pub fn try_recv(&mut self) -> Result<Message<'_>, RecvError> {
        if let Some(record) = peek_cached(&self.inner, &self.consumer) {
            return Ok(Message { rx: self, record, done: false });
        }
        // MPMC: only a look at the receive lock (another receiver may hold a message).
        let now = self.mpmc().then(Instant::now);
        match self.next(now)? {
            Some(record) => Ok(Message { rx: self, record, done: false }),
            None if self.watch.gone(&self.inner, Look::Op)? => self.last_look(),
            None => Err(RecvError::Empty),
        }
    }

    /// The next message, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv), without `Empty`.
    #[inline]
    pub fn recv(&mut self) -> Result<Message<'_>, RecvError> {
        self.recv_until(None)
    }

    /// The next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv`](Self::recv), and [`RecvError::Timeout`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message<'_>, RecvError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    #[inline(always)]
    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Message<'_>, RecvError> {
        if let Some(record) = peek_cached(&self.inner, &self.consumer) {
            return Ok(Message { rx: self, record, done: false });
        }
        // SPSC only: MPMC receivers share the head under a lock, and keep their whole budget.
        let polls = if self.mpmc() { 0 } else { self.spins.min(INLINE_POLLS) };
        if polls > 0 {
            let (inner, consumer) = (&self.inner, &self.consumer);
            if let Some(record) =
                inner.with_ring_unchecked(None, |r, _| r.poll_message(consumer, polls))
            {
                return Ok(Message { rx: self, record, done: false });
            }
        }
        // MPMC: the receive lock waited for until the deadline, not past it.
        match self.next(deadline)? {
            Some(record) => Ok(Message { rx: self, record, done: false }),
            None => self.recv_wait(deadline, self.spins - polls),
        }
    }

    /// [`recv_until`](Self::recv_until) when nothing is queued: spin, then sleep.
    /// `spins`: the polls left of the receiver's [`set_spins`](Self::set_spins).
    #[inline(never)]
    fn recv_wait(
        &mut self,
        deadline: Option<Instant>,
        spins: u32,
    ) -> Result<Message<'_>, RecvError> {
        // The fields apart (not a clone of the `Arc`: two read-modify-writes per wait).
        let mpmc = self.mpmc();
        let Receiver { inner, consumer, watch, .. } = &mut *self;
        let inner: &Inner = inner;
        let owner = if mpmc { None } else { watch.token };
        // SPSC: the header the next record will be committed through, polled alone while
        // spinning (MPMC: another receiver may move the head; look every time).
        let probe = match mpmc {
            true => None,
            false => {
                let at = DATA_AT + (consumer.head & (inner.params.capacity - 1));
                Some(inner.view().get::<AtomicU64>(at as usize)?)
            }
        };
        let ready = || probe.is_none_or(|header| header.load(Relaxed) != 0);
        // Unchecked: each attempt checks (`next_in`, `try_claim_in`), and what one found
        // holds the MPMC side's lock.
        let waited = inner.with_ring_unchecked(owner, |ring, park| {
            wait::wait(ring.lines, Which::NotEmpty, park, spins, deadline, ready, |look| {
                if let Some(record) = peek_cached(inner, consumer) {
                    return Ok(Some(Some(record)));
                }
                if let Some(record) = next_in(inner, consumer, deadline)? {
                    return Ok(Some(Some(record)));
                }
                Ok(watch.gone_while_waiting(inner, look, park, mpmc)?.then_some(None))
            })
        })?;
        match waited {
            Some(Some(record)) => Ok(Message { rx: self, record, done: false }),
            Some(None) => self.last_look(),
            None => Err(RecvError::Timeout),
        }
    }

    /// The senders have gone: what they committed before going is still received. (MPMC:
    /// waits for the receive lock, whose holder may hold the last message: a lock not had
    /// would say nothing about the ring being empty.)
    fn last_look(&mut self) -> Result<Message<'_>, RecvError> {
        match self.next(None)? {
            Some(record) => Ok(Message { rx: self, record, done: false }),
            None => Err(RecvError::Disconnected),
        }
    }

    /// One look for a record: MPMC takes the receive lock first (kept with the record).
    #[inline(always)]
    fn next(&mut self, deadline: Option<Instant>) -> Result<Option<Record>> {
        next_in(&self.inner, &mut self.consumer, deadline)
    }
}

/// The common look on its own (as [`Sender`](super::Sender)'s `send_cached`): an SPSC
/// receiver, a message committed at the head. `None`: the general path looks (an empty
/// ring, a pad, a header that does not check out, MPMC's lock).
#[inline(always)]
fn peek_cached(inner: &Inner, consumer: &Consumer) -> Option<Record> {
    if inner.params.kind != Kind::Spsc {
        return None;
    }
    inner.with_ring_unchecked(None, |r, _| r.peek_message(consumer))
}

/// How many of a blocking receive's polls are made inline
/// ([`Ring::poll_message`](super::ring::Ring::poll_message)) before the general wait: a few
/// microseconds of pauses, so that a peer's death is still looked at by the wait soon after.
const INLINE_POLLS: u32 = 256;

/// [`Receiver::next`] on the receiver's fields.
#[inline(always)]
fn next_in(
    inner: &Inner,
    consumer: &mut Consumer,
    deadline: Option<Instant>,
) -> Result<Option<Record>> {
    let mpmc = inner.params.kind == Kind::Mpmc;
    let was = *consumer;
    if mpmc
        && !inner.lock_side(RECV_LOCK, deadline, consumer, |r| {
            r.consumer().map(|c| c.counting_on(&was))
        })?
    {
        return Ok(None);
    }
    // A record found was read from a page still there (a lost one reads as zeros: no
    // record), and what reads it next checks (`read_at`, the release); "none" or an error
    // may come from zeros, so those check here. A truncation error gives the lock back too.
    let found = match inner.with_ring_unchecked(None, |r, park| r.try_peek(consumer, park)) {
        Ok(Some(record)) => Ok(Some(record)),
        other => inner.intact().and(other),
    };
    if mpmc && !matches!(found, Ok(Some(_))) {
        inner.unlock(RECV_LOCK)?;
    }
    found
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Errors are ignored: a dead entry is taken back by liveness anyway.
        self.inner.detach(self.entry, Role::Receiver);
        let _ = self.inner.with_ring(None, |r, park| {
            let _ = r.wake_all(park); // blocked senders look again and see the close
        });
        if !self.mpmc() {
            let _ = self.inner.unlock(RECV_LOCK);
        }
    }
}

/// A message in the ring, read in place; dropping it releases its room to the senders.
///
/// Safe reads are copies ([`read_at`](Self::read_at), [`to_vec`](Self::to_vec)) or
/// atomics and `#[repr(C)]` atomics types ([`get`](Self::get)); a `&[u8]` comes from the
/// `unsafe` [`as_slice`](Self::as_slice). A message's bytes never change while it is held:
/// senders write only released room.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// use mmf::channel::{self, ChannelOptions};
///
/// # let name = format!("doc-message-{}", std::process::id());
/// let ch = channel::create(&name, &ChannelOptions::new())?;
/// let (mut tx, mut rx) = (ch.sender()?, ch.receiver()?);
/// tx.send(7u64.to_le_bytes())?;
/// let m = rx.recv()?;
/// assert_eq!(m.len(), 8);
/// assert_eq!(m.get::<AtomicU64>(0)?.load(Ordering::Relaxed), 7); // payloads are 8-aligned
/// // SAFETY: nothing writes a held message.
/// assert_eq!(unsafe { m.as_slice() }, 7u64.to_le_bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a message is released (and lost) when dropped"]
#[derive(Debug)]
pub struct Message<'r> {
    rx: &'r mut Receiver,
    record: Record,
    done: bool,
}

impl Message<'_> {
    /// The message's length in bytes.
    pub fn len(&self) -> usize {
        self.record.len as usize
    }

    /// Whether the message has no bytes.
    pub fn is_empty(&self) -> bool {
        self.record.len == 0
    }

    #[inline]
    fn at(&self, offset: usize, len: usize) -> Result<usize> {
        let size = self.len();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::OutOfRange {
                offset: offset as u64,
                len: len as u64,
                size: size as u64,
            });
        }
        Ok((DATA_AT + self.record.payload) as usize + offset)
    }

    /// Copies `buf.len()` bytes of the message, from byte `offset`, into `buf`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] past the message's end; the view's copy errors; on Linux,
    /// [`Error::Channel`] if a peer truncated the channel's object under this process (the
    /// copy may have read a zero page put where a lost page was, not the sender's bytes).
    #[inline]
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let inner = &self.rx.inner;
        inner.view().read_at(self.at(offset, buf.len())?, buf)?;
        // A page of the message lost and replaced by a zero page (some other access here
        // faulted on it first) copies without a fault: only the flag tells.
        inner.intact()
    }

    /// The whole message, copied.
    ///
    /// # Errors
    /// As [`read_at`](Self::read_at).
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0; self.len()];
        self.read_at(0, &mut v)?;
        Ok(v)
    }

    /// A `T` of atomics at byte `offset` of the message (payloads start 8-aligned), as
    /// [`ViewMut::get`](crate::ViewMut::get).
    ///
    /// Linux: if a peer truncates the channel's object while the message is held, loads
    /// through the `T` read zeros (a zero page in place of the lost page), not the
    /// sender's bytes, and nothing can tell them apart; [`release`](Self::release) (and a
    /// [`read_at`](Self::read_at)) then returns [`Error::Channel`]: check its result
    /// before trusting what was read.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] if `T` does not fit; [`Error::Misaligned`].
    pub fn get<T: SharedType>(&self, offset: usize) -> Result<&T> {
        self.rx.inner.view().get(self.at(offset, size_of::<T>())?)
    }

    /// The message as a byte slice, in place.
    ///
    /// Linux: a peer that truncates the channel's object while the slice lives makes the
    /// lost bytes read as zeros, as for [`get`](Self::get); [`release`](Self::release)
    /// then returns [`Error::Channel`].
    ///
    /// # Safety
    /// Nothing in mmf writes a held message, but the memory is shared: the caller promises
    /// that no other program writes the channel's mapping while the slice lives.
    pub unsafe fn as_slice(&self) -> &[u8] {
        let at = (DATA_AT + self.record.payload) as usize;
        // SAFETY: the record lies inside the view (checked against the capacity when it was
        // read); the caller promises that nothing changes these bytes meanwhile.
        unsafe { &self.rx.inner.view().as_slice()[at..at + self.len()] }
    }

    /// Releases the message now and reports a failure to wake a sleeping sender, which
    /// dropping ignores.
    ///
    /// # Errors
    /// An OS error from the wake-up; on Linux, [`Error::Channel`] if a peer truncated the
    /// channel's object under this process.
    pub fn release(mut self) -> Result<()> {
        self.finish()
    }

    #[inline]
    fn finish(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        let rx = &mut *self.rx;
        let (record, consumer) = (self.record, &mut rx.consumer);
        let released =
            rx.inner.with_ring(None, |r, park| r.release(consumer, record, park)).and_then(|r| r);
        if rx.mpmc() {
            rx.inner.unlock(RECV_LOCK)?;
        }
        released
    }
}

impl Drop for Message<'_> {
    #[inline]
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
