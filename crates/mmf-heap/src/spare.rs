//! Regions of memory that finished write transactions leave for the next ones in the
//! process (`SPARE`, at most [`SPARE_MAX`] bytes), as LMDB keeps its dirty pages and an
//! allocator its freed extents.
//!
//! Why: a fresh region costs a page fault and the kernel's zeroing of each page on its first
//! touch, and in a virtual machine whose guest reports freed memory to the host (Firecracker
//! here: `page_reporting.page_reporting_order=11`) a host fault as well. 1M inserts in one
//! transaction: `clear_page` took 12% of the samples, memory touched at ~0.9 GB/s, until
//! regions were kept.
//!
//! What is kept: regions of the sizes an arena grows by (powers of two from 64 KiB to
//! 32 MiB), taken back by exact layout. On Linux a kept region of 2 MiB or more is advised
//! `MADV_FREE`: the kernel may take its pages whenever it needs memory (a later touch gets
//! a zeroed page, which is all an arena promises: it hands chunks out uninitialised), and
//! until then they come back as they were, so the pool costs nothing under memory pressure.
//! Elsewhere (Windows) kept regions stay until [`trim_memory`].
//!
//! The pool's lock is only tried on the arenas' paths: a thread that finds it taken
//! allocates or frees as if nothing were kept, rather than wait, and a child `fork`ed while
//! a thread of its parent held it does not hang.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use crate::arena::{FIRST, LARGEST};
use crate::mem::Chunk;

/// The most bytes of regions kept for later transactions, for the whole process (256 MiB).
pub const SPARE_MAX: usize = 256 << 20;

/// The smallest and largest regions kept, in bytes: an arena's first region, and the
/// largest it grows to on its own.
pub(crate) const KEPT_SIZES: std::ops::RangeInclusive<usize> =
    FIRST * size_of::<Chunk>()..=LARGEST * size_of::<Chunk>();

/// Regions this large (2 MiB) or larger are aligned to it and advised huge pages.
pub(crate) const HUGE_BYTES: usize = 2 << 20;

/// The pool of the process's arenas.
pub(crate) static SPARE: Pool = Pool::new(SPARE_MAX);

/// A region of chunks from the global allocator, owned by one arena or one pool.
pub(crate) struct Region {
    pub ptr: NonNull<Chunk>,
    pub layout: Layout,
}

// SAFETY: a region is memory its owner (an arena, or a pool) alone reaches; moving it to
// another thread moves that ownership.
unsafe impl Send for Region {}

impl Region {
    /// A new region of `bytes` (> 0) bytes: 2 MiB-aligned and advised huge pages from
    /// 2 MiB on, else aligned for chunks.
    pub fn new(bytes: usize) -> Region {
        let align = if bytes >= HUGE_BYTES { HUGE_BYTES } else { align_of::<Chunk>() };
        let layout = Layout::from_size_align(bytes, align).expect("a block larger than memory");
        // SAFETY: `layout` has a non-zero size (the caller's `bytes > 0`).
        let ptr = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(ptr.cast::<Chunk>()) else { handle_alloc_error(layout) };
        if bytes >= HUGE_BYTES {
            advise_huge(ptr.as_ptr().cast(), bytes);
        }
        Region { ptr, layout }
    }

    /// Gives the region back to the global allocator.
    ///
    /// # Safety
    /// Nothing uses its chunks any more.
    pub unsafe fn free(self) {
        // SAFETY: allocated in `Region::new` with this layout; consumed here, so once.
        unsafe { dealloc(self.ptr.as_ptr().cast(), self.layout) };
    }
}

/// Regions kept for later arenas, at most `max` bytes.
pub(crate) struct Pool {
    regions: Mutex<Vec<Region>>,
    max: usize,
}

impl Pool {
    pub const fn new(max: usize) -> Pool {
        Pool { regions: Mutex::new(Vec::new()), max }
    }

    /// The kept regions, unless another thread holds them.
    fn try_lock(&self) -> Option<MutexGuard<'_, Vec<Region>>> {
        match self.regions.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// A kept region of exactly `bytes` bytes (and so of the layout [`Region::new`] gives
    /// them), if there is one.
    pub fn take(&self, bytes: usize) -> Option<Region> {
        let mut regions = self.try_lock()?;
        let i = regions.iter().position(|r| r.layout.size() == bytes)?;
        Some(regions.swap_remove(i))
    }

    /// Keeps `r` if it is of a size arenas grow by and the pool stays within its bytes;
    /// else gives it back to the global allocator.
    ///
    /// # Safety
    /// Nothing uses `r`'s chunks any more (the next arena, or the allocator, hands them out).
    pub unsafe fn keep(&self, r: Region) {
        let size = r.layout.size();
        let on_grid = size.is_power_of_two() && KEPT_SIZES.contains(&size);
        if let Some(mut regions) = self.try_lock().filter(|_| on_grid) {
            let kept: usize = regions.iter().map(|k| k.layout.size()).sum();
            if kept + size <= self.max {
                if size >= HUGE_BYTES {
                    advise_free(r.ptr.as_ptr().cast(), size);
                }
                regions.push(r);
                return;
            }
        }
        // SAFETY: the caller's promise: nothing uses the region.
        unsafe { r.free() };
    }

    /// Gives every kept region back to the global allocator; returns their bytes. Tries the
    /// lock for ~100 ms, then gives up and returns 0.
    pub fn trim(&self) -> usize {
        for _ in 0..100 {
            if let Some(mut regions) = self.try_lock() {
                let taken = std::mem::take(&mut *regions);
                drop(regions);
                let mut bytes = 0;
                for r in taken {
                    bytes += r.layout.size();
                    // SAFETY: a kept region is used by nothing; it left the pool here.
                    unsafe { r.free() };
                }
                return bytes;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        0
    }
}

/// Gives the memory that finished write transactions kept for later ones (at most
/// [`SPARE_MAX`] bytes for the process) back to the global allocator now; returns how many
/// bytes that was. For a long-lived process after a one-off large transaction (a bulk load)
/// that wants its resident set down at once, or on systems without `MADV_FREE` (Windows);
/// on Linux the kernel takes kept memory back under memory pressure anyway.
///
/// If another thread holds the pool for ~100 ms (in practice: a child `fork`ed while a
/// thread of its parent held it, which never lets it go), this gives up and returns 0.
///
/// ```
/// let released = mmf_heap::trim_memory();
/// assert_eq!(mmf_heap::trim_memory(), 0); // nothing kept since
/// # let _ = released;
/// ```
pub fn trim_memory() -> usize {
    SPARE.trim()
}

/// Asks Linux to back `len` bytes at `ptr` with transparent huge pages (`madvise(2)`,
/// `MADV_HUGEPAGE`). Advice only: where the system refuses it, nothing changes.
#[cfg(target_os = "linux")]
fn advise_huge(ptr: *mut libc::c_void, len: usize) {
    // SAFETY: the range is a live allocation of ours; MADV_HUGEPAGE changes how the kernel
    // backs it, never its contents. `ptr` is 2 MiB-aligned, so page-aligned as madvise wants.
    let _ = unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_: *mut std::ffi::c_void, _: usize) {}

/// Tells Linux that the whole pages of the `len` bytes at `ptr` (2 MiB-aligned) hold
/// nothing anyone needs (`madvise(2)`, `MADV_FREE`): the kernel may free them when it needs
/// memory, and a later touch then gets a zeroed page; pages it did not free keep their
/// bytes. A last partial page is left alone: madvise would round it up, over bytes that
/// are not ours (review 13).
#[cfg(target_os = "linux")]
fn advise_free(ptr: *mut libc::c_void, len: usize) {
    let page = mmf::page_size().max(1);
    let whole = len - len % page;
    // SAFETY: the range is inside a region of ours that no block uses any more (its
    // transaction ended); MADV_FREE only lets the kernel drop its contents, which nothing
    // reads before writing. `ptr` is 2 MiB-aligned and `whole` a multiple of the page size.
    let _ = unsafe { libc::madvise(ptr, whole, libc::MADV_FREE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_free(_: *mut std::ffi::c_void, _: usize) {}

#[cfg(test)]
mod tests;
