//! The channel's format: `#[repr(C)]`, fixed-width, little-endian, the same on every
//! platform (DESIGN.md, Formats). Offsets in the channel's mapping:
//!
//! ```text
//!      0  header (128 B)   magic "MMFCHAN1", version, kind, capacity, max_message,
//!                          endpoints, data_offset, size, epoch, sender/receiver attaches
//!    128  endpoints        64 × u64: role << 32 | participant token (0 = free)
//!    640  tail line (64 B)       producer-written: tail position (u64), for a successor;
//!                                at 648 the CPU a producer last sent from (u32, a hint)
//!    704  head line (64 B)       consumer-written: head position (u64); at 712 the CPU a
//!                                consumer last released from (u32, a hint)
//!    768  not-empty signal (64 B) seq (u32), sleepers (u32): consumers that sleep
//!    832  not-full signal (64 B)  seq (u32), sleepers (u32): producers that sleep
//!   1024  sync area (mmf::sync): 64 participants, object 0 the send lock, 1 the receive lock
//!   4096  data: `capacity` bytes, a ring of records
//! ```
//!
//! Positions are monotonic byte counts (`u64`, never wrapping in practice: 2^64 bytes);
//! a position's place in the data is `pos & (capacity - 1)`. A record is an 8-byte header
//! `{len: u32, kind: u32}` (one little-endian `u64`, 0 = nothing committed there yet) and
//! `len` payload bytes, padded to a multiple of 8. A record is published by the one store
//! of its header, after its payload and after the header that follows it was zeroed; so a
//! producer that dies mid-write leaves nothing visible, and the consumer polls the header
//! at its head, never the producer's tail. A record never wraps: where the next one would
//! not fit before the end of the data, a `PAD` record fills the rest and the record starts
//! at 0.

use crate::primitive::sync::atomic::{AtomicU32, AtomicU64};

/// `"MMFCHAN1"`, read as a little-endian `u64`.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"MMFCHAN1");
/// Written while the creator formats the channel; replaced by [`MAGIC`] when done.
pub(crate) const MAGIC_INIT: u64 = u64::from_le_bytes(*b"MMFCHAN~");
/// The format version this code reads and writes (1: records published by the store of
/// `tail`; 2: by the store of their own header).
pub(crate) const VERSION: u32 = 2;

pub(crate) const HEADER_SIZE: usize = 128;
pub(crate) const ENDPOINTS_AT: usize = 128;
/// Endpoint table entries (senders and receivers attached at once, all processes).
pub(crate) const ENDPOINTS: usize = 64;
pub(crate) const LINES_AT: usize = 640;
pub(crate) const AREA_AT: usize = 1024;
/// Participants of the embedded sync area (processes attached at once).
pub(crate) const PARTICIPANTS: u32 = 64;
/// Objects of the embedded sync area: the send lock and the receive lock.
pub(crate) const SEND_LOCK: u32 = 0;
pub(crate) const RECV_LOCK: u32 = 1;
pub(crate) const DATA_AT: u64 = 4096;

/// Wake-semaphore indices of the two signals (Windows), apart from the area's objects.
pub(crate) const NOT_EMPTY_INDEX: u32 = 0x4000_0000;
pub(crate) const NOT_FULL_INDEX: u32 = 0x4000_0001;

/// The smallest and largest data capacities.
pub(crate) const MIN_CAPACITY: u64 = 64;
pub(crate) const MAX_CAPACITY: u64 = 1 << 40;

/// Record kinds, as the header's second word holds them.
pub(crate) const MSG: u32 = u32::from_le_bytes(*b"MSG1");
pub(crate) const PAD: u32 = u32::from_le_bytes(*b"PAD1");
pub(crate) const RECORD_HEADER: u64 = 8;

/// The two kinds of channel, as the header stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One sender and one receiver attached at a time (a restarted one may take over).
    Spsc = 1,
    /// Any number of senders and receivers; each side takes turns under a robust lock.
    Mpmc = 2,
}

impl Kind {
    pub(crate) fn from_u32(v: u32) -> Option<Kind> {
        match v {
            1 => Some(Kind::Spsc),
            2 => Some(Kind::Mpmc),
            _ => None,
        }
    }
}

/// The channel header.
#[repr(C)]
pub(crate) struct Header {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub kind: AtomicU32,
    pub capacity: AtomicU64,
    pub max_message: AtomicU32,
    pub endpoints: AtomicU32,
    pub data_offset: AtomicU64,
    pub size: AtomicU64,
    /// Bumped on every attach and detach: a cheap "look at the endpoints again".
    pub epoch: AtomicU32,
    pub sender_attaches: AtomicU32,
    pub receiver_attaches: AtomicU32,
    pub _pad: AtomicU32,
    pub _reserved: [AtomicU64; 8],
}

/// A cache line holding one position, and the CPU its writer last ran on.
#[repr(C)]
pub(crate) struct Line {
    pub pos: AtomicU64,
    /// 1 + the CPU the side that writes this line ran on when it last recorded it (every
    /// [`CPU_EVERY`] operations); 0: not known (channels made before it, or no operation
    /// yet). Only a hint for the other side's spinning waiter (yield the CPU or not): never
    /// trusted for anything else, any value is harmless.
    pub cpu: AtomicU32,
    pub _pad: AtomicU32,
    pub _reserved: [AtomicU64; 6],
}

/// How often (in sends, or releases) an endpoint records its CPU in its line.
#[cfg_attr(mmf_loom, allow(dead_code))]
pub(crate) const CPU_EVERY: u32 = 64;

/// A cache line holding one sleep handshake: sleepers declare themselves in `sleepers`
/// and sleep while `seq` is what they read; a waker that sees a sleeper bumps `seq` and
/// wakes.
#[repr(C)]
pub(crate) struct Signal {
    pub seq: AtomicU32,
    pub sleepers: AtomicU32,
    pub _reserved: [AtomicU64; 7],
}

/// The ring's shared control words, each on its own cache line.
#[repr(C)]
pub(crate) struct Lines {
    pub tail: Line,
    pub head: Line,
    pub not_empty: Signal,
    pub not_full: Signal,
}

#[cfg(not(mmf_loom))]
// SAFETY: repr(C), made only of atomics (arrays of them), no padding (every field is a
// multiple of 8 bytes or pairs of u32 at 8-aligned offsets), every bit pattern valid.
unsafe impl crate::Shared for Header {}
#[cfg(not(mmf_loom))]
// SAFETY: as above.
unsafe impl crate::Shared for Lines {}

#[cfg(not(mmf_loom))]
const _: () = {
    assert!(size_of::<Header>() == HEADER_SIZE);
    assert!(size_of::<Line>() == 64 && size_of::<Signal>() == 64);
    assert!(ENDPOINTS_AT + ENDPOINTS * 8 <= LINES_AT);
    assert!(LINES_AT + size_of::<Lines>() <= AREA_AT);
    assert!(LINES_AT % 64 == 0);
};

/// `role << 32 | token` of an endpoint table entry.
pub(crate) fn endpoint(role: u32, token: u32) -> u64 {
    u64::from(role) << 32 | u64::from(token)
}

/// The bytes a channel of `capacity` takes: the control page and the data.
pub(crate) fn channel_size(capacity: u64) -> u64 {
    DATA_AT + capacity
}

/// A committed record header as the `u64` the consumer polls: `len | kind << 32`.
#[inline]
pub(crate) fn header_word(len: u32, kind: u32) -> u64 {
    u64::from(len) | u64::from(kind) << 32
}

/// The space a record of `len` payload bytes takes.
#[inline]
pub(crate) fn record_size(len: u32) -> u64 {
    RECORD_HEADER + u64::from(len).next_multiple_of(8)
}

/// The parameters of a channel, as its header gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    pub kind: Kind,
    pub capacity: u64,
    pub max_message: u32,
}

/// The largest maximum message size a capacity allows: a record of it takes at most half
/// the ring.
pub(crate) fn max_message_limit(capacity: u64) -> u64 {
    (capacity / 2).saturating_sub(RECORD_HEADER).min(u64::from(u32::MAX - 7))
}

/// What is wrong with `capacity` and `max_message`, if anything.
pub(crate) fn check_params(capacity: u64, max_message: u64) -> Result<(), String> {
    if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err(format!(
            "capacity {capacity}: give a power of two from {MIN_CAPACITY} to {MAX_CAPACITY} bytes"
        ));
    }
    let limit = max_message_limit(capacity);
    if max_message == 0 || max_message > limit {
        return Err(format!(
            "maximum message size {max_message}: give 1 to {limit} bytes for a capacity of \
             {capacity} (a message may take at most half the ring)"
        ));
    }
    Ok(())
}

/// A header's fields, read once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeaderValues {
    pub magic: u64,
    pub version: u32,
    pub kind: u32,
    pub capacity: u64,
    pub max_message: u32,
    pub endpoints: u32,
    pub data_offset: u64,
    pub size: u64,
}

impl Header {
    pub(crate) fn values(&self) -> HeaderValues {
        use crate::primitive::sync::atomic::Ordering::{Acquire, Relaxed};
        HeaderValues {
            magic: self.magic.load(Acquire),
            version: self.version.load(Relaxed),
            kind: self.kind.load(Relaxed),
            capacity: self.capacity.load(Relaxed),
            max_message: self.max_message.load(Relaxed),
            endpoints: self.endpoints.load(Relaxed),
            data_offset: self.data_offset.load(Relaxed),
            size: self.size.load(Relaxed),
        }
    }
}

/// Checks a header a peer wrote: the channel's parameters, or what is wrong.
pub(crate) fn check_header(h: HeaderValues, available: u64) -> Result<Params, String> {
    if h.magic != MAGIC {
        // Escaped: a peer's bytes are not printed raw to a terminal (review 55).
        return Err(format!(
            "no channel here: its first bytes are \"{}\", not \"MMFCHAN1\"",
            h.magic.to_le_bytes().escape_ascii()
        ));
    }
    if h.version != VERSION {
        return Err(format!("channel format version {}, this code reads {VERSION}", h.version));
    }
    let kind = Kind::from_u32(h.kind).ok_or_else(|| format!("unknown channel kind {}", h.kind))?;
    check_params(h.capacity, u64::from(h.max_message)).map_err(|e| format!("the header's {e}"))?;
    if h.endpoints != ENDPOINTS as u32 || h.data_offset != DATA_AT {
        return Err(format!(
            "the header says {} endpoints and data at {}; this format has {ENDPOINTS} and {DATA_AT}",
            h.endpoints, h.data_offset
        ));
    }
    if h.size != channel_size(h.capacity) || h.size > available {
        return Err(format!(
            "the header's size {} does not match its capacity {} or the object's {available} bytes",
            h.size, h.capacity
        ));
    }
    Ok(Params { kind, capacity: h.capacity, max_message: h.max_message })
}
