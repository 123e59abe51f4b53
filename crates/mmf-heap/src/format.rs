//! The file format, version 3 (`docs/heap-format.md` says the same in prose): the
//! superblock, the two commit slots, and the headers of the system blocks (manifest, free
//! list, root directory). Every structure is `#[repr(C)]`, little-endian, fixed-width,
//! and checked when read: a bad one is [`Error::Corrupted`], never a panic.

use xxhash_rust::xxh3::xxh3_64;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::{Error, Result};

#[cfg(target_endian = "big")]
compile_error!("mmf-heap's file format is little-endian; big-endian targets are not supported");

/// The format version this library reads and writes.
pub const FORMAT_VERSION: u32 = 3;
/// The superblock's magic: "MMFHEAP", then bytes that text-mode transfers mangle.
pub const MAGIC: [u8; 16] = *b"MMFHEAP\x1a\n\r\0\0\0\0\0\x01";
/// The unit of the file's layout; the data area starts at this offset.
pub const PAGE: u64 = 4096;
/// Byte offsets of the two commit slots, each in a 512-byte sector of its own.
pub const SLOT_OFFSETS: [u64; 2] = [512, 1024];
/// Where allocated blocks start.
pub const DATA_START: u64 = PAGE;
/// Blocks are allocated in multiples of this, at offsets that are multiples of it.
pub const ALIGN: u64 = 16;

/// The first bytes of the file, written once when the heap is created.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Superblock {
    /// [`MAGIC`].
    pub magic: [u8; 16],
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// [`PAGE`].
    pub page_size: u32,
    /// No flags are defined in version 3: 0.
    pub flags: u32,
    /// `size_of::<Superblock>()`.
    pub size: u32,
    /// Random bytes chosen at creation: tells one heap file from another.
    pub file_id: [u8; 16],
    /// The per-file seed of hashed collections.
    pub hash_seed: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// xxh3-64 of the bytes before this field.
    pub hash: u64,
}

/// A commit slot: where a transaction's state is published. Two of them, the newer
/// valid one wins.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Slot {
    /// [`SLOT_MAGIC`].
    pub magic: [u8; 8],
    /// The transaction id: 1 for the empty heap at creation, +1 per commit.
    pub txn_id: u64,
    /// The file length this commit relies on (the file may be longer).
    pub file_len: u64,
    /// The end of the allocated area: no block lies past it.
    pub alloc_end: u64,
    /// The root directory block (offset, length); (0, 0) when there are no roots.
    pub roots: Extent,
    /// The free-list block; (0, 0) when nothing is free.
    pub free: Extent,
    /// The manifest of this transaction's writes; (0, 0) at creation.
    pub manifest: Extent,
    /// xxh3-64 of the manifest block.
    pub manifest_hash: u64,
    /// The first transaction whose writes the manifest lists (this one, or after commits
    /// without a sync the first of them). Space freed by a transaction up to this one
    /// is safe to reuse once this commit is durable.
    pub manifest_from: u64,
    /// Reserved, 0.
    pub reserved: [u64; 3],
    /// xxh3-64 of the bytes before this field.
    pub hash: u64,
}

/// The slot's magic.
pub const SLOT_MAGIC: [u8; 8] = *b"MMFSLOT1";

/// A byte range of the file.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Extent {
    /// Byte offset.
    pub off: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Extent {
    /// No block.
    pub const NONE: Extent = Extent { off: 0, len: 0 };

    /// Whether this is [`Extent::NONE`].
    pub fn is_none(&self) -> bool {
        self.len == 0
    }

    /// The end offset (`off + len`), which the checks keep from overflowing.
    pub fn end(&self) -> u64 {
        self.off.saturating_add(self.len)
    }
}

/// The header of a system block (manifest, free list, root directory).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct BlockHeader {
    /// [`MANIFEST_MAGIC`], [`FREE_MAGIC`] or [`ROOTS_MAGIC`].
    pub magic: [u8; 8],
    /// The transaction that wrote the block.
    pub txn_id: u64,
    /// Bytes of payload after the header.
    pub payload_len: u64,
    /// xxh3-64 of the payload.
    pub hash: u64,
}

/// Magic of a manifest block.
pub const MANIFEST_MAGIC: [u8; 8] = *b"MMFMANI1";
/// Magic of a free-list block.
pub const FREE_MAGIC: [u8; 8] = *b"MMFFREE1";
/// Magic of a root-directory block.
pub const ROOTS_MAGIC: [u8; 8] = *b"MMFROOT1";

/// A manifest entry: a byte range the transaction wrote, and its xxh3-64.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ManifestEntry {
    /// Byte offset.
    pub off: u64,
    /// Length in bytes.
    pub len: u64,
    /// xxh3-64 of the bytes.
    pub hash: u64,
}

/// A free-list entry: a free byte range and the transaction that freed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct FreeEntry {
    /// Byte offset.
    pub off: u64,
    /// Length in bytes.
    pub len: u64,
    /// The transaction that freed it: the bytes may be reused once that transaction is
    /// durable and no snapshot older than it is open.
    pub freed_txn: u64,
}

/// The fixed part of a root-directory entry; the name's bytes and the value's bytes
/// follow, each padded to 8 bytes.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RootHeader {
    /// The value type's [`Persist::TYPE_HASH`](crate::Persist).
    pub type_hash: u64,
    /// Name length in bytes (UTF-8).
    pub name_len: u32,
    /// Value length in bytes.
    pub value_len: u32,
}

impl Superblock {
    /// A new superblock with its hash.
    pub fn new(file_id: [u8; 16], hash_seed: u64, created_ns: u64) -> Self {
        let mut sb = Superblock {
            magic: MAGIC,
            format: FORMAT_VERSION,
            page_size: PAGE as u32,
            flags: 0,
            size: size_of::<Superblock>() as u32,
            file_id,
            hash_seed,
            created_ns,
            hash: 0,
        };
        sb.hash = xxh3_64(&sb.as_bytes()[..size_of::<Superblock>() - 8]);
        sb
    }

    /// Parses and checks the superblock at the start of `bytes`.
    ///
    /// # Errors
    /// [`Error::NotAHeap`] (magic), [`Error::UnsupportedFormat`], [`Error::Corrupted`].
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let (sb, _) = Superblock::read_from_prefix(bytes).map_err(|_| Error::NotAHeap)?;
        if sb.magic != MAGIC {
            return Err(Error::NotAHeap);
        }
        if sb.hash != xxh3_64(&sb.as_bytes()[..size_of::<Superblock>() - 8]) {
            return Err(Error::corrupted("superblock", 0));
        }
        if sb.format != FORMAT_VERSION {
            return Err(Error::UnsupportedFormat { found: sb.format, supported: FORMAT_VERSION });
        }
        if sb.page_size as u64 != PAGE || sb.flags != 0 || sb.size as usize != size_of::<Self>() {
            return Err(Error::corrupted("superblock", 0));
        }
        Ok(sb)
    }
}

impl Slot {
    /// Sets the magic and the hash.
    pub fn seal(mut self) -> Self {
        self.magic = SLOT_MAGIC;
        self.hash = xxh3_64(&self.as_bytes()[..size_of::<Slot>() - 8]);
        self
    }

    /// Parses the slot at file offset `at` from `bytes` and checks what it can alone:
    /// magic, hash, and that its blocks lie inside its allocated area.
    ///
    /// # Errors
    /// [`Error::Corrupted`] naming the commit slot.
    pub fn parse(bytes: &[u8], at: u64) -> Result<Self> {
        let bad = || Error::corrupted("commit slot", at);
        let (slot, _) = Slot::read_from_prefix(bytes).map_err(|_| bad())?;
        if slot.magic != SLOT_MAGIC
            || slot.hash != xxh3_64(&slot.as_bytes()[..size_of::<Slot>() - 8])
            || slot.txn_id == 0
            || slot.manifest_from > slot.txn_id
            || slot.alloc_end < DATA_START
            || slot.alloc_end % ALIGN != 0
            || slot.alloc_end > slot.file_len
        {
            return Err(bad());
        }
        for block in [slot.roots, slot.free, slot.manifest] {
            if !block.is_none() && !slot.holds(block) {
                return Err(bad());
            }
        }
        Ok(slot)
    }

    /// Whether `block` lies inside this commit's allocated area, aligned.
    pub fn holds(&self, block: Extent) -> bool {
        block.off >= DATA_START
            && block.off % ALIGN == 0
            && block.off.checked_add(block.len).is_some_and(|end| end <= self.alloc_end)
    }
}

/// A system block: header + payload, for writing.
pub fn seal_block(magic: [u8; 8], txn_id: u64, payload: &[u8]) -> Vec<u8> {
    let header =
        BlockHeader { magic, txn_id, payload_len: payload.len() as u64, hash: xxh3_64(payload) };
    let mut out = Vec::with_capacity(size_of::<BlockHeader>() + payload.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks a system block read from file offset `at` and returns its payload.
///
/// # Errors
/// [`Error::Corrupted`] naming `what`: wrong magic, a payload longer than the block, a
/// hash that does not match.
pub fn open_block<'b>(
    bytes: &'b [u8],
    magic: [u8; 8],
    what: &'static str,
    at: u64,
) -> Result<&'b [u8]> {
    let bad = || Error::corrupted(what, at);
    let (header, rest) = BlockHeader::read_from_prefix(bytes).map_err(|_| bad())?;
    if header.magic != magic || header.payload_len > rest.len() as u64 {
        return Err(bad());
    }
    let payload = &rest[..header.payload_len as usize];
    if xxh3_64(payload) != header.hash {
        return Err(bad());
    }
    Ok(payload)
}

/// Rounds `n` up to a multiple of [`ALIGN`] (`None` on overflow).
pub fn align_up(n: u64) -> Option<u64> {
    n.checked_add(ALIGN - 1).map(|n| n & !(ALIGN - 1))
}

#[cfg(test)]
mod tests;
