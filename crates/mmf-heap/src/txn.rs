//! [`WriteTxn`]: a write transaction. New objects live in private memory until the
//! commit writes them; committed objects are immutable (copy-on-write).

use std::sync::Arc;

use crate::alloc::Allocator;
use crate::backend::Backend;
use crate::dirty::Dirty;
use crate::error::{Error, Result};
use crate::format::{ALIGN, DATA_START, align_up};
use crate::heap::{Committed, Heap, WriterGuard};
use crate::mem::Window;
use crate::persist::{Off, PBytes, PStr, Persist};
use crate::recover;
use crate::roots::{self, RootDir, RootValue};
use crate::shape::Shape;

/// A write transaction: allocate, read, change and free objects, set named roots, then
/// [`commit`](Self::commit) — all of it or nothing becomes the heap's new state. Dropped
/// without a commit, it changes nothing.
///
/// ```
/// use mmf_heap::{Heap, MemoryBackend, Off};
///
/// let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
/// let mut tx = heap.write()?;
/// let counter: Off<u64> = tx.alloc(&0)?;
/// tx.set(counter, &41)?; // allocated in this transaction: changed in place
/// tx.set(counter, &(tx.get(counter)? + 1))?;
/// tx.set_root("counter", &counter)?;
/// tx.commit()?;
///
/// let snap = heap.read()?;
/// let counter = snap.root::<Off<u64>>("counter")?.unwrap();
/// assert_eq!(snap.get(counter)?, 42);
/// # Ok::<(), mmf_heap::Error>(())
/// ```
#[must_use = "a transaction changes nothing unless committed"]
pub struct WriteTxn<'h, B: Backend> {
    pub(crate) heap: &'h Heap<B>,
    // Dropped in this order: the lock across processes, then the one in the process.
    _cross: Option<mmf::sync::MutexGuard<'h>>,
    _writer: WriterGuard<'h>,
    pub(crate) base: Arc<Committed>,
    pub(crate) txn_id: u64,
    /// Ranges freed by transactions up to this one may be reused.
    pub(crate) reusable: u64,
    pub(crate) alloc: Allocator,
    /// Blocks allocated by this transaction, zero-padded to their allocated length.
    pub(crate) dirty: Dirty,
    /// The base commit's bytes, read in place.
    pub(crate) window: Window,
    pub(crate) roots: RootDir,
    pub(crate) roots_changed: bool,
    pub(crate) changed: bool,
    /// Roots set (with their type's hash and shape) or removed: the shape registry
    /// follows at the commit.
    pub(crate) shapes: Vec<(String, Option<(u64, &'static Shape)>)>,
    /// A collection node that a change met damage in after it had begun (a split or a
    /// merge half done): the commit is refused.
    pub(crate) failed: Option<u64>,
}

impl<'h, B: Backend> WriteTxn<'h, B> {
    /// The result of a change to the collection node at `off` that may have begun (a
    /// split or a merge rewriting nodes): an error marks the transaction failed, and its
    /// commit is refused, since a node may be half rebuilt (as LMDB refuses a transaction
    /// that met an error).
    pub(crate) fn changing<T>(&mut self, off: u64, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.failed.get_or_insert(off);
        }
        r
    }

    pub(crate) fn begin(
        heap: &'h Heap<B>,
        writer: WriterGuard<'h>,
        cross: Option<mmf::sync::MutexGuard<'h>>,
    ) -> Result<Self> {
        let (base, mut txn_id, reuse_limit) = {
            let state = heap.state();
            (Arc::clone(&state.writer.base), state.writer.next_txn, state.writer.reuse_limit)
        };
        // Every snapshot of every process, this one's included.
        let oldest_reader = heap.readers.oldest()?.unwrap_or(u64::MAX);
        let reusable = reuse_limit.min(oldest_reader);
        let mut alloc = settled(heap, reusable);
        // A slot of a commit this writer's base does not know, at or past the number it
        // is about to use: one whose sync failed after its slot was written (the writer
        // went on from the commit before: its number and space come again), or one a
        // crash left bad that recovery passed over. An outside reader (another user's,
        // `Readers::outside`), which reads slots rather than the lock area, may hold it
        // (review 46; pinned after this look too: review 47). As after lost commits
        // (`handoff.rs`): number after it, allocate past what it reached, reuse nothing
        // free now until snapshots of it end. Only the writer writes slots (the contract
        // of `Heap::open`: no other handle writes the file), so what is there now is all
        // there can be; one read of the first page per transaction.
        if let Some(ghost) = recover::slots_at_or_past(&heap.backend, txn_id)? {
            let after = ghost
                .txn_id
                .checked_add(1)
                .ok_or(Error::corrupted("commit slot", crate::format::SLOT_OFFSETS[0]))?;
            alloc.quarantine(ghost.alloc_end.max(base.slot.alloc_end), after)?;
            txn_id = after;
        }
        let window = Window::new(&heap.backend, base.slot.alloc_end)?;
        Ok(WriteTxn {
            window,
            heap,
            _cross: cross,
            _writer: writer,
            txn_id,
            reusable,
            alloc,
            roots: base.roots.clone(),
            base,
            dirty: Dirty::default(),
            roots_changed: false,
            changed: false,
            shapes: Vec::new(),
            failed: None,
        })
    }

    /// The id this transaction commits as.
    pub fn txn_id(&self) -> u64 {
        self.txn_id
    }

    /// Allocates a new block of `len` bytes (zeros) and returns its offset.
    pub(crate) fn alloc_block(&mut self, len: u64) -> Result<u64> {
        self.alloc_dirty(len, false)
    }

    /// Allocates a new block of `len` bytes (zeros); `node`: a collection node, sealed
    /// with its checksum at the commit.
    pub(crate) fn alloc_dirty(&mut self, len: u64, node: bool) -> Result<u64> {
        let padded = align_up(len.max(1)).ok_or(Error::InvalidArgument { what: "size" })?;
        if padded > crate::dirty::MAX_BLOCK {
            return Err(Error::InvalidArgument {
                what: "size: one block is at most 64 GiB (store larger data in several)",
            });
        }
        let padded =
            usize::try_from(padded).map_err(|_| Error::InvalidArgument { what: "size" })?;
        let off = self.alloc.alloc(len, self.reusable)?;
        self.dirty.insert(off, padded, node);
        self.changed = true;
        Ok(off)
    }

    /// Stores `value` in a new block; returns a pointer to it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the heap's offsets would overflow, or for a block of
    /// more than 64 GiB (a transaction holds its new blocks in memory until it commits).
    pub fn alloc<T: Persist>(&mut self, value: &T) -> Result<Off<T>> {
        const { assert!(align_of::<T>() as u64 <= ALIGN, "Persist types align to at most 16") };
        let off = self.alloc_block(size_of::<T>() as u64)?;
        self.dirty_mut(off, size_of::<T>())?.copy_from_slice(value.as_bytes());
        Ok(Off::from_raw(off))
    }

    /// Stores a byte string in a new block.
    ///
    /// # Errors
    /// As [`alloc`](Self::alloc).
    pub fn bytes(&mut self, bytes: &[u8]) -> Result<PBytes> {
        if bytes.is_empty() {
            return Ok(PBytes::EMPTY);
        }
        let off = self.alloc_block(bytes.len() as u64)?;
        self.dirty_mut(off, bytes.len())?.copy_from_slice(bytes);
        Ok(PBytes { off, len: bytes.len() as u64 })
    }

    /// Stores a string in a new block.
    ///
    /// # Errors
    /// As [`alloc`](Self::alloc).
    pub fn str(&mut self, s: &str) -> Result<PStr> {
        self.bytes(s.as_bytes()).map(|bytes| PStr { bytes })
    }

    /// The value `off` points to: from this transaction's new blocks, or as committed.
    ///
    /// # Errors
    /// [`Error::Corrupted`] for a pointer out of bounds or misaligned.
    pub fn get<T: Persist>(&self, off: Off<T>) -> Result<T> {
        let mut value = T::new_zeroed();
        self.read(off.raw(), value.as_mut_bytes(), align_of::<T>() as u64, "object pointer")?;
        Ok(value)
    }

    /// Replaces the value at `off`, which this transaction allocated.
    ///
    /// # Errors
    /// [`Error::Immutable`] if an earlier transaction committed it (readers may see it:
    /// allocate a new one and free the old).
    pub fn set<T: Persist>(&mut self, off: Off<T>, value: &T) -> Result<()> {
        self.dirty_mut(off.raw(), size_of::<T>())?.copy_from_slice(value.as_bytes());
        Ok(())
    }

    /// A copy of a byte string.
    ///
    /// # Errors
    /// [`Error::Corrupted`] for a string out of bounds.
    pub fn read_bytes(&self, bytes: PBytes) -> Result<Vec<u8>> {
        let len =
            usize::try_from(bytes.len).map_err(|_| Error::corrupted("byte string", bytes.off))?;
        // Checked before the buffer is made: a length read from the file may be anything.
        if bytes.len > self.alloc.end() {
            return Err(Error::corrupted("byte string", bytes.off));
        }
        let mut out = vec![0; len];
        if len > 0 {
            self.read(bytes.off, &mut out, 1, "byte string")?;
        }
        Ok(out)
    }

    /// A copy of a string.
    ///
    /// # Errors
    /// [`Error::Corrupted`] for a string out of bounds or not UTF-8.
    pub fn read_str(&self, s: PStr) -> Result<String> {
        String::from_utf8(self.read_bytes(s.bytes)?)
            .map_err(|_| Error::corrupted("string", s.bytes.off))
    }

    /// Frees the object at `off`. If this transaction allocated it, its space is reused at
    /// once; if it was committed, once no snapshot can see it and the freeing is durable.
    ///
    /// The heap knows a committed block's bounds only from the pointer given here: freeing
    /// a block something still points to, or part of a block, is a bug it cannot always
    /// tell. It stays memory-safe: a snapshot whose commit holds any byte of a value free
    /// refuses references into it ([`Snapshot::get_ref`](crate::Snapshot::get_ref)), and
    /// no space a snapshot reaches is reused while it is open; copies (`get`) read
    /// whatever the space holds.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a range that is not an allocated block as far as the
    /// heap can tell: outside the allocated area, overlapping free space (a double free),
    /// or not the whole of a block this transaction allocated.
    pub fn free<T: Persist>(&mut self, off: Off<T>) -> Result<()> {
        self.free_block(off.raw(), size_of::<T>() as u64)
    }

    /// Frees a byte string (see [`free`](Self::free)).
    ///
    /// # Errors
    /// As [`free`](Self::free).
    pub fn free_bytes(&mut self, bytes: PBytes) -> Result<()> {
        if bytes.is_empty() { Ok(()) } else { self.free_block(bytes.off, bytes.len) }
    }

    /// Frees a string (see [`free`](Self::free)).
    ///
    /// # Errors
    /// As [`free`](Self::free).
    pub fn free_str(&mut self, s: PStr) -> Result<()> {
        self.free_bytes(s.bytes)
    }

    pub(crate) fn free_block(&mut self, off: u64, len: u64) -> Result<()> {
        let padded = align_up(len.max(1)).ok_or(Error::InvalidArgument { what: "size" })?;
        if let Some(block) = self.dirty.get(off) {
            if block.len() as u64 != padded {
                return Err(Error::InvalidArgument {
                    what: "freed range is not an allocated block",
                });
            }
            self.dirty.remove(off);
            self.alloc.free(off, len, 0)?;
        } else {
            if off.saturating_add(padded) > self.base.slot.alloc_end {
                return Err(Error::InvalidArgument {
                    what: "freed range is not an allocated block",
                });
            }
            self.alloc.free(off, len, self.txn_id)?;
        }
        self.changed = true;
        Ok(())
    }

    /// The root `name` as a `T`, if there is one.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if it holds another type.
    pub fn root<T: Persist>(&self, name: &str) -> Result<Option<T>> {
        root_value(&self.roots, name)
    }

    /// Sets the root `name` to `value` (at most 1 KiB; keep larger values in a block).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty name, a name over 255 bytes or a value
    /// over 1 KiB.
    pub fn set_root<T: Persist>(&mut self, name: &str, value: &T) -> Result<()> {
        roots::check(name, size_of::<T>())?;
        let value = RootValue { type_hash: T::TYPE_HASH, bytes: value.as_bytes().to_vec() };
        if self.base.roots.get(name).is_none_or(|old| old.type_hash != T::TYPE_HASH) {
            self.shapes.push((name.to_owned(), Some((T::TYPE_HASH, T::SHAPE))));
        }
        self.roots.insert(name.to_owned(), value);
        self.roots_changed = true;
        self.changed = true;
        Ok(())
    }

    /// Removes the root `name`; whether there was one. (What it pointed to stays
    /// allocated: free it first.)
    pub fn remove_root(&mut self, name: &str) -> bool {
        let removed = roots::check(name, 0).is_ok() && self.roots.remove(name).is_some();
        if removed {
            self.shapes.push((name.to_owned(), None));
        }
        self.roots_changed |= removed;
        self.changed |= removed;
        removed
    }

    /// Copies `buf.len()` bytes at `off` out of this transaction's blocks or the commit it
    /// started from.
    fn read(&self, off: u64, buf: &mut [u8], align: u64, what: &'static str) -> Result<()> {
        if let Some((start, block)) = self.dirty.containing(off) {
            let at = (off - start) as usize;
            let src =
                block.bytes().get(at..at + buf.len()).ok_or_else(|| Error::corrupted(what, off))?;
            buf.copy_from_slice(src);
            return Ok(());
        }
        read_committed(self.heap, &self.base, off, buf, align, what)
    }

    /// The bytes of this transaction's block at `off..off+len`.
    pub(crate) fn dirty_mut(&mut self, off: u64, len: usize) -> Result<&mut [u8]> {
        let committed = self.base.slot.alloc_end;
        let Some((start, block)) = self.dirty.containing_mut(off) else {
            return Err(immutable_or_bad(off, committed));
        };
        let at = (off - start) as usize;
        block
            .bytes_mut()
            .get_mut(at..at + len)
            .ok_or_else(|| Error::corrupted("object pointer", off))
    }
}

/// The writer's base allocator settled for `reusable`: from the cache when a transaction
/// that began on the same base with the same `reusable` was rolled back, else settled
/// (from the cache when it is settled for less: settling is incremental) and cached.
fn settled<B: Backend>(heap: &Heap<B>, reusable: u64) -> Allocator {
    let mut state = heap.state();
    let w = &mut state.writer;
    match &w.settled {
        Some(a) if a.reusable() == reusable => return a.clone(),
        _ => {}
    }
    let mut alloc = match &w.settled {
        Some(a) if a.reusable() < reusable => a.clone(),
        _ => w.base.alloc.clone(),
    };
    alloc.settle(reusable);
    w.settled = Some(alloc.clone());
    alloc
}

fn immutable_or_bad(off: u64, committed_end: u64) -> Error {
    if (DATA_START..committed_end).contains(&off) {
        Error::Immutable { offset: off }
    } else {
        Error::corrupted("object pointer", off)
    }
}

/// The root `name` of `roots` as a `T`.
pub(crate) fn root_value<T: Persist>(roots: &RootDir, name: &str) -> Result<Option<T>> {
    let Some(value) = roots.get(name) else { return Ok(None) };
    if value.type_hash != T::TYPE_HASH {
        return Err(Error::TypeMismatch {
            root: name.to_owned(),
            expected: T::TYPE_HASH,
            found: value.type_hash,
        });
    }
    // The same type hash with another size means a corrupted directory.
    T::read_from_bytes(&value.bytes).map(Some).map_err(|_| Error::corrupted("root directory", 0))
}

/// Copies committed bytes at `off`, checked against the commit's allocated area and
/// `align`.
pub(crate) fn read_committed<B: Backend>(
    heap: &Heap<B>,
    commit: &Committed,
    off: u64,
    buf: &mut [u8],
    align: u64,
    what: &'static str,
) -> Result<()> {
    let end = off.checked_add(buf.len() as u64);
    if off < DATA_START || off % align != 0 || end.is_none_or(|end| end > commit.slot.alloc_end) {
        return Err(Error::corrupted(what, off));
    }
    heap.backend.read_at(off, buf)
}
