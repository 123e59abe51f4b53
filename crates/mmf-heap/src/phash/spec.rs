//! [`HashSpec`]: a hash map's node layouts as runtime values (constants for the typed
//! API, built from a stored shape by `mmf heap dump`), finding a key's bucket, and the
//! check of a whole map; the slot arithmetic of extendible hashing.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::entries::{Entries, KeyMode, Layout};
use crate::error::{Error, Result};
use crate::fast::Nodes;
use crate::node::{self, HDR, WHAT, kind};
use crate::read::private::Source;

use super::{DIR_SIZE, DIR_TAG, LEVELS, SLOTS, slots};
use crate::pmap::Handle;

/// A bucket as found: its offset, bytes, level (of its directory) and local depth.
pub(crate) struct Bucket<'r> {
    pub(super) off: u64,
    pub(super) b: &'r [u8],
    pub(super) level: u8,
    pub(super) depth: u8,
}

impl Bucket<'_> {
    /// The hash bits its entries share: those of the directories above it and its own.
    #[inline(always)]
    pub(super) fn used(&self) -> u32 {
        8 * self.level as u32 + self.depth as u32
    }

    /// Its entry count (as its header says).
    pub(super) fn count(&self) -> usize {
        (node::words(self.b)[1] >> 32) as usize
    }
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

/// The local depth of `child`, at slot `s` of directory `d`, as the directory shows it:
/// 8 less the number of slots `s ^ 2^k` that also lead to it (a bucket of depth `d`
/// covers the aligned run of 2^(8−d) slots around `s`). Only a guess, for asking for a
/// bucket's lines before its header arrives: a damaged directory asks for other lines.
#[inline(always)]
pub(super) fn depth_in_dir(d: &[u8], s: usize, child: u64) -> u8 {
    let Some((ptrs, _)) = d.get(HDR..).and_then(|p| p.split_first_chunk::<{ 8 * SLOTS }>()) else {
        return 0;
    };
    let mut same = 0u8;
    for k in 0..8 {
        let at = 8 * ((s ^ (1 << k)) & (SLOTS - 1));
        let ptr = u64::from_le_bytes(ptrs[at..at + 8].try_into().unwrap_or_default());
        same += u8::from(ptr == child);
    }
    LEVELS - same
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

/// A key's hash: xxh3-64 with the heap's seed, bit 0 set. The directories route by it and
/// a bucket stores it as the entry's `ord` word (`slots::tag`: never 0, the mark of a free
/// slot), so that both see the same bits down to the last level's last split.
#[inline]
pub(super) fn hash(r: &(impl Source + ?Sized), key: &[u8]) -> u64 {
    slots::tag(xxh3_64_with_seed(key, r.seed()))
}

impl HashSpec {
    pub const fn new(key_width: usize, vsize: usize, key_ok: fn(&[u8]) -> bool) -> HashSpec {
        // Side by side, with gaps (`slots`): a look-up asks for the bucket's header and
        // its home slot's hash, key and value at once. (Format 2 packed the entries: a
        // look-up waited for the header and hashes, then for the key and value. Format 1
        // interleaved each entry's hash, key and value.)
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
        r: impl Nodes<'r>,
        handle: Handle,
        h: u64,
    ) -> Option<Bucket<'r>> {
        let mut ptr = handle.root;
        let mut level = 0u8;
        let mut parent: Option<(&[u8], usize)> = None;
        while ptr & DIR_TAG != 0 {
            if level >= LEVELS {
                return None;
            }
            let off = ptr & !DIR_TAG;
            let d = match r.known_dir(off, level, DIR_SIZE) {
                Some(d) => d,
                None => {
                    let (d, w) = node::read_words(r, off, DIR_SIZE)?;
                    if !dir_words_ok(w, level) {
                        return None;
                    }
                    r.remember_dir(off, level);
                    d
                }
            };
            let s = slot(h, level);
            let child = dir_child(d, s);
            parent = Some((d, s));
            // A child directory is a level down; a bucket is at its directory's level.
            level += (child & DIR_TAG != 0) as u8;
            ptr = child;
        }
        let guess = parent.map_or(0, |(d, s)| depth_in_dir(d, s, ptr));
        // The lines the look-up reads, asked for before the header (which has the depth)
        // arrives: the depth as the directory shows it. From the address alone where the
        // reader has one (before the bucket's checks), else once they are done.
        let used = 8 * level as u32 + guess as u32;
        let at = r.address(ptr);
        if let Some(at) = at {
            slots::prefetch(at, &self.leaf, slots::tag(h), used);
        }
        let b = r.unfreed(ptr, self.leaf.size)?;
        if at.is_none() {
            slots::touch(b, &self.leaf, slots::tag(h), used);
        }
        let w = node::head(r, b)?;
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
        let used = b.used();
        let e = Entries::slots(b.b, self.leaf, off)?;
        let cap = e.len();
        let (mut n, mut last) = (0, 0);
        // The keys of the entries before of hash `last`: a key held twice (the same hash,
        // order and home) must not pass.
        let mut same: Vec<&[u8]> = Vec::new();
        for i in slots::occupied(&e) {
            let o = e.ord(i);
            let key = e.key(i)?;
            if o != last {
                same.clear();
            }
            if same.contains(&key) {
                return Err(Error::corrupted(WHAT, off));
            }
            same.push(key);
            let placed = used == 0 || (o ^ prefix) >> (64 - used) == 0;
            // Joined to its home: the slot next to it towards its home is taken (and
            // that entry's home is at least as far, being in hash order).
            let home = slots::home(o, used, cap);
            let joined = (home >= i || e.ord(i - 1) != 0) && (home <= i || e.ord(i + 1) != 0);
            if !placed
                || o != slots::tag(hash(r, key))
                || !(self.key_ok)(key)
                || o < last
                || !joined
            {
                return Err(Error::corrupted(WHAT, off));
            }
            (n, last) = (n + 1, o);
        }
        if n != b.count() {
            return Err(Error::corrupted(WHAT, off));
        }
        *count += n as u64;
        Ok(())
    }
}
