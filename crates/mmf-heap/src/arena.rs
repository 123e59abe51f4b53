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
//! When a transaction ends, its regions go to the process's pool (`crate::spare`) for the
//! next transactions to take.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;

use rustc_hash::FxHashMap;

use crate::mem::Chunk;
use crate::spare::{Pool, Region, SPARE};

/// The first region's size in chunks (64 KiB): a small transaction allocates little.
pub(crate) const FIRST: usize = 4 << 10;
/// The largest region the arena grows to on its own (32 MiB); a bigger block gets a region
/// of its own size.
pub(crate) const LARGEST: usize = 2 << 20;
/// Disjoint ranges of chunks, handed out uninitialised: pooled ones from the regions (taken
/// back by length), others from the global allocator.
pub(crate) struct Arena {
    /// Where regions come from and go back to.
    pool: &'static Pool,
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

impl Default for Arena {
    fn default() -> Self {
        Arena::with_pool(&SPARE)
    }
}

impl Arena {
    /// An empty arena whose regions come from and go back to `pool`.
    pub fn with_pool(pool: &'static Pool) -> Arena {
        Arena { pool, regions: Vec::new(), used: 0, size: 0, free: FxHashMap::default() }
    }

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

    /// A new last region with room for `n` chunks (what is left of the old one is not used):
    /// the next size in the doubling (64 KiB to 32 MiB), or the power of two that holds `n`
    /// chunks, so that regions have the sizes the pool keeps; a block larger than 32 MiB gets
    /// a region of its own size.
    fn grow(&mut self, n: usize) {
        let next = if self.size == 0 { FIRST } else { (self.size * 2).min(LARGEST) };
        let chunks = if n <= LARGEST { next.max(n.next_power_of_two()) } else { n };
        let bytes = chunks.checked_mul(size_of::<Chunk>()).expect("a block larger than memory");
        let region = self.pool.take(bytes).unwrap_or_else(|| Region::new(bytes));
        self.regions.push(region);
        self.used = 0;
        self.size = chunks;
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for r in self.regions.drain(..) {
            // SAFETY: the blocks in the region went with the transaction (their `Dirty`,
            // which owns this arena, gave them back before dropping it).
            unsafe { self.pool.keep(r) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spare::SPARE_MAX;

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

    #[test]
    fn an_arena_dropped_gives_its_regions_to_the_next_arena_of_its_pool() {
        static POOL: Pool = Pool::new(SPARE_MAX);
        let mut a = Arena::with_pool(&POOL);
        let first = a.alloc(1, true);
        let second = a.alloc(FIRST, true); // a second region, of 2 * FIRST chunks
        let big = a.alloc(LARGEST + 1, true); // its own region, not kept
        // SAFETY: the last of LARGEST + 1 chunks, ours.
        unsafe { big.add(LARGEST).write(Chunk::default()) };
        drop(a);
        let mut b = Arena::with_pool(&POOL);
        assert_eq!(b.alloc(1, true), first, "the first region again");
        assert_eq!(b.alloc(FIRST, true), second, "the second region again");
        drop(b);
        // Both kept again, and only they: the block's own region went back.
        assert_eq!(POOL.trim(), (FIRST + 2 * FIRST) * 16);
    }

    #[test]
    fn regions_have_the_sizes_the_pool_keeps() {
        static POOL: Pool = Pool::new(SPARE_MAX);
        let mut a = Arena::with_pool(&POOL);
        // A first block larger than the first region, and one larger than the next.
        a.alloc(FIRST + 5, true);
        a.alloc(5 * FIRST, true);
        a.alloc(LARGEST, true);
        for r in &a.regions {
            let size = r.layout.size();
            assert!(size.is_power_of_two() && crate::spare::KEPT_SIZES.contains(&size), "{size}");
        }
        drop(a);
        assert_eq!(POOL.trim(), (2 * FIRST + 8 * FIRST + LARGEST) * 16);
    }
}
