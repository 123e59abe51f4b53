//! A write transaction's new blocks, in memory until the commit writes them (LMDB's dirty
//! list): found by their offset in one hash lookup (what collections do per node), by an
//! offset inside them through an ordered index, and written in offset order.

use std::collections::BTreeMap;
use std::ptr::NonNull;

use rustc_hash::FxHashMap;

use crate::arena::Arena;
use crate::mem::Chunk;

/// The largest block a transaction holds, in bytes (`u32::MAX` chunks of 16, just under
/// 64 GiB): a block's length is kept as a 32-bit chunk count, so that the table of blocks
/// has 24-byte entries (1.5 MB for a million-key insert's ~32k nodes, inside a core's
/// L2 cache here, where 32-byte ones were 2 MB and missed it).
pub(crate) const MAX_BLOCK: u64 = u32::MAX as u64 * 16;

/// One new block: its bytes (zero-padded to the allocated length, 16-byte aligned, from
/// the transaction's [`Arena`]: pooled for a node) and whether it is a collection node
/// (sealed with its checksum at the commit).
pub(crate) struct Block {
    ptr: NonNull<Chunk>,
    /// Its length in chunks of 16 bytes.
    chunks: u32,
    /// A collection node; also whether its chunks are pooled in the arena (so it never
    /// changes once the block is made).
    node: bool,
}

// SAFETY: a Block is reached only through its `Dirty`, which owns the arena its bytes are
// in (see `Dirty`); it is moved or shared with it.
unsafe impl Send for Block {}
// SAFETY: `&Block` gives only shared access to its bytes.
unsafe impl Sync for Block {}

impl Block {
    /// Its bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` holds `chunks` chunks the arena gave this block alone, initialised
        // when it was made (`Dirty::make`) and alive until `Dirty` gives them back (when it
        // drops the block or itself); `&self` borrows that `Dirty`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len()) }
    }

    /// Its bytes, to change.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` (reached through `&mut Dirty`) is the only
        // way to these chunks, no other block's range overlaps them.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<u8>(), self.len()) }
    }

    /// Its length in bytes (the allocated length, a multiple of 16).
    #[inline]
    pub fn len(&self) -> usize {
        self.chunks as usize * 16
    }

    /// Whether it is a collection node.
    #[inline]
    pub fn node(&self) -> bool {
        self.node
    }
}

/// The blocks, by offset.
#[derive(Default)]
pub(crate) struct Dirty {
    blocks: FxHashMap<u64, Block>,
    /// Offset → length, for lookups by an offset inside a block and for the commit.
    order: BTreeMap<u64, usize>,
    /// The blocks' bytes.
    arena: Arena,
}

impl Drop for Dirty {
    fn drop(&mut self) {
        for (_, block) in self.blocks.drain() {
            give_back(&mut self.arena, block);
        }
    }
}

/// Gives a block's chunks back to `arena`, the one its `Dirty` made it from. Taking the
/// block by value (it is not `Clone`, and it left the map to get here) is what makes this
/// the one time they are given back.
fn give_back(arena: &mut Arena, block: Block) {
    // SAFETY: the block's chunks came from `arena` as `alloc(max(chunks, 1), node)` (in
    // `Dirty::make`; `node` never changes), and the block, consumed here, was their only
    // user.
    unsafe { arena.free(block.ptr, (block.chunks as usize).max(1), block.node) };
}

impl Dirty {
    /// A new block of `len` bytes (a multiple of 16, at most [`MAX_BLOCK`]; the callers
    /// check) at `off`, its chunks from the arena (pooled for a node); `fill` initialises all
    /// `len / 16` of them (one for an empty block, which keeps a chunk so that its pointer
    /// is its own).
    fn make(
        &mut self,
        off: u64,
        len: usize,
        node: bool,
        fill: impl FnOnce(*mut Chunk, usize),
    ) -> &mut Block {
        assert!(len % 16 == 0 && len as u64 <= MAX_BLOCK, "a block of {len} bytes");
        let chunks = len / 16;
        let ptr = self.arena.alloc(chunks.max(1), node);
        fill(ptr.as_ptr(), chunks.max(1));
        self.order.insert(off, len);
        let block = Block { ptr, chunks: chunks as u32, node };
        if let Some(old) = self.blocks.insert(off, block) {
            give_back(&mut self.arena, old);
        }
        self.blocks.get_mut(&off).expect("just inserted")
    }

    /// A new zeroed block of `len` bytes (a multiple of 16, at most [`MAX_BLOCK`]) at `off`.
    pub fn insert(&mut self, off: u64, len: usize, node: bool) -> &mut Block {
        // SAFETY: the arena's `n` fresh chunks at `p` are ours alone; zeroes are a Chunk.
        self.make(off, len, node, |p, n| unsafe { p.write_bytes(0, n) })
    }

    /// A new block at `off` holding a copy of `src` (whose length is a multiple of 16, at
    /// most [`MAX_BLOCK`]): what copy-on-write makes, without zeroing a buffer first.
    pub fn insert_copy(&mut self, off: u64, src: &[u8], node: bool) -> &mut Block {
        let len = src.len();
        self.make(off, len, node, |p, n| {
            // SAFETY: `p` holds `n` chunks of ours, `src` is another allocation. For a
            // non-empty block `n * 16 == len`, so the copy initialises all of them; an empty
            // block's one chunk is zeroed.
            unsafe {
                if len == 0 {
                    p.write_bytes(0, n);
                } else {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), p.cast::<u8>(), len);
                }
            }
        })
    }

    /// The block that starts at `off`.
    #[inline]
    pub fn get(&self, off: u64) -> Option<&Block> {
        self.blocks.get(&off)
    }

    /// The block that starts at `off`, to change.
    #[inline]
    pub fn get_mut(&mut self, off: u64) -> Option<&mut Block> {
        self.blocks.get_mut(&off)
    }

    /// The bytes of the node block that starts at `off` (`None` if there is none, or it is
    /// not a node), as a pointer: for a caller that must return them from a branch (see
    /// `WriteTxn::node_cow_mut_hinted`). They stay valid until `self` changes.
    #[inline]
    pub fn node_bytes(&mut self, off: u64) -> Option<NonNull<[u8]>> {
        self.blocks.get_mut(&off).filter(|b| b.node).map(|b| NonNull::from(b.bytes_mut()))
    }

    /// Removes the block that starts at `off` (its chunks go back to the arena).
    pub fn remove(&mut self, off: u64) {
        self.order.remove(&off);
        if let Some(old) = self.blocks.remove(&off) {
            give_back(&mut self.arena, old);
        }
    }

    /// The block that holds byte `off` and its start.
    pub fn containing(&self, off: u64) -> Option<(u64, &Block)> {
        if let Some(block) = self.blocks.get(&off) {
            return Some((off, block));
        }
        let (&start, &len) = self.order.range(..=off).next_back()?;
        (off < start + len as u64).then(|| (start, &self.blocks[&start]))
    }

    /// The block that holds byte `off` and its start, to change.
    pub fn containing_mut(&mut self, off: u64) -> Option<(u64, &mut Block)> {
        let start = if self.blocks.contains_key(&off) {
            off
        } else {
            let (&start, &len) = self.order.range(..=off).next_back()?;
            if off >= start + len as u64 {
                return None;
            }
            start
        };
        self.blocks.get_mut(&start).map(|b| (start, b))
    }

    /// The blocks in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Block)> {
        self.order.keys().map(|&off| (off, &self.blocks[&off]))
    }

    /// Calls `f` on each block that starts in `start..end`, in offset order, to change.
    pub fn range_mut(&mut self, start: u64, end: u64, mut f: impl FnMut(u64, &mut Block)) {
        for &off in self.order.range(start..end).map(|(off, _)| off) {
            if let Some(block) = self.blocks.get_mut(&off) {
                f(off, block);
            }
        }
    }
}
