//! [`PVec`]: a growable array in the heap — a radix tree of 4 KiB nodes (leaves of
//! elements, branches of 506 child pointers) whose height follows from the length; a
//! change copies one path from the root to a leaf, once per transaction.

use std::fmt;
use std::marker::PhantomData;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::format::ALIGN;
use crate::node::{self, HDR, WHAT, kind};
use crate::persist::{Persist, type_hash};
use crate::pmap::Handle;
use crate::read::Reader;
use crate::read::private::Source;
use crate::txn::WriteTxn;

/// A vector of `T` kept in the heap file: a radix tree of 4 KiB nodes, so that a push, a
/// pop or a set copies one leaf and its path (not the whole array), and a read is a walk
/// of two or three nodes in the mapping. The vector value itself is a 16-byte handle
/// (root and length) that lives wherever you keep it; store it back after a change.
///
/// ```
/// use mmf_heap::{Heap, MemoryBackend, PVec};
///
/// let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
/// let mut tx = heap.write()?;
/// let mut v: PVec<u64> = PVec::new();
/// for i in 0..1000 {
///     v.push(&mut tx, &(i * i))?;
/// }
/// v.set(&mut tx, 0, &7)?;
/// assert_eq!(v.pop(&mut tx)?, Some(999 * 999));
/// tx.set_root("squares", &v)?;
/// tx.commit()?;
///
/// let snap = heap.read()?;
/// let v: PVec<u64> = snap.root("squares")?.unwrap();
/// assert_eq!((v.len(), v.get(&snap, 0)?, v.get(&snap, 30)?), (999, Some(&7), Some(&900)));
/// assert_eq!(v.iter(&snap).map(|x| x.copied()).sum::<Result<u64, _>>()?, 7 + (1..999u64).map(|i| i * i).sum::<u64>());
/// # Ok::<(), mmf_heap::Error>(())
/// ```
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct PVec<T> {
    h: Handle,
    _t: PhantomData<T>,
}

impl<T> Clone for PVec<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for PVec<T> {}
impl<T> Default for PVec<T> {
    fn default() -> Self {
        PVec { h: Handle::default(), _t: PhantomData }
    }
}
impl<T> PartialEq for PVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.h == other.h
    }
}
impl<T> Eq for PVec<T> {}
impl<T> fmt::Debug for PVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PVec(root {:#x}, {} elements)", self.h.root, self.h.len)
    }
}

impl<T: Persist> Persist for PVec<T> {
    const TYPE_HASH: u64 = type_hash("PVec<T>", 16, &[T::NAME_HASH]);
}

impl<T: Persist> PVec<T> {
    const WIDTH: usize = size_of::<T>();
    /// Node bytes: 4 KiB, or more for elements so large that fewer than 4 would fit.
    const SIZE: usize = {
        assert!(align_of::<T>() as u64 <= ALIGN, "Persist types align to at most 16");
        (HDR + 4 * Self::WIDTH).next_multiple_of(4096)
    };
    const PER_LEAF: u64 =
        ((Self::SIZE - HDR) / if Self::WIDTH == 0 { 1 } else { Self::WIDTH }) as u64;
    const FANOUT: u64 = ((Self::SIZE - HDR) / 8) as u64;

    /// An empty vector (no node until the first push).
    pub const fn new() -> Self {
        PVec { h: Handle { root: 0, len: 0 }, _t: PhantomData }
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.h.len
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.h.len == 0
    }

    /// The tree's height for `len` elements (0: the root is a leaf), and the elements one
    /// child of the root covers.
    fn height(len: u64) -> (u8, u64) {
        let (mut h, mut span) = (0u8, Self::PER_LEAF);
        while span < len {
            span = span.saturating_mul(Self::FANOUT);
            h += 1;
        }
        (h, span / if h == 0 { 1 } else { Self::FANOUT })
    }

    /// The node at `off`, checked: of `kind` at `level`, with its count.
    fn node(r: &(impl Source + ?Sized), off: u64, level: u8) -> Result<(&[u8], usize)> {
        let b = node::read(r, off, Self::SIZE)?;
        let h = node::header(b)?;
        let (k, cap) = if level == 0 {
            (kind::VEC_LEAF, Self::PER_LEAF)
        } else {
            (kind::VEC_BRANCH, Self::FANOUT)
        };
        let width = if level == 0 { Self::WIDTH } else { 8 };
        if h.kind != k
            || h.level != level
            || h.count as u64 > cap
            || h.width as usize != width
            || h.heap as usize != Self::SIZE
        {
            return Err(Error::corrupted(WHAT, off));
        }
        Ok((b, h.count as usize))
    }

    fn child(b: &[u8], i: usize) -> u64 {
        u64::from_le_bytes(b[HDR + 8 * i..][..8].try_into().unwrap_or_default())
    }

    fn set_child(b: &mut [u8], i: usize, child: u64) {
        b[HDR + 8 * i..][..8].copy_from_slice(&child.to_le_bytes());
    }

    fn slot(i: usize) -> std::ops::Range<usize> {
        HDR + Self::WIDTH * i..HDR + Self::WIDTH * (i + 1)
    }

    /// The leaf that holds element `i` (< len), its bytes and its count.
    fn leaf<'r>(&self, r: &'r (impl Source + ?Sized), i: u64) -> Result<(&'r [u8], usize, u64)> {
        let (height, mut span) = Self::height(self.h.len);
        let mut off = self.h.root;
        for level in (1..=height).rev() {
            let (b, count) = Self::node(r, off, level)?;
            let ci = ((i / span) % Self::FANOUT) as usize;
            if ci >= count {
                return Err(Error::corrupted(WHAT, off));
            }
            off = Self::child(b, ci);
            span /= Self::FANOUT;
        }
        let (b, count) = Self::node(r, off, 0)?;
        Ok((b, count, off))
    }

    /// Element `i`, in place; `None` past the end.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a node on the way does not check out.
    pub fn get<'r>(&self, r: &'r impl Reader, i: u64) -> Result<Option<&'r T>> {
        if i >= self.h.len {
            return Ok(None);
        }
        let (b, count, off) = self.leaf(r, i)?;
        let li = (i % Self::PER_LEAF) as usize;
        if li >= count {
            return Err(Error::corrupted(WHAT, off));
        }
        T::ref_from_bytes(&b[Self::slot(li)]).map(Some).map_err(|_| Error::corrupted(WHAT, off))
    }

    /// The last element, in place.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn last<'r>(&self, r: &'r impl Reader) -> Result<Option<&'r T>> {
        match self.h.len {
            0 => Ok(None),
            n => self.get(r, n - 1),
        }
    }

    /// The elements in order, in place.
    pub fn iter<'r>(&self, r: &'r impl Reader) -> Iter<'r, T> {
        Iter { r, vec: *self, at: 0, leaf: None }
    }

    /// Appends `value`.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a node on the way does not check out.
    pub fn push<B: Backend>(&mut self, tx: &mut WriteTxn<'_, B>, value: &T) -> Result<()> {
        let i = self.h.len;
        if i == u64::MAX {
            return Err(Error::InvalidArgument { what: "the vector is full" });
        }
        if self.h.root == 0 {
            self.h.root = tx.node_new(kind::VEC_LEAF, 0, Self::SIZE, Self::WIDTH)?;
        } else {
            let (old_height, _) = Self::height(i);
            let (new_height, _) = Self::height(i + 1);
            if new_height > old_height {
                // Full: a new root above the old one.
                let top = tx.node_new(kind::VEC_BRANCH, new_height, Self::SIZE, 8)?;
                let b = tx.node_mut(top).expect("just made");
                Self::set_child(b, 0, self.h.root);
                node::header_mut(b).count = 1;
                self.h.root = top;
            }
        }
        let (height, mut span) = Self::height(i + 1);
        self.h.root = tx.node_cow(self.h.root, Self::SIZE)?;
        let mut off = self.h.root;
        for level in (1..=height).rev() {
            let count = Self::node(tx, off, level)?.1;
            let ci = ((i / span) % Self::FANOUT) as usize;
            let child = if ci < count {
                let b = Self::node(tx, off, level)?.0;
                let child = Self::child(b, ci);
                let copied = tx.node_cow(child, Self::SIZE)?;
                if copied != child {
                    Self::set_child(tx.node_mut(off).expect("copied on write"), ci, copied);
                }
                copied
            } else if ci == count {
                let (k, width) =
                    if level == 1 { (kind::VEC_LEAF, Self::WIDTH) } else { (kind::VEC_BRANCH, 8) };
                let fresh = tx.node_new(k, level - 1, Self::SIZE, width)?;
                let b = tx.node_mut(off).expect("copied on write");
                Self::set_child(b, ci, fresh);
                node::header_mut(b).count += 1;
                fresh
            } else {
                return Err(Error::corrupted(WHAT, off));
            };
            off = child;
            span /= Self::FANOUT;
        }
        let count = Self::node(tx, off, 0)?.1;
        let li = (i % Self::PER_LEAF) as usize;
        if li != count {
            return Err(Error::corrupted(WHAT, off));
        }
        let b = tx.node_mut(off).expect("copied on write");
        b[Self::slot(li)].copy_from_slice(value.as_bytes());
        node::header_mut(b).count += 1;
        self.h.len = self.h.len.saturating_add(1);
        Ok(())
    }

    /// The path from the root to element `i`'s leaf, copied on write: (node, child index)
    /// from the top, then the leaf.
    fn cow_path<B: Backend>(
        &mut self,
        tx: &mut WriteTxn<'_, B>,
        i: u64,
    ) -> Result<(Vec<(u64, usize)>, u64)> {
        let (height, mut span) = Self::height(self.h.len);
        self.h.root = tx.node_cow(self.h.root, Self::SIZE)?;
        let mut off = self.h.root;
        let mut path = Vec::with_capacity(height as usize);
        for level in (1..=height).rev() {
            let (b, count) = Self::node(tx, off, level)?;
            let ci = ((i / span) % Self::FANOUT) as usize;
            if ci >= count {
                return Err(Error::corrupted(WHAT, off));
            }
            let child = Self::child(b, ci);
            let copied = tx.node_cow(child, Self::SIZE)?;
            if copied != child {
                Self::set_child(tx.node_mut(off).expect("copied on write"), ci, copied);
            }
            path.push((off, ci));
            off = copied;
            span /= Self::FANOUT;
        }
        Self::node(tx, off, 0)?;
        Ok((path, off))
    }

    /// Replaces element `i`; returns the old value.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an index past the end; [`Error::Corrupted`] if a
    /// node on the way does not check out.
    pub fn set<B: Backend>(&mut self, tx: &mut WriteTxn<'_, B>, i: u64, value: &T) -> Result<T> {
        if i >= self.h.len {
            return Err(Error::InvalidArgument { what: "index past the end of the vector" });
        }
        let (_, leaf) = self.cow_path(tx, i)?;
        let li = (i % Self::PER_LEAF) as usize;
        let b = tx.node_mut(leaf).expect("copied on write");
        if li >= node::header(b)?.count as usize {
            return Err(Error::corrupted(WHAT, leaf));
        }
        let old =
            T::read_from_bytes(&b[Self::slot(li)]).map_err(|_| Error::corrupted(WHAT, leaf))?;
        b[Self::slot(li)].copy_from_slice(value.as_bytes());
        Ok(old)
    }

    /// Removes the last element and returns it.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a node on the way does not check out.
    pub fn pop<B: Backend>(&mut self, tx: &mut WriteTxn<'_, B>) -> Result<Option<T>> {
        if self.h.len == 0 {
            return Ok(None);
        }
        let i = self.h.len - 1;
        let (path, leaf) = self.cow_path(tx, i)?;
        let li = (i % Self::PER_LEAF) as usize;
        let b = tx.node_mut(leaf).expect("copied on write");
        if li + 1 != node::header(b)?.count as usize {
            return Err(Error::corrupted(WHAT, leaf));
        }
        let value =
            T::read_from_bytes(&b[Self::slot(li)]).map_err(|_| Error::corrupted(WHAT, leaf))?;
        node::header_mut(b).count -= 1;
        // Nodes left empty go, bottom up.
        let mut empty = li == 0;
        if empty {
            tx.node_free(leaf, Self::SIZE)?;
        }
        for &(off, ci) in path.iter().rev() {
            if !empty {
                break;
            }
            let b = tx.node_mut(off).expect("copied on write");
            Self::set_child(b, ci, 0);
            node::header_mut(b).count -= 1;
            empty = ci == 0;
            if empty {
                tx.node_free(off, Self::SIZE)?;
            }
        }
        self.h.len = i;
        if self.h.len == 0 {
            self.h.root = 0;
            return Ok(Some(value));
        }
        // A root with one child gives way to it while the tree is taller than needed.
        let (mut height, _) = Self::height(i + 1);
        while Self::height(self.h.len).0 < height {
            let child = Self::child(Self::node(tx, self.h.root, height)?.0, 0);
            tx.node_free(self.h.root, Self::SIZE)?;
            self.h.root = child;
            height -= 1;
        }
        Ok(Some(value))
    }

    /// Checks every node of the vector: kinds, levels, counts (every leaf full but the
    /// last), the length, and each node's checksum. What `mmf heap dump` runs.
    ///
    /// # Errors
    /// [`Error::Corrupted`] naming the first node that fails.
    pub fn verify(&self, r: &impl Reader) -> Result<()> {
        let mut count = 0;
        if self.h.root != 0 {
            self.verify_node(r, self.h.root, Self::height(self.h.len).0, &mut count)?;
        }
        if count != self.h.len {
            return Err(Error::corrupted("collection length", self.h.root));
        }
        Ok(())
    }

    fn verify_node(&self, r: &impl Reader, off: u64, level: u8, count: &mut u64) -> Result<()> {
        let (b, n) = Self::node(r, off, level)?;
        node::verify(r, b, off)?;
        if level == 0 {
            *count += n as u64;
            // Only the last leaf may be partly full.
            if n == 0 || (*count < self.h.len && n as u64 != Self::PER_LEAF) {
                return Err(Error::corrupted(WHAT, off));
            }
            return Ok(());
        }
        for i in 0..n {
            if *count >= self.h.len {
                return Err(Error::corrupted(WHAT, off));
            }
            self.verify_node(r, Self::child(b, i), level - 1, count)?;
        }
        Ok(())
    }

    /// Frees every node and leaves the vector empty (what elements point to is not freed).
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a node does not check out.
    pub fn clear<B: Backend>(&mut self, tx: &mut WriteTxn<'_, B>) -> Result<()> {
        if self.h.root != 0 {
            Self::free_subtree(tx, self.h.root, Self::height(self.h.len).0)?;
        }
        *self = Self::new();
        Ok(())
    }

    fn free_subtree<B: Backend>(tx: &mut WriteTxn<'_, B>, off: u64, level: u8) -> Result<()> {
        if level > 0 {
            let (b, count) = Self::node(tx, off, level)?;
            let children: Vec<u64> = (0..count).map(|i| Self::child(b, i)).collect();
            for child in children {
                Self::free_subtree(tx, child, level - 1)?;
            }
        } else {
            Self::node(tx, off, 0)?;
        }
        tx.node_free(off, Self::SIZE)
    }
}

/// An iterator over a [`PVec`]'s elements (from [`PVec::iter`]), in place; an error (once,
/// then nothing) if a node does not check out.
pub struct Iter<'r, T> {
    r: &'r dyn Source,
    vec: PVec<T>,
    at: u64,
    /// The current leaf's bytes and count.
    leaf: Option<(&'r [u8], usize, u64)>,
}

impl<'r, T: Persist> Iterator for Iter<'r, T> {
    type Item = Result<&'r T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.vec.h.len {
            return None;
        }
        let li = (self.at % PVec::<T>::PER_LEAF) as usize;
        if li == 0 || self.leaf.is_none() {
            match self.vec.leaf(self.r, self.at) {
                Ok(leaf) => self.leaf = Some(leaf),
                Err(e) => {
                    self.at = self.vec.h.len;
                    return Some(Err(e));
                }
            }
        }
        let (b, count, off) = self.leaf?;
        self.at += 1;
        let item = if li < count {
            T::ref_from_bytes(&b[PVec::<T>::slot(li)]).map_err(|_| Error::corrupted(WHAT, off))
        } else {
            Err(Error::corrupted(WHAT, off))
        };
        if item.is_err() {
            self.at = self.vec.h.len;
        }
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.vec.h.len - self.at) as usize;
        (left, Some(left))
    }
}
