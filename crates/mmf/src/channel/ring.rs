//! The ring of records and the sleep handshake, written once over `primitive` atomics, a
//! [`Bytes`] store and a [`Park`] host, so that loom runs the very same code
//! (`loom_tests.rs`) with model memory that reports data races.
//!
//! One producer and one consumer at a time (the MPMC kind serializes each side under a
//! robust lock). A record is committed by the store of its 8-byte header, the last thing
//! the producer writes (Agrona's frame length): the consumer polls the header at its head
//! and never reads the producer's tail, so a message costs the consumer the record's own
//! cache lines and nothing else. The producer zeroes the next record's header before it
//! commits one, so the header at the consumer's head is always 0 (nothing yet) or a
//! committed record, never bytes of an earlier lap. The producer keeps a cached copy of
//! the consumer's head and reads the shared one only when its cache says full (Agrona's
//! head cache); it stores `tail` after each commit for a restarted (or the next MPMC)
//! producer, which also steps over a record committed by a producer that died before that
//! store.
//!
//! A peer's bytes are never trusted: every header is checked before it is used (kind,
//! `len <= max`, never across the end of the data), and every position read from the
//! other side is checked against this side's own (`head <= tail <= head + capacity`,
//! 8-aligned). Nothing a peer writes can make either side index memory unchecked.
//!
//! The sleep handshake (research/wave2.md §2.2 trap 2): a sleeper adds itself to the
//! signal's `sleepers` and arms `seq` (sets its low bit), both SeqCst, looks at the ring
//! again, and sleeps only while `seq` is what it armed; a waker publishes (the store of a
//! header and a SeqCst fence, or a SeqCst store of `head`) and, only if it then sees a
//! sleeper and an armed `seq`, moves `seq` on (clearing the bit) and wakes. Either the
//! sleeper's second look sees the record or the waker sees the armed sleeper, so no wake-up
//! is lost; a side that does not sleep costs the other no system call, and a sleeper costs
//! one wake-up call however many messages are committed before it runs again.

use std::time::Duration;

use super::layout::{Lines, MSG, PAD, RECORD_HEADER, Signal, header_word, record_size};
use super::wait::{record_cpu, wake};
use crate::error::{Error, Result};
use crate::primitive::spin_loop;
use crate::primitive::sync::atomic::Ordering::{self, Acquire, Relaxed, Release, SeqCst};
use crate::primitive::sync::atomic::fence;

/// The ring's data as the ring itself touches it: record headers, atomic words at
/// 8-aligned offsets (relative to the data's start, inside the capacity). Payloads are
/// the endpoints' business.
pub(crate) trait Bytes {
    fn load_header(&self, offset: u64, order: Ordering) -> Result<u64>;
    fn store_header(&self, offset: u64, word: u64, order: Ordering) -> Result<()>;
}

/// Which signal a sleeper waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    NotEmpty,
    NotFull,
}

/// What makes an endpoint look at the peers' liveness: what came before an attempt of
/// [`wait`](super::wait::wait) (the endpoints' `PeerWatch::gone` takes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Look {
    /// An operation (send, receive), a poll while spinning, or a sleep a waker ended: look
    /// if the watch's period has passed (the clock read every so many calls).
    Op,
    /// A sleep that no waker ended (its slice passed, or a signal): look if the period
    /// has passed.
    Wake,
    /// A sleep that the end of the watched peer's process ended (Windows): look now. The
    /// next sleep would end at once again, on a handle signalled for good, until a look
    /// sees the peer gone or names another to watch.
    Now,
}

/// Sleeping and waking on a signal's `seq` word.
pub(crate) trait Park {
    /// Called before a thread declares itself a sleeper (Windows creates the semaphore).
    fn prepare(&self, which: Which) -> Result<()>;
    /// Sleeps while `seq` holds `expected`, for at most `timeout`; may return early.
    /// `Ok(true)`: the peer's process it watched (Windows) has ended.
    fn park(&self, signal: &Signal, which: Which, expected: u32, timeout: Duration)
    -> Result<bool>;
    /// Wakes up to `n` sleepers.
    fn unpark(&self, signal: &Signal, which: Which, n: u32) -> Result<()>;
}

/// Reads of the positions an attaching endpoint makes for a pair that held at one moment
/// (a few under loom, whose model explores every interleaving of each try).
const SETTLE_TRIES: u32 = if cfg!(mmf_loom) { 3 } else { 64 };

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
    /// The consumer's head as last read.
    pub head_cache: u64,
    /// Records published, for [`record_cpu`]'s rationing.
    ops: u32,
}

impl Producer {
    /// This producer with `from`'s count of records published: an MPMC sender loads its
    /// producer afresh for each operation (under the send lock), and the count keeps
    /// [`record_cpu`] to every 64th.
    pub(crate) fn counting_on(self, from: &Producer) -> Producer {
        Producer { ops: from.ops, ..self }
    }
}

/// Space claimed for one record: its payload starts at data offset `payload`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Claim {
    pub payload: u64,
    pub len: u32,
    /// Where the record's header is.
    pub at: u64,
}

/// A consumer's private state: the position of the next record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Consumer {
    pub head: u64,
    /// Records released, for [`record_cpu`]'s rationing.
    ops: u32,
}

impl Consumer {
    /// This consumer with `from`'s count of records released (as
    /// [`Producer::counting_on`]).
    pub(crate) fn counting_on(self, from: &Consumer) -> Consumer {
        Consumer { ops: from.ops, ..self }
    }
}

/// A committed record in place: payload at data offset `payload`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    pub payload: u64,
    pub len: u32,
    end: u64,
}

/// A record header, checked.
enum Parsed {
    Message { len: u32, size: u64 },
    Pad { size: u64 },
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

    /// Checks the committed header `word` of the record at data offset `at`.
    #[inline]
    fn parse(&self, at: u64, word: u64) -> Result<Parsed> {
        let (len, kind) = (word as u32, (word >> 32) as u32);
        let size = record_size(len);
        match kind {
            MSG if len <= self.max_message && size <= self.capacity - at => {
                Ok(Parsed::Message { len, size })
            }
            // Never at 0: a pad there would span the whole ring, and a consumer would go
            // round it forever.
            PAD if at != 0 && size == self.capacity - at => Ok(Parsed::Pad { size }),
            _ => Err(corrupted(format!(
                "channel record at data offset {at}: kind {kind:#x}, length {len} (maximum {}, \
                 {} bytes to the end)",
                self.max_message,
                self.capacity - at
            ))),
        }
    }

    /// A producer starting from the committed end (a new or restarted sender, or the MPMC
    /// lock's new holder): the stored `tail`, and past it the record a producer that died
    /// between its commit and its store of `tail` left (its header says so; the header
    /// after it was zeroed before it was committed).
    pub(crate) fn producer(&self) -> Result<Producer> {
        let stored = self.lines.tail.pos.load(Acquire);
        if stored % 8 != 0 {
            return Err(corrupted(format!("channel tail {stored} is not a multiple of 8")));
        }
        let mut tail = stored;
        loop {
            let at = self.offset(tail);
            let word = self.bytes.load_header(at, Acquire)?;
            if word == 0 {
                break;
            }
            tail += match self.parse(at, word)? {
                Parsed::Message { size, .. } | Parsed::Pad { size } => size,
            };
            if tail - stored > self.capacity {
                return Err(corrupted(format!(
                    "channel records past the tail {stored} fill more than the capacity {}",
                    self.capacity
                )));
            }
        }
        let head = self.lines.head.pos.load(Acquire);
        self.check(head, tail, "positions")?;
        Ok(Producer { tail, head_cache: head, ops: 0 })
    }

    /// A consumer starting from the released head.
    pub(crate) fn consumer(&self) -> Result<Consumer> {
        let (head, _) = self.positions()?;
        Ok(Consumer { head, ops: 0 })
    }

    /// A producer's start for an MPMC sender attaching without the send lock: other
    /// senders and the receivers move both positions meanwhile, so they are read as
    /// [`positions`](Self::positions) reads them, and the records past the stored tail are
    /// left to the lock's holder (a sender takes `producer()` under the lock before it
    /// claims). [`producer`](Self::producer) read the tail, then the head: a sender
    /// descheduled in between saw a head far past the tail it had read, a sound channel
    /// called corrupted (`mpmc_endpoints_streaming_through_a_cut_all_end_with_an_error`
    /// failed once in a full test run on 2 CPUs).
    pub(crate) fn producer_unlocked(&self) -> Result<Producer> {
        let (head, tail) = self.positions()?;
        Ok(Producer { tail, head_cache: head, ops: 0 })
    }

    /// `head` and `tail` as a pair that held at one moment — `tail` read while `head` did
    /// not move (both only grow), up to [`SETTLE_TRIES`] tries while other endpoints
    /// stream — and
    /// checked: multiples of 8, at most the capacity apart (either way: `tail` may lag the
    /// committed end by the one record a dead producer committed, so it bounds `head` only
    /// loosely). Positions that kept moving for every try are checked one by one.
    fn positions(&self) -> Result<(u64, u64)> {
        let mut head = self.lines.head.pos.load(Acquire);
        let mut settled = false;
        let mut tail = 0;
        for _ in 0..SETTLE_TRIES {
            tail = self.lines.tail.pos.load(Acquire);
            let again = self.lines.head.pos.load(Acquire);
            if again == head {
                settled = true;
                break;
            }
            head = again;
        }
        if head % 8 != 0 || tail % 8 != 0 || (settled && head.abs_diff(tail) > self.capacity) {
            return Err(corrupted(format!(
                "channel positions: head {head}, tail {tail}, capacity {}",
                self.capacity
            )));
        }
        Ok((head, tail))
    }

    /// Whether the producer has `need` bytes free at its tail, reading the consumer's head
    /// again only if the cached one says no.
    #[inline(always)]
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
    /// the data, a pad record fills the rest first (committed at once, so that the
    /// consumer frees that room). Every claim keeps 8 bytes more free than the record
    /// takes: the next header, zeroed at the commit.
    #[inline(always)]
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
                if !self.has_room(p, size + RECORD_HEADER)? {
                    return Ok(None);
                }
                return Ok(Some(Claim { payload: at + RECORD_HEADER, len, at }));
            }
            if !self.has_room(p, to_end + RECORD_HEADER)? {
                return Ok(None);
            }
            let pad = header_word((to_end - RECORD_HEADER) as u32, PAD);
            self.publish(p, at, to_end, pad, park)?;
        }
    }

    /// [`try_claim`](Self::try_claim)'s common case alone, for an SPSC endpoint's fast
    /// path: the record fits before the end of the data, and the cached head says there is
    /// room. `None` in every other case (a pad to write first, the head to read again),
    /// which the general path then takes; nothing is written either way.
    #[inline(always)]
    pub(crate) fn claim_cached(&self, p: &Producer, len: u32) -> Option<Claim> {
        let size = record_size(len);
        let at = self.offset(p.tail);
        let fits = size <= self.capacity - at
            && p.tail + size + RECORD_HEADER - p.head_cache <= self.capacity;
        fits.then_some(Claim { payload: at + RECORD_HEADER, len, at })
    }

    /// Commits a claimed record (its payload written): one store of its header, then a
    /// wake-up if a consumer sleeps.
    #[inline]
    pub(crate) fn commit<P: Park>(&self, p: &mut Producer, claim: Claim, park: &P) -> Result<()> {
        self.publish(p, claim.at, record_size(claim.len), header_word(claim.len, MSG), park)
    }

    /// Publishes the record of `size` bytes at data offset `at` (the producer's tail):
    /// zeroes the header after it, stores its header `word` and orders it before the look
    /// at the sleepers (the handshake's store), records the new tail and wakes a sleeping
    /// consumer.
    ///
    /// The header is a plain (`Release`) store followed by a `SeqCst` fence, not a
    /// `SeqCst` store: on x86-64 the latter is an `xchg`, a locked read-modify-write that
    /// needs the line to itself once the payload's stores have left the store buffer, and a
    /// consumer polling that very line takes it back in between, so the line crosses
    /// between the CPUs twice a message. A plain store leaves the store buffer with the
    /// payload's stores to the line, and the fence after it gives the same order for the
    /// handshake (RC11 / C++20's fence rules: the fence, the load of `sleepers` after it,
    /// the sleeper's SeqCst read-modify-write and its SeqCst load of the header form a
    /// cycle they forbid). Loom cannot see this fence: under it `wake` adds its own.
    /// Measured with the endpoints' fast paths: a polled 64-byte round trip 733 → 673 ns
    /// (criterion, in turns, `channel_rtt_spin/mmf_spsc`).
    #[inline(always)]
    fn publish<P: Park>(
        &self,
        p: &mut Producer,
        at: u64,
        size: u64,
        word: u64,
        park: &P,
    ) -> Result<()> {
        let end = p.tail + size;
        self.bytes.store_header(self.offset(end), 0, Relaxed)?;
        self.bytes.store_header(at, word, Release)?;
        fence(SeqCst);
        p.tail = end;
        self.lines.tail.pos.store(end, Release);
        record_cpu(&self.lines.tail.cpu, &mut p.ops);
        wake(&self.lines.not_empty, Which::NotEmpty, park)
    }

    /// The next committed record at the consumer's head, skipping pads: `None` if the
    /// ring is empty.
    #[inline]
    pub(crate) fn try_peek<P: Park>(&self, c: &mut Consumer, park: &P) -> Result<Option<Record>> {
        loop {
            let at = self.offset(c.head);
            // SeqCst: the sleeper's second look, ordered after its arming.
            let word = self.bytes.load_header(at, SeqCst)?;
            if word == 0 {
                return Ok(None);
            }
            match self.parse(at, word)? {
                Parsed::Message { len, size } => {
                    return Ok(Some(Record {
                        payload: at + RECORD_HEADER,
                        len,
                        end: c.head + size,
                    }));
                }
                Parsed::Pad { size } => {
                    c.head += size;
                    self.publish_head(c.head, park)?;
                }
            }
        }
    }

    /// [`try_peek`](Self::try_peek)'s common case alone, for an SPSC endpoint's fast path:
    /// the message committed at the head. `None` for nothing there yet, a pad, or a header
    /// that does not check out (the general path then skips the pad or says what is
    /// wrong); nothing is written either way.
    #[inline(always)]
    pub(crate) fn peek_message(&self, c: &Consumer) -> Option<Record> {
        let at = self.offset(c.head);
        // SeqCst: as `try_peek` (the sleeper's second look, ordered after its arming).
        let word = self.bytes.load_header(at, SeqCst).ok()?;
        if word == 0 {
            return None;
        }
        match self.parse(at, word).ok()? {
            Parsed::Message { len, size } => {
                self.touch_last_line(at, size);
                Some(Record { payload: at + RECORD_HEADER, len, end: c.head + size })
            }
            Parsed::Pad { .. } => None,
        }
    }

    /// [`peek_message`](Self::peek_message) after up to `polls` polls of the header at the
    /// head, a pause before each: a blocking receive's first wait, inline. `None` when the
    /// polls run out or the header is not a message (a pad, a header that does not check
    /// out), for the general wait to take over.
    ///
    /// The general wait ([`wait`](super::wait::wait)) detects a record as quickly, but hands it
    /// back through its attempt closure, a `Result` in memory and three frames; on the critical
    /// path of a ping-pong that cost 30 ns of a 260 ns polled round trip (AMD EPYC guest,
    /// `mmf_spsc` of `channel_rtt_spin` against the same code without this step, same run). Polls
    /// are bounded so that a waiter still reaches the general wait's look at the peers.
    #[inline(always)]
    pub(crate) fn poll_message(&self, c: &Consumer, polls: u32) -> Option<Record> {
        let at = self.offset(c.head);
        for _ in 0..polls {
            spin_loop();
            match self.bytes.load_header(at, Relaxed) {
                Ok(0) => {}
                Ok(_) => return self.peek_message(c),
                Err(_) => return None,
            }
        }
        None
    }

    /// Loads the last word of a record whose bytes do not all lie in its header's cache
    /// line, as soon as the header says it is there: that last line's fetch from the producer's cache then
    /// overlaps the receive's own work instead of waiting for the copy that reads it
    /// (about 10 ns of a polled 64-byte round trip, measured as above). Not under loom:
    /// it would add interleavings and tell the model nothing.
    #[inline(always)]
    fn touch_last_line(&self, at: u64, size: u64) {
        #[cfg(not(mmf_loom))]
        if at / 64 != (at + size - 1) / 64 {
            // In the data: `parse` checked `size <= capacity - at`, and sizes are multiples
            // of 8. The value is not wanted; `black_box` keeps the load.
            if let Ok(word) = self.bytes.load_header(at + size - 8, Relaxed) {
                std::hint::black_box(word);
            }
        }
        #[cfg(mmf_loom)]
        let _ = (at, size);
    }

    /// Releases a record: the head moves past it, and a sleeping producer is woken.
    #[inline]
    pub(crate) fn release<P: Park>(&self, c: &mut Consumer, r: Record, park: &P) -> Result<()> {
        c.head = r.end;
        record_cpu(&self.lines.head.cpu, &mut c.ops);
        self.publish_head(r.end, park)
    }

    #[inline(always)]
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
