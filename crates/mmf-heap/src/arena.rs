//! Memory for a write transaction's blocks: its collection nodes in a few large regions
//! instead of one heap allocation each, so that a big transaction's nodes sit on few pages;
//! its other blocks (objects, byte strings, the free list) from the global allocator.
//!
//! Why: a 1M-key insert transaction holds ~32k nodes of ~4 KiB. Allocated one by one they
//! were spread over ~130 MB of 4 KiB pages, and touching a node cost a TLB miss (a page
//! walk, doubly expensive in a virtual machine) before its cache miss (perf: the first
//! prefetch of a node's header took 19% of the insert's samples). Regions of 2 MiB and more
//! are aligned to 2 MiB and, on Linux, advised `MADV_HUGEPAGE`, so that the kernel may back
//! them with transparent huge pages where the system allows it (`enabled` set to `always`
//! or `madvise`). A freed node is kept by length and given to the next node of that length
//! (a split frees one bucket and makes two of the same size); node lengths come from the
//! collections' layouts, a handful per program, so what is kept stays within the most nodes
//! of each length the transaction held at once. Other blocks have any length (a byte string
//! rewritten a little longer each time): pooled by length, every old length would stay
//! until the commit (review 12 measured 189 MB held for 300 rewrites of a 1.2 MB string),
//! so they go back to the global allocator when freed.
//!
//! When a transaction ends, its regions are kept for the next transactions of the process
//! (`SPARE`, at most [`SPARE_MAX`] bytes), as LMDB keeps its dirty pages and an allocator its
//! freed extents: a fresh region costs a page fault and the kernel's zeroing of each page
//! on its first touch (perf, 1M inserts a transaction: `clear_page` alone took 12% of the
//! samples, ~0.9 GB/s in this virtual machine), which a kept one has already paid. On Linux
//! a kept region's pages are advised `MADV_FREE`: the kernel may take them back whenever it
//! needs memory (a later touch then gets a fresh page, which is all an arena promises), and
//! until then they come back as they are. [`trim_memory`] gives the kept regions back at once.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use rustc_hash::FxHashMap;

use crate::mem::Chunk;

/// The first region's size in chunks (64 KiB): a small transaction allocates little.
const FIRST: usize = 4 << 10;
/// The largest region the arena grows to on its own (32 MiB); a bigger block gets a region
/// of its own size.
const LARGEST: usize = 2 << 20;
/// Regions this large (2 MiB) or larger are aligned to it and advised huge pages.
const HUGE_BYTES: usize = 2 << 20;

/// The most bytes of regions kept for later transactions, for the whole process (256 MiB).
pub const SPARE_MAX: usize = 256 << 20;

struct Region {
    ptr: NonNull<Chunk>,
    layout: Layout,
}

// SAFETY: a region is memory its owner (an arena, or `SPARE`) alone reaches; moving it to
// another thread moves that ownership.
unsafe impl Send for Region {}

/// Regions of finished transactions, for the next ones to take by layout.
static SPARE: Mutex<Vec<Region>> = Mutex::new(Vec::new());

/// `SPARE`, unless another thread holds it: then the caller does without (allocates or
/// frees as if nothing were kept) rather than wait, and a child `fork`ed while a thread of
/// its parent held the lock never hangs on it.
fn spare() -> Option<MutexGuard<'static, Vec<Region>>> {
    match SPARE.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// A kept region of exactly `layout`, if there is one.
fn take_spare(layout: Layout) -> Option<NonNull<Chunk>> {
    let mut spare = spare()?;
    let i = spare.iter().position(|r| r.layout == layout)?;
    Some(spare.swap_remove(i).ptr)
}

/// Keeps `r` for a later transaction if it is of a size the arena grows by and the kept
/// regions stay within [`SPARE_MAX`]; else gives it back to the global allocator.
fn keep_or_free(r: Region) {
    if let Some(mut spare) = spare().filter(|_| r.layout.size() <= LARGEST * size_of::<Chunk>()) {
        let kept: usize = spare.iter().map(|k| k.layout.size()).sum();
        if kept + r.layout.size() <= SPARE_MAX {
            if r.layout.size() >= HUGE_BYTES {
                advise_free(r.ptr.as_ptr().cast(), r.layout.size());
            }
            spare.push(r);
            return;
        }
    }
    // SAFETY: allocated in `Arena::grow` with this layout, and no one else holds it.
    unsafe { dealloc(r.ptr.as_ptr().cast(), r.layout) };
}

/// Gives the memory that finished write transactions kept for later ones (at most
/// [`SPARE_MAX`] bytes for the process, advised `MADV_FREE` on Linux, so the kernel takes it
/// back under memory pressure anyway) back to the global allocator now; returns how many
/// bytes that was. For a long-lived process after a one-off large transaction (a bulk load)
/// that wants its resident set down at once, or on systems without `MADV_FREE` (Windows).
///
/// ```
/// let released = mmf_heap::trim_memory();
/// assert_eq!(mmf_heap::trim_memory(), 0); // nothing kept since
/// # let _ = released;
/// ```
pub fn trim_memory() -> usize {
    let regions = std::mem::take(&mut *SPARE.lock().unwrap_or_else(PoisonError::into_inner));
    let mut bytes = 0;
    for r in regions {
        bytes += r.layout.size();
        // SAFETY: allocated in `Arena::grow` with this layout; `SPARE` was its only owner.
        unsafe { dealloc(r.ptr.as_ptr().cast(), r.layout) };
    }
    bytes
}

/// Disjoint ranges of chunks, handed out uninitialised: pooled ones from the regions (taken
/// back by length), others from the global allocator.
#[derive(Default)]
pub(crate) struct Arena {
    regions: Vec<Region>,
    /// Chunks of the last region handed out so far.
    used: usize,
    /// Chunks in the last region.
    size: usize,
    /// Freed ranges, by length in chunks.
    free: FxHashMap<usize, Vec<NonNull<Chunk>>>,
}

// SAFETY: the arena owns its regions (no other value frees or reaches them), and it hands
// out pointers, not references: moving it to another thread moves the memory's ownership.
unsafe impl Send for Arena {}
// SAFETY: `&Arena` reads no region; every method that hands out or takes back memory takes
// `&mut self`.
unsafe impl Sync for Arena {}

impl Arena {
    /// `n` (> 0) chunks no other live allocation of this arena overlaps, uninitialised, valid
    /// until they are given back to [`free`](Self::free) (with the same `n` and `pooled`) or,
    /// if `pooled`, until the arena is dropped. Not pooled: from the global allocator, which
    /// only `free` gives them back to.
    pub fn alloc(&mut self, n: usize, pooled: bool) -> NonNull<Chunk> {
        debug_assert!(n > 0);
        if !pooled {
            let layout = Self::layout(n);
            // SAFETY: `layout` has a non-zero size (`n > 0`).
            let ptr = unsafe { alloc(layout) };
            let Some(ptr) = NonNull::new(ptr.cast::<Chunk>()) else { handle_alloc_error(layout) };
            return ptr;
        }
        if let Some(p) = self.free.get_mut(&n).and_then(Vec::pop) {
            return p;
        }
        if self.size - self.used < n {
            self.grow(n);
        }
        let region = self.regions.last().expect("grow made one");
        // SAFETY: `used + n <= size`, the region's length in chunks: the result is inside it.
        let p = unsafe { region.ptr.add(self.used) };
        self.used += n;
        p
    }

    /// Gives back `n` chunks at `p`.
    ///
    /// # Safety
    /// `p` came from [`alloc`](Self::alloc)`(n, pooled)` of this arena and was not given
    /// back since; nothing uses its chunks any more. (A pooled range given back twice would
    /// be handed to two blocks at once.)
    pub unsafe fn free(&mut self, p: NonNull<Chunk>, n: usize, pooled: bool) {
        if pooled {
            self.free.entry(n).or_default().push(p);
        } else {
            // SAFETY: allocated by `alloc` with this layout (the caller's promise), once.
            unsafe { dealloc(p.as_ptr().cast(), Self::layout(n)) };
        }
    }

    /// The layout of `n` chunks from the global allocator.
    fn layout(n: usize) -> Layout {
        n.checked_mul(size_of::<Chunk>())
            .and_then(|bytes| Layout::from_size_align(bytes, align_of::<Chunk>()).ok())
            .expect("a block larger than memory")
    }

    /// A new last region with room for `n` chunks (what is left of the old one is not used).
    fn grow(&mut self, n: usize) {
        let next = if self.size == 0 { FIRST } else { (self.size * 2).min(LARGEST) };
        let chunks = next.max(n);
        let bytes = chunks.checked_mul(size_of::<Chunk>()).expect("a block larger than memory");
        let align = if bytes >= HUGE_BYTES { HUGE_BYTES } else { align_of::<Chunk>() };
        let layout = Layout::from_size_align(bytes, align).expect("a block larger than memory");
        let ptr = take_spare(layout).unwrap_or_else(|| {
            // SAFETY: `layout` has a non-zero size (`chunks >= FIRST`).
            let ptr = unsafe { alloc(layout) };
            let Some(ptr) = NonNull::new(ptr.cast::<Chunk>()) else { handle_alloc_error(layout) };
            if bytes >= HUGE_BYTES {
                advise_huge(ptr.as_ptr().cast(), bytes);
            }
            ptr
        });
        self.regions.push(Region { ptr, layout });
        self.used = 0;
        self.size = chunks;
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // The blocks in the regions are gone with the transaction (their `Dirty` is dropped).
        for r in self.regions.drain(..) {
            keep_or_free(r);
        }
    }
}

/// Asks Linux to back `len` bytes at `ptr` with transparent huge pages (`madvise(2)`,
/// `MADV_HUGEPAGE`). Advice only: where the system refuses it, nothing changes. (If the
/// global allocator keeps the region's pages after the arena frees them, they keep the
/// advice: later allocations there may get huge pages too, which changes no contents.)
#[cfg(target_os = "linux")]
fn advise_huge(ptr: *mut libc::c_void, len: usize) {
    // SAFETY: the range is a live allocation of ours; MADV_HUGEPAGE changes how the kernel
    // backs it, never its contents. `ptr` is 2 MiB-aligned, so page-aligned as madvise wants.
    let _ = unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_: *mut std::ffi::c_void, _: usize) {}

/// Tells Linux that the `len` bytes at `ptr` (a kept region, 2 MiB-aligned) hold nothing
/// anyone needs (`madvise(2)`, `MADV_FREE`): the kernel may free their pages when it needs
/// memory, and a later touch then gets a zeroed one; pages it did not free keep their
/// bytes. Either is what the arena promises (chunks handed out uninitialised).
#[cfg(target_os = "linux")]
fn advise_free(ptr: *mut libc::c_void, len: usize) {
    // SAFETY: the range is a region of ours that no block uses any more (its transaction
    // ended); MADV_FREE only lets the kernel drop its contents, which nothing reads before
    // writing. Page-aligned, as madvise wants.
    let _ = unsafe { libc::madvise(ptr, len, libc::MADV_FREE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_free(_: *mut std::ffi::c_void, _: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_disjoint_and_freed_ranges_are_reused_by_length() {
        let mut a = Arena::default();
        let mut live: Vec<(usize, usize)> = Vec::new();
        for i in 0..3000usize {
            let n = 1 + (i * 7919) % 300;
            let p = a.alloc(n, true).as_ptr() as usize;
            for &(q, m) in &live {
                assert!(p + n * 16 <= q || q + m * 16 <= p, "overlap");
            }
            live.push((p, n));
            if i % 3 == 0 {
                let (q, m) = live.swap_remove(i % live.len());
                // SAFETY: from alloc(m, true) above, given back once.
                unsafe { a.free(NonNull::new(q as *mut Chunk).unwrap(), m, true) };
                // The next allocation of that length takes it back.
                assert_eq!(a.alloc(m, true).as_ptr() as usize, q);
                live.push((q, m));
            }
        }
        // A block larger than the largest region gets one of its own.
        let big = a.alloc(LARGEST + 1, true);
        // SAFETY: the last of LARGEST + 1 chunks, all ours.
        unsafe { big.add(LARGEST).write(Chunk::default()) };
        assert!(a.regions.iter().any(|r| r.layout.size() >= (LARGEST + 1) * 16));
        // Unpooled chunks go back to the global allocator, not to the free lists.
        let regions = a.regions.len();
        let p = a.alloc(5, false);
        // SAFETY: all five chunks are ours.
        unsafe { p.add(4).write(Chunk::default()) };
        // SAFETY: from alloc(5, false), given back once.
        unsafe { a.free(p, 5, false) };
        assert_eq!(a.regions.len(), regions);
        assert!(a.free.get(&5).is_none_or(|v| !v.contains(&p)));
    }

    /// The tests that look into `SPARE` take turns (one calls `trim_memory`).
    static SERIAL: Mutex<()> = Mutex::new(());

    /// A region of `layout`, as `Arena::grow` makes one.
    fn region(layout: Layout) -> Region {
        // SAFETY: a non-zero size.
        let ptr = NonNull::new(unsafe { alloc(layout) }.cast::<Chunk>()).unwrap();
        Region { ptr, layout }
    }

    #[test]
    fn a_finished_transactions_regions_are_kept_for_the_next_and_trimmed_on_request() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        // A length no arena grows by, so that other tests' transactions do not take it.
        let layout = Layout::from_size_align(16 * (FIRST + 3), 16).unwrap();
        let r = region(layout);
        let p = r.ptr;
        keep_or_free(r);
        assert_eq!(take_spare(layout), Some(p), "kept, and taken back by its layout");
        assert_eq!(take_spare(layout), None, "taken once");
        keep_or_free(Region { ptr: p, layout });
        assert!(trim_memory() >= layout.size());
        assert_eq!(take_spare(layout), None, "trimmed");
        // A region larger than the arena grows by (one block's own) is not kept.
        let big = Layout::from_size_align(16 * (LARGEST + 1), 16).unwrap();
        keep_or_free(region(big));
        assert_eq!(take_spare(big), None);
    }

    #[test]
    fn an_arena_dropped_gives_its_regions_to_the_next_arena() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        // A first block larger than the first region: the region is that block's length,
        // one no other test's arena asks for.
        let n = FIRST + 4093;
        let mut a = Arena::default();
        let p = a.alloc(n, true);
        drop(a);
        let mut b = Arena::default();
        assert_eq!(b.alloc(n, true), p, "the region the first arena kept");
        drop(b);
        let layout = Layout::from_size_align(16 * n, 16).unwrap();
        let r = Region { ptr: take_spare(layout).expect("kept again"), layout };
        // SAFETY: allocated with this layout by `grow`, and taken out of the pool.
        unsafe { dealloc(r.ptr.as_ptr().cast(), r.layout) };
    }
}
