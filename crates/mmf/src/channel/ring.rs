//! The ring of records and the sleep handshake, written once over `primitive` atomics, a
//! [`Bytes`] store and a [`Park`] host, so that loom runs the very same code
//! (`loom_tests.rs`) with model memory that reports data races.
//!
//! One producer and one consumer at a time (the MPMC kind serializes each side under a
//! robust lock). Each side keeps its own position privately and a cached copy of the
//! other's, and reads the other's shared position only when its cache says full (or
//! empty): Agrona's head cache. Every position a peer wrote is validated when it is read
//! (`head <= tail <= head + capacity`, 8-aligned), and every record header before it is
//! used (kind, `len <= max`, inside what was published, never across the end): a peer's
//! bytes are never trusted twice and never index memory unchecked.
//!
//! The sleep handshake (research/wave2.md §2.2 trap 2): a sleeper adds itself to the
//! signal's `sleepers` and arms `seq` (sets its low bit), both SeqCst, looks at the ring
//! again, and sleeps only while `seq` is what it armed; a waker publishes its position
//! (SeqCst) and, only if it then sees a sleeper and an armed `seq`, moves `seq` on (clearing
//! the bit) and wakes. Either the sleeper's second look sees the new position or the waker
//! sees the armed sleeper, so no wake-up is lost; a side that does not sleep costs the
//! other no system call, and a sleeper costs one wake-up call however many messages are
//! committed before it runs again.

use std::time::{Duration, Instant};

use super::layout::{Lines, MSG, PAD, RECORD_HEADER, Signal, record_size};
use crate::error::{Error, Result};
use crate::primitive::spin_loop;
use crate::primitive::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};

/// The handshake's order point under loom, which models SeqCst accesses as
/// acquire/release only (as in `sync::protocol`).
#[inline(always)]
fn handshake_fence() {
    #[cfg(mmf_loom)]
    crate::primitive::sync::atomic::fence(SeqCst);
}

/// The ring's data bytes (offsets relative to the data's start, inside the capacity).
pub(crate) trait Bytes {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    fn write(&self, offset: u64, data: &[u8]) -> Result<()>;
}

/// Which signal a sleeper waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    NotEmpty,
    NotFull,
}

/// Sleeping and waking on a signal's `seq` word.
pub(crate) trait Park {
    /// Called before a thread declares itself a sleeper (Windows creates the semaphore).
    fn prepare(&self, which: Which) -> Result<()>;
    /// Sleeps while `seq` holds `expected`, until `deadline`; may return early.
    fn park(&self, signal: &Signal, which: Which, expected: u32, deadline: Instant) -> Result<()>;
    /// Wakes up to `n` sleepers.
    fn unpark(&self, signal: &Signal, which: Which, n: u32) -> Result<()>;
}

fn corrupted(what: impl Into<String>) -> Error {
    Error::Corrupted { reason: what.into() }
}

/// The ring: shared control words, data, geometry.
pub(crate) struct Ring<'a, B> {
    pub lines: &'a Lines,
    pub bytes: &'a B,
    pub capacity: u64,
    pub max_message: u32,
}

/// A producer's private state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Producer {
    tail: u64,
    head_cache: u64,
}

/// Space claimed for one record: its payload starts at data offset `payload`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Claim {
    pub payload: u64,
    pub len: u32,
    /// Where the record's header is, and the tail once it is committed.
    at: u64,
    end: u64,
}

/// A consumer's private state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Consumer {
    head: u64,
    tail_cache: u64,
}

/// A committed record in place: payload at data offset `payload`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    pub payload: u64,
    pub len: u32,
    end: u64,
}

impl<B: Bytes> Ring<'_, B> {
    #[inline]
    fn offset(&self, pos: u64) -> u64 {
        pos & (self.capacity - 1)
    }

    /// Checks a `(head, tail)` pair, one of them read from shared memory.
    fn check(&self, head: u64, tail: u64, what: &str) -> Result<()> {
        if tail < head || tail - head > self.capacity || head % 8 != 0 || tail % 8 != 0 {
            return Err(corrupted(format!(
                "channel {what}: head {head}, tail {tail}, capacity {}",
                self.capacity
            )));
        }
        Ok(())
    }

    /// A producer starting from the committed tail (a new or restarted sender, or the MPMC
    /// lock's new holder).
    pub(crate) fn producer(&self) -> Result<Producer> {
        let tail = self.lines.tail.pos.load(Acquire);
        let head = self.lines.head.pos.load(Acquire);
        self.check(head, tail, "positions")?;
        Ok(Producer { tail, head_cache: head })
    }

    /// A consumer starting from the released head.
    pub(crate) fn consumer(&self) -> Result<Consumer> {
        let head = self.lines.head.pos.load(Acquire);
        let tail = self.lines.tail.pos.load(Acquire);
        self.check(head, tail, "positions")?;
        Ok(Consumer { head, tail_cache: tail })
    }

    /// Whether the producer has `need` bytes free at its tail, reading the consumer's head
    /// again only if the cached one says no.
    fn has_room(&self, p: &mut Producer, need: u64) -> Result<bool> {
        if p.tail + need - p.head_cache <= self.capacity {
            return Ok(true);
        }
        let head = self.lines.head.pos.load(SeqCst);
        self.check(head, p.tail, "head read by the producer")?;
        if head < p.head_cache {
            return Err(corrupted(format!(
                "channel head went back from {} to {head}",
                p.head_cache
            )));
        }
        p.head_cache = head;
        Ok(p.tail + need - head <= self.capacity)
    }

    /// Claims room for a record of `len` payload bytes (`len <= max_message`, checked by
    /// the caller): `None` if the ring is full. Where the record would cross the end of
    /// the data, a pad record fills the rest first (published at once if the record
    /// itself does not fit yet).
    pub(crate) fn try_claim<P: Park>(
        &self,
        p: &mut Producer,
        len: u32,
        park: &P,
    ) -> Result<Option<Claim>> {
        let size = record_size(len);
        loop {
            let at = self.offset(p.tail);
            let to_end = self.capacity - at;
            if size <= to_end {
                if !self.has_room(p, size)? {
                    return Ok(None);
                }
                let end = p.tail + size;
                return Ok(Some(Claim { payload: at + RECORD_HEADER, len, at, end }));
            }
            // Pad to the end, then the record at 0.
            if self.has_room(p, to_end + size)? {
                self.write_header(at, (to_end - RECORD_HEADER) as u32, PAD)?;
                let end = p.tail + to_end + size;
                return Ok(Some(Claim { payload: RECORD_HEADER, len, at: 0, end }));
            }
            if !self.has_room(p, to_end)? {
                return Ok(None);
            }
            // Only the pad fits now: publish it alone, so the consumer frees the space.
            self.write_header(at, (to_end - RECORD_HEADER) as u32, PAD)?;
            p.tail += to_end;
            self.publish_tail(p.tail, park)?;
        }
    }

    fn write_header(&self, at: u64, len: u32, kind: u32) -> Result<()> {
        let mut h = [0u8; 8];
        h[..4].copy_from_slice(&len.to_le_bytes());
        h[4..].copy_from_slice(&kind.to_le_bytes());
        self.bytes.write(at, &h)
    }

    /// Commits a claimed record: its header, then the one store of `tail` that publishes
    /// it (and any pad before it), then a wake-up if a consumer sleeps.
    pub(crate) fn commit<P: Park>(&self, p: &mut Producer, claim: Claim, park: &P) -> Result<()> {
        self.write_header(claim.at, claim.len, MSG)?;
        p.tail = claim.end;
        self.publish_tail(claim.end, park)
    }

    fn publish_tail<P: Park>(&self, tail: u64, park: &P) -> Result<()> {
        self.lines.tail.pos.store(tail, SeqCst);
        wake(&self.lines.not_empty, Which::NotEmpty, park)
    }

    /// The next committed record at the consumer's head, skipping pads: `None` if the
    /// ring is empty.
    pub(crate) fn try_peek<P: Park>(&self, c: &mut Consumer, park: &P) -> Result<Option<Record>> {
        loop {
            if c.head == c.tail_cache {
                let tail = self.lines.tail.pos.load(SeqCst);
                self.check(c.head, tail, "tail read by the consumer")?;
                c.tail_cache = tail;
                if tail == c.head {
                    return Ok(None);
                }
            }
            let at = self.offset(c.head);
            let published = c.tail_cache - c.head;
            let mut h = [0u8; 8];
            self.bytes.read(at, &mut h)?;
            let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            let kind = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            let size = record_size(len);
            match kind {
                PAD if size == self.capacity - at && size <= published => {
                    c.head += size;
                    self.publish_head(c.head, park)?;
                }
                MSG if len <= self.max_message
                    && at + size <= self.capacity
                    && size <= published =>
                {
                    return Ok(Some(Record {
                        payload: at + RECORD_HEADER,
                        len,
                        end: c.head + size,
                    }));
                }
                _ => {
                    return Err(corrupted(format!(
                        "channel record at data offset {at}: kind {kind:#x}, length {len} \
                         (maximum {}, {published} bytes published, {} to the end)",
                        self.max_message,
                        self.capacity - at
                    )));
                }
            }
        }
    }

    /// Releases a record: the head moves past it, and a sleeping producer is woken.
    pub(crate) fn release<P: Park>(&self, c: &mut Consumer, r: Record, park: &P) -> Result<()> {
        c.head = r.end;
        self.publish_head(r.end, park)
    }

    fn publish_head<P: Park>(&self, head: u64, park: &P) -> Result<()> {
        self.lines.head.pos.store(head, SeqCst);
        wake(&self.lines.not_full, Which::NotFull, park)
    }

    /// Wakes every sleeper of both signals (an endpoint closing: the other side looks).
    pub(crate) fn wake_all<P: Park>(&self, park: &P) -> Result<()> {
        wake(&self.lines.not_empty, Which::NotEmpty, park)?;
        wake(&self.lines.not_full, Which::NotFull, park)
    }

    /// Bytes committed and not yet released (a snapshot, for `info`).
    pub(crate) fn queued_bytes(&self) -> u64 {
        let head = self.lines.head.pos.load(Acquire);
        let tail = self.lines.tail.pos.load(Acquire);
        tail.saturating_sub(head).min(self.capacity)
    }
}

/// The waker's half of the handshake: after a SeqCst store of a position, wakes the
/// signal's sleepers if there are any and they armed the signal since the last wake-up.
/// `seq`'s low bit is that arming: the first waker clears it (and moves `seq` on) and makes
/// the one system call; wakers after it, before a sleeper arms again, make none.
#[inline]
fn wake<P: Park>(signal: &Signal, which: Which, park: &P) -> Result<()> {
    handshake_fence();
    let sleepers = signal.sleepers.load(SeqCst);
    if sleepers == 0 {
        return Ok(());
    }
    let mut seq = signal.seq.load(SeqCst);
    while seq & 1 == 1 {
        match signal.seq.compare_exchange(seq, seq.wrapping_add(1), SeqCst, SeqCst) {
            Ok(_) => return park.unpark(signal, which, sleepers),
            Err(now) => seq = now,
        }
    }
    Ok(())
}

/// The longest a sleeper sleeps before `attempt` looks again (peer liveness).
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// Waits until `attempt` gives a result (`Ok(Some)`), spinning `spins` times first, then
/// sleeping on `signal` in slices of at most [`SLICE`]; `Ok(None)` once `deadline` passes.
/// `attempt(fresh)`: `fresh` is true after a sleep (a time to look at the peers).
pub(crate) fn wait<P: Park, R>(
    signal: &Signal,
    which: Which,
    park: &P,
    spins: u32,
    deadline: Option<Instant>,
    mut attempt: impl FnMut(bool) -> Result<Option<R>>,
) -> Result<Option<R>> {
    for i in 0..spins {
        // Past the first polls (a peer that answers at once is seen before), let the peer
        // run if it shares this CPU (more runnable processes than CPUs): a poll that only
        // spins would hold the CPU the peer needs. Rarely: a yield on a CPU that other
        // programs keep busy costs a time slice.
        #[cfg(not(mmf_loom))]
        if i >= 4096 && i % 1024 == 0 {
            std::thread::yield_now();
        }
        let _ = i;
        spin_loop();
        if let Some(r) = attempt(false)? {
            return Ok(Some(r));
        }
    }
    park.prepare(which)?;
    let mut fresh = true;
    loop {
        signal.sleepers.fetch_add(1, SeqCst);
        // Arm: the next waker will wake (and clear the bit).
        let seq = signal.seq.fetch_or(1, SeqCst) | 1;
        handshake_fence();
        let result = match attempt(fresh) {
            Ok(None) => {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    Some(Ok(None))
                } else {
                    let until = deadline.map_or(now + SLICE, |d| d.min(now + SLICE));
                    park.park(signal, which, seq, until).err().map(Err)
                }
            }
            other => Some(other),
        };
        signal.sleepers.fetch_sub(1, SeqCst);
        if let Some(result) = result {
            return result;
        }
        fresh = true;
    }
}

/// Clears a signal's sleeper count left by a side that died asleep (trap 7), when the
/// caller knows it is the only possible sleeper (an SPSC endpoint taking over).
pub(crate) fn clear_sleepers(signal: &Signal) {
    signal.sleepers.store(0, Relaxed);
}
