//! [`Snapshot`]: a read view of one commit.

use std::sync::Arc;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::format::{PAGE, SLOT_OFFSETS, Slot, Superblock};
use crate::heap::{Committed, Heap};
use crate::mem::Window;
use crate::persist::{Off, PBytes, PStr, Persist};
use crate::recover;
use crate::txn::{read_committed, root_value};

/// A snapshot of one commit: every read sees that commit, whatever is committed after
/// it. Space freed after the snapshot's commit is not reused while it is open, so keep
/// snapshots short-lived (a long one makes the file grow).
///
/// ```
/// use mmf_heap::{Heap, MemoryBackend};
///
/// let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
/// let mut tx = heap.write()?;
/// tx.set_root("n", &1u64)?;
/// tx.commit()?;
/// let before = heap.read()?;
/// let mut tx = heap.write()?;
/// tx.set_root("n", &2u64)?;
/// tx.commit()?;
/// assert_eq!(before.root::<u64>("n")?, Some(1));
/// assert_eq!(heap.read()?.root::<u64>("n")?, Some(2));
/// # Ok::<(), mmf_heap::Error>(())
/// ```
#[must_use]
pub struct Snapshot<'h, B: Backend> {
    pub(crate) heap: &'h Heap<B>,
    pub(crate) commit: Arc<Committed>,
    /// The commit's bytes, read in place.
    pub(crate) window: Window,
    /// The fork generation it was pinned in: a `fork` child's copy of its parent's
    /// snapshot has no pin of the child's to give back (review 50: dropping it gave back
    /// the child's own pin of the same commit).
    pub(crate) generation: u64,
}

/// A named root as listed by [`Snapshot::roots`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootInfo {
    /// The root's name.
    pub name: String,
    /// The type hash of its value ([`Persist::TYPE_HASH`]).
    pub type_hash: u64,
    /// The value's size in bytes.
    pub len: usize,
}

impl<'h, B: Backend> Snapshot<'h, B> {
    /// A snapshot of `commit`, which the caller has pinned (unpinned on drop, or here
    /// on an error).
    pub(crate) fn new(heap: &'h Heap<B>, commit: Arc<Committed>) -> Result<Self> {
        match Window::new(&heap.backend, commit.slot.alloc_end) {
            Ok(window) => {
                Ok(Snapshot { heap, commit, window, generation: crate::opened::generation() })
            }
            Err(e) => {
                heap.unpin(commit.slot.txn_id);
                Err(e)
            }
        }
    }

    /// The id of the commit this snapshot sees.
    pub fn txn_id(&self) -> u64 {
        self.commit.slot.txn_id
    }

    /// The root `name` as a `T`, if there is one.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if the root holds another type.
    pub fn root<T: Persist>(&self, name: &str) -> Result<Option<T>> {
        root_value(&self.commit.roots, name)
    }

    /// The named roots, sorted by name.
    pub fn roots(&self) -> Vec<RootInfo> {
        self.commit
            .roots
            .iter()
            .filter(|(name, _)| !crate::roots::is_hidden(name))
            .map(|(name, v)| RootInfo {
                name: name.clone(),
                type_hash: v.type_hash,
                len: v.bytes.len(),
            })
            .collect()
    }

    /// A copy of the value `off` points to.
    ///
    /// # Errors
    /// [`Error::Corrupted`] for a pointer out of bounds or misaligned.
    pub fn get<T: Persist>(&self, off: Off<T>) -> Result<T> {
        let mut value = T::new_zeroed();
        let align = align_of::<T>() as u64;
        read_committed(
            self.heap,
            &self.commit,
            off.raw(),
            value.as_mut_bytes(),
            align,
            "object pointer",
        )?;
        Ok(value)
    }

    /// A copy of a byte string.
    ///
    /// # Errors
    /// [`Error::Corrupted`] for a string out of bounds.
    pub fn bytes(&self, bytes: PBytes) -> Result<Vec<u8>> {
        let len =
            usize::try_from(bytes.len).map_err(|_| Error::corrupted("byte string", bytes.off))?;
        if len as u64 > self.commit.slot.alloc_end {
            return Err(Error::corrupted("byte string", bytes.off));
        }
        let mut out = vec![0; len];
        if len > 0 {
            read_committed(self.heap, &self.commit, bytes.off, &mut out, 1, "byte string")?;
        }
        Ok(out)
    }

    /// A copy of a string.
    ///
    /// # Errors
    /// [`Error::Corrupted`] for a string out of bounds or not UTF-8.
    pub fn str(&self, s: PStr) -> Result<String> {
        String::from_utf8(self.bytes(s.bytes)?).map_err(|_| Error::corrupted("string", s.bytes.off))
    }

    /// Checks everything the heap can check without knowing the types of its objects:
    /// the superblock, this snapshot's commit slot, the checksum of every block the
    /// commits since the last durable one wrote (the manifest), the root directory and
    /// the free list — and that no newer slot holds a commit that fails those checks (a
    /// damaged newest commit, which opening skips for the one before). A snapshot older
    /// than both slots (two commits were made since it began) checks the two commits
    /// that replaced its own. What `mmf heap check` runs.
    ///
    /// # Errors
    /// [`Error::Corrupted`] naming what failed; [`Error::Io`]. A commit made while
    /// checking can make the check fail: check again.
    pub fn verify(&self) -> Result<()> {
        let backend = &self.heap.backend;
        let len = backend.refresh()?;
        let mut head = vec![0u8; PAGE as usize];
        backend.read_at(0, &mut head)?;
        Superblock::parse(&head)?;
        let (mut own, mut newer) = (None, 0);
        for (index, &at) in SLOT_OFFSETS.iter().enumerate() {
            let Ok(slot) = Slot::parse(&head[at as usize..], at) else { continue };
            if slot.txn_id == self.txn_id() {
                own = Some((slot, index));
            } else if slot.txn_id > self.txn_id() {
                // Newer than what opening chose: it must check out (or be a commit made
                // since, which does).
                recover::load(backend, slot, len, index, true)?;
                newer += 1;
            }
        }
        match own {
            Some((slot, index)) => recover::load(backend, slot, len, index, true).map(|_| ()),
            // Both slots were written since this snapshot began, and checked out above:
            // its own commit is no longer in the file's slots, the file is sound.
            None if newer == SLOT_OFFSETS.len() => Ok(()),
            None => Err(Error::corrupted("commit slot", SLOT_OFFSETS[0])),
        }
    }

    /// The commit slot that opening passed over, if any: the slot this snapshot's commit
    /// is not in, when it holds neither an older commit that checks out, nor a newer one
    /// that does (made since), nor nothing ever written (a heap's first commit). Either a
    /// commit was cut off by a crash while its slot or blocks were written — never
    /// acknowledged, so nothing is lost — or the slot or the blocks it names were damaged
    /// since: the file alone cannot tell which (a damaged newest slot loses its commit).
    /// [`verify`](Self::verify) fails on a newer slot whose blocks do not check out
    /// ([`PassedOver::txn_id`] is `Some`); a slot that does not check out itself passes
    /// it, as a crash can leave one. `mmf heap check`, `stat` and `dump` warn of it.
    ///
    /// Slots that change while they are read (a writer committing) are read again, up to
    /// three times; if they keep changing, `None` (the writer replaces them).
    ///
    /// ```
    /// use mmf_heap::{Heap, MemoryBackend};
    ///
    /// let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
    /// let mut tx = heap.write()?;
    /// tx.set_root("n", &1u64)?;
    /// tx.commit()?;
    /// assert!(heap.read()?.passed_over()?.is_none());
    /// # Ok::<(), mmf_heap::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] reading the slots; [`Error::Corrupted`] for the superblock.
    pub fn passed_over(&self) -> Result<Option<PassedOver>> {
        let backend = &self.heap.backend;
        let head = || -> Result<Vec<u8>> {
            let mut head = vec![0u8; PAGE as usize];
            backend.read_at(0, &mut head)?;
            Ok(head)
        };
        for _ in 0..3 {
            let before = head()?;
            // The length after the slots: a writer that grew the file and wrote its slot
            // in between would otherwise fail its check here (review 57).
            let len = backend.refresh()?;
            Superblock::parse(&before)?;
            let slots = SLOT_OFFSETS.map(|at| Slot::parse(&before[at as usize..], at));
            let newest = slots.iter().flatten().max_by_key(|s| s.txn_id);
            // Only the first commit leaves the other slot unwritten, and nothing written
            // past its allocated end (review 57: the zeroed slot of a heap's second commit
            // was taken for one never written, and that commit was lost in silence).
            let first_only = match newest {
                Some(slot) if slot.txn_id <= 1 => self.nothing_past(slot.alloc_end, len)?,
                _ => false,
            };
            let mut found = None;
            for (index, (&at, slot)) in SLOT_OFFSETS.iter().zip(slots).enumerate() {
                found = match slot {
                    Ok(slot) if slot.txn_id > self.txn_id() => {
                        match recover::load(backend, slot, len, index, true) {
                            Ok(_) => continue,
                            Err(error) => {
                                Some(PassedOver { offset: at, txn_id: Some(slot.txn_id), error })
                            }
                        }
                    }
                    Ok(_) => continue,
                    // Never written: the other slot of a heap that has made one commit.
                    Err(_) if first_only && before[slot_bytes(at)].iter().all(|&b| b == 0) => {
                        continue;
                    }
                    Err(error) => Some(PassedOver { offset: at, txn_id: None, error }),
                };
            }
            if head()? == before {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Whether the file's bytes from `end` (a commit's allocated end) up to `len` (at most
    /// the first MiB of them: a commit after the first writes its blocks there) are all
    /// zero.
    fn nothing_past(&self, end: u64, len: u64) -> Result<bool> {
        let stop = len.min(end.saturating_add(1 << 20));
        let mut buf = vec![0u8; 64 << 10];
        let mut at = end;
        while at < stop {
            let n = (stop - at).min(buf.len() as u64) as usize;
            self.heap.backend.read_at(at, &mut buf[..n])?;
            if buf[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            at += n as u64;
        }
        Ok(true)
    }

    /// Statistics of the commit: allocated area, free space, file length.
    pub fn stats(&self) -> Stats {
        let slot = &self.commit.slot;
        Stats {
            txn_id: slot.txn_id,
            file_len: slot.file_len,
            allocated_end: slot.alloc_end,
            free_bytes: self.commit.alloc.free_bytes(),
            free_ranges: self.commit.alloc.ranges(),
            roots: self.commit.roots.keys().filter(|n| !crate::roots::is_hidden(n)).count(),
        }
    }
}

impl<B: Backend> Drop for Snapshot<'_, B> {
    fn drop(&mut self) {
        if self.generation == crate::opened::generation() {
            self.heap.unpin(self.commit.slot.txn_id);
        }
    }
}

/// The bytes of the commit slot at `at` in the file's first page.
fn slot_bytes(at: u64) -> std::ops::Range<usize> {
    at as usize..at as usize + size_of::<Slot>()
}

/// A commit slot that opening passed over ([`Snapshot::passed_over`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct PassedOver {
    /// The slot's byte offset in the file (512 or 1024).
    pub offset: u64,
    /// The transaction the slot names when the slot itself checks out (then the blocks
    /// its commit wrote do not); `None` when the slot does not check out (a slot written
    /// when a crash came, or damaged).
    pub txn_id: Option<u64>,
    /// What failed its check.
    pub error: Error,
}

/// What [`Snapshot::stats`] reports; sizes in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The commit's transaction id.
    pub txn_id: u64,
    /// The file length the commit relies on.
    pub file_len: u64,
    /// The end of the allocated area.
    pub allocated_end: u64,
    /// Free bytes inside the allocated area (reusable now or later).
    pub free_bytes: u64,
    /// Number of free ranges.
    pub free_ranges: usize,
    /// Number of named roots.
    pub roots: usize,
}
