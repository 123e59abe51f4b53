//! Iterating a [`PMap`](super::PMap): the typed [`Iter`] over the byte-level [`RawIter`],
//! which `mmf heap dump` also walks without the program's types.

use std::marker::PhantomData;
use std::ops::Bound;

use crate::entries::{self, Entries, RawEntry};
use crate::error::{Error, Result};
use crate::key::{Key, prefix};
use crate::node::{self, kind};
use crate::persist::Persist;
use crate::read::private::Source;

use super::{Handle, MapSpec};

/// An iterator over a [`PMap`](super::PMap)'s entries in key order (from
/// [`PMap::iter`](super::PMap::iter), [`PMap::range`](super::PMap::range)):
/// `(key, &value)`, or an error (once, then nothing) if a node does not check out.
pub struct Iter<'r, K: Key, V> {
    pub(super) raw: RawIter<'r>,
    pub(super) _t: PhantomData<(K, V)>,
}

impl<'r, K: Key, V: Persist> Iterator for Iter<'r, K, V> {
    type Item = Result<(K::Ref<'r>, &'r V)>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.raw.next()?.and_then(entries::typed::<K, V>);
        if item.is_err() {
            self.raw.stack.clear();
        }
        Some(item)
    }
}

/// The entries of a map laid out as `spec`, in key order, as bytes: (key, value, the
/// leaf's offset).
pub(crate) struct RawIter<'r> {
    r: &'r dyn Source,
    spec: MapSpec,
    /// From the root down: a node's entries and the next index in it.
    stack: Vec<(Entries<'r>, usize)>,
    hi: Bound<Vec<u8>>,
    pending: Option<Error>,
    /// The last key yielded: keys must rise (a damaged tree that repeats a subtree is
    /// caught at its first repeated key instead of walked again and again).
    last: Option<&'r [u8]>,
}

impl<'r> RawIter<'r> {
    /// The entries of the map `handle` from `lo` to `hi` (encoded keys).
    pub fn new(
        r: &'r dyn Source,
        spec: MapSpec,
        handle: Handle,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
    ) -> Self {
        let mut iter = RawIter { r, spec, stack: Vec::new(), hi, pending: None, last: None };
        if let Err(e) = iter.seek(handle.root, lo) {
            iter.stack.clear();
            iter.pending = Some(e);
        }
        iter
    }

    /// Descends from `root` to the first entry at or after `lo`.
    fn seek(&mut self, root: u64, lo: Bound<Vec<u8>>) -> Result<()> {
        if root == 0 {
            return Ok(());
        }
        let mut off = root;
        let mut level = None;
        loop {
            let (b, k, lv) = self.spec.node(self.r, off)?;
            if level.is_some_and(|l| l != lv) {
                return Err(Error::corrupted(node::WHAT, off));
            }
            let e = self.spec.entries(b, k, off)?;
            let i = match &lo {
                Bound::Unbounded => 0,
                Bound::Included(key) | Bound::Excluded(key) if k == kind::MAP_LEAF => {
                    match e.search(key, prefix(key))? {
                        Ok(i) if matches!(lo, Bound::Excluded(_)) => i + 1,
                        Ok(i) | Err(i) => i,
                    }
                }
                Bound::Included(key) | Bound::Excluded(key) => e.child_for(key, prefix(key))?,
            };
            if k == kind::MAP_LEAF {
                self.stack.push((e, i));
                return Ok(());
            }
            self.stack.push((e, i + 1));
            off = e.child(i);
            level = Some(lv - 1);
        }
    }

    /// The next leaf entry: climbs while nodes are done, then descends leftmost.
    fn advance(&mut self) -> Result<Option<(Entries<'r>, usize)>> {
        loop {
            let Some((e, i)) = self.stack.last_mut() else { return Ok(None) };
            if *i >= e.len() {
                self.stack.pop();
                continue;
            }
            let (e, at) = (*e, *i);
            *i += 1;
            if node::header(e.bytes())?.kind == kind::MAP_LEAF {
                return Ok(Some((e, at)));
            }
            let level = node::header(e.bytes())?.level;
            let child = e.child(at);
            let (b, k, lv) = self.spec.node(self.r, child)?;
            if lv + 1 != level {
                return Err(Error::corrupted(node::WHAT, child));
            }
            let e = self.spec.entries(b, k, child)?;
            if e.len() == 0 {
                // Only an empty map has no entries, and it has no node.
                return Err(Error::corrupted(node::WHAT, child));
            }
            self.stack.push((e, 0));
        }
    }
}

impl<'r> Iterator for RawIter<'r> {
    type Item = Result<RawEntry<'r>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.take() {
            self.stack.clear();
            return Some(Err(e));
        }
        let mut step = || -> Result<Option<RawEntry<'r>>> {
            let Some((e, i)) = self.advance()? else { return Ok(None) };
            let key = e.key(i)?;
            let past = match &self.hi {
                Bound::Unbounded => false,
                Bound::Included(hi) => key > hi.as_slice(),
                Bound::Excluded(hi) => key >= hi.as_slice(),
            };
            if past {
                self.stack.clear();
                return Ok(None);
            }
            let bad = || Error::corrupted(node::WHAT, e.off);
            if self.last.is_some_and(|last| last >= key) {
                return Err(bad());
            }
            self.last = Some(key);
            Ok(Some((key, e.val(i), e.off)))
        };
        match step() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => None,
            Err(e) => {
                self.stack.clear();
                Some(Err(e))
            }
        }
    }
}
