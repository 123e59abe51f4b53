//! A look-up's hot path: the nodes it reads ([`Nodes`]), and [`Fast`], a snapshot's
//! reads with what they check gathered once per look-up (its bytes, newest transaction,
//! free pages, and the directories it has already checked).
//!
//! Why so few instructions matter: a random get in a map of 1M keys waits ~150 ns for
//! memory, and the processor hides that wait only by running the next get's loads
//! meanwhile, as far ahead as its window of instructions in flight reaches. std's
//! `HashMap` get is ~70 instructions, so several of its gets wait at once; padded with
//! 160 independent adds, it went from 92 to 299 ns a get on this host. A `PHashMap` get
//! through [`Source`]'s generic reads was ~470 instructions and ~225 ns, and it asked for
//! the bucket's lines only after the bucket's checks. Here: the bucket's lines are asked
//! for (prefetched) from its address as soon as the directory gives it, the directories
//! are checked once per snapshot, and a node's free-space check is one bit test: ~150 ns.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::alloc::FreePages;
use crate::format::DATA_START;
use crate::heap::Committed;
use crate::read::private::Source;

/// Where a look-up's hot path gets nodes from: bytes within bounds, 16-aligned, not in
/// freed space (`None` otherwise: the checked path then says what was wrong), and the
/// newest transaction whose nodes it may see.
pub(crate) trait Nodes<'r>: Copy {
    /// The `size` bytes at `off`, if in bounds, aligned to 16 and free of freed bytes.
    fn unfreed(self, off: u64, size: usize) -> Option<&'r [u8]>;
    /// The newest transaction whose nodes this reader sees.
    fn newest_txn(self) -> u64;
    /// The `size` bytes of the directory at `off` if this reader has already checked it
    /// at `level` ([`remember_dir`](Self::remember_dir)).
    #[inline(always)]
    fn known_dir(self, _off: u64, _level: u8, _size: usize) -> Option<&'r [u8]> {
        None
    }
    /// Notes that the directory at `off` checked out at `level`.
    #[inline(always)]
    fn remember_dir(self, _off: u64, _level: u8) {}
    /// Where offset `off` would be in memory, for prefetching before any check (`None`:
    /// touch the lines after the checks instead).
    #[inline(always)]
    fn address(self, _off: u64) -> Option<*const u8> {
        None
    }
}

/// Directories a snapshot has checked (bounds, free space, header): a look-up that
/// passes one again skips its checks. Sound because a snapshot's commit stays pinned
/// while it lives: the bytes of its nodes and its free space do not change (the heap's
/// contract: only mmf-heap writes the file). [`DIRS`] entries, direct-mapped by offset,
/// made on a snapshot's first hash look-up; an entry is `off | level << 1 | 1` (a
/// directory's offset is 16-aligned, which [`Fast::known_dir`] checks first: an odd
/// offset could otherwise read as another level's entry), 0 when empty.
#[derive(Default)]
pub(crate) struct CheckedDirs(OnceLock<Box<[AtomicU64; DIRS]>>);

/// Entries of [`CheckedDirs`]: a map of 1M keys has 257 directories.
const DIRS: usize = 1024;

impl CheckedDirs {
    /// The entry of the directory at `off` (the table made on the first look-up).
    #[inline(always)]
    fn entry(&self, off: u64) -> &AtomicU64 {
        let table = self.0.get_or_init(|| Box::new([const { AtomicU64::new(0) }; DIRS]));
        &table[((off >> 4) ^ (off >> 12)) as usize % DIRS]
    }

    #[inline(always)]
    fn tag(off: u64, level: u8) -> u64 {
        off | (level as u64 & 7) << 1 | 1
    }
}

/// Any reader, through its generic reads (a write transaction: its new blocks, else the
/// mapping).
impl<'r, R: Source + ?Sized> Nodes<'r> for &'r R {
    #[inline(always)]
    fn unfreed(self, off: u64, size: usize) -> Option<&'r [u8]> {
        let bytes = self.block(off, size, 16, crate::node::WHAT).ok()?;
        // Before any byte is read: free space may be changing under the reader.
        (!self.freed(off, size as u64)).then_some(bytes)
    }

    #[inline(always)]
    fn newest_txn(self) -> u64 {
        Source::newest_txn(self)
    }
}

/// A snapshot's reads, with what they check gathered in one place: the commit's bytes
/// (`0..` its allocated end), its transaction, and its free pages.
#[derive(Clone, Copy)]
pub struct Fast<'r> {
    bytes: &'r [u8],
    dirs: &'r CheckedDirs,
    newest: u64,
    pages: &'r FreePages,
    commit: &'r Committed,
}

impl<'r> Fast<'r> {
    /// The reads of a snapshot of `commit` whose bytes up to its allocated end are
    /// `bytes`.
    #[inline(always)]
    pub(crate) fn new(bytes: &'r [u8], commit: &'r Committed, dirs: &'r CheckedDirs) -> Self {
        Fast { bytes, dirs, newest: commit.slot.txn_id, pages: commit.free_pages(), commit }
    }
}

impl<'r> Nodes<'r> for Fast<'r> {
    #[inline(always)]
    fn unfreed(self, off: u64, size: usize) -> Option<&'r [u8]> {
        if off < DATA_START || off % 16 != 0 {
            return None;
        }
        let start = usize::try_from(off).ok()?;
        let bytes = self.bytes.get(start..start.checked_add(size)?)?;
        // Bit tests; the free ranges' index only on a page that holds free bytes.
        let len = size as u64;
        let may = if (1..=4096).contains(&size) {
            self.pages.may_overlap_node(off, len)
        } else {
            self.pages.may_overlap(off, len)
        };
        if may && self.commit.alloc.overlaps_free(off, len) {
            return None;
        }
        Some(bytes)
    }

    #[inline(always)]
    fn newest_txn(self) -> u64 {
        self.newest
    }

    #[inline(always)]
    fn known_dir(self, off: u64, level: u8, size: usize) -> Option<&'r [u8]> {
        if off % 16 != 0
            || self.dirs.entry(off).load(Ordering::Relaxed) != CheckedDirs::tag(off, level)
        {
            return None;
        }
        let start = usize::try_from(off).ok()?;
        self.bytes.get(start..start.checked_add(size)?)
    }

    #[inline(always)]
    fn address(self, off: u64) -> Option<*const u8> {
        // Where prefetching is not built (`slots::prefetch`), the look-up touches the
        // lines once the checks are done.
        cfg!(target_arch = "x86_64").then(|| self.bytes.as_ptr().wrapping_add(off as usize))
    }

    #[inline(always)]
    fn remember_dir(self, off: u64, level: u8) {
        self.dirs.entry(off).store(CheckedDirs::tag(off, level), Ordering::Relaxed);
    }
}
