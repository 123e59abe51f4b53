//! Iterating a [`PHashMap`](super::PHashMap): the typed [`Iter`] over the byte-level
//! [`RawIter`], which `mmf heap dump` also walks without the program's types.

use std::marker::PhantomData;

use crate::entries::{self, Entries, RawEntry};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::node::WHAT;
use crate::persist::Persist;
use crate::read::private::Source;

use super::spec::{HashSpec, dir_child, span};
use super::{DIR_TAG, LEVELS, SLOTS};
use crate::pmap::Handle;

/// An iterator over a [`PHashMap`](super::PHashMap)'s entries in hash order (from
/// [`PHashMap::iter`](super::PHashMap::iter)): `(key, &value)`, or an error (once, then
/// nothing) if a node does not check out.
pub struct Iter<'r, K: Key, V> {
    pub(super) raw: RawIter<'r>,
    pub(super) _t: PhantomData<(K, V)>,
}

impl<'r, K: Key, V: Persist> Iterator for Iter<'r, K, V> {
    type Item = Result<(K::Ref<'r>, &'r V)>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.raw.next()?.and_then(entries::typed::<K, V>);
        if item.is_err() {
            self.raw.stop();
        }
        Some(item)
    }
}

/// The entries of a hash map laid out as `spec`, in hash order, as bytes: (key, value,
/// the bucket's offset).
pub(crate) struct RawIter<'r> {
    r: &'r dyn Source,
    spec: HashSpec,
    /// Directories from the root down: bytes, level, next slot.
    stack: Vec<(&'r [u8], u8, usize)>,
    bucket: Option<(Entries<'r>, usize)>,
    pending: Option<Error>,
    /// Nodes visited: a damaged directory that points to one node twice is caught
    /// instead of walked again and again.
    seen: rustc_hash::FxHashSet<u64>,
}

impl<'r> RawIter<'r> {
    /// The entries of the hash map `handle`.
    pub fn new(r: &'r dyn Source, spec: HashSpec, handle: Handle) -> Self {
        let mut iter = RawIter {
            r,
            spec,
            stack: Vec::new(),
            bucket: None,
            pending: None,
            seen: Default::default(),
        };
        if handle.root & DIR_TAG != 0 {
            match spec.dir(r, handle.root, 0) {
                Ok(d) => iter.stack.push((d, 0, 0)),
                Err(e) => iter.pending = Some(e),
            }
        } else if handle.root != 0 {
            match spec.bucket(r, handle.root, 0).and_then(|b| Entries::slots(b.b, spec.leaf, b.off))
            {
                Ok(e) => iter.bucket = Some((e, 0)),
                Err(e) => iter.pending = Some(e),
            }
        }
        iter
    }

    fn stop(&mut self) {
        self.stack.clear();
        self.bucket = None;
    }

    fn step(&mut self) -> Result<Option<RawEntry<'r>>> {
        loop {
            if let Some((e, i)) = &mut self.bucket {
                // The taken slots, in order.
                while *i < e.len() {
                    let (e, at) = (*e, *i);
                    *i += 1;
                    if e.ord(at) != 0 {
                        return Ok(Some((e.key(at)?, e.val(at), e.off)));
                    }
                }
                self.bucket = None;
            }
            let Some((d, level, next)) = self.stack.last_mut() else { return Ok(None) };
            if *next >= SLOTS {
                self.stack.pop();
                continue;
            }
            let (d, level, s) = (*d, *level, *next);
            let child = dir_child(d, s);
            if !self.seen.insert(child) {
                return Err(Error::corrupted(WHAT, child & !DIR_TAG));
            }
            if child & DIR_TAG != 0 {
                *next = s + 1;
                if level + 1 >= LEVELS {
                    return Err(Error::corrupted(WHAT, child & !DIR_TAG));
                }
                let sub = self.spec.dir(self.r, child, level + 1)?;
                self.stack.push((sub, level + 1, 0));
            } else {
                let b = self.spec.bucket(self.r, child, level)?;
                // The slots this bucket covers: skip them all.
                let range = span(s, b.depth);
                if range.start != s {
                    return Err(Error::corrupted(WHAT, child));
                }
                *next = range.end;
                self.bucket = Some((Entries::slots(b.b, self.spec.leaf, child)?, 0));
            }
        }
    }
}

impl<'r> Iterator for RawIter<'r> {
    type Item = Result<RawEntry<'r>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.take() {
            return Some(Err(e));
        }
        match self.step() {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.stop();
                Some(Err(e))
            }
        }
    }
}
