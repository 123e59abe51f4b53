//! The allocator: free byte ranges of the data area, each with the transaction that freed
//! it, and the end of the allocated area. Its state is part of every commit (the
//! free-list block), so a crash never leaks or double-allocates space.
//!
//! The rule that keeps readers and crashes safe: a range freed by transaction `F` is
//! reused only when `F` is durable (so no fallback to an older commit can need it) and
//! no open snapshot is older than `F` (so no reader can reach it).

use std::collections::{BTreeMap, BTreeSet};

use zerocopy::{FromBytes, IntoBytes};

use crate::error::{Error, Result};
use crate::format::{ALIGN, DATA_START, FreeEntry, align_up};

/// Free ranges and the allocated area's end.
#[derive(Clone, Debug, Default)]
pub struct Allocator {
    /// offset → (length, freeing transaction); sorted, never overlapping. Neighbours merge
    /// when freed by the same transaction, or by [`settle`](Self::settle) once both are
    /// reusable: a range freed now never makes an older neighbour wait with it.
    free: BTreeMap<u64, (u64, u64)>,
    /// The ranges of `free` freed by a transaction `<= reusable`, as (length, offset): the
    /// smallest that fits is found in O(log n). Without it every allocation scanned the
    /// ranges a big transaction had just freed (not reusable by it): quadratic.
    fits: BTreeSet<(u64, u64)>,
    /// The freeing transaction up to which ranges are in `fits`.
    reusable: u64,
    /// The end of the allocated area.
    end: u64,
}

/// Equal when they hold the same free ranges and end (the index follows from them).
impl PartialEq for Allocator {
    fn eq(&self, other: &Self) -> bool {
        (&self.free, self.end) == (&other.free, other.end)
    }
}

impl Eq for Allocator {}

impl Allocator {
    /// An empty heap's allocator: nothing allocated.
    #[cfg(test)]
    pub fn new() -> Self {
        Allocator { end: DATA_START, ..Allocator::default() }
    }

    /// Adds a free range (to the index too if it is reusable).
    fn put(&mut self, off: u64, len: u64, freed: u64) {
        self.free.insert(off, (len, freed));
        if freed <= self.reusable {
            self.fits.insert((len, off));
        }
    }

    /// Removes the free range at `off`, if there is one.
    fn take(&mut self, off: u64) -> Option<(u64, u64)> {
        let (len, freed) = self.free.remove(&off)?;
        self.fits.remove(&(len, off));
        Some((len, freed))
    }

    /// Rebuilds the index for ranges freed by a transaction `<= reusable`.
    fn reindex(&mut self, reusable: u64) {
        self.reusable = reusable;
        self.fits = self
            .free
            .iter()
            .filter(|&(_, &(_, freed))| freed <= reusable)
            .map(|(&off, &(len, _))| (len, off))
            .collect();
    }

    /// The end of the allocated area.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Number of free ranges.
    pub fn ranges(&self) -> usize {
        self.free.len()
    }

    /// Whether any byte of `off..off + len` is free (`len` 0 counts as 1).
    pub fn overlaps_free(&self, off: u64, len: u64) -> bool {
        let end = off.saturating_add(len.max(1));
        self.free.range(..end).next_back().is_some_and(|(&start, &(flen, _))| start + flen > off)
    }

    /// The free ranges, as (start, length).
    pub fn free_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.free.iter().map(|(&start, &(len, _))| (start, len))
    }

    /// Free bytes below [`end`](Self::end).
    pub fn free_bytes(&self) -> u64 {
        self.free.values().map(|&(len, _)| len).sum()
    }

    /// Allocates `len` bytes (rounded up to [`ALIGN`]), reusing a range freed by a
    /// transaction `<= reusable` if one fits (the smallest that fits, then the lowest),
    /// else at the end. O(log n) in the number of free ranges.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a size that overflows the file's offsets.
    pub fn alloc(&mut self, len: u64, reusable: u64) -> Result<u64> {
        let len = align_up(len.max(1)).ok_or(Error::InvalidArgument { what: "allocation size" })?;
        if reusable != self.reusable {
            self.reindex(reusable);
        }
        if let Some(&(_, off)) = self.fits.range((len, 0)..).next() {
            let (flen, freed) = self.take(off).expect("an indexed range is a free range");
            if flen > len {
                self.put(off + len, flen - len, freed);
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
        // The last range before `end`: overlapping the range (a double free), or else its
        // left neighbour (one search for both).
        let prev = self.free.range(..end).next_back().map(|(&poff, &v)| (poff, v));
        if let Some((poff, (plen, _))) = prev {
            if poff + plen > off {
                return Err(bad);
            }
        }
        let (mut start, mut stop) = (off, end);
        // Merge with neighbours freed by the same transaction.
        if let Some((poff, (plen, ptxn))) = prev {
            if poff + plen == off && ptxn == freed {
                self.take(poff);
                start = poff;
            }
        }
        if let Some(&(nlen, ntxn)) = self.free.get(&end) {
            if ntxn == freed {
                self.take(end);
                stop = end + nlen;
            }
        }
        self.put(start, stop - start, freed);
        Ok(())
    }

    /// Merges neighbouring ranges that are both reusable by a transaction that may reuse
    /// what was freed up to `reusable` (at the start of each transaction), and indexes the
    /// ranges that are reusable.
    ///
    /// In place: one pass over the ranges, then only the ranges that merge or change
    /// reusability are touched (a writer's free list grows with the heap; rebuilding it
    /// and its index at every transaction cost more than the transaction's inserts).
    pub fn settle(&mut self, reusable: u64) {
        let was = self.reusable;
        // Ranges to add to or drop from the index; runs of two or more ranges to merge.
        let mut index: Vec<(bool, u64, u64)> = Vec::new();
        let mut merges: Vec<(u64, u64)> = Vec::new();
        // The current run of adjacent reusable ranges: start, end, ranges in it.
        let mut run: Option<(u64, u64, usize)> = None;
        for (&off, &(len, txn)) in &self.free {
            let now = txn <= reusable;
            if now != (txn <= was) {
                index.push((now, len, off));
            }
            run = match run {
                Some((s, e, n)) if now && e == off => Some((s, off + len, n + 1)),
                prev => {
                    merges.extend(prev.filter(|r| r.2 > 1).map(|(s, e, _)| (s, e)));
                    now.then_some((off, off + len, 1))
                }
            };
        }
        merges.extend(run.filter(|r| r.2 > 1).map(|(s, e, _)| (s, e)));
        self.reusable = reusable;
        for (add, len, off) in index {
            if add {
                self.fits.insert((len, off));
            } else {
                self.fits.remove(&(len, off));
            }
        }
        for (start, end) in merges {
            let mut freed = 0;
            while let Some((&off, _)) = self.free.range(start..end).next() {
                let (_, txn) = self.take(off).expect("a free range");
                freed = freed.max(txn);
            }
            self.put(start, end - start, freed);
        }
    }

    /// The freeing transaction up to which ranges are reusable (the last
    /// [`settle`](Self::settle)'s or allocation's).
    pub fn reusable(&self) -> u64 {
        self.reusable
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
        self.reindex(self.reusable);
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
        let mut alloc = Allocator { free, end, ..Allocator::default() };
        alloc.reindex(0);
        Ok(alloc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a full rebuild would give: the index holds exactly the ranges freed by a
    /// transaction `<= reusable`, and no two neighbouring ranges are both reusable
    /// (after a settle).
    fn assert_settled(a: &Allocator) {
        let want: BTreeSet<(u64, u64)> = a
            .free
            .iter()
            .filter(|&(_, &(_, freed))| freed <= a.reusable)
            .map(|(&off, &(len, _))| (len, off))
            .collect();
        assert_eq!(a.fits, want, "the index at reusable {}", a.reusable);
        let mut last: Option<(u64, u64)> = None;
        for (&off, &(len, freed)) in &a.free {
            if let Some((end, prev)) = last {
                assert!(
                    !(end == off && prev <= a.reusable && freed <= a.reusable),
                    "reusable neighbours at {off} not merged"
                );
            }
            last = Some((off + len, freed));
        }
    }

    /// The free pages' bit test never says "no free byte" where there is one, for
    /// blocks inside, across and past pages with free bytes, and past the end.
    #[test]
    fn free_pages_never_miss_a_free_byte() {
        let mut a = Allocator::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let blocks: Vec<(u64, u64)> = (0..3000)
            .map(|_| {
                let len = [16, 48, 4096, 10_000, 70_000][rand(5) as usize] as u64;
                (a.alloc(len, 0).unwrap(), len)
            })
            .collect();
        for &(off, len) in &blocks {
            if rand(4) == 0 {
                a.free(off, len, 1).unwrap();
            }
        }
        let pages = FreePages::of(&a);
        let (mut checked, mut free) = (0, 0);
        for _ in 0..200_000 {
            let off = DATA_START + rand(a.end() + 100_000);
            let len = 1 + rand(9000);
            let exact = a.overlaps_free(off, len);
            assert!(!exact || pages.may_overlap(off, len), "missed free bytes in {off}+{len}");
            // A node's one-test form, for blocks of at most a page.
            let node = len.min(4096);
            assert!(
                !a.overlaps_free(off, node) || pages.may_overlap_node(off, node),
                "the node test missed free bytes in {off}+{node}"
            );
            checked += 1;
            free += exact as u32;
        }
        assert!(free > 1000 && checked - free > 1000, "both kinds were tried: {free} free");
        // One hole at a time, at many alignments and lengths: every 16 bytes of it are
        // seen, and no page around it.
        let holes = [
            (0, 16),
            (4080, 32),
            (4000, 8192),
            (100 * 4096 - 16, 64 * 4096 + 48),
            (16, 300 * 4096),
        ];
        for (before, len) in holes {
            let mut one = Allocator::new();
            one.alloc(before.max(16), 0).unwrap();
            let hole = one.alloc(len, 0).unwrap();
            one.alloc(1 << 20, 0).unwrap();
            one.free(hole, len, 1).unwrap();
            let pages = FreePages::of(&one);
            for at in (hole..hole + len).step_by(16) {
                assert!(pages.may_overlap(at, 16), "hole {hole}+{len}: {at}");
                assert!(pages.may_overlap_node(at, 16), "node test, hole {hole}+{len}: {at}");
            }
            // A node that starts in the page before the hole's and reaches into it.
            let reach = hole - 16;
            assert!(pages.may_overlap_node(reach, 4096), "node test into hole {hole}+{len}");
            assert!(!pages.may_overlap_node(after_page(hole + len), 4096), "node past the hole");
            assert!(!pages.may_overlap(hole / 4096 * 4096 - 4096, 4096), "the page before");
            let after = (hole + len).next_multiple_of(4096);
            assert!(!pages.may_overlap(after, 4096), "the page after");
        }
        // An area past 32 GiB: pages of 2^19 bytes here (end about 2^41), 2^22 of them.
        let mut big = Allocator::new();
        let low = big.alloc(1 << 39, 0).unwrap();
        let hole = big.alloc(4096, 0).unwrap();
        big.alloc((1 << 41) - (1 << 39) - 8192, 0).unwrap();
        big.free(hole, 4096, 1).unwrap();
        let pages = FreePages::of(&big);
        assert_eq!((pages.shift, pages.bits.len()), (19, (1 << 16) + 1));
        assert!(pages.may_overlap(hole, 16) && pages.may_overlap(hole + 4080, 100));
        assert!(!pages.may_overlap(low, 16), "no free byte in the first page");
        assert!(!pages.may_overlap(big.end() + 4096, 16), "past the end");
        let page = 1 << 19;
        assert!(!pages.may_overlap(hole / page * page - page, page), "the page before the hole's");
        assert!(pages.may_overlap(hole / page * page - 16, 32), "into the hole's page");
        // A heap with nothing free: every test is a bit test that says no.
        let mut b = Allocator::new();
        let off = b.alloc(1 << 20, 0).unwrap();
        assert!(!FreePages::of(&b).may_overlap(off, 1 << 16));
        // A block over 64 pages goes to the index (one test a page would cost more).
        assert!(FreePages::of(&b).may_overlap(off, 1 << 20) && !b.overlaps_free(off, 1 << 20));
    }

    /// The first page boundary at or after `off`.
    fn after_page(off: u64) -> u64 {
        off.next_multiple_of(4096)
    }

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
    fn the_smallest_reusable_range_that_fits_is_taken() {
        let mut a = Allocator::new();
        let b: Vec<u64> = [64, 16, 32, 16].iter().map(|&l| a.alloc(l, 0).unwrap()).collect();
        a.free(b[0], 64, 1).unwrap();
        a.free(b[2], 32, 1).unwrap();
        // Freed by the running transaction (2): never reused by it, however well it fits.
        a.free(b[1], 16, 2).unwrap();
        assert_eq!(a.alloc(16, 1).unwrap(), b[2], "the 32-byte range, not the 64-byte one");
        assert_eq!(a.alloc(16, 1).unwrap(), b[2] + 16);
        assert_eq!(a.alloc(48, 1).unwrap(), b[0]);
        let end = a.end();
        assert_eq!(a.alloc(32, 1).unwrap(), end, "16 bytes left at b[0] + 48 do not fit");
        assert_eq!(a.alloc(16, 1).unwrap(), b[0] + 48);
        assert_eq!(a.alloc(16, 2).unwrap(), b[1], "reusable once transaction 2 is");
    }

    /// Random allocations, frees and settles, checked against the blocks handed out: no
    /// block overlaps another or a free range, and none reuses what was freed by a
    /// transaction the caller may not reuse yet.
    #[test]
    fn random_sequences_never_hand_out_a_byte_twice() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut a = Allocator::new();
        let mut live: BTreeMap<u64, u64> = BTreeMap::new();
        let mut freed_at: BTreeMap<u64, u64> = BTreeMap::new();
        for txn in 1..200u64 {
            let reusable = txn.saturating_sub(1 + next(3));
            a.settle(reusable);
            assert_settled(&a);
            for _ in 0..next(40) {
                if next(2) == 0 || live.is_empty() {
                    let len = align_up(1 + next(300)).unwrap();
                    let off = a.alloc(len, reusable).unwrap();
                    for (&o, &l) in live.range(..off + len).rev().take(1) {
                        assert!(o + l <= off, "block {off}+{len} overlaps live {o}+{l}");
                    }
                    for (&o, &t) in freed_at.range(off..off + len) {
                        assert!(t <= reusable, "byte {o} freed by {t} reused at {reusable}");
                    }
                    live.insert(off, len);
                } else {
                    let pick = *live.keys().nth(next(live.len() as u64) as usize).unwrap();
                    let len = live.remove(&pick).unwrap();
                    a.free(pick, len, txn).unwrap();
                    for o in (pick..pick + len).step_by(ALIGN as usize) {
                        freed_at.insert(o, txn);
                    }
                }
            }
            let free: u64 = a.free_bytes();
            let used: u64 = live.values().sum();
            assert_eq!(free + used, a.end() - DATA_START, "every byte free or live");
            let round = Allocator::decode(&a.encode(), a.end(), txn, 0).unwrap();
            assert_eq!(round, a);
            assert_settled(&a);
        }
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

/// Sets bits `first..=last` a word at a time (a big free range costs its words, not its
/// pages).
fn set_bits(bits: &mut [u64], first: u64, last: u64) {
    let (fw, lw) = ((first / 64) as usize, (last / 64) as usize);
    let lo = !0u64 << (first % 64);
    let hi = !0u64 >> (63 - last % 64);
    if fw == lw {
        bits[fw] |= lo & hi;
    } else {
        bits[fw] |= lo;
        bits[fw + 1..lw].fill(!0);
        bits[lw] |= hi;
    }
}

/// Which pages of an allocator's area hold any free byte, one bit each: what lets a
/// snapshot's check of every node it reads against its commit's free space cost a bit
/// test where no page of the node holds free bytes (the common case), and the free
/// ranges' index only elsewhere. Pages are 4 KiB, or larger for areas over 32 GiB (at
/// most 2^23 bits, 1 MiB).
#[derive(Debug)]
pub(crate) struct FreePages {
    shift: u32,
    bits: Box<[u64]>,
    /// Bit `p`: page `p` or page `p + 1` holds a free byte — all a block of at most a
    /// page that starts in page `p` can reach, in one test.
    starts: Box<[u64]>,
}

impl FreePages {
    /// The pages of `alloc`'s free ranges.
    pub fn of(alloc: &Allocator) -> FreePages {
        let end = alloc.end().max(1);
        let shift = 12.max((64 - end.leading_zeros()).saturating_sub(23));
        let pages = (end >> shift) + 1;
        let mut bits = vec![0u64; pages.div_ceil(64) as usize].into_boxed_slice();
        let mut starts = bits.clone();
        for (start, len) in alloc.free_ranges() {
            let first = start >> shift;
            let last = (start.saturating_add(len.max(1) - 1) >> shift).min(pages - 1);
            if first <= last {
                set_bits(&mut bits, first, last);
                set_bits(&mut starts, first.saturating_sub(1), last);
            }
        }
        FreePages { shift, bits, starts }
    }

    /// [`may_overlap`](Self::may_overlap) for a block of 1 to 4096 bytes (a node): it
    /// lies in the page it starts in and perhaps the next, which one bit test covers.
    #[inline(always)]
    pub fn may_overlap_node(&self, off: u64, len: u64) -> bool {
        debug_assert!((1..=4096).contains(&len) && self.shift >= 12);
        let page = off >> self.shift;
        // Pages past the bitmap hold no free byte.
        self.starts.get((page / 64) as usize).is_some_and(|w| w >> (page % 64) & 1 != 0)
    }

    /// False if no byte of `off..off + len` is free; true if one may be.
    #[inline]
    pub fn may_overlap(&self, off: u64, len: u64) -> bool {
        let first = off >> self.shift;
        let last = off.saturating_add(len.max(1) - 1) >> self.shift;
        // Pages past the bitmap hold no free byte (free ranges lie below the end).
        let bit = |page: u64| {
            self.bits.get((page / 64) as usize).is_some_and(|w| w >> (page % 64) & 1 != 0)
        };
        match last - first {
            // A node: one page or two.
            0 | 1 => bit(first) || bit(last),
            2..64 => (first..=last).any(bit),
            // A long block (a big byte string): the free ranges' index answers in
            // O(log n), where the bits would take one test a page.
            _ => true,
        }
    }
}
