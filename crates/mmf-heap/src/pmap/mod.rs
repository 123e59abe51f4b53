//! [`PMap`]: an ordered map in the heap — a copy-on-write B+tree (LMDB's, redb's) with
//! nodes of 4 KiB: a change copies the path from the root to one leaf, once per
//! transaction (nodes the transaction made change in place); reads walk the mapping.

use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::backend::Backend;
use crate::entries::{self, Entries};
use crate::error::{Error, Result};
use crate::fast::prefetch_range;
use crate::key::{Key, MAX_KEY, prefix};
use crate::node::{self, HDR, kind};
use crate::persist::{Persist, type_hash};
use crate::read::Reader;
use crate::shape::{Shape, shape_of};
use crate::txn::WriteTxn;

mod iter;
mod spec;
#[cfg(test)]
mod tests;

pub use iter::Iter;
pub(crate) use iter::RawIter;
pub(crate) use spec::MapSpec;

/// A collection's handle: its root node and its length. What a root, a struct field or a
/// map's value holds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub(crate) struct Handle {
    /// The root node's offset (0: empty).
    pub root: u64,
    /// Number of elements or entries.
    pub len: u64,
}

/// An ordered map from `K` to `V`, kept in the heap file: a copy-on-write B+tree whose
/// nodes are 4 KiB blocks. The map value itself is a 16-byte handle (root and length)
/// that lives wherever you keep it — a named root, a field, another collection — and
/// that changes when the map does: store it back after a change.
///
/// Keys are integers, byte arrays or [`PStr`](crate::PStr) / [`PBytes`](crate::PBytes)
/// (compared by content, kept in the nodes; looked up as `&str` / `&[u8]`) — see
/// [`Key`]. Values are any [`Persist`] type, nested collections included; the map does
/// not free what a value points to.
///
/// ```
/// use mmf_heap::{Heap, MemoryBackend, PMap, PStr};
///
/// let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
/// let mut tx = heap.write()?;
/// let mut ages: PMap<PStr, u32> = PMap::new();
/// ages.insert(&mut tx, "bob", &41)?;
/// ages.insert(&mut tx, "ann", &37)?;
/// tx.set_root("ages", &ages)?;
/// tx.commit()?;
///
/// let snap = heap.read()?;
/// let ages: PMap<PStr, u32> = snap.root("ages")?.unwrap();
/// assert_eq!(ages.get(&snap, "bob")?, Some(&41)); // a reference into the file
/// let names: Vec<&str> = ages.iter(&snap).map(|e| e.map(|(k, _)| k)).collect::<Result<_, _>>()?;
/// assert_eq!(names, ["ann", "bob"]);
/// # Ok::<(), mmf_heap::Error>(())
/// ```
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct PMap<K, V> {
    h: Handle,
    _t: PhantomData<(K, V)>,
}

handle_impls!(PMap<K, V>, "entries");

impl<K: Key, V: Persist> Persist for PMap<K, V> {
    const TYPE_HASH: u64 = type_hash("PMap<K,V>", 16, &[K::NAME_HASH, V::NAME_HASH]);
    const SHAPE: &'static Shape = &Shape::Map(shape_of::<K>, shape_of::<V>);
}

/// A separator that a split hands to the parent: the right node and its first key.
struct Split {
    ord: u64,
    key: Vec<u8>,
    right: u64,
}

impl<K: Key, V: Persist> PMap<K, V> {
    const S: MapSpec = MapSpec::new(K::WIDTH, size_of::<V>(), |k| K::decode(k).is_some());

    /// An empty map (no node until the first insert).
    pub const fn new() -> Self {
        PMap { h: Handle { root: 0, len: 0 }, _t: PhantomData }
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
        let p = prefix(key);
        match Self::get_hot(r, self.h.root, key, p) {
            Some(found) => Ok(found),
            // Something did not check out: the same look-up, checked step by step, says what.
            None => Self::get_checked(r, self.h.root, key, p),
        }
    }

    /// [`MapSpec::get_fast`] through a snapshot's reads gathered once (`Fast`), else
    /// through the reader's own; `None` where it gave up.
    #[inline(always)]
    fn get_hot<'r>(r: &'r impl Reader, root: u64, key: &[u8], p: u64) -> Option<Option<&'r V>> {
        let found = match r.fast() {
            Some(f) => Self::S.get_fast(f, root, key, p),
            None => Self::S.get_fast(r, root, key, p),
        }?;
        match found {
            Some(v) => V::ref_from_bytes(v).ok().map(Some),
            None => Some(None),
        }
    }

    /// [`get`](Self::get) of `key` (encoded; `p` its prefix), every step checked with its
    /// own error.
    #[cold]
    fn get_checked<'r>(r: &'r impl Reader, root: u64, key: &[u8], p: u64) -> Result<Option<&'r V>> {
        let mut off = root;
        let mut level = None;
        loop {
            let (b, k, lv) = Self::S.node(r, off)?;
            if level.is_some_and(|l| l != lv) {
                return Err(Error::corrupted(node::WHAT, off));
            }
            let e = Self::S.entries(b, k, off)?;
            if k == kind::MAP_LEAF {
                return match e.search(key, p)? {
                    Ok(i) => V::ref_from_bytes(e.val(i))
                        .map(Some)
                        .map_err(|_| Error::corrupted(node::WHAT, off)),
                    Err(_) => Ok(None),
                };
            }
            off = e.child(e.child_for(key, p)?);
            level = Some(lv - 1);
        }
    }

    /// Both look-ups of `key`, for the fuzz targets and tests: the hot path (`None` where
    /// it gave up) and the checked one. They must agree: the same answer, or `None` and
    /// an error.
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
        let p = prefix(key);
        (Self::get_hot(r, self.h.root, key, p), Self::get_checked(r, self.h.root, key, p))
    }

    /// Whether the map holds `key`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn contains_key(&self, r: &impl Reader, key: &K::Query) -> Result<bool> {
        self.get(r, key).map(|v| v.is_some())
    }

    /// The entries in key order.
    pub fn iter<'r>(&self, r: &'r impl Reader) -> Iter<'r, K, V> {
        self.range::<(Bound<&K::Query>, Bound<&K::Query>)>(r, (Bound::Unbounded, Bound::Unbounded))
    }

    /// The entries whose keys lie in `range`, in key order: `map.range(&snap, 10..20)`;
    /// for string keys, as with std's `BTreeMap<String, _>`, a pair of bounds:
    /// `map.range(&snap, (Bound::Included("a"), Bound::Excluded("c")))`.
    pub fn range<'r, Q: RangeBounds<K::Query>>(
        &self,
        r: &'r impl Reader,
        range: Q,
    ) -> Iter<'r, K, V> {
        let enc = |q: &K::Query| K::encode(q, &mut [0; 8]).to_vec();
        let lo = range.start_bound().map(enc);
        let hi = range.end_bound().map(enc);
        Iter { raw: RawIter::new(r, Self::S, self.h, lo, hi), _t: PhantomData }
    }

    /// Sets `key` to `value`; returns the value it had.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a key over [`MAX_KEY`] bytes; [`Error::Corrupted`]
    /// if a node on the way does not check out.
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
        let p = prefix(key);
        if self.h.root == 0 {
            let root = tx.node_new(kind::MAP_LEAF, 0, Self::S.size, size_of::<V>())?;
            let b = tx.node_mut(root).expect("just made");
            entries::insert(b, &Self::S.leaf, 0, p, key, value.as_bytes());
            self.h = Handle { root, len: 1 };
            return Ok(None);
        }
        let root = tx.node_cow(self.h.root, Self::S.size)?;
        self.h.root = root;
        let level = Self::S.node(tx, root)?.2;
        let (old, split) = Self::insert_in(tx, root, level, key, p, value)?;
        if let Some(split) = split {
            // A new root above the two halves.
            let top = tx.node_new(kind::MAP_BRANCH, level + 1, Self::S.size, 8)?;
            let first = {
                let (b, k, _) = Self::S.node(tx, root)?;
                let e = Self::S.entries(b, k, root)?;
                (e.ord(0), e.key(0)?.to_vec())
            };
            let b = tx.node_mut(top).expect("just made");
            entries::insert(b, &Self::S.branch, 0, first.0, &first.1, &root.to_le_bytes());
            entries::insert(
                b,
                &Self::S.branch,
                1,
                split.ord,
                &split.key,
                &split.right.to_le_bytes(),
            );
            self.h.root = top;
        }
        if old.is_none() {
            self.h.len = self.h.len.saturating_add(1);
        }
        Ok(old)
    }

    /// Inserts into the subtree at `off` (this transaction's node, at `level`).
    fn insert_in<B: Backend>(
        tx: &mut WriteTxn<'_, B>,
        off: u64,
        level: u8,
        key: &[u8],
        p: u64,
        value: &V,
    ) -> Result<(Option<V>, Option<Split>)> {
        // This transaction's node, checked when it was made or copied (`node::read`'s
        // checks): one look-up of it here, its kind and level checked.
        let b = tx.node_mut(off).ok_or_else(|| Error::corrupted(node::WHAT, off))?;
        let (k, lv) = MapSpec::kind_level(b, off)?;
        if lv != level {
            return Err(Error::corrupted(node::WHAT, off));
        }
        let e = Self::S.entries(b, k, off)?;
        if k == kind::MAP_LEAF {
            return match e.search(key, p)? {
                Ok(i) => {
                    let old = V::read_from_bytes(e.val(i))
                        .map_err(|_| Error::corrupted(node::WHAT, off))?;
                    entries::set_val(b, &Self::S.leaf, i, value.as_bytes());
                    Ok((Some(old), None))
                }
                Err(i) => {
                    let split = Self::put(tx, off, kind::MAP_LEAF, 0, i, p, key, value.as_bytes())?;
                    Ok((None, split))
                }
            };
        }
        let i = e.child_for(key, p)?;
        let child = e.child(i);
        // A leaf this transaction holds: its header's and `ord` words' lines asked for
        // together, before the checks read the first of them.
        let leaf = Self::S.leaf;
        let copied = tx.node_cow_hinted(child, Self::S.size, |b| {
            if level == 1 {
                prefetch_range(b.as_ptr(), HDR + 8 * leaf.cap);
            }
        })?;
        if copied != child {
            let b = tx.node_mut(off).expect("copied on write");
            entries::set_val(b, &Self::S.branch, i, &copied.to_le_bytes());
        }
        let (old, split) = Self::insert_in(tx, copied, level - 1, key, p, value)?;
        let Some(s) = split else { return Ok((old, None)) };
        let up = Self::put(
            tx,
            off,
            kind::MAP_BRANCH,
            level,
            i + 1,
            s.ord,
            &s.key,
            &s.right.to_le_bytes(),
        )?;
        Ok((old, up))
    }

    /// Puts an entry at `i` of this transaction's node `off`, splitting it if it is full.
    #[allow(clippy::too_many_arguments)]
    fn put<B: Backend>(
        tx: &mut WriteTxn<'_, B>,
        off: u64,
        k: u8,
        level: u8,
        i: usize,
        ord: u64,
        key: &[u8],
        val: &[u8],
    ) -> Result<Option<Split>> {
        let l = if k == kind::MAP_LEAF { Self::S.leaf } else { Self::S.branch };
        let b = tx.node_mut(off).expect("copied on write");
        if entries::make_room(b, &l, key.len(), off)? {
            entries::insert(b, &l, i, ord, key, val);
            return Ok(None);
        }
        // Full: the upper part of the entries goes to a new right node.
        let mut copy = crate::mem::chunks(l.size);
        copy.as_mut_bytes()[..l.size].copy_from_slice(b);
        let old = Entries::new(&copy.as_bytes()[..l.size], l, off)?;
        let at = entries::split_point(&old);
        let right = tx.node_new(k, level, l.size, l.vsize)?;
        let split = (|| {
            let b = tx.node_mut(off).expect("copied on write");
            entries::clear(b, &l);
            entries::append_range(b, &l, &old, 0..at)?;
            let r = tx.node_mut(right).expect("just made");
            entries::append_range(r, &l, &old, at..old.len())?;
            let (target, j) = if i < at { (off, i) } else { (right, i - at) };
            let t = tx.node_mut(target).expect("this transaction's");
            if !entries::make_room(t, &l, key.len(), target)? {
                return Err(Error::corrupted(node::WHAT, off));
            }
            entries::insert(t, &l, j, ord, key, val);
            let r = tx.node_mut(right).expect("just made");
            let e = Entries::new(r, l, right)?;
            Ok(Some(Split { ord: e.ord(0), key: e.key(0)?.to_vec(), right }))
        })();
        tx.changing(off, split)
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
        // Absent: nothing to copy.
        if self.get(tx, key)?.is_none() {
            return Ok(None);
        }
        let mut buf = [0u8; 8];
        let key = K::encode(key, &mut buf);
        let p = prefix(key);
        let root = tx.node_cow(self.h.root, Self::S.size)?;
        self.h.root = root;
        let level = Self::S.node(tx, root)?.2;
        let old = Self::remove_in(tx, root, level, key, p)?;
        self.h.len = self.h.len.saturating_sub(1);
        // An empty root leaf goes; a root branch with one child gives way to it.
        loop {
            let root = self.h.root;
            let (b, k, _) = Self::S.node(tx, root)?;
            let count = node::header(b)?.count;
            if k == kind::MAP_LEAF && count == 0 {
                tx.node_free(root, Self::S.size)?;
                *self = Self::new();
            } else if k == kind::MAP_BRANCH && count == 1 {
                let child = Self::S.entries(b, k, root)?.child(0);
                tx.node_free(root, Self::S.size)?;
                self.h.root = child;
                continue;
            }
            return Ok(Some(old));
        }
    }

    /// Removes `key` (which is there) from the subtree at `off` (this transaction's node).
    fn remove_in<B: Backend>(
        tx: &mut WriteTxn<'_, B>,
        off: u64,
        level: u8,
        key: &[u8],
        p: u64,
    ) -> Result<V> {
        let (b, k, lv) = Self::S.node(tx, off)?;
        let e = Self::S.entries(b, k, off)?;
        if lv != level {
            return Err(Error::corrupted(node::WHAT, off));
        }
        if k == kind::MAP_LEAF {
            let i = e.search(key, p)?.map_err(|_| Error::corrupted(node::WHAT, off))?;
            let old =
                V::read_from_bytes(e.val(i)).map_err(|_| Error::corrupted(node::WHAT, off))?;
            entries::remove(tx.node_mut(off).expect("copied on write"), &Self::S.leaf, i);
            return Ok(old);
        }
        let i = e.child_for(key, p)?;
        let siblings = e.len();
        let child = Self::cow_child(tx, off, i)?;
        let old = Self::remove_in(tx, child, level - 1, key, p)?;
        let (cb, ck, _) = Self::S.node(tx, child)?;
        let count = node::header(cb)?.count as usize;
        let cap = if ck == kind::MAP_LEAF { Self::S.leaf.cap } else { Self::S.branch.cap };
        if count == 0 {
            tx.node_free(child, Self::S.size)?;
            entries::remove(tx.node_mut(off).expect("copied on write"), &Self::S.branch, i);
        } else if count < cap / 4 && siblings > 1 {
            let (left, right) = if i + 1 < siblings { (i, i + 1) } else { (i - 1, i) };
            Self::merge(tx, off, left, right)?;
        }
        Ok(old)
    }

    /// Entry `i`'s child of this transaction's branch `off`, copied on write.
    fn cow_child<B: Backend>(tx: &mut WriteTxn<'_, B>, off: u64, i: usize) -> Result<u64> {
        let (b, k, _) = Self::S.node(tx, off)?;
        let child = Self::S.entries(b, k, off)?.child(i);
        let copied = tx.node_cow(child, Self::S.size)?;
        if copied != child {
            let b = tx.node_mut(off).expect("copied on write");
            entries::set_val(b, &Self::S.branch, i, &copied.to_le_bytes());
        }
        Ok(copied)
    }

    /// Merges the children at `left` and `right = left + 1` of branch `off` into the left
    /// one, if their entries fit in one node.
    fn merge<B: Backend>(
        tx: &mut WriteTxn<'_, B>,
        off: u64,
        left: usize,
        right: usize,
    ) -> Result<()> {
        let lo = Self::cow_child(tx, off, left)?;
        let (ro, sep_ord, sep_key) = {
            let (b, k, _) = Self::S.node(tx, off)?;
            let e = Self::S.entries(b, k, off)?;
            (e.child(right), e.ord(right), e.key(right)?.to_vec())
        };
        let (lb, k, _) = Self::S.node(tx, lo)?;
        let (rb, rk, _) = Self::S.node(tx, ro)?;
        let l = if k == kind::MAP_LEAF { Self::S.leaf } else { Self::S.branch };
        let (le, re) = (Entries::new(lb, l, lo)?, Entries::new(rb, l, ro)?);
        // A right branch's first key goes in as the parent separates it (a branch's first
        // key is only a lower bound); a leaf's keys are its own. So the merged node's key
        // heap holds the separator instead of that first key.
        let branch_first = k == kind::MAP_BRANCH && re.len() > 0;
        let key_len = |j: usize| -> Result<usize> {
            Ok(if j == 0 && branch_first { sep_key.len() } else { re.key(j)?.len() })
        };
        let heap_needed = le.heap_used() + re.heap_used() + sep_key.len();
        let heap_freed = if branch_first { re.key(0)?.len() } else { sep_key.len() };
        if rk != k
            || le.len() + re.len() > l.cap
            || heap_needed - heap_freed > l.size - l.heap_min()
        {
            return Ok(());
        }
        let needs: Vec<usize> = (0..re.len()).map(key_len).collect::<Result<_>>()?;
        // Built in a copy of the left node, written back whole: an error half-way leaves
        // both nodes as they were, never a half-merged map to commit.
        let mut work = crate::mem::chunks(l.size);
        let merged = &mut work.as_mut_bytes()[..l.size];
        merged.copy_from_slice(lb);
        for (j, &need) in needs.iter().enumerate() {
            let n = node::header(merged)?.count as usize;
            if !entries::make_room(merged, &l, need, ro)? {
                return Err(Error::corrupted(node::WHAT, ro));
            }
            if j == 0 && branch_first {
                entries::insert(merged, &l, n, sep_ord, &sep_key, re.val(0));
            } else {
                entries::append(merged, &l, &re, j)?;
            }
        }
        tx.node_mut(lo).expect("copied on write")[..l.size].copy_from_slice(merged);
        tx.node_free(ro, Self::S.size)?;
        entries::remove(tx.node_mut(off).expect("copied on write"), &Self::S.branch, right);
        Ok(())
    }

    /// Checks every node of the map: kinds, levels, counts, keys valid and rising, the
    /// length, and each node's checksum (reads check only the structure of the nodes
    /// they touch). What `mmf heap dump` runs.
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
            Self::free_subtree(tx, self.h.root, None)?;
        }
        *self = Self::new();
        Ok(())
    }

    fn free_subtree<B: Backend>(
        tx: &mut WriteTxn<'_, B>,
        off: u64,
        level: Option<u8>,
    ) -> Result<()> {
        let (b, k, lv) = Self::S.node(tx, off)?;
        if level.is_some_and(|l| l != lv) {
            return Err(Error::corrupted(node::WHAT, off));
        }
        if k == kind::MAP_BRANCH {
            let e = Self::S.entries(b, k, off)?;
            let children: Vec<u64> = (0..e.len()).map(|i| e.child(i)).collect();
            for child in children {
                Self::free_subtree(tx, child, Some(lv - 1))?;
            }
        }
        tx.node_free(off, Self::S.size)
    }
}
