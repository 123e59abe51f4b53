//! [`Reader`]: what collections read through — a [`Snapshot`] (a commit, in place in the
//! mapping) or a [`WriteTxn`] (its own new blocks, else its base commit in place) — and
//! the references into the heap both hand out.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::format::ALIGN;
use crate::persist::{Off, PBytes, PStr, Persist};
use crate::snapshot::Snapshot;
use crate::txn::WriteTxn;

pub(crate) mod private {
    use crate::error::Result;

    /// The reads collections make; sealed (only this crate's snapshots and transactions).
    pub trait Source {
        /// The bytes `off..off + len`, aligned to `align`, of a block this reader sees.
        fn block(&self, off: u64, len: usize, align: u64, what: &'static str) -> Result<&[u8]>;
        /// The newest transaction whose nodes this reader may see (its own).
        fn newest_txn(&self) -> u64;
        /// The heap's hash seed.
        fn seed(&self) -> u64;
        /// Whether nodes written by `txn` carry their checksum (committed ones do).
        fn sealed(&self, txn: u64) -> bool {
            txn < self.newest_txn()
        }
        /// Whether any byte of `off..off + len` is free in the commit this reader sees:
        /// space a later transaction may reuse while a reference into it lives.
        fn freed(&self, _off: u64, _len: u64) -> bool {
            false
        }
        /// The file offset of `bytes`, a slice this reader gave out, where it can tell
        /// (a snapshot's): to name where damage is stored.
        fn offset_of(&self, _bytes: &[u8]) -> Option<u64> {
            None
        }
        /// The reader's reads gathered for a look-up's hot path, if it has them (a
        /// snapshot): [`Fast`](crate::fast::Fast).
        #[inline(always)]
        fn fast(&self) -> Option<crate::fast::Fast<'_>> {
            None
        }
    }
}

use private::Source;

/// Something collections can be read through: a [`Snapshot`] or a [`WriteTxn`].
/// References it hands out (`&T`, `&str`, `&[u8]`) point into the mapped file (or into
/// the transaction's new blocks) and live as long as the borrow of the reader.
pub trait Reader: Source {}

impl<B: Backend> Reader for Snapshot<'_, B> {}
impl<B: Backend> Reader for WriteTxn<'_, B> {}

impl<B: Backend> Source for Snapshot<'_, B> {
    #[inline]
    fn block(&self, off: u64, len: usize, align: u64, what: &'static str) -> Result<&[u8]> {
        self.window.slice(&self.heap.backend, off, len, align, what)
    }

    fn newest_txn(&self) -> u64 {
        self.txn_id()
    }

    fn sealed(&self, _: u64) -> bool {
        true
    }

    #[inline]
    fn freed(&self, off: u64, len: u64) -> bool {
        self.commit.overlaps_free(off, len)
    }

    fn offset_of(&self, bytes: &[u8]) -> Option<u64> {
        self.window.offset_of(bytes).or_else(|| {
            // A root's value: a copy of its bytes, which the root directory block holds
            // (review 57: a collection handle held by a root had no offset).
            let (at, len) = (bytes.as_ptr() as usize, bytes.len());
            let holds = |v: &[u8]| {
                let start = v.as_ptr() as usize;
                at >= start && at - start + len <= v.len()
            };
            let roots = &self.commit.roots;
            roots.values().any(|v| holds(&v.bytes)).then_some(self.commit.slot.roots.off)
        })
    }

    #[inline(always)]
    fn fast(&self) -> Option<crate::fast::Fast<'_>> {
        let (bytes, end) = self.window.source(&self.heap.backend)?;
        Some(crate::fast::Fast::new(bytes, end, &self.commit))
    }

    fn seed(&self) -> u64 {
        self.heap.hash_seed()
    }
}

impl<B: Backend> Source for WriteTxn<'_, B> {
    #[inline]
    fn block(&self, off: u64, len: usize, align: u64, what: &'static str) -> Result<&[u8]> {
        if let Some((start, block)) = self.dirty.containing(off) {
            if off % align != 0 {
                return Err(Error::corrupted(what, off));
            }
            let at = (off - start) as usize;
            let end = at.checked_add(len).ok_or_else(|| Error::corrupted(what, off))?;
            return block.bytes().get(at..end).ok_or_else(|| Error::corrupted(what, off));
        }
        self.window.slice(&self.heap.backend, off, len, align, what)
    }

    fn newest_txn(&self) -> u64 {
        self.txn_id
    }

    fn seed(&self) -> u64 {
        self.heap.hash_seed()
    }
}

/// A pointer into space the reader's commit holds free (freed while something still
/// pointed there): refused, since a later transaction may reuse that space and change
/// the bytes under the reference.
pub(crate) fn not_freed<R: Source + ?Sized>(r: &R, off: u64, len: u64) -> Result<()> {
    if r.freed(off, len) {
        return Err(Error::InvalidArgument {
            what: "the pointer reaches space a commit freed (a use after free: the block \
                   was freed while something still pointed to it)",
        });
    }
    Ok(())
}

/// An error following a pointer (an `Off`, a string's or byte string's) whose bytes are
/// `stored`: damage at the place the pointer is stored, when the reader can tell where
/// that is (review 55: a pointer into freed space was "invalid argument" with no offset,
/// other bad pointers were named by the offset they point at). `what` names it, its
/// second name when its target was freed. I/O errors pass through.
pub(crate) fn stored_pointer<R: Source + ?Sized>(
    r: &R,
    stored: &[u8],
    what: [&'static str; 2],
    target: u64,
    e: Error,
) -> Error {
    let [what, freed] = what;
    let what = if matches!(e, Error::InvalidArgument { .. }) { freed } else { what };
    match e {
        Error::Io { .. } | Error::StorageFull => e,
        _ => Error::corrupted(what, r.offset_of(stored).unwrap_or(target)),
    }
}

/// `&T` at `off`, checked.
pub(crate) fn get_ref<R: Source + ?Sized, T: Persist>(r: &R, off: Off<T>) -> Result<&T> {
    const { assert!(align_of::<T>() as u64 <= ALIGN, "Persist types align to at most 16") };
    let bytes = r.block(off.raw(), size_of::<T>(), align_of::<T>() as u64, "object pointer")?;
    not_freed(r, off.raw(), size_of::<T>() as u64)?;
    T::ref_from_bytes(bytes).map_err(|_| Error::corrupted("object pointer", off.raw()))
}

/// The bytes of a byte string, checked.
pub(crate) fn bytes_ref<R: Source + ?Sized>(r: &R, b: PBytes) -> Result<&[u8]> {
    if b.len == 0 {
        return Ok(&[]);
    }
    let len = usize::try_from(b.len).map_err(|_| Error::corrupted("byte string", b.off))?;
    let bytes = r.block(b.off, len, 1, "byte string")?;
    not_freed(r, b.off, b.len)?;
    Ok(bytes)
}

/// The text of a string, checked (bounds, UTF-8).
pub(crate) fn str_ref<R: Source + ?Sized>(r: &R, s: PStr) -> Result<&str> {
    std::str::from_utf8(bytes_ref(r, s.bytes)?).map_err(|_| Error::corrupted("string", s.bytes.off))
}

macro_rules! reference_methods {
    ($ty:ident) => {
        impl<'h, B: Backend> $ty<'h, B> {
            /// A reference to the value `off` points to, in place (no copy): valid while
            /// this borrow lives, which keeps its commit pinned.
            ///
            /// # Errors
            /// [`Error::Corrupted`] for a pointer out of bounds or misaligned;
            /// [`Error::InvalidArgument`] from a snapshot for a pointer into space its
            /// commit holds free (the block was freed while still pointed to: a later
            /// transaction may reuse it, so no reference is handed out).
            pub fn get_ref<T: Persist>(&self, off: Off<T>) -> Result<&T> {
                get_ref(self, off)
            }

            /// A byte string's bytes, in place.
            ///
            /// # Errors
            /// [`Error::Corrupted`] for a string out of bounds; [`Error::InvalidArgument`]
            /// as [`get_ref`](Self::get_ref) for freed space.
            pub fn bytes_ref(&self, bytes: PBytes) -> Result<&[u8]> {
                bytes_ref(self, bytes)
            }

            /// A string's text, in place.
            ///
            /// # Errors
            /// [`Error::Corrupted`] for a string out of bounds or not UTF-8.
            pub fn str_ref(&self, s: PStr) -> Result<&str> {
                str_ref(self, s)
            }
        }
    };
}
reference_methods!(Snapshot);
reference_methods!(WriteTxn);
