//! A write transaction's new blocks, in memory until the commit writes them (LMDB's dirty
//! list): found by their offset in one hash lookup (what collections do per node), by an
//! offset inside them through an ordered index, and written in offset order.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use zerocopy::{FromBytes, IntoBytes};

use crate::mem::{Chunk, chunks};

/// One new block: its bytes (zero-padded to the allocated length, 16-byte aligned) and
/// whether it is a collection node (sealed with its checksum at the commit).
pub(crate) struct Block {
    data: Box<[Chunk]>,
    len: usize,
    pub node: bool,
}

impl Block {
    /// Its bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.data.as_bytes()[..self.len]
    }

    /// Its bytes, to change.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data.as_mut_bytes()[..self.len]
    }

    /// Its length in bytes (the allocated length).
    pub fn len(&self) -> usize {
        self.len
    }
}

/// The blocks, by offset.
#[derive(Default)]
pub(crate) struct Dirty {
    blocks: FxHashMap<u64, Block>,
    /// Offset → length, for lookups by an offset inside a block and for the commit.
    order: BTreeMap<u64, usize>,
}

impl Dirty {
    /// A new zeroed block of `len` bytes at `off`.
    pub fn insert(&mut self, off: u64, len: usize, node: bool) -> &mut Block {
        self.order.insert(off, len);
        let block = Block { data: chunks(len), len, node };
        self.blocks.entry(off).insert_entry(block).into_mut()
    }

    /// A new block at `off` holding a copy of `src` (whose length is a multiple of 16):
    /// what copy-on-write makes, without zeroing a buffer first.
    pub fn insert_copy(&mut self, off: u64, src: &[u8], node: bool) -> &mut Block {
        debug_assert_eq!(src.len() % 16, 0);
        let len = src.len();
        self.order.insert(off, len);
        // One copy; the mapping and the copy a window reads from are 16-aligned.
        let data: Box<[Chunk]> = match <[Chunk]>::ref_from_bytes(src) {
            Ok(chunks) => chunks.into(),
            Err(_) => src.chunks_exact(16).map(|c| Chunk(c.try_into().expect("16"))).collect(),
        };
        let block = Block { data, len, node };
        self.blocks.entry(off).insert_entry(block).into_mut()
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

    /// Removes the block that starts at `off`.
    pub fn remove(&mut self, off: u64) -> Option<Block> {
        self.order.remove(&off);
        self.blocks.remove(&off)
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
