//! [`HashSpec`]: a hash map's node layouts as runtime values (constants for the typed
//! API, built from a stored shape by `mmf heap dump`), finding a key's bucket, and the
//! check of a whole map; the slot arithmetic of extendible hashing.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::entries::{Entries, KeyMode, Layout};
use crate::error::{Error, Result};
use crate::node::{self, HDR, WHAT, kind};
use crate::read::private::Source;

use super::{DIR_SIZE, DIR_TAG, LEVELS, SLOTS};
use crate::pmap::Handle;

/// A bucket as found: its offset, bytes, level (of its directory) and local depth.
pub(crate) struct Bucket<'r> {
    pub(super) off: u64,
    pub(super) b: &'r [u8],
    pub(super) level: u8,
    pub(super) depth: u8,
}

#[inline]
pub(super) fn slot(h: u64, level: u8) -> usize {
    ((h >> (56 - 8 * level as u32)) & 0xff) as usize
}

/// The range of slots a bucket of local depth `depth` covers, around `slot`.
#[inline]
pub(super) fn span(slot: usize, depth: u8) -> std::ops::Range<usize> {
    let width = SLOTS >> depth;
    let start = slot & !(width - 1);
    start..start + width
}

#[inline]
pub(super) fn dir_child(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[HDR + 8 * i..][..8].try_into().unwrap_or_default())
}

#[inline]
pub(super) fn set_dir_child(b: &mut [u8], i: usize, ptr: u64) {
    b[HDR + 8 * i..][..8].copy_from_slice(&ptr.to_le_bytes());
}

/// The words of a directory's header (`node::read_words`) at `level`: kind and level,
/// 256 slots of 8 bytes, no key heap.
#[inline(always)]
fn dir_words_ok(w: node::Words, level: u8) -> bool {
    w[0] & node::WORD0_MASK == node::word0(kind::HASH_DIR, level)
        && w[1] == DIR_SIZE as u64 | (SLOTS as u64) << 32
        && w[2] == DIR_SIZE as u64 | 8 << 32
}

/// [`HashSpec::dir`]'s checks of a directory's bytes (which [`node::read`] checked) at
/// `off`.
#[inline]
pub(super) fn dir_ok(b: &[u8], off: u64, level: u8) -> Result<()> {
    if !dir_words_ok(node::words(b), level) {
        return Err(Error::corrupted(WHAT, off));
    }
    Ok(())
}

/// A bucket's local depth from the words of its header (`node::read_words`) at `level`
/// in a node of `size` bytes, if they check out: kind and level, a depth within the
/// directory levels, the size, and a key heap within it.
#[inline(always)]
fn bucket_words_depth(w: node::Words, level: u8, size: usize) -> Option<u8> {
    let depth = (w[0] >> 48) as u8;
    let ok = w[0] & node::WORD0_MASK == node::word0(kind::HASH_BUCKET, level)
        && depth <= LEVELS
        && w[1] as u32 as usize == size
        && w[2] as u32 as usize <= size;
    ok.then_some(depth)
}

/// [`HashSpec::bucket`]'s checks of a bucket's bytes (which [`node::read`] checked) at
/// `off`; its local depth.
#[inline]
pub(super) fn bucket_depth(b: &[u8], off: u64, level: u8) -> Result<u8> {
    bucket_words_depth(node::words(b), level, b.len()).ok_or_else(|| Error::corrupted(WHAT, off))
}

/// How a hash map with keys of encoded width `key_width` (0: variable) and values of
/// `vsize` bytes is laid out: what the typed [`PHashMap`](super::PHashMap) uses as a constant, and `mmf
/// heap dump` builds from a shape read from the file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HashSpec {
    pub leaf: Layout,
    /// Whether key bytes are a valid key (UTF-8 for strings).
    pub key_ok: fn(&[u8]) -> bool,
}

#[inline]
pub(super) fn hash(r: &(impl Source + ?Sized), key: &[u8]) -> u64 {
    xxh3_64_with_seed(key, r.seed())
}

impl HashSpec {
    pub const fn new(key_width: usize, vsize: usize, key_ok: fn(&[u8]) -> bool) -> HashSpec {
        // Side by side: a look-up asks for the bucket's header and all its hashes at once
        // (a few cache lines in a row: `touch_ords`), finds the entry among them, then
        // reads one key and one value. (Format 1 interleaved each entry's hash, key and
        // value: a look-up waited for the header, then for the ~10 lines around its guess,
        // 1.5x slower at 1M keys.)
        HashSpec { leaf: Layout::new(KeyMode::for_width(key_width, false), vsize, 0), key_ok }
    }

    /// The directory at `ptr` (tagged), checked to be at `level`.
    pub(crate) fn dir<'r>(
        &self,
        r: &'r (impl Source + ?Sized),
        ptr: u64,
        level: u8,
    ) -> Result<&'r [u8]> {
        let off = ptr & !DIR_TAG;
        let b = node::read(r, off, DIR_SIZE)?;
        dir_ok(b, off, level)?;
        Ok(b)
    }

    /// The bucket at `ptr`, checked to be at `level`.
    pub(crate) fn bucket<'r>(
        &self,
        r: &'r (impl Source + ?Sized),
        ptr: u64,
        level: u8,
    ) -> Result<Bucket<'r>> {
        let b = node::read(r, ptr, self.leaf.size)?;
        let depth = bucket_depth(b, ptr, level)?;
        Ok(Bucket { off: ptr, b, level, depth })
    }

    /// [`find`](Self::find)'s bucket, with the same checks but no error to build: `None`
    /// where `find` errs (a look-up then asks `find` for the error). Lean, so that the
    /// processor reaches the next look-up's loads while this one waits for memory: 1M
    /// random gets overlap as std's `HashMap` gets do.
    #[inline(always)]
    pub(super) fn find_fast<'r>(
        &self,
        r: &'r (impl Source + ?Sized),
        handle: Handle,
        h: u64,
    ) -> Option<Bucket<'r>> {
        let mut ptr = handle.root;
        let mut level = 0u8;
        while ptr & DIR_TAG != 0 {
            if level >= LEVELS {
                return None;
            }
            let (d, w) = node::read_words(r, ptr & !DIR_TAG, DIR_SIZE)?;
            if !dir_words_ok(w, level) {
                return None;
            }
            let child = dir_child(d, slot(h, level));
            // A child directory is a level down; a bucket is at its directory's level.
            level += (child & DIR_TAG != 0) as u8;
            ptr = child;
        }
        let (b, w) = node::read_words(r, ptr, self.leaf.size)?;
        let depth = bucket_words_depth(w, level, self.leaf.size)?;
        Some(Bucket { off: ptr, b, level, depth })
    }

    /// Where `h` leads from the root: the bucket, and the directory above it (tagged
    /// pointer, level) if there is one.
    pub(super) fn find<'r>(
        &self,
        r: &'r (impl Source + ?Sized),
        handle: Handle,
        h: u64,
    ) -> Result<(Bucket<'r>, Option<(u64, u8)>)> {
        let mut ptr = handle.root;
        let mut level = 0u8;
        let mut parent = None;
        while ptr & DIR_TAG != 0 {
            if level >= LEVELS {
                return Err(Error::corrupted(WHAT, ptr & !DIR_TAG));
            }
            let d = self.dir(r, ptr, level)?;
            parent = Some((ptr, level));
            let child = dir_child(d, slot(h, level));
            if child & DIR_TAG != 0 {
                level += 1;
            }
            ptr = child;
        }
        let bucket_level = parent.map_or(0, |(_, l)| l);
        Ok((self.bucket(r, ptr, bucket_level)?, parent))
    }

    /// Checks every node of the map `handle`.
    pub fn verify(&self, r: &(impl Source + ?Sized), handle: Handle) -> Result<()> {
        let mut count = 0;
        let mut seen = rustc_hash::FxHashSet::default();
        if handle.root & DIR_TAG != 0 {
            self.verify_dir(r, handle.root, 0, 0, &mut count, &mut seen)?;
        } else if handle.root != 0 {
            self.verify_bucket(r, handle.root, 0, 0, &mut count)?;
        }
        if count != handle.len {
            return Err(Error::corrupted("collection length", handle.root & !DIR_TAG));
        }
        Ok(())
    }

    fn verify_dir(
        &self,
        r: &(impl Source + ?Sized),
        ptr: u64,
        level: u8,
        prefix: u64,
        count: &mut u64,
        seen: &mut rustc_hash::FxHashSet<u64>,
    ) -> Result<()> {
        let d = self.dir(r, ptr, level)?;
        node::verify(r, d, ptr & !DIR_TAG)?;
        let mut s = 0;
        while s < SLOTS {
            let child = dir_child(d, s);
            if !seen.insert(child) {
                return Err(Error::corrupted(WHAT, ptr & !DIR_TAG));
            }
            let below = prefix | (s as u64) << (56 - 8 * level as u32);
            if child & DIR_TAG != 0 {
                if level + 1 >= LEVELS {
                    return Err(Error::corrupted(WHAT, ptr & !DIR_TAG));
                }
                self.verify_dir(r, child, level + 1, below, count, seen)?;
                s += 1;
            } else {
                let depth = self.bucket(r, child, level)?.depth;
                let range = span(s, depth);
                if range.start != s || range.clone().any(|i| dir_child(d, i) != child) {
                    return Err(Error::corrupted(WHAT, ptr & !DIR_TAG));
                }
                self.verify_bucket(r, child, level, below, count)?;
                s = range.end;
            }
        }
        Ok(())
    }

    fn verify_bucket(
        &self,
        r: &(impl Source + ?Sized),
        off: u64,
        level: u8,
        prefix: u64,
        count: &mut u64,
    ) -> Result<()> {
        let b = self.bucket(r, off, level)?;
        node::verify(r, b.b, off)?;
        let used = 8 * level as u32 + b.depth as u32;
        let e = Entries::new(b.b, self.leaf, off)?;
        for i in 0..e.len() {
            let h = e.ord(i);
            let key = e.key(i)?;
            let placed = used == 0 || (h ^ prefix) >> (64 - used) == 0;
            if !placed || h != hash(r, key) || !(self.key_ok)(key) || (i > 0 && e.ord(i - 1) > h) {
                return Err(Error::corrupted(WHAT, off));
            }
        }
        *count += e.len() as u64;
        Ok(())
    }
}
