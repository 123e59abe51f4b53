//! Reads in place: a commit's bytes borrowed from the mapping ([`Mapped`]), checked against
//! the commit before any reference is made ([`Window`]).
//!
//! Why a `&T` into the mapping is sound: a snapshot (or a write transaction) pins its
//! commit, and no writer in any process reuses a block that a pinned commit reaches
//! (`docs/heap-format.md`, "Reuse rule"); every write to the file is a `pwrite` /
//! `WriteFile` of an unreferenced block, never a store through the mapping; and the
//! mapping a reference points into stays mapped while the snapshot lives (a growth maps
//! the file anew and leaves the old view to the snapshots that use it). What the heap
//! cannot rule out, [`Heap::open`](crate::Heap::open)'s `# Safety` makes the caller
//! promise: no other program writes or truncates the file while it is open (a truncated
//! file would make a read through a reference fault: `SIGBUS`, an in-page error).

use std::any::Any;
use std::sync::{Arc, OnceLock};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::format::DATA_START;

/// Bytes of a backend's storage that stay mapped, at the same address, for as long as
/// this value (or a clone) lives: what snapshots borrow `&T` from.
///
/// A [`Backend`] offers one with [`Backend::mapped`]; the heap checks every range against
/// the commit it reads before it makes a reference into it.
#[derive(Clone)]
pub struct Mapped {
    ptr: *const u8,
    len: usize,
    _owner: Arc<dyn Any + Send + Sync>,
}

// SAFETY: a Mapped is an address range and a keep-alive handle; the bytes are only read,
// through shared references whose soundness `Mapped::new`'s contract provides, and the
// owner is Send + Sync.
unsafe impl Send for Mapped {}
// SAFETY: as above: nothing in it is mutated through `&Mapped`.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// The `len` bytes at `ptr`, holding the storage from its byte 0, kept mapped by
    /// `owner`.
    ///
    /// # Safety
    /// For as long as `owner` lives: `ptr..ptr + len` is mapped and readable, and it shows
    /// the storage's bytes `0..len`; and no byte of a block that a commit reaches changes
    /// while a snapshot or transaction pins that commit — the heap writes only through
    /// [`Backend::write_at`], only to blocks no pinned commit reaches, so nothing else may
    /// write the storage (or shrink it) while the heap is open.
    pub unsafe fn new(ptr: *const u8, len: usize, owner: Arc<dyn Any + Send + Sync>) -> Self {
        Mapped { ptr, len, _owner: owner }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where its byte 0 is, for prefetch hints (never read through).
    pub(crate) fn base(&self) -> *const u8 {
        self.ptr
    }

    /// The bytes `off..off + len`, if they lie inside.
    pub(crate) fn slice(&self, off: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(off).ok()?;
        if start.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: start + len <= self.len, so the range lies inside the mapped region
        // that `_owner` keeps mapped while `self` (which the slice borrows) lives. Its
        // bytes do not change while read: `Window::slice` bounds it to a pinned commit's
        // allocated area, whose blocks no writer changes while it is pinned
        // (`Mapped::new`'s contract), and the readers that take a slice of that area
        // (`node::read`, `get_ref`, `bytes_ref`, the ordered map's leaf touch, the dump's
        // pointers) first refuse any range that holds a byte the commit has free
        // (`read::not_freed`), the only space in it a later writer may reuse. A hash
        // look-up's hot path (`fast::Fast`) slices only ranges that passed the same
        // checks (at or past `DATA_START`, within the commit's end, no free byte), or a
        // directory its commit's table of checked directories records as having passed
        // them.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.add(start), len) })
    }
}

/// A 16-byte aligned chunk: buffers made of them can hold any [`Persist`](crate::Persist)
/// value at a 16-aligned offset.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(16))]
pub(crate) struct Chunk(pub [u8; 16]);

/// A zeroed buffer of at least `len` bytes, 16-byte aligned.
pub(crate) fn chunks(len: usize) -> Box<[Chunk]> {
    vec![Chunk::default(); len.div_ceil(16)].into_boxed_slice()
}

/// A commit's bytes as a reader sees them: the backend's mapping, or (for a backend that
/// has none) a copy of the commit's allocated area made on the first read.
pub(crate) struct Window {
    /// The commit's allocated end: nothing past it is read.
    end: u64,
    mapped: Option<Mapped>,
    copy: OnceLock<Box<[Chunk]>>,
}

impl Window {
    /// The window on a commit whose allocated area ends at `end`.
    ///
    /// # Errors
    /// What looking at the backend's length again returns.
    pub fn new<B: Backend>(backend: &B, end: u64) -> Result<Self> {
        let mut mapped = backend.mapped();
        if mapped.as_ref().is_some_and(|m| (m.len() as u64) < end) {
            // Another process grew the file: map its new length.
            backend.refresh()?;
            mapped = backend.mapped().filter(|m| m.len() as u64 >= end);
        }
        Ok(Window { end, mapped, copy: OnceLock::new() })
    }

    /// The committed bytes `off..off + len`, checked: inside the data area and the
    /// commit's allocated end, `off` a multiple of `align`.
    ///
    /// # Errors
    /// [`Error::Corrupted`] naming `what` at `off`; the backend's read error when a copy is
    /// made.
    #[inline]
    pub fn slice<B: Backend>(
        &self,
        backend: &B,
        off: u64,
        len: usize,
        align: u64,
        what: &'static str,
    ) -> Result<&[u8]> {
        let end = off.checked_add(len as u64);
        if off < DATA_START || off % align != 0 || end.is_none_or(|end| end > self.end) {
            return Err(Error::corrupted(what, off));
        }
        let bytes = match &self.mapped {
            Some(mapped) => mapped.slice(off, len),
            None => self.copied(backend)?.get(off as usize..off as usize + len),
        };
        bytes.ok_or_else(|| Error::corrupted(what, off))
    }

    /// Its bytes for [`Fast`](crate::fast::Fast), which checks each range before it
    /// slices it: the mapping, else the private copy of `0..end` (`None` where the copy
    /// cannot be made: then [`slice`](Self::slice) says why); and the commit's end.
    #[inline(always)]
    pub fn source<B: Backend>(&self, backend: &B) -> Option<(crate::fast::Bytes<'_>, u64)> {
        let bytes = match &self.mapped {
            Some(mapped) => crate::fast::Bytes::Mapped(mapped),
            None => crate::fast::Bytes::Copy(self.copied(backend).ok()?),
        };
        Some((bytes, self.end))
    }

    /// The file offset of `bytes` when they lie in this window's bytes (a slice it gave
    /// out), for naming where damage is stored; `None` otherwise.
    pub fn offset_of(&self, bytes: &[u8]) -> Option<u64> {
        let (base, len) = match &self.mapped {
            Some(mapped) => (mapped.base(), mapped.len()),
            None => {
                let copy = self.copy.get()?.as_bytes();
                (copy.as_ptr(), copy.len())
            }
        };
        // Addresses compared as numbers: no pointer into another allocation is made.
        let at = (bytes.as_ptr() as usize).checked_sub(base as usize)?;
        (at.checked_add(bytes.len())? <= len).then_some(at as u64)
    }

    /// The copy of `0..end`, made on first use.
    #[cold]
    fn copied<B: Backend>(&self, backend: &B) -> Result<&[u8]> {
        if let Some(copy) = self.copy.get() {
            return Ok(copy.as_bytes());
        }
        let len = usize::try_from(self.end).map_err(|_| Error::corrupted("allocated end", 0))?;
        let mut copy = chunks(len);
        backend.read_at(0, &mut copy.as_mut_bytes()[..len])?;
        Ok(self.copy.get_or_init(|| copy).as_bytes())
    }
}
