//! [`PVec`]: a growable array in the heap — a radix tree of 4 KiB nodes (leaves of
//! elements, branches of 506 child pointers) whose height follows from the length; a
//! change copies one path from the root to a leaf, once per transaction.

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
use crate::shape::{Shape, shape_of};
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

handle_impls!(PVec<T>, "elements");

impl<T: Persist> Persist for PVec<T> {
    const TYPE_HASH: u64 = type_hash("PVec<T>", 16, &[T::NAME_HASH]);
    const SHAPE: &'static Shape = &Shape::Vec(shape_of::<T>);
}

/// How a vector of elements of `width` bytes is laid out: what the typed [`PVec`] uses
/// as a constant, and `mmf heap dump` builds from a shape read from the file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VecSpec {
    /// Bytes of one element.
    pub width: usize,
    /// Node bytes: 4 KiB, or more for elements so large that fewer than 4 would fit.
    pub size: usize,
    per_leaf: u64,
    fanout: u64,
}

fn child(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[HDR + 8 * i..][..8].try_into().unwrap_or_default())
}

fn set_child(b: &mut [u8], i: usize, child: u64) {
    b[HDR + 8 * i..][..8].copy_from_slice(&child.to_le_bytes());
}

impl VecSpec {
    /// The layout for elements of `width` bytes.
    pub const fn new(width: usize) -> VecSpec {
        let size = (HDR + 4 * width).next_multiple_of(4096);
        let per_leaf = ((size - HDR) / if width == 0 { 1 } else { width }) as u64;
        VecSpec { width, size, per_leaf, fanout: ((size - HDR) / 8) as u64 }
    }

    /// The tree's height for `len` elements (0: the root is a leaf), and the elements one
    /// child of the root covers.
    pub(crate) fn height(&self, len: u64) -> (u8, u64) {
        let (mut h, mut span) = (0u8, self.per_leaf);
        while span < len {
            span = span.saturating_mul(self.fanout);
            h += 1;
        }
        (h, span / if h == 0 { 1 } else { self.fanout })
    }

    /// The node at `off`, checked: of `kind` at `level`, with its count.
    pub(crate) fn node<'r>(
        &self,
        r: &'r (impl Source + ?Sized),
        off: u64,
        level: u8,
    ) -> Result<(&'r [u8], usize)> {
        let b = node::read(r, off, self.size)?;
        let h = node::header(b)?;
        let (k, cap) = if level == 0 {
            (kind::VEC_LEAF, self.per_leaf)
        } else {
            (kind::VEC_BRANCH, self.fanout)
        };
        let width = if level == 0 { self.width } else { 8 };
        if h.kind != k
            || h.level != level
            || h.count as u64 > cap
            || h.width as usize != width
            || h.heap as usize != self.size
        {
            return Err(Error::corrupted(WHAT, off));
        }
        Ok((b, h.count as usize))
    }

    pub(crate) fn slot(&self, i: usize) -> std::ops::Range<usize> {
        HDR + self.width * i..HDR + self.width * (i + 1)
    }

    /// The leaf that holds element `i` (< len), its bytes and its count.
    pub(crate) fn leaf<'r>(
        &self,
        r: &'r (impl Source + ?Sized),
        handle: Handle,
        i: u64,
    ) -> Result<(&'r [u8], usize, u64)> {
        let (height, mut span) = self.height(handle.len);
        let mut off = handle.root;
        for level in (1..=height).rev() {
            let (b, count) = self.node(r, off, level)?;
            let ci = ((i / span) % self.fanout) as usize;
            if ci >= count {
                return Err(Error::corrupted(WHAT, off));
            }
            off = child(b, ci);
            span /= self.fanout;
        }
        let (b, count) = self.node(r, off, 0)?;
        Ok((b, count, off))
    }

    /// Checks every node of the vector `handle`.
    pub fn verify(&self, r: &(impl Source + ?Sized), handle: Handle) -> Result<()> {
        let mut count = 0;
        if handle.root != 0 {
            self.verify_node(r, handle.len, handle.root, self.height(handle.len).0, &mut count)?;
        }
        if count != handle.len {
            return Err(Error::corrupted("collection length", handle.root));
        }
        Ok(())
    }

    fn verify_node(
        &self,
        r: &(impl Source + ?Sized),
        len: u64,
        off: u64,
        level: u8,
        count: &mut u64,
    ) -> Result<()> {
        let (b, n) = self.node(r, off, level)?;
        node::verify(r, b, off)?;
        if level == 0 {
            *count += n as u64;
            // Only the last leaf may be partly full.
            if n == 0 || (*count < len && n as u64 != self.per_leaf) {
                return Err(Error::corrupted(WHAT, off));
            }
            return Ok(());
        }
        for i in 0..n {
            if *count >= len {
                return Err(Error::corrupted(WHAT, off));
            }
            self.verify_node(r, len, child(b, i), level - 1, count)?;
        }
        Ok(())
    }
}

impl<T: Persist> PVec<T> {
    const S: VecSpec = {
        assert!(align_of::<T>() as u64 <= ALIGN, "Persist types align to at most 16");
        VecSpec::new(size_of::<T>())
    };

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

    /// Element `i`, in place; `None` past the end.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a node on the way does not check out.
    pub fn get<'r>(&self, r: &'r impl Reader, i: u64) -> Result<Option<&'r T>> {
        if i >= self.h.len {
            return Ok(None);
        }
        let (b, count, off) = Self::S.leaf(r, self.h, i)?;
        let li = (i % Self::S.per_leaf) as usize;
        if li >= count {
            return Err(Error::corrupted(WHAT, off));
        }
        T::ref_from_bytes(&b[Self::S.slot(li)]).map(Some).map_err(|_| Error::corrupted(WHAT, off))
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
        Iter { raw: RawIter::new(r, Self::S, self.h), _t: PhantomData }
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
            self.h.root = tx.node_new(kind::VEC_LEAF, 0, Self::S.size, Self::S.width)?;
        } else {
            let (old_height, _) = Self::S.height(i);
            let (new_height, _) = Self::S.height(i + 1);
            if new_height > old_height {
                // Full: a new root above the old one.
                let top = tx.node_new(kind::VEC_BRANCH, new_height, Self::S.size, 8)?;
                let b = tx.node_mut(top).expect("just made");
                set_child(b, 0, self.h.root);
                node::header_mut(b).count = 1;
                self.h.root = top;
            }
        }
        let (height, mut span) = Self::S.height(i + 1);
        self.h.root = tx.node_cow(self.h.root, Self::S.size)?;
        let mut off = self.h.root;
        for level in (1..=height).rev() {
            let count = Self::S.node(tx, off, level)?.1;
            let ci = ((i / span) % Self::S.fanout) as usize;
            let child = if ci < count {
                let b = Self::S.node(tx, off, level)?.0;
                let child = child(b, ci);
                let copied = tx.node_cow(child, Self::S.size)?;
                if copied != child {
                    set_child(tx.node_mut(off).expect("copied on write"), ci, copied);
                }
                copied
            } else if ci == count {
                let (k, width) = if level == 1 {
                    (kind::VEC_LEAF, Self::S.width)
                } else {
                    (kind::VEC_BRANCH, 8)
                };
                let fresh = tx.node_new(k, level - 1, Self::S.size, width)?;
                let b = tx.node_mut(off).expect("copied on write");
                set_child(b, ci, fresh);
                node::header_mut(b).count += 1;
                fresh
            } else {
                return Err(Error::corrupted(WHAT, off));
            };
            off = child;
            span /= Self::S.fanout;
        }
        let count = Self::S.node(tx, off, 0)?.1;
        let li = (i % Self::S.per_leaf) as usize;
        if li != count {
            return Err(Error::corrupted(WHAT, off));
        }
        let b = tx.node_mut(off).expect("copied on write");
        b[Self::S.slot(li)].copy_from_slice(value.as_bytes());
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
        let (height, mut span) = Self::S.height(self.h.len);
        self.h.root = tx.node_cow(self.h.root, Self::S.size)?;
        let mut off = self.h.root;
        let mut path = Vec::with_capacity(height as usize);
        for level in (1..=height).rev() {
            let (b, count) = Self::S.node(tx, off, level)?;
            let ci = ((i / span) % Self::S.fanout) as usize;
            if ci >= count {
                return Err(Error::corrupted(WHAT, off));
            }
            let child = child(b, ci);
            let copied = tx.node_cow(child, Self::S.size)?;
            if copied != child {
                set_child(tx.node_mut(off).expect("copied on write"), ci, copied);
            }
            path.push((off, ci));
            off = copied;
            span /= Self::S.fanout;
        }
        Self::S.node(tx, off, 0)?;
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
        let li = (i % Self::S.per_leaf) as usize;
        let b = tx.node_mut(leaf).expect("copied on write");
        if li >= node::header(b)?.count as usize {
            return Err(Error::corrupted(WHAT, leaf));
        }
        let old =
            T::read_from_bytes(&b[Self::S.slot(li)]).map_err(|_| Error::corrupted(WHAT, leaf))?;
        b[Self::S.slot(li)].copy_from_slice(value.as_bytes());
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
        let li = (i % Self::S.per_leaf) as usize;
        let b = tx.node_mut(leaf).expect("copied on write");
        if li + 1 != node::header(b)?.count as usize {
            return Err(Error::corrupted(WHAT, leaf));
        }
        let value =
            T::read_from_bytes(&b[Self::S.slot(li)]).map_err(|_| Error::corrupted(WHAT, leaf))?;
        node::header_mut(b).count -= 1;
        // Nodes left empty go, bottom up.
        let mut empty = li == 0;
        if empty {
            tx.node_free(leaf, Self::S.size)?;
        }
        for &(off, ci) in path.iter().rev() {
            if !empty {
                break;
            }
            let b = tx.node_mut(off).expect("copied on write");
            set_child(b, ci, 0);
            node::header_mut(b).count -= 1;
            empty = ci == 0;
            if empty {
                tx.node_free(off, Self::S.size)?;
            }
        }
        self.h.len = i;
        if self.h.len == 0 {
            self.h.root = 0;
            return Ok(Some(value));
        }
        // A root with one child gives way to it while the tree is taller than needed.
        let (mut height, _) = Self::S.height(i + 1);
        while Self::S.height(self.h.len).0 < height {
            let child = child(Self::S.node(tx, self.h.root, height)?.0, 0);
            tx.node_free(self.h.root, Self::S.size)?;
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
        Self::S.verify(r, self.h)
    }

    /// Frees every node and leaves the vector empty (what elements point to is not freed).
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a node does not check out.
    pub fn clear<B: Backend>(&mut self, tx: &mut WriteTxn<'_, B>) -> Result<()> {
        if self.h.root != 0 {
            Self::free_subtree(tx, self.h.root, Self::S.height(self.h.len).0)?;
        }
        *self = Self::new();
        Ok(())
    }

    fn free_subtree<B: Backend>(tx: &mut WriteTxn<'_, B>, off: u64, level: u8) -> Result<()> {
        if level > 0 {
            let (b, count) = Self::S.node(tx, off, level)?;
            let children: Vec<u64> = (0..count).map(|i| child(b, i)).collect();
            for child in children {
                Self::free_subtree(tx, child, level - 1)?;
            }
        } else {
            Self::S.node(tx, off, 0)?;
        }
        tx.node_free(off, Self::S.size)
    }
}

/// An iterator over a [`PVec`]'s elements (from [`PVec::iter`]), in place; an error (once,
/// then nothing) if a node does not check out.
pub struct Iter<'r, T> {
    raw: RawIter<'r>,
    _t: PhantomData<T>,
}

impl<'r, T: Persist> Iterator for Iter<'r, T> {
    type Item = Result<&'r T>;

    fn next(&mut self) -> Option<Self::Item> {
        let (bytes, off) = match self.raw.next()? {
            Ok(item) => item,
            Err(e) => return Some(Err(e)),
        };
        Some(T::ref_from_bytes(bytes).map_err(|_| Error::corrupted(WHAT, off)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.raw.size_hint()
    }
}

/// The elements of a vector laid out as `spec`, as bytes (with their leaf's offset).
pub(crate) struct RawIter<'r> {
    r: &'r dyn Source,
    spec: VecSpec,
    handle: Handle,
    at: u64,
    /// The current leaf's bytes, count and offset.
    leaf: Option<(&'r [u8], usize, u64)>,
}

impl<'r> RawIter<'r> {
    pub fn new(r: &'r dyn Source, spec: VecSpec, handle: Handle) -> Self {
        RawIter { r, spec, handle, at: 0, leaf: None }
    }
}

impl<'r> Iterator for RawIter<'r> {
    type Item = Result<(&'r [u8], u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.handle.len {
            return None;
        }
        let li = (self.at % self.spec.per_leaf) as usize;
        if li == 0 || self.leaf.is_none() {
            match self.spec.leaf(self.r, self.handle, self.at) {
                Ok(leaf) => self.leaf = Some(leaf),
                Err(e) => {
                    self.at = self.handle.len;
                    return Some(Err(e));
                }
            }
        }
        let (b, count, off) = self.leaf?;
        self.at += 1;
        if li >= count {
            self.at = self.handle.len;
            return Some(Err(Error::corrupted(WHAT, off)));
        }
        Some(Ok((&b[self.spec.slot(li)], off)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.handle.len - self.at) as usize;
        (left, Some(left))
    }
}
