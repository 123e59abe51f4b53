//! Collection nodes: the header every node of a [`PVec`](crate::PVec),
//! [`PMap`](crate::PMap) or [`PHashMap`](crate::PHashMap) starts with, the checks a reader
//! makes before it trusts one, the checksum a commit seals it with, and copy-on-write.

use xxhash_rust::xxh3::Xxh3;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::fast::Nodes;
use crate::read::private::Source;
use crate::txn::WriteTxn;

/// A node's magic.
pub const NODE_MAGIC: [u8; 4] = *b"MMFN";
/// Bytes of the header; what follows it is 16-byte aligned.
pub const HDR: usize = size_of::<NodeHeader>();
/// What a reader names in [`Error::Corrupted`] for a bad node.
pub const WHAT: &str = "collection node";

/// The kinds of nodes.
pub mod kind {
    /// A vector's leaf: elements.
    pub const VEC_LEAF: u8 = 1;
    /// A vector's branch: child pointers.
    pub const VEC_BRANCH: u8 = 2;
    /// An ordered map's leaf: entries.
    pub const MAP_LEAF: u8 = 3;
    /// An ordered map's branch: separator keys and child pointers.
    pub const MAP_BRANCH: u8 = 4;
    /// A hash map's bucket: entries in slots near their homes (`phash::slots`).
    pub const HASH_BUCKET: u8 = 5;
    /// A hash map's directory: 256 child pointers.
    pub const HASH_DIR: u8 = 6;
}

/// The first 48 bytes of every collection node (`docs/heap-format.md`, "Collection
/// nodes").
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct NodeHeader {
    /// [`NODE_MAGIC`].
    pub magic: [u8; 4],
    /// One of [`kind`].
    pub kind: u8,
    /// Height above the leaves (vectors, ordered maps); a directory's depth (hash maps).
    pub level: u8,
    /// A hash bucket's local depth in its directory (bits); 0 otherwise.
    pub depth: u8,
    /// 0.
    pub flags: u8,
    /// The node's length in bytes.
    pub size: u32,
    /// Entries, elements or children in use.
    pub count: u32,
    /// Where the key heap starts (node-relative); `size` when it is empty.
    pub heap: u32,
    /// The size of one value or element in bytes.
    pub width: u32,
    /// The transaction that wrote the node.
    pub txn: u64,
    /// 0.
    pub reserved: u64,
    /// xxh3-64 of the node with this field zero, set by the commit.
    pub hash: u64,
}

const HASH_AT: usize = HDR - 8;

/// The header at the start of `bytes` (which the caller has length-checked).
#[inline]
pub fn header(bytes: &[u8]) -> Result<&NodeHeader> {
    NodeHeader::ref_from_prefix(bytes).map(|(h, _)| h).map_err(|_| Error::corrupted(WHAT, 0))
}

/// The header at the start of `bytes`, to change.
#[inline]
pub fn header_mut(bytes: &mut [u8]) -> &mut NodeHeader {
    // Nodes are allocated with at least HDR bytes, 16-aligned: this cannot fail.
    NodeHeader::mut_from_prefix(bytes).map(|(h, _)| h).expect("a node holds its header")
}

/// The node of `size` bytes at `off`, checked: bounds and alignment, magic, size, a
/// writer no newer than the reader, and not in space the reader's commit holds free (a
/// stale handle's old nodes: a later writer may reuse that space while a `&V` into it
/// lives). The caller checks its kind and level.
#[inline(always)]
pub fn read<R: Source + ?Sized>(r: &R, off: u64, size: usize) -> Result<&[u8]> {
    let bytes = r.block(off, size, 16, WHAT)?;
    // Before any byte is read: free space may be changing under the reader.
    crate::read::not_freed(r, off, size as u64)?;
    check(bytes, off, size, r.newest_txn())
}

/// A header's first word (magic, kind, level; depth and flags masked off by
/// [`WORD0_MASK`]) as [`read_words`] returns it, to compare in one instruction.
pub const fn word0(kind: u8, level: u8) -> u64 {
    u32::from_le_bytes(NODE_MAGIC) as u64 | (kind as u64) << 32 | (level as u64) << 40
}

/// The bytes of a header's first word that are neither its depth nor its flags.
pub const WORD0_MASK: u64 = 0x0000_ffff_ffff_ffff;

/// The first 24 bytes of a node's header as three little-endian words: magic, kind,
/// level, depth, flags; size, count; heap, width.
pub type Words = [u64; 3];

/// [`read`] for the hot path of a look-up: the node's bytes and its header's first three
/// words, with the checks the words do not make (bounds and alignment, not in freed
/// space, the writer's transaction); `None` where [`read`] would err. The caller compares
/// the words, which must cover what [`read`] also checks: magic, size, and the key heap
/// within the size.
#[inline(always)]
pub fn read_words<'r>(r: impl Nodes<'r>, off: u64, size: usize) -> Option<(&'r [u8], Words)> {
    let bytes = r.unfreed(off, size)?;
    Some((bytes, head(r, bytes)?))
}

/// The words of the header of [`Nodes::unfreed`] bytes, if the writer's transaction is
/// one the reader may see: the rest of [`read_words`].
#[inline(always)]
pub fn head<'r>(r: impl Nodes<'r>, bytes: &[u8]) -> Option<Words> {
    let txn = bytes.get(24..32).map_or(0, |t| u64::from_le_bytes(t.try_into().unwrap_or_default()));
    // 1..=newest, in one compare.
    (txn.wrapping_sub(1) < r.newest_txn()).then(|| words(bytes))
}

/// A header's first three words (zeros for bytes too short to hold them: no node).
#[inline(always)]
pub fn words(bytes: &[u8]) -> Words {
    match bytes.first_chunk::<24>() {
        Some(h) => {
            let w =
                |i: usize| u64::from_le_bytes(h[8 * i..8 * i + 8].try_into().unwrap_or_default());
            [w(0), w(1), w(2)]
        }
        None => [0; 3],
    }
}

/// [`read`]'s checks of a node's bytes.
#[inline(always)]
fn check(bytes: &[u8], off: u64, size: usize, newest: u64) -> Result<&[u8]> {
    let h = header(bytes).map_err(|_| Error::corrupted(WHAT, off))?;
    if bytes.len() != size
        || h.magic != NODE_MAGIC
        || h.size as usize != size
        || h.txn == 0
        || h.txn > newest
        || h.heap as usize > size
    {
        return Err(Error::corrupted(WHAT, off));
    }
    Ok(bytes)
}

/// The checksum of a node's bytes (its hash field counted as zero).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(&bytes[..HASH_AT]);
    h.update(&[0; 8]);
    h.update(&bytes[HDR..]);
    h.digest()
}

/// [`Error::Corrupted`] unless the node's checksum holds (what a full check of a
/// collection verifies; nodes of a transaction in progress have none yet).
pub fn verify<R: Source + ?Sized>(r: &R, bytes: &[u8], off: u64) -> Result<()> {
    let h = header(bytes)?;
    if r.sealed(h.txn) && h.hash != checksum(bytes) {
        return Err(Error::corrupted("collection node (checksum)", off));
    }
    Ok(())
}

/// Seals a node of a transaction with its checksum (at the commit).
pub fn seal(bytes: &mut [u8]) {
    // [`checksum`] in one pass: the same bytes (the hash field zeroed) hashed at once, which
    // xxh3 does faster than three updates of a streaming state, to the same value.
    header_mut(bytes).hash = 0;
    header_mut(bytes).hash = xxhash_rust::xxh3::xxh3_64(bytes);
}

impl<B: Backend> WriteTxn<'_, B> {
    /// A new node: zeros after a header of `kind`, `level`, `size`, `width`.
    pub(crate) fn node_new(
        &mut self,
        kind: u8,
        level: u8,
        size: usize,
        width: usize,
    ) -> Result<u64> {
        let off = self.alloc_dirty(size as u64, true)?;
        let txn = self.txn_id;
        let block = self.dirty.get_mut(off).expect("just allocated");
        let h = header_mut(block.bytes_mut());
        *h = NodeHeader {
            magic: NODE_MAGIC,
            kind,
            level,
            depth: 0,
            flags: 0,
            size: size as u32,
            count: 0,
            heap: size as u32,
            width: width as u32,
            txn,
            reserved: 0,
            hash: 0,
        };
        Ok(off)
    }

    /// The node at `off`, which this transaction made (else `None`), to change.
    #[inline]
    pub(crate) fn node_mut(&mut self, off: u64) -> Option<&mut [u8]> {
        self.dirty.get_mut(off).filter(|b| b.node()).map(|b| b.bytes_mut())
    }

    /// The node at `off`, writable: itself if this transaction made it, else a copy (the
    /// committed one is freed). Returns the offset to use from now on.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if the node does not check out.
    pub(crate) fn node_cow(&mut self, off: u64, size: usize) -> Result<u64> {
        self.node_cow_hinted(off, size, |_| ())
    }

    /// [`node_cow`](Self::node_cow) that first shows `hint` the bytes of a node this
    /// transaction holds (made or copied), before they are checked or read: the caller
    /// asks for the lines it will read there (prefetches) while the header's line is on
    /// its way, so that a write into a big map waits for memory once a node, not twice.
    #[inline(always)]
    pub(crate) fn node_cow_hinted(
        &mut self,
        off: u64,
        size: usize,
        hint: impl FnOnce(&[u8]),
    ) -> Result<u64> {
        // One look-up for a node this transaction made (the common case in a big one).
        if let Some(block) = self.dirty.get(off).filter(|b| b.node()) {
            hint(block.bytes());
            check(block.bytes(), off, size, self.txn_id)?;
            return Ok(off);
        }
        self.node_copy(off, size)
    }

    /// Copies the committed node at `off` (checked as [`read`] checks it) into a new block
    /// of this transaction, frees the committed one, and returns the copy's offset.
    fn node_copy(&mut self, off: u64, size: usize) -> Result<u64> {
        read(self, off, size)?;
        if size % 16 != 0 {
            return Err(Error::corrupted(WHAT, off));
        }
        let new = self.alloc.alloc(size as u64, self.reusable)?;
        self.changed = true;
        let src = self.window.slice(&self.heap.backend, off, size, 16, WHAT)?;
        let block = self.dirty.insert_copy(new, src, true);
        header_mut(block.bytes_mut()).txn = self.txn_id;
        self.free_block(off, size as u64)?;
        Ok(new)
    }

    /// [`node_cow_hinted`](Self::node_cow_hinted), and the node's bytes (checked as
    /// [`read`] checks them) to read or change.
    ///
    /// # Errors
    /// As [`node_cow`](Self::node_cow).
    #[inline(always)]
    pub(crate) fn node_cow_mut_hinted(
        &mut self,
        off: u64,
        size: usize,
        hint: impl FnOnce(&[u8]),
    ) -> Result<(u64, &mut [u8])> {
        // A node this transaction made (the common case in a big one): one look-up, where
        // `node_cow_hinted` and `node_mut` make two.
        if let Some(mut at) = self.dirty.node_bytes(off) {
            // SAFETY: `at` is the block's bytes, which stay where they are until `dirty`
            // changes; the slice borrows `self` mutably for as long as it lives (the
            // signature), so nothing changes `dirty` or makes another reference to these
            // bytes meanwhile. (A reference from `get_mut` cannot be returned here: the
            // borrow checker would hold it across the copy path below as well.)
            let bytes = unsafe { at.as_mut() };
            hint(bytes);
            check(bytes, off, size, self.txn_id)?;
            return Ok((off, bytes));
        }
        // Not one of this transaction's: a copy (no second look-up for it first).
        let off = self.node_copy(off, size)?;
        let bytes = self.node_mut(off).ok_or_else(|| Error::corrupted(WHAT, off))?;
        Ok((off, bytes))
    }

    /// Frees the node at `off`.
    pub(crate) fn node_free(&mut self, off: u64, size: usize) -> Result<()> {
        self.free_block(off, size as u64)
    }
}
