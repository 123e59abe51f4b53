//! The sync area's format: `#[repr(C)]`, fixed-width, little-endian atomics only, the same
//! on every platform (DESIGN.md, Formats).
//!
//! ```text
//! header (64 B)      magic "MMFSYNC1", version, participants, objects, flags
//!                    (ASYMMETRIC), area_id [u64; 2] (random at init), size (bytes of the
//!                    whole area)
//! participant × P    ident: gen (20 bits) << 33 | ready << 32 | pid (32 bits); pid 0 = free
//!  (32 B each)       start_time (Linux: clock ticks since boot; Windows: FILETIME)
//!                    sleeps [u64; 2]: gen << 44 | (object + 1) << 23 | count (sleep records)
//! object × O         state, sleepers, desc: kind << 32 | parameter, flags, owner_thread
//!  (32 B each)
//! ```
//!
//! A lock word names its owner by a *token*, `gen << 10 | slot`: a slot whose generation
//! has moved on no longer stands for the process the token named, so a dead owner is never
//! confused with a later process that took its slot (no ABA).
//!
//! Version 2 (this one) added the `ASYMMETRIC` flag (mutexes unlock with a plain store:
//! `protocol.rs`) and the sleep records (`reap.rs`); version 1 code must not share an area
//! with it, and the version check keeps them apart.

use crate::primitive::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// `"MMFSYNC1"`, read as a little-endian `u64`.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"MMFSYNC1");
/// Written while the creator formats the area; replaced by [`MAGIC`] when done.
pub(crate) const MAGIC_INIT: u64 = u64::from_le_bytes(*b"MMFSYNC~");
/// The format version this code reads and writes.
pub(crate) const VERSION: u32 = 2;
/// The most participant slots an area may have (a token has 10 bits of slot).
pub(crate) const MAX_PARTICIPANTS: u32 = 1024;
/// The most objects an area may have.
pub(crate) const MAX_OBJECTS: u32 = 1 << 20;

pub(crate) const HEADER_SIZE: usize = 64;
pub(crate) const PARTICIPANT_SIZE: usize = 32;
pub(crate) const OBJECT_SIZE: usize = 32;

/// The area header.
#[repr(C)]
pub(crate) struct Header {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub participants: AtomicU32,
    pub objects: AtomicU32,
    pub flags: AtomicU32,
    pub area_id: [AtomicU64; 2],
    pub size: AtomicU64,
    pub _reserved: [AtomicU64; 2],
}

/// Header flag: the area's mutexes unlock with a plain store, and their sleepers make up
/// for it with a process-wide barrier (Linux `membarrier(2)`; see `protocol.rs`). Set by
/// the process that formats the area, if it can take part; never changed afterwards.
pub(crate) const ASYMMETRIC: u32 = 1;

/// One participant slot.
#[repr(C)]
pub(crate) struct Participant {
    /// [`Ident`] packed: generation, ready bit, pid (0: free).
    pub ident: AtomicU64,
    pub start_time: AtomicU64,
    /// Sleep records: how many of this process's threads are counted in which object's
    /// `sleepers` (`reap.rs`), so that a process that dies asleep is subtracted again.
    pub sleeps: [AtomicU64; 2],
}

/// One sync object: a mutex, an event or a semaphore.
#[repr(C)]
pub(crate) struct Object {
    /// Mutex: the owner's token or 0. Event: `sets << 1 | signalled`. Semaphore: count.
    pub state: AtomicU32,
    /// Threads that declared they will sleep on `state` (wake only if non-zero).
    pub sleepers: AtomicU32,
    /// `kind << 32 | parameter` (a semaphore's maximum); 0 until first used.
    pub desc: AtomicU64,
    /// Mutex: [`INCONSISTENT`].
    pub flags: AtomicU32,
    /// Mutex: the owning thread's tag (`protocol::owner_tag`: its number in its process
    /// mixed with the process's token; relock detection, takeover detection at unlock).
    pub owner_thread: AtomicU32,
    pub _reserved: AtomicU64,
}

/// Mutex flag: a previous owner died or panicked; the data it guards may be half-changed.
pub(crate) const INCONSISTENT: u32 = 1;

/// The kinds of object, as `desc`'s high half stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    Mutex = 1,
    ManualResetEvent = 2,
    AutoResetEvent = 3,
    Semaphore = 4,
}

impl Kind {
    pub(crate) fn from_u32(v: u32) -> Option<Kind> {
        Some(match v {
            1 => Kind::Mutex,
            2 => Kind::ManualResetEvent,
            3 => Kind::AutoResetEvent,
            4 => Kind::Semaphore,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Mutex => "mutex",
            Kind::ManualResetEvent => "manual-reset event",
            Kind::AutoResetEvent => "auto-reset event",
            Kind::Semaphore => "semaphore",
        }
    }
}

#[cfg(not(mmf_loom))]
// SAFETY: repr(C), made only of atomics (arrays of them), no padding between fields (sizes
// are multiples of 8, fields aligned), every bit pattern valid. The same for the next two.
unsafe impl crate::Shared for Header {}
#[cfg(not(mmf_loom))]
// SAFETY: as above.
unsafe impl crate::Shared for Participant {}
#[cfg(not(mmf_loom))]
// SAFETY: as above.
unsafe impl crate::Shared for Object {}

#[cfg(not(mmf_loom))]
const _: () = {
    assert!(size_of::<Header>() == HEADER_SIZE);
    assert!(size_of::<Participant>() == PARTICIPANT_SIZE);
    assert!(size_of::<Object>() == OBJECT_SIZE);
};

/// A participant's `ident`, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ident {
    pub generation: u32,
    pub ready: bool,
    pub pid: u32,
}

const GEN_BITS: u32 = 20;
const GEN_MASK: u32 = (1 << GEN_BITS) - 1;

impl Ident {
    pub(crate) fn unpack(v: u64) -> Ident {
        Ident {
            generation: ((v >> 33) as u32) & GEN_MASK,
            ready: v & (1 << 32) != 0,
            pid: v as u32,
        }
    }

    pub(crate) fn pack(self) -> u64 {
        (u64::from(self.generation & GEN_MASK) << 33)
            | (u64::from(self.ready) << 32)
            | u64::from(self.pid)
    }

    pub(crate) fn is_free(self) -> bool {
        self.pid == 0
    }

    /// The generation after this one (never 0, so that no token is 0).
    pub(crate) fn next_generation(self) -> u32 {
        match (self.generation + 1) & GEN_MASK {
            0 => 1,
            g => g,
        }
    }
}

/// The token of `slot` in `generation`: what a lock word holds while that process owns
/// it. Never 0 (generations start at 1).
#[inline]
pub(crate) fn token(slot: u32, generation: u32) -> u32 {
    ((generation & GEN_MASK) << 10) | (slot & 1023)
}

/// `(slot, generation)` of a token.
#[inline]
pub(crate) fn untoken(token: u32) -> (u32, u32) {
    (token & 1023, (token >> 10) & GEN_MASK)
}

/// The bytes an area with `participants` slots and `objects` objects takes.
pub(crate) fn area_size(participants: u32, objects: u32) -> usize {
    HEADER_SIZE + participants as usize * PARTICIPANT_SIZE + objects as usize * OBJECT_SIZE
}

/// A header's fields, read once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeaderValues {
    pub magic: u64,
    pub version: u32,
    pub participants: u32,
    pub objects: u32,
    pub size: u64,
    pub id: [u64; 2],
    pub flags: u32,
}

impl Header {
    pub(crate) fn values(&self) -> HeaderValues {
        HeaderValues {
            magic: self.magic.load(Ordering::Acquire),
            version: self.version.load(Ordering::Relaxed),
            participants: self.participants.load(Ordering::Relaxed),
            objects: self.objects.load(Ordering::Relaxed),
            size: self.size.load(Ordering::Relaxed),
            id: [self.area_id[0].load(Ordering::Relaxed), self.area_id[1].load(Ordering::Relaxed)],
            flags: self.flags.load(Ordering::Relaxed),
        }
    }
}

/// Checks a header's fields: the area's `(participants, objects)`, or what is wrong.
pub(crate) fn check_header(h: HeaderValues, available: usize) -> Result<(u32, u32), String> {
    if h.magic == MAGIC_INIT {
        return Err("the sync area is still being initialized by its creator (or the \
                    creator died while initializing it)"
            .into());
    }
    if h.magic != MAGIC {
        return Err(format!(
            "no sync area here: magic {:?}, expected \"MMFSYNC1\" (initialize one first)",
            String::from_utf8_lossy(&h.magic.to_le_bytes())
        ));
    }
    if h.version != VERSION {
        return Err(format!("sync area version {}, this code reads version {VERSION}", h.version));
    }
    if h.flags & !ASYMMETRIC != 0 {
        return Err(format!(
            "the header has flags {:#x} this code does not know (only {ASYMMETRIC:#x}): a \
             newer mmf's protocol, or corrupt bytes; this code would not follow it",
            h.flags
        ));
    }
    let (participants, objects) = (h.participants, h.objects);
    if participants == 0 || participants > MAX_PARTICIPANTS {
        return Err(format!("the header says {participants} participant slots (1 to 1024)"));
    }
    if objects > MAX_OBJECTS {
        return Err(format!("the header says {objects} objects (at most {MAX_OBJECTS})"));
    }
    let size = area_size(participants, objects);
    if h.size != size as u64 {
        return Err(format!(
            "the header's size {} does not match {participants} participants and {objects} \
             objects ({size} bytes)",
            h.size
        ));
    }
    if size > available {
        return Err(format!("the area needs {size} bytes; the view holds {available} there"));
    }
    Ok((participants, objects))
}
