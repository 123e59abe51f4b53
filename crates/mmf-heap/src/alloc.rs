//! The allocator: free byte ranges of the data area, each with the transaction that freed
//! it, and the end of the allocated area. Its state is part of every commit (the
//! free-list block), so a crash never leaks or double-allocates space.
//!
//! The rule that keeps readers and crashes safe: a range freed by transaction `F` is
//! reused only when `F` is durable (so no fallback to an older commit can need it) and
//! no open snapshot is older than `F` (so no reader can reach it).

use std::collections::BTreeMap;

use zerocopy::{FromBytes, IntoBytes};

use crate::error::{Error, Result};
use crate::format::{ALIGN, DATA_START, FreeEntry, align_up};

/// Free ranges and the allocated area's end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocator {
    /// offset → (length, freeing transaction); sorted, never overlapping. Neighbours merge
    /// when freed by the same transaction, or by [`settle`](Self::settle) once both are
    /// reusable: a range freed now never makes an older neighbour wait with it.
    free: BTreeMap<u64, (u64, u64)>,
    /// The end of the allocated area.
    end: u64,
}

impl Allocator {
    /// An empty heap's allocator: nothing allocated.
    #[cfg(test)]
    pub fn new() -> Self {
        Allocator { free: BTreeMap::new(), end: DATA_START }
    }

    /// The end of the allocated area.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Number of free ranges.
    pub fn ranges(&self) -> usize {
        self.free.len()
    }

    /// Free bytes below [`end`](Self::end).
    pub fn free_bytes(&self) -> u64 {
        self.free.values().map(|&(len, _)| len).sum()
    }

    /// Allocates `len` bytes (rounded up to [`ALIGN`]), reusing a range freed by a
    /// transaction `<= reusable` if one fits (first fit), else at the end.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a size that overflows the file's offsets.
    pub fn alloc(&mut self, len: u64, reusable: u64) -> Result<u64> {
        let len = align_up(len.max(1)).ok_or(Error::InvalidArgument { what: "allocation size" })?;
        let found = self
            .free
            .iter()
            .find(|&(_, &(flen, freed))| flen >= len && freed <= reusable)
            .map(|(&off, &(flen, freed))| (off, flen, freed));
        if let Some((off, flen, freed)) = found {
            self.free.remove(&off);
            if flen > len {
                self.free.insert(off + len, (flen - len, freed));
            }
            return Ok(off);
        }
        let off = self.end;
        self.end =
            off.checked_add(len).ok_or(Error::InvalidArgument { what: "allocation size" })?;
        Ok(off)
    }

    /// Returns `len` bytes at `off` (as allocated) to the free ranges, freed by
    /// transaction `freed` (0: reusable at once — it was never committed).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the range is not inside the allocated area or
    /// overlaps a free range (a double free).
    pub fn free(&mut self, off: u64, len: u64, freed: u64) -> Result<()> {
        let bad = Error::InvalidArgument { what: "freed range is not an allocated block" };
        let len = align_up(len.max(1)).ok_or(Error::InvalidArgument { what: "freed range" })?;
        let end = off.checked_add(len).ok_or(Error::InvalidArgument { what: "freed range" })?;
        if off < DATA_START || off % ALIGN != 0 || end > self.end {
            return Err(bad);
        }
        if let Some((&poff, &(plen, _))) = self.free.range(..end).next_back() {
            if poff + plen > off {
                return Err(bad);
            }
        }
        let (mut start, mut stop) = (off, end);
        // Merge with neighbours freed by the same transaction.
        if let Some((&poff, &(plen, ptxn))) = self.free.range(..off).next_back() {
            if poff + plen == off && ptxn == freed {
                self.free.remove(&poff);
                start = poff;
            }
        }
        if let Some(&(nlen, ntxn)) = self.free.get(&end) {
            if ntxn == freed {
                self.free.remove(&end);
                stop = end + nlen;
            }
        }
        self.free.insert(start, (stop - start, freed));
        Ok(())
    }

    /// Merges neighbouring ranges that are both reusable by a transaction that may reuse
    /// what was freed up to `reusable` (at the start of each transaction).
    pub fn settle(&mut self, reusable: u64) {
        let mut merged: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        let mut last: Option<(u64, u64, u64)> = None;
        for (&off, &(len, txn)) in &self.free {
            last = match last {
                Some((s, l, t)) if s + l == off && t <= reusable && txn <= reusable => {
                    Some((s, l + len, t.max(txn)))
                }
                Some((s, l, t)) => {
                    merged.insert(s, (l, t));
                    Some((off, len, txn))
                }
                None => Some((off, len, txn)),
            };
        }
        if let Some((s, l, t)) = last {
            merged.insert(s, (l, t));
        }
        self.free = merged;
    }

    /// After commits were lost that snapshots may still read: the allocated area grows to
    /// `end` (past everything they reached; the gap is free), and every free range counts
    /// as freed by `txn`, so that nothing is reused while those snapshots are open.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unaligned `end`.
    pub fn quarantine(&mut self, end: u64, txn: u64) -> Result<()> {
        for (_, freed) in self.free.values_mut() {
            *freed = (*freed).max(txn);
        }
        if end > self.end {
            let start = self.end;
            self.end = end;
            self.free(start, end - start, txn)?;
        }
        Ok(())
    }

    /// The free-list block's payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.free.len() * size_of::<FreeEntry>());
        for (&off, &(len, freed_txn)) in &self.free {
            out.extend_from_slice(FreeEntry { off, len, freed_txn }.as_bytes());
        }
        out
    }

    /// The payload's length with `ranges` free ranges.
    pub fn encoded_len(ranges: usize) -> u64 {
        (ranges * size_of::<FreeEntry>()) as u64
    }

    /// Reads a free-list payload (from the block at file offset `at`) for a commit whose
    /// allocated area ends at `end`, written by transaction `txn`.
    ///
    /// # Errors
    /// [`Error::Corrupted`] naming the free list: ranges unsorted, overlapping, misaligned,
    /// outside the allocated area or freed by a later transaction.
    pub fn decode(payload: &[u8], end: u64, txn: u64, at: u64) -> Result<Self> {
        let bad = || Error::corrupted("free list", at);
        let entry_len = size_of::<FreeEntry>();
        if payload.len() % entry_len != 0 {
            return Err(bad());
        }
        let mut free = BTreeMap::new();
        let mut last_end = DATA_START;
        // Copies: the payload of a block read into a byte buffer may be misaligned.
        for chunk in payload.chunks_exact(entry_len) {
            let e = FreeEntry::read_from_bytes(chunk).map_err(|_| bad())?;
            let stop = e.off.checked_add(e.len).ok_or_else(bad)?;
            if e.off < last_end
                || e.len == 0
                || e.off % ALIGN != 0
                || e.len % ALIGN != 0
                || stop > end
                || e.freed_txn > txn
            {
                return Err(bad());
            }
            free.insert(e.off, (e.len, e.freed_txn));
            last_end = stop;
        }
        Ok(Allocator { free, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_and_reuse_only_what_is_reusable() {
        let mut a = Allocator::new();
        let x = a.alloc(10, 0).unwrap();
        let y = a.alloc(100, 0).unwrap();
        assert_eq!((x, y, a.end()), (DATA_START, DATA_START + 16, DATA_START + 16 + 112));
        a.free(x, 10, 5).unwrap();
        // Freed by txn 5: not reusable while only txn 4 is durable.
        assert_eq!(a.alloc(16, 4).unwrap(), DATA_START + 128);
        assert_eq!(a.alloc(16, 5).unwrap(), x);
    }

    #[test]
    fn neighbours_merge_and_double_frees_are_refused() {
        let mut a = Allocator::new();
        let blocks: Vec<u64> = (0..4).map(|_| a.alloc(32, 0).unwrap()).collect();
        a.free(blocks[1], 32, 1).unwrap();
        a.free(blocks[2], 32, 2).unwrap();
        // Freed by different transactions: apart until both are reusable, so that the one
        // freed later never holds the other back.
        assert_eq!(a.ranges(), 2);
        assert!(a.free(blocks[1] + 16, 16, 3).is_err());
        assert!(a.free(a.end(), 16, 3).is_err());
        a.settle(1);
        assert_eq!(a.ranges(), 2);
        let end = a.end();
        assert_eq!(a.alloc(64, 1).unwrap(), end);
        assert_eq!(a.alloc(32, 1).unwrap(), blocks[1]);
        a.free(blocks[1], 32, 1).unwrap();
        a.settle(2);
        assert_eq!(a.ranges(), 1);
        assert_eq!(a.alloc(64, 2).unwrap(), blocks[1]);
        // Freed by the same transaction: merged at once.
        a.free(blocks[1], 64, 3).unwrap();
        a.free(blocks[0], 32, 3).unwrap();
        assert_eq!(a.ranges(), 1);
    }

    #[test]
    fn the_free_list_round_trips_and_bad_lists_are_corrupted() {
        let mut a = Allocator::new();
        let blocks: Vec<u64> = (0..5).map(|_| a.alloc(48, 0).unwrap()).collect();
        a.free(blocks[0], 48, 1).unwrap();
        a.free(blocks[3], 48, 2).unwrap();
        let bytes = a.encode();
        assert_eq!(Allocator::decode(&bytes, a.end(), 2, 0).unwrap(), a);
        assert!(Allocator::decode(&bytes, a.end(), 1, 0).is_err(), "freed by a later txn");
        assert!(Allocator::decode(&bytes, blocks[3], 2, 0).is_err(), "past the end");
        assert!(Allocator::decode(&bytes[..20], a.end(), 2, 0).is_err(), "torn entry");
        let mut swapped = bytes[24..].to_vec();
        swapped.extend_from_slice(&bytes[..24]);
        assert!(Allocator::decode(&swapped, a.end(), 2, 0).is_err(), "unsorted");
    }
}
