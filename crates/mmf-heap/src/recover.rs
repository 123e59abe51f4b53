//! Opening: the newest commit whose slot, manifest and blocks check out (redb's "1PC+C"
//! recovery, bounded to the bytes the last transaction wrote).

use xxhash_rust::xxh3::Xxh3;
use zerocopy::FromBytes;

use crate::alloc::Allocator;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::format::{
    BlockHeader, Extent, FREE_MAGIC, MAGIC, MANIFEST_MAGIC, ManifestEntry, PAGE, ROOTS_MAGIC,
    SLOT_OFFSETS, Slot, Superblock, open_block,
};
use crate::heap::Committed;
use crate::roots::{self, RootDir};

/// How much of a block is hashed at a time when checking the manifest.
const CHUNK: u64 = 1 << 20;

/// Looks again at most this many times when the slots moved during a look (a writer in
/// another process committing meanwhile).
const LOOKS: u32 = 64;

/// Reads the superblock and the newest commit that checks out.
///
/// The slots are read once, then each commit is checked. Another process may commit while
/// that runs and reuse the space of the commit being checked (an opener is no reader of it
/// yet), which then fails its check although the file is sound. So when no slot checks out
/// and the slots have changed since they were read, the file is looked at again (its length
/// too), up to [`LOOKS`] times; slots that stay the same and fail are the error.
///
/// # Errors
/// [`Error::NotAHeap`] / [`Error::UnsupportedFormat`] / [`Error::Corrupted`] for the
/// superblock; when no commit checks out, the newest one's error.
pub fn newest_commit<B: Backend>(backend: &B) -> Result<(Superblock, Committed)> {
    let mut looks = 0;
    loop {
        let (superblock, head) = read_head(backend)?;
        let error = match newest_in(backend, &head) {
            Ok(committed) => return Ok((superblock, committed)),
            Err(e) => e,
        };
        let (_, again) = read_head(backend)?;
        looks += 1;
        if again == head || looks >= LOOKS {
            return Err(error);
        }
        backend.refresh()?;
    }
}

/// The newest commit of the slots in `head` that checks out.
pub(crate) fn newest_in<B: Backend>(backend: &B, head: &[u8]) -> Result<Committed> {
    let mut slots: Vec<(usize, Result<Slot>)> = SLOT_OFFSETS
        .iter()
        .enumerate()
        .map(|(i, &at)| (i, Slot::parse(&head[at as usize..], at)))
        .collect();
    // A writer of another process may have grown the file since this handle mapped it
    // (review 45: an open during growth said "the end of the file (shorter than its
    // commit made it)"): a slot relying on more than the mapping holds looks again.
    let wanted = slots.iter().filter_map(|(_, s)| s.as_ref().ok()).map(|s| s.file_len).max();
    let len = match wanted {
        Some(want) if want > backend.len()? => backend.refresh()?,
        _ => backend.len()?,
    };
    // Newest first; slots that do not parse last.
    slots.sort_by_key(|(_, s)| std::cmp::Reverse(s.as_ref().map_or(0, |s| s.txn_id)));
    let mut first_error = None;
    for (index, slot) in slots {
        match slot.and_then(|slot| load(backend, slot, len, index, true)) {
            Ok(committed) => return Ok(committed),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(Error::corrupted("commit slot", SLOT_OFFSETS[0])))
}

/// The superblock, checked.
///
/// # Errors
/// As [`newest_commit`] for the superblock.
pub fn superblock<B: Backend>(backend: &B) -> Result<Superblock> {
    read_head(backend).map(|(superblock, _)| superblock)
}

/// The first page (superblock and slots) and the superblock in it, checked.
fn read_head<B: Backend>(backend: &B) -> Result<(Superblock, Vec<u8>)> {
    let len = backend.len()?;
    if len < PAGE {
        // A short file is a cut-off heap only if it starts as one.
        let mut magic = [0u8; MAGIC.len()];
        if len < magic.len() as u64 {
            return Err(Error::NotAHeap);
        }
        backend.read_at(0, &mut magic)?;
        return Err(if magic != MAGIC {
            Error::NotAHeap
        } else {
            Error::corrupted("end of the file (shorter than a heap's first page)", len)
        });
    }
    let mut head = vec![0u8; PAGE as usize];
    backend.read_at(0, &mut head)?;
    Ok((Superblock::parse(&head)?, head))
}

/// The bytes of the first page up to the end of the second slot: what tells whether a
/// commit was made (`newest_in` takes them).
///
/// # Errors
/// [`Error::Io`] reading them.
pub(crate) fn head_slots<B: Backend>(backend: &B) -> Result<Vec<u8>> {
    let mut head = vec![0u8; SLOT_OFFSETS[1] as usize + size_of::<Slot>()];
    backend.read_at(0, &mut head)?;
    Ok(head)
}

/// The newest slot that parses with a transaction at or past `txn` (a commit the writer
/// that is about to make `txn` does not know), if there is one.
///
/// # Errors
/// [`Error::Io`] reading the first page.
pub(crate) fn slots_at_or_past<B: Backend>(backend: &B, txn: u64) -> Result<Option<Slot>> {
    let head = head_slots(backend)?;
    Ok(SLOT_OFFSETS
        .iter()
        .filter_map(|&at| Slot::parse(&head[at as usize..], at).ok())
        .filter(|slot| slot.txn_id >= txn)
        .max_by_key(|slot| slot.txn_id))
}

/// The newest transaction of the slots that parse (0: none), not loaded or checked
/// further: an outside reader's `Heap::txn_id` (it has no lock area to ask).
///
/// # Errors
/// [`Error::Io`] reading the first page.
pub fn newest_slot<B: Backend>(backend: &B) -> Result<u64> {
    Ok(slots_at_or_past(backend, 0)?.map_or(0, |slot| slot.txn_id))
}

/// The commit `txn` if one of the slots holds it now (a commit another process
/// published: written in full, so its manifest is not checked again). `None` if neither
/// slot holds it (a later commit has overwritten it).
///
/// # Errors
/// [`Error::Corrupted`] if the slot's root directory or free list does not check out.
pub fn published<B: Backend>(backend: &B, txn: u64) -> Result<Option<Committed>> {
    let head = head_slots(backend)?;
    for (index, &at) in SLOT_OFFSETS.iter().enumerate() {
        let Ok(slot) = Slot::parse(&head[at as usize..], at) else { continue };
        if slot.txn_id != txn {
            continue;
        }
        let len =
            if slot.file_len > backend.len()? { backend.refresh()? } else { backend.len()? };
        return load(backend, slot, len, index, false).map(Some);
    }
    Ok(None)
}

/// Checks everything a slot relies on: the file's length, (with `verify`) the manifest and
/// every range it lists, the root directory and the free list.
pub(crate) fn load<B: Backend>(
    backend: &B,
    slot: Slot,
    len: u64,
    index: usize,
    verify: bool,
) -> Result<Committed> {
    let at = SLOT_OFFSETS[index];
    if slot.file_len > len {
        // The file is shorter than this commit made it: its growth did not survive.
        return Err(Error::corrupted("end of the file (shorter than its commit made it)", len));
    }
    if !verify {
        // Published by a live writer: written in full.
    } else if !slot.manifest.is_none() {
        // Hashed a chunk at a time before it is read whole: a slot written by someone else
        // may name a block of terabytes.
        if hash_range(backend, slot.manifest)? != slot.manifest_hash {
            return Err(Error::corrupted("manifest", slot.manifest.off));
        }
        let block = read(backend, slot.manifest, MANIFEST_MAGIC, "manifest")?;
        let payload = open_block(&block, MANIFEST_MAGIC, "manifest", slot.manifest.off)?;
        check_txn(&block, slot.txn_id, "manifest", slot.manifest.off, true)?;
        let entry_len = size_of::<ManifestEntry>();
        if payload.len() % entry_len != 0 {
            return Err(Error::corrupted("manifest", slot.manifest.off));
        }
        for chunk in payload.chunks_exact(entry_len) {
            let entry = ManifestEntry::read_from_bytes(chunk)
                .map_err(|_| Error::corrupted("manifest", slot.manifest.off))?;
            let range = Extent { off: entry.off, len: entry.len };
            if !slot.holds(range) {
                return Err(Error::corrupted("manifest", slot.manifest.off));
            }
            if hash_range(backend, range)? != entry.hash {
                return Err(Error::corrupted("block written by the last transaction", entry.off));
            }
        }
    } else if slot.txn_id != 1 {
        return Err(Error::corrupted("commit slot", at));
    }
    let roots = if slot.roots.is_none() {
        RootDir::new()
    } else {
        let block = read(backend, slot.roots, ROOTS_MAGIC, "root directory")?;
        let payload = open_block(&block, ROOTS_MAGIC, "root directory", slot.roots.off)?;
        check_txn(&block, slot.txn_id, "root directory", slot.roots.off, false)?;
        roots::decode(payload, slot.roots.off)?
    };
    let alloc = if slot.free.is_none() {
        Allocator::decode(&[], slot.alloc_end, slot.txn_id, 0)?
    } else {
        let block = read(backend, slot.free, FREE_MAGIC, "free list")?;
        let payload = open_block(&block, FREE_MAGIC, "free list", slot.free.off)?;
        check_txn(&block, slot.txn_id, "free list", slot.free.off, false)?;
        Allocator::decode(payload, slot.alloc_end, slot.txn_id, slot.free.off)?
    };
    Ok(Committed::new(slot, roots, alloc, index))
}

/// A system block was written by the slot's transaction (`exact`) or an earlier one.
fn check_txn(block: &[u8], txn: u64, what: &'static str, at: u64, exact: bool) -> Result<()> {
    let header = BlockHeader::read_from_prefix(block).map_err(|_| Error::corrupted(what, at))?.0;
    if header.txn_id > txn || (exact && header.txn_id != txn) {
        return Err(Error::corrupted(what, at));
    }
    Ok(())
}

/// Reads a system block the slot has already bounds-checked, its header first: a header
/// without `magic`, or whose payload would not fit the block, is corrupted before the
/// block's length is allocated (a hostile slot can name terabytes of a sparse file), and
/// a length that memory cannot hold is an error, not an abort.
fn read<B: Backend>(
    backend: &B,
    block: Extent,
    magic: [u8; 8],
    what: &'static str,
) -> Result<Vec<u8>> {
    let bad = || Error::corrupted(what, block.off);
    let mut head = [0u8; size_of::<BlockHeader>()];
    if block.len < head.len() as u64 {
        return Err(bad());
    }
    backend.read_at(block.off, &mut head)?;
    let header = BlockHeader::read_from_bytes(&head).map_err(|_| bad())?;
    if header.magic != magic || header.payload_len > block.len - head.len() as u64 {
        return Err(bad());
    }
    let len = usize::try_from(block.len).map_err(|_| bad())?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| bad())?;
    buf.resize(len, 0);
    backend.read_at(block.off, &mut buf)?;
    Ok(buf)
}

/// xxh3-64 of a range, read a chunk at a time.
fn hash_range<B: Backend>(backend: &B, range: Extent) -> Result<u64> {
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; range.len.min(CHUNK) as usize];
    let mut at = range.off;
    while at < range.end() {
        let n = (range.end() - at).min(CHUNK) as usize;
        backend.read_at(at, &mut buf[..n])?;
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(hasher.digest())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Heap, HeapOptions, MemoryBackend};

    /// A heap of three commits, each setting a root and freeing the last value: its bytes
    /// and its newest slot.
    fn image() -> (Vec<u8>, Slot) {
        let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
        for i in 0..3u64 {
            let mut tx = heap.write().unwrap();
            if let Some(old) = tx.root::<crate::Off<u64>>("n").unwrap() {
                tx.free(old).unwrap();
            }
            let fresh = tx.alloc(&i).unwrap();
            tx.set_root("n", &fresh).unwrap();
            tx.commit().unwrap();
        }
        let bytes = heap.backend().to_bytes();
        let slot = SLOT_OFFSETS
            .iter()
            .filter_map(|&at| Slot::parse(&bytes[at as usize..], at).ok())
            .max_by_key(|s| s.txn_id)
            .unwrap();
        (bytes, slot)
    }

    /// Sets the `txn_id` of the system block at `off` (outside its payload's hash).
    fn stamp(bytes: &mut [u8], off: u64, txn: u64) {
        let at = off as usize + std::mem::offset_of!(BlockHeader, txn_id);
        bytes[at..at + 8].copy_from_slice(&txn.to_le_bytes());
    }

    /// A commit another process published is not hashed again: the transaction stamped
    /// on its root directory and free list is what tells a block of a later commit (space
    /// reused after the slot was read) from the slot's own.
    #[test]
    fn a_published_commit_refuses_system_blocks_of_a_later_transaction() {
        let (bytes, slot) = image();
        assert!(!slot.roots.is_none() && !slot.free.is_none(), "{slot:?}");
        let open = |bytes: Vec<u8>| published(&MemoryBackend::from_bytes(bytes), slot.txn_id);
        assert!(open(bytes.clone()).unwrap().is_some());
        for (off, what) in [(slot.roots.off, "root directory"), (slot.free.off, "free list")] {
            let mut later = bytes.clone();
            stamp(&mut later, off, slot.txn_id + 1);
            match open(later) {
                Err(Error::Corrupted { what: w, offset }) => assert_eq!((w, offset), (what, off)),
                other => panic!("{what} of a later transaction: {other:?}"),
            }
            // One of an earlier transaction is the slot's (a block a commit kept).
            let mut earlier = bytes.clone();
            stamp(&mut earlier, off, slot.txn_id - 1);
            assert!(open(earlier).unwrap().is_some(), "{what} of an earlier transaction");
        }
    }
}
