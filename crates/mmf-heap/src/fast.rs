//! A look-up's hot path: the nodes it reads ([`Nodes`]), and [`Fast`], a snapshot's
//! reads with what they check gathered once per look-up (its bytes, newest transaction,
//! free pages, and the directories its commit has already had checked).
//!
//! Why so few instructions matter: a random get in a map of 1M keys waits ~150 ns for
//! memory, and the processor hides that wait only by running the next get's loads
//! meanwhile, as far ahead as its window of instructions in flight reaches. std's
//! `HashMap` get is ~70 instructions, so several of its gets wait at once; padded with
//! 160 independent adds, it went from 92 to 299 ns a get on this host. A `PHashMap` get
//! through [`Source`]'s generic reads was ~470 instructions and ~225 ns, and it asked for
//! the bucket's lines only after the bucket's checks. Here: the bucket's lines are asked
//! for (prefetched) from its address as soon as the directory gives it, the directories
//! are checked once per commit, and a node's free-space check is one bit test: ~150 ns.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::alloc::FreePages;
use crate::format::DATA_START;
use crate::heap::Committed;
use crate::mem::Mapped;
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

/// Directories that passed their checks (bounds, free space, transaction, header at a
/// level) in one commit: a look-up through any snapshot of that commit that passes one
/// again skips its checks. Kept with the commit (`heap::Committed`), so that snapshots
/// share it (a table per snapshot cost a new snapshot's first get ~150 ns: 8 KiB to
/// allocate and zero). Sound because what the checks look at is the commit's: its bytes
/// up to its end, which do not change while a snapshot pins it, and its free space (the
/// heap's contract: only mmf-heap writes the file). [`DIRS`] entries, direct-mapped by
/// offset, made on the commit's first hash look-up; an entry is `off | level << 1 | 1`
/// (a directory's offset is 16-aligned, which [`Fast::known_dir`] checks first: an odd
/// offset could otherwise read as another level's entry), 0 when empty.
#[derive(Default)]
pub(crate) struct CheckedDirs(OnceLock<Box<[AtomicU64; DIRS]>>);

impl std::fmt::Debug for CheckedDirs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known =
            self.0.get().map_or(0, |t| t.iter().filter(|e| e.load(Ordering::Relaxed) != 0).count());
        write!(f, "CheckedDirs({known} known)")
    }
}

// The level is kept in 3 bits of an entry.
const _: () = assert!(crate::phash::LEVELS <= 8);

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

/// Where a snapshot's bytes are: the mapping, sliced only where a range passed the
/// checks (other bytes of it change while the snapshot lives: the commit slots, free
/// space that writers reuse), or the window's private copy of the commit.
#[derive(Clone, Copy)]
pub enum Bytes<'r> {
    /// The backend's mapping.
    Mapped(&'r Mapped),
    /// A copy of the commit's bytes `0..end`.
    Copy(&'r [u8]),
}

impl<'r> Bytes<'r> {
    /// The `len` bytes at `off`, for a range that passed the checks.
    #[inline(always)]
    fn slice(self, off: u64, len: usize) -> Option<&'r [u8]> {
        match self {
            Bytes::Mapped(m) => m.slice(off, len),
            Bytes::Copy(c) => {
                let start = usize::try_from(off).ok()?;
                c.get(start..start.checked_add(len)?)
            }
        }
    }

    /// Where byte 0 is, for prefetch hints.
    #[inline(always)]
    fn base(self) -> *const u8 {
        match self {
            Bytes::Mapped(m) => m.base(),
            Bytes::Copy(c) => c.as_ptr(),
        }
    }
}

/// A snapshot's reads, with what they check gathered in one place: its bytes, its
/// commit's end, transaction and free pages, and the commit's checked directories.
#[derive(Clone, Copy)]
pub struct Fast<'r> {
    bytes: Bytes<'r>,
    end: u64,
    newest: u64,
    pages: &'r FreePages,
    commit: &'r Committed,
}

impl<'r> Fast<'r> {
    /// The reads of a snapshot of `commit`, whose bytes are `bytes` and whose allocated
    /// area ends at `end`.
    #[inline(always)]
    pub(crate) fn new(bytes: Bytes<'r>, end: u64, commit: &'r Committed) -> Self {
        Fast { bytes, end, newest: commit.slot.txn_id, pages: commit.free_pages(), commit }
    }
}

impl<'r> Nodes<'r> for Fast<'r> {
    #[inline(always)]
    fn unfreed(self, off: u64, size: usize) -> Option<&'r [u8]> {
        let len = size as u64;
        if off < DATA_START || off % 16 != 0 || off.checked_add(len)? > self.end {
            return None;
        }
        // Bit tests; the free ranges' index only on a page that holds free bytes.
        let may = if (1..=4096).contains(&size) {
            self.pages.may_overlap_node(off, len)
        } else {
            self.pages.may_overlap(off, len)
        };
        if may && self.commit.alloc.overlaps_free(off, len) {
            return None;
        }
        self.bytes.slice(off, size)
    }

    #[inline(always)]
    fn newest_txn(self) -> u64 {
        self.newest
    }

    #[inline(always)]
    fn known_dir(self, off: u64, level: u8, size: usize) -> Option<&'r [u8]> {
        if off % 16 != 0
            || self.commit.dirs.entry(off).load(Ordering::Relaxed) != CheckedDirs::tag(off, level)
        {
            return None;
        }
        self.bytes.slice(off, size)
    }

    #[inline(always)]
    fn address(self, off: u64) -> Option<*const u8> {
        // Where prefetching is not built (`slots::prefetch`), the look-up touches the
        // lines once the checks are done.
        cfg!(target_arch = "x86_64").then(|| self.bytes.base().wrapping_add(off as usize))
    }

    #[inline(always)]
    fn remember_dir(self, off: u64, level: u8) {
        self.commit.dirs.entry(off).store(CheckedDirs::tag(off, level), Ordering::Relaxed);
    }
}

/// Asks for the cache line of `at` (a hint: nothing on targets other than x86-64).
#[inline(always)]
pub(crate) fn prefetch_line(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint with no effect the program can observe: it does not
    // fault on any address and reads nothing into the program's state.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Asks for every cache line that holds a byte of `at..at + len` (hints, as
/// [`prefetch_line`]).
#[inline(always)]
pub(crate) fn prefetch_range(at: *const u8, len: usize) {
    // From the line `at` is in: a node is 16-aligned, not always 64-aligned.
    let skew = at as usize % 64;
    let mut line = 0;
    while line < skew + len {
        prefetch_line(at.wrapping_sub(skew).wrapping_add(line));
        line += 64;
    }
}
