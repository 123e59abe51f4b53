//! [`PHashMap`]: a hash map in the heap — extendible hashing over a trie of directories
//! (256 slots, 8 bits of the hash each) whose slots point to 4 KiB buckets of entries in
//! hash order, each in a slot at or near its home (`slots`); a bucket is shared by the
//! slots of its local depth, splits in two when full and merges back when its buddy and
//! it are light. A lookup is one directory or two and one bucket, from the key's home.

use std::marker::PhantomData;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::backend::Backend;
use crate::entries::{self, Entries};
use crate::error::{Error, Result};
use crate::fast::Nodes;
use crate::key::{Key, MAX_KEY};
use crate::node::{self, HDR, WHAT, kind};
use crate::persist::{Persist, type_hash};
use crate::pmap::Handle;
use crate::read::Reader;
use crate::shape::{Shape, shape_of};
use crate::txn::WriteTxn;

mod iter;
#[cfg(test)]
mod review_s10;
#[cfg(test)]
mod review_s9;
mod slots;
mod spec;
#[cfg(test)]
mod tests;

pub use iter::Iter;
pub(crate) use iter::RawIter;
pub(crate) use spec::HashSpec;
use spec::{bucket_depth, dir_child, dir_ok, hash, set_dir_child, slot, span};

/// Slots of a directory.
const SLOTS: usize = 256;
/// Bytes of a directory node.
const DIR_SIZE: usize = HDR + 8 * SLOTS;
/// Directory levels: 8 bits of the hash each.
pub(crate) const LEVELS: u8 = 8;
/// The tag of a pointer to a directory (node offsets are 16-aligned).
const DIR_TAG: u64 = 1;
/// A bucket's directory: its tagged pointer and level.
type Parent = (u64, u8);

/// A hash map from `K` to `V` kept in the heap file: keys hashed with xxh3 and the heap's
/// per-file seed, in 4 KiB buckets under directories of 256 slots (extendible hashing,
/// copy-on-write). A lookup reads one or two directories and one bucket in the mapping.
/// The map value itself is a 16-byte handle (root and length) that lives wherever you
/// keep it; store it back after a change. Keys: see [`Key`]; iteration is in hash order.
///
/// ```
/// use mmf_heap::{Heap, MemoryBackend, PHashMap, PStr};
///
/// let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
/// let mut tx = heap.write()?;
/// let mut stock: PHashMap<PStr, u32> = PHashMap::new();
/// stock.insert(&mut tx, "apple", &3)?;
/// stock.insert(&mut tx, "pear", &5)?;
/// assert_eq!(stock.insert(&mut tx, "apple", &4)?, Some(3));
/// tx.set_root("stock", &stock)?;
/// tx.commit()?;
///
/// let snap = heap.read()?;
/// let stock: PHashMap<PStr, u32> = snap.root("stock")?.unwrap();
/// assert_eq!((stock.len(), stock.get(&snap, "apple")?), (2, Some(&4)));
/// # Ok::<(), mmf_heap::Error>(())
/// ```
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct PHashMap<K, V> {
    h: Handle,
    _t: PhantomData<(K, V)>,
}

handle_impls!(PHashMap<K, V>, "entries");

impl<K: Key, V: Persist> Persist for PHashMap<K, V> {
    const TYPE_HASH: u64 = type_hash("PHashMap<K,V>", 16, &[K::NAME_HASH, V::NAME_HASH]);
    const SHAPE: &'static Shape = &Shape::HashMap(shape_of::<K>, shape_of::<V>);
}

impl<K: Key, V: Persist> PHashMap<K, V> {
    const S: HashSpec = HashSpec::new(K::WIDTH, size_of::<V>(), |k| K::decode(k).is_some());

    /// An empty map (no node until the first insert).
    pub const fn new() -> Self {
        PHashMap { h: Handle { root: 0, len: 0 }, _t: PhantomData }
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.h.len
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.h.len == 0
    }

    /// The value of `key`, in place.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a node on the way does not check out.
    pub fn get<'r>(&self, r: &'r impl Reader, key: &K::Query) -> Result<Option<&'r V>> {
        if self.h.root == 0 {
            return Ok(None);
        }
        let mut buf = [0u8; 8];
        let key = K::encode(key, &mut buf);
        let h = hash(r, key);
        match Self::get_hot(r, self.h, key, h) {
            Some(found) => Ok(found),
            // Something did not check out: the same look-up, checked step by step, says what.
            None => Self::get_checked(r, self.h, key, h),
        }
    }

    /// [`get_fast`](Self::get_fast) through a snapshot's reads gathered once (`Fast`), else
    /// through the reader's own.
    #[inline(always)]
    fn get_hot<'r>(
        r: &'r impl Reader,
        handle: Handle,
        key: &[u8],
        h: u64,
    ) -> Option<Option<&'r V>> {
        match r.fast() {
            Some(f) => Self::get_fast(f, handle, key, h),
            None => Self::get_fast(r, handle, key, h),
        }
    }

    /// [`get`](Self::get) of `key` (encoded) of hash `h`, every step checked with its own
    /// error.
    #[cold]
    fn get_checked<'r>(
        r: &'r impl Reader,
        handle: Handle,
        key: &[u8],
        h: u64,
    ) -> Result<Option<&'r V>> {
        let (bucket, _) = Self::S.find(r, handle, h)?;
        let e = Entries::slots(bucket.b, Self::S.leaf, bucket.off)?;
        match slots::find(&e, key, slots::tag(h), bucket.used())? {
            Ok(i) => V::ref_from_bytes(e.val(i))
                .map(Some)
                .map_err(|_| Error::corrupted(WHAT, bucket.off)),
            Err(_) => Ok(None),
        }
    }

    /// [`get_checked`](Self::get_checked) with the same checks but no error to build:
    /// `None` where it errs. Short, so that the processor gets on to the next look-up
    /// while this one waits for memory (`crate::fast` says why that matters): through a
    /// snapshot's [`Fast`](crate::fast::Fast) reads, the bucket's lines are asked for
    /// before its checks, and directories are checked once per commit.
    #[inline(always)]
    fn get_fast<'r>(
        r: impl Nodes<'r>,
        handle: Handle,
        key: &[u8],
        h: u64,
    ) -> Option<Option<&'r V>> {
        let bucket = Self::S.find_fast(r, handle, h)?;
        let (o, used) = (slots::tag(h), bucket.used());
        let e = Entries::slots(bucket.b, Self::S.leaf, bucket.off).ok()?;
        match slots::find(&e, key, o, used).ok()? {
            Ok(i) => V::ref_from_bytes(e.val(i)).ok().map(Some),
            Err(_) => Some(None),
        }
    }

    /// Both look-ups of `key`, for the fuzz targets: the reader's hot path (`None` where it
    /// gave up) and the checked one. They must agree: the same answer, or `None` and an
    /// error.
    pub(crate) fn get_both<'r>(
        &self,
        r: &'r impl Reader,
        key: &K::Query,
    ) -> (Option<Option<&'r V>>, Result<Option<&'r V>>) {
        if self.h.root == 0 {
            return (Some(None), Ok(None));
        }
        let mut buf = [0u8; 8];
        let key = K::encode(key, &mut buf);
        let h = hash(r, key);
        (Self::get_hot(r, self.h, key, h), Self::get_checked(r, self.h, key, h))
    }

    /// Whether the map holds `key`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn contains_key(&self, r: &impl Reader, key: &K::Query) -> Result<bool> {
        self.get(r, key).map(|v| v.is_some())
    }

    /// The entries, in hash order.
    pub fn iter<'r>(&self, r: &'r impl Reader) -> Iter<'r, K, V> {
        Iter { raw: RawIter::new(r, Self::S, self.h), _t: PhantomData }
    }

    /// Copies the path to `h`'s bucket on write, checking each node as it goes; returns
    /// the bucket, its local depth and its directory.
    fn cow_path<B: Backend>(
        &mut self,
        tx: &mut WriteTxn<'_, B>,
        h: u64,
    ) -> Result<(u64, u8, Option<Parent>)> {
        let mut ptr = self.h.root;
        let mut level = 0u8;
        let mut parent: Option<Parent> = None;
        // The bucket's depth as its directory shows it (a guess, for the prefetches).
        let mut guess = 0u8;
        loop {
            let is_dir = ptr & DIR_TAG != 0;
            let at = ptr & !DIR_TAG;
            let size = if is_dir { DIR_SIZE } else { Self::S.leaf.size };
            if is_dir && level >= LEVELS {
                return Err(Error::corrupted(WHAT, at));
            }
            // The lines this step reads, asked for with the header's: the directory's
            // slot, or the bucket's slots around the key's home.
            let hint = |b: &[u8]| {
                if is_dir {
                    slots::prefetch_line(b.as_ptr().wrapping_add(HDR + 8 * slot(h, level)));
                } else {
                    let used = 8 * level as u32 + guess as u32;
                    slots::prefetch_write(b.as_ptr(), &Self::S.leaf, slots::tag(h), used);
                }
            };
            // One look-up per node: copied (or found made by this transaction), checked
            // and read from the same bytes.
            let (copied, b) = tx.node_cow_mut_hinted(at, size, hint)?;
            let (next, depth) = if is_dir {
                dir_ok(b, at, level)?;
                let next = dir_child(b, slot(h, level));
                guess = spec::depth_in_dir(b, slot(h, level), next);
                (next, 0)
            } else {
                (0, bucket_depth(b, at, level)?)
            };
            let copied = copied | (ptr & DIR_TAG);
            if copied != ptr {
                match parent {
                    None => self.h.root = copied,
                    Some((dir, dir_level)) => {
                        // Every slot that shares the node points to the copy.
                        let s = slot(h, dir_level);
                        let range = if is_dir { s..s + 1 } else { span(s, depth) };
                        let d = tx.node_mut(dir & !DIR_TAG).expect("copied on write");
                        for i in range {
                            if dir_child(d, i) != ptr {
                                return Err(Error::corrupted(WHAT, dir & !DIR_TAG));
                            }
                            set_dir_child(d, i, copied);
                        }
                    }
                }
            }
            if !is_dir {
                return Ok((copied, depth, parent));
            }
            parent = Some((copied, level));
            if next & DIR_TAG != 0 {
                level += 1;
            }
            ptr = next;
        }
    }

    /// Sets `key` to `value`; returns the value it had.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a key over [`MAX_KEY`] bytes, or more keys with one
    /// 64-bit hash than a bucket holds; [`Error::Corrupted`] if a node on the way does
    /// not check out.
    pub fn insert<B: Backend>(
        &mut self,
        tx: &mut WriteTxn<'_, B>,
        key: &K::Query,
        value: &V,
    ) -> Result<Option<V>> {
        let mut buf = [0u8; 8];
        let key = K::encode(key, &mut buf);
        if key.len() > MAX_KEY {
            return Err(Error::InvalidArgument { what: "a map key is at most 511 bytes" });
        }
        let h = hash(tx, key);
        let o = slots::tag(h);
        if self.h.root == 0 {
            self.h.root = tx.node_new(kind::HASH_BUCKET, 0, Self::S.leaf.size, size_of::<V>())?;
        }
        loop {
            let (off, depth, parent) = self.cow_path(tx, h)?;
            let level = parent.map_or(0, |(_, l)| l);
            let b = tx.node_mut(off).expect("copied on write");
            let e = Entries::slots(b, Self::S.leaf, off)?;
            let used = 8 * level as u32 + depth as u32;
            match slots::find(&e, key, o, used)? {
                Ok(i) => {
                    let old =
                        V::read_from_bytes(e.val(i)).map_err(|_| Error::corrupted(WHAT, off))?;
                    slots::set_val(b, &Self::S.leaf, i, value.as_bytes());
                    return Ok(Some(old));
                }
                Err(i) => {
                    if slots::make_room(b, &Self::S.leaf, key.len(), off)? {
                        if !slots::insert(b, &Self::S.leaf, i, o, key, value.as_bytes()) {
                            return Err(Error::corrupted(WHAT, off));
                        }
                        self.h.len = self.h.len.saturating_add(1);
                        return Ok(None);
                    }
                }
            }
            self.split(tx, off, parent, h)?;
        }
    }

    /// Splits the full bucket `off` that `h` leads to (under `parent`): in two by the next
    /// hash bit, or under a new directory when it covers a single slot.
    fn split<B: Backend>(
        &mut self,
        tx: &mut WriteTxn<'_, B>,
        off: u64,
        parent: Option<(u64, u8)>,
        h: u64,
    ) -> Result<()> {
        let Some((dir_ptr, level)) = parent else {
            // The root bucket: a root directory above it, all of its slots sharing it.
            let dir = tx.node_new(kind::HASH_DIR, 0, DIR_SIZE, 8)? | DIR_TAG;
            let b = tx.node_mut(dir & !DIR_TAG).expect("just made");
            for i in 0..SLOTS {
                set_dir_child(b, i, off);
            }
            node::header_mut(b).count = SLOTS as u32;
            self.h.root = dir;
            return Ok(());
        };
        let depth = Self::S.bucket(tx, off, level)?.depth;
        let s = slot(h, level);
        if depth == LEVELS {
            // One slot: a directory one level down takes it.
            if level + 1 >= LEVELS {
                return Err(Error::InvalidArgument {
                    what: "more keys with one 64-bit hash than a bucket holds",
                });
            }
            let sub = tx.node_new(kind::HASH_DIR, level + 1, DIR_SIZE, 8)? | DIR_TAG;
            let b = tx.node_mut(sub & !DIR_TAG).expect("just made");
            for i in 0..SLOTS {
                set_dir_child(b, i, off);
            }
            node::header_mut(b).count = SLOTS as u32;
            let bh = node::header_mut(tx.node_mut(off).expect("copied on write"));
            (bh.level, bh.depth) = (level + 1, 0);
            set_dir_child(tx.node_mut(dir_ptr & !DIR_TAG).expect("copied on write"), s, sub);
            return Ok(());
        }
        // Two buckets of depth + 1: entries whose next hash bit is 0 stay, 1 move.
        let l = Self::S.leaf;
        let mut copy = crate::mem::chunks(l.size);
        copy.as_mut_bytes()[..l.size].copy_from_slice(tx.node_mut(off).expect("copied on write"));
        let old = Entries::slots(&copy.as_bytes()[..l.size], l, off)?;
        let used = 8 * level as u32 + depth as u32;
        let bit = 63 - used;
        let right = tx.node_new(kind::HASH_BUCKET, level, l.size, l.vsize)?;
        // Entries are in hash order and share the bits above `bit`: those whose `bit`
        // is 0 come first.
        let taken: Vec<usize> = slots::occupied(&old).collect();
        let at = taken.iter().position(|&i| (old.ord(i) >> bit) & 1 == 1).unwrap_or(taken.len());
        if taken[at..].iter().any(|&i| (old.ord(i) >> bit) & 1 == 0) {
            return Err(Error::corrupted(WHAT, off));
        }
        let moved = (|| {
            let b = tx.node_mut(off).expect("copied on write");
            Self::empty(b);
            node::header_mut(b).depth = depth + 1;
            slots::fill(b, &l, used + 1, &[(&old, taken[..at].to_vec())])?;
            let r = tx.node_mut(right).expect("just made");
            slots::fill(r, &l, used + 1, &[(&old, taken[at..].to_vec())])?;
            node::header_mut(r).depth = depth + 1;
            Ok(())
        })();
        tx.changing(off, moved)?;
        let range = span(s, depth);
        let d = tx.node_mut(dir_ptr & !DIR_TAG).expect("copied on write");
        for i in range.start + range.len() / 2..range.end {
            set_dir_child(d, i, right);
        }
        Ok(())
    }

    /// Removes `key`; returns its value.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a node on the way does not check out.
    pub fn remove<B: Backend>(
        &mut self,
        tx: &mut WriteTxn<'_, B>,
        key: &K::Query,
    ) -> Result<Option<V>> {
        if self.get(tx, key)?.is_none() {
            return Ok(None);
        }
        let mut buf = [0u8; 8];
        let key = K::encode(key, &mut buf);
        let h = hash(tx, key);
        let (off, depth, parent) = self.cow_path(tx, h)?;
        let bucket = Self::S.bucket(tx, off, parent.map_or(0, |(_, l)| l))?;
        let level = bucket.level;
        let e = Entries::slots(bucket.b, Self::S.leaf, off)?;
        let used = 8 * level as u32 + depth as u32;
        let i =
            slots::find(&e, key, slots::tag(h), used)?.map_err(|_| Error::corrupted(WHAT, off))?;
        let old = V::read_from_bytes(e.val(i)).map_err(|_| Error::corrupted(WHAT, off))?;
        slots::remove(tx.node_mut(off).expect("copied on write"), &Self::S.leaf, i, used);
        self.h.len = self.h.len.saturating_sub(1);
        if self.h.len == 0 {
            return self.clear(tx).map(|()| Some(old));
        }
        if let Some((dir_ptr, level)) = parent {
            self.merge(tx, dir_ptr, level, h)?;
        }
        Ok(Some(old))
    }

    /// Merges `h`'s bucket in directory `dir_ptr` with its buddy while both are light.
    fn merge<B: Backend>(
        &mut self,
        tx: &mut WriteTxn<'_, B>,
        dir_ptr: u64,
        level: u8,
        h: u64,
    ) -> Result<()> {
        let l = Self::S.leaf;
        let s = slot(h, level);
        loop {
            let d = Self::S.dir(tx, dir_ptr, level)?;
            let off = dir_child(d, s);
            let bucket = Self::S.bucket(tx, off, level)?;
            let depth = bucket.depth;
            let e = Entries::slots(bucket.b, l, off)?;
            let n = bucket.count();
            if depth == 0 || n >= l.cap / 4 {
                return Ok(());
            }
            let own = span(s, depth);
            let pair = span(s, depth - 1);
            let buddy_slot = if own.start == pair.start { own.end } else { pair.start };
            let buddy = dir_child(d, buddy_slot);
            if buddy & DIR_TAG != 0 || span(buddy_slot, depth).any(|i| dir_child(d, i) != buddy) {
                return Ok(());
            }
            let bb = Self::S.bucket(tx, buddy, level)?;
            let be = Entries::slots(bb.b, l, buddy)?;
            if bb.depth != depth
                || n + bb.count() > l.cap * 3 / 4
                || slots::heap_used(&e) + slots::heap_used(&be) > l.size - l.heap_min()
            {
                return Ok(());
            }
            // The lower half's bucket keeps the entries (hash order: lower half first).
            let (lo, hi) = if own.start == pair.start { (off, buddy) } else { (buddy, off) };
            let lo = tx.node_cow(lo, l.size)?;
            let mut lo_copy = crate::mem::chunks(l.size);
            lo_copy.as_mut_bytes()[..l.size].copy_from_slice(node::read(tx, lo, l.size)?);
            let le = Entries::slots(&lo_copy.as_bytes()[..l.size], l, lo)?;
            let mut copy = crate::mem::chunks(l.size);
            copy.as_mut_bytes()[..l.size].copy_from_slice(node::read(tx, hi, l.size)?);
            let he = Entries::slots(&copy.as_bytes()[..l.size], l, hi)?;
            // Freed before its entries move: a directory that pairs a bucket with itself
            // (its buddy's slots still lead to its committed copy, freed by the copy on
            // write) fails here, before the bucket holds its entries twice.
            if lo == hi {
                return Err(Error::corrupted(WHAT, hi));
            }
            tx.node_free(hi, l.size).map_err(|_| Error::corrupted(WHAT, hi))?;
            // Both halves' entries, in hash order, placed for one bit less.
            let used = 8 * level as u32 + depth as u32 - 1;
            let b = tx.node_mut(lo).expect("copied on write");
            Self::empty(b);
            node::header_mut(b).depth = depth - 1;
            let parts =
                [(&le, slots::occupied(&le).collect()), (&he, slots::occupied(&he).collect())];
            let moved = slots::fill(b, &l, used, &parts);
            tx.changing(lo, moved)?;
            let d = tx.node_mut(dir_ptr & !DIR_TAG).expect("copied on write");
            for i in pair {
                set_dir_child(d, i, lo);
            }
        }
    }

    /// Empties a bucket's bytes `b`: no entry, all slots free, the key heap empty.
    fn empty(b: &mut [u8]) {
        let l = Self::S.leaf;
        b[HDR..].fill(0);
        entries::clear(b, &l);
    }

    /// Checks every node of the map: kinds, levels, local depths, each key's hash and
    /// its place (in hash order, joined to its home, held once, under the directory slots
    /// that lead to it), the length, and each node's checksum. What `mmf heap dump` runs.
    ///
    /// # Errors
    /// [`Error::Corrupted`] naming the first node that fails.
    pub fn verify(&self, r: &impl Reader) -> Result<()> {
        Self::S.verify(r, self.h)
    }

    /// Frees every node of the map and leaves it empty (what values point to is not
    /// freed).
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a node does not check out.
    pub fn clear<B: Backend>(&mut self, tx: &mut WriteTxn<'_, B>) -> Result<()> {
        if self.h.root != 0 {
            Self::free_subtree(tx, self.h.root, 0)?;
        }
        *self = Self::new();
        Ok(())
    }

    fn free_subtree<B: Backend>(tx: &mut WriteTxn<'_, B>, ptr: u64, level: u8) -> Result<()> {
        if ptr & DIR_TAG == 0 {
            Self::S.bucket(tx, ptr, level)?;
            return tx.node_free(ptr, Self::S.leaf.size);
        }
        if level >= LEVELS {
            return Err(Error::corrupted(WHAT, ptr & !DIR_TAG));
        }
        let d = Self::S.dir(tx, ptr, level)?;
        let mut children: Vec<u64> = (0..SLOTS).map(|i| dir_child(d, i)).collect();
        children.dedup();
        for child in children {
            let child_level = if child & DIR_TAG != 0 { level + 1 } else { level };
            Self::free_subtree(tx, child, child_level)?;
        }
        tx.node_free(ptr & !DIR_TAG, DIR_SIZE)
    }
}
