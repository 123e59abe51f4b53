//! [`Snapshot::verify_reachable`]: everything the roots reach, walked by their stored
//! shapes and checked (what `mmf heap check` runs after the last commit's own check).
//!
//! The shapes and every byte come from the file, which may be hostile: the walk visits
//! each distinct string, collection and pointer once, recurses only through a value's
//! own nesting (deeper data waits on a list), and stops with an error when its work
//! passes a budget proportional to the heap's allocated size — a file whose shapes make
//! the walk far larger than the file (fields laid over each other, one value reached as
//! many types) is refused, not walked for hours.

use std::collections::HashMap;
use std::ops::Bound;

use rustc_hash::FxHashSet;
use zerocopy::FromBytes;

use super::{Limits, Walker, bad_shape};
use crate::PBytes;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::phash::{self, HashSpec};
use crate::pmap::{self, Handle, MapSpec};
use crate::pvec::{self, VecSpec};
use crate::read::private::Source;
use crate::roots::is_hidden;
use crate::shape::{self, Stored};
use crate::snapshot::Snapshot;

/// What [`Snapshot::verify_reachable`] walked: each distinct thing once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reached {
    /// Roots walked by their stored shape.
    pub roots: u64,
    /// Roots whose type has no shape (`Persist::SHAPE` left opaque): their bytes were
    /// read, but what they point to could not be followed.
    pub opaque_roots: u64,
    /// Distinct collections (vectors, maps, hash maps) checked in full, every node's
    /// checksum too.
    pub collections: u64,
    /// Distinct pointers (`Off`) followed.
    pub pointers: u64,
    /// Distinct strings and byte strings checked.
    pub strings: u64,
}

/// The deepest a value's own shape may nest (arrays and structs within each other): a
/// registry is data from the file, and each level is a level of recursion.
const MAX_NESTING: u32 = 64;
/// Nesting through collections past which their elements wait on the list instead of
/// being walked where they are (a trie of long keys nests as deep as its keys are long).
const DEFER_AT: u32 = 16;

/// The walk's state across the roots.
struct Reach<'a> {
    /// Values still to walk (pointer targets, and elements of deeply nested collections).
    pending: Vec<(u32, &'a [u8])>,
    /// Pointers followed, by target (a program reaches a block as one type).
    pointers: FxHashSet<u64>,
    /// Strings checked, by place and whether as text.
    strings: FxHashSet<(u64, u64, bool)>,
    /// Collections checked, by handle.
    collections: FxHashSet<(u64, u64)>,
    /// Per type of the current root's table: whether a value of it reaches anything.
    reaches: Vec<Option<bool>>,
    /// Work left (values visited, string bytes / 64, collection entries): the walk ends
    /// with an error when it runs out.
    budget: u64,
    counts: Reached,
}

impl Reach<'_> {
    fn spend(&mut self, units: u64) -> Result<()> {
        self.budget = self.budget.checked_sub(units).ok_or(Error::Corrupted {
            what: "shape registry (its shapes make the walk far larger than the heap)",
            offset: 0,
        })?;
        Ok(())
    }
}

impl<'a> Walker<'a> {
    /// Whether a value of type `i` holds anything to check beyond its own bytes.
    fn reaches(&self, i: u32, memo: &mut Vec<Option<bool>>, depth: u32) -> Result<bool> {
        if let Some(Some(known)) = memo.get(i as usize) {
            return Ok(*known);
        }
        if depth > MAX_NESTING {
            return Err(bad_shape());
        }
        let r = match self.entry(i)? {
            Stored::Unsigned(_) | Stored::Signed(_) | Stored::Float(_) | Stored::Opaque(_) => false,
            Stored::Array(t, n) => *n > 0 && self.reaches(*t, memo, depth + 1)?,
            Stored::Struct(_, _, fields) => {
                let mut any = false;
                for (_, _, t) in fields {
                    any |= self.reaches(*t, memo, depth + 1)?;
                }
                any
            }
            _ => true,
        };
        if let Some(slot) = memo.get_mut(i as usize) {
            *slot = Some(r);
        }
        Ok(r)
    }

    /// [`reaches`](Self::reaches), with the walk's memo.
    fn needs(&self, i: u32, w: &mut Reach<'a>) -> Result<bool> {
        let mut memo = std::mem::take(&mut w.reaches);
        let needs = self.reaches(i, &mut memo, 0);
        w.reaches = memo;
        needs
    }

    /// Checks that a struct's fields lie inside it and not over each other: a shape that
    /// lays them over the same bytes would make each level of nesting multiply the walk
    /// (this one's, and `dump`'s).
    pub(super) fn layout(&self, size: u64, fields: &[(String, u64, u32)]) -> Result<()> {
        let mut spans = fields
            .iter()
            .map(|(_, at, t)| Ok((*at, self.size(*t)? as u64)))
            .collect::<Result<Vec<_>>>()?;
        spans.sort_unstable();
        let mut end = 0;
        for (at, len) in spans {
            if at < end || at.checked_add(len).is_none_or(|e| e > size) {
                return Err(bad_shape());
            }
            end = at + len;
        }
        Ok(())
    }

    /// [`layout`](Self::layout) of every struct in the table, whether or not a value of
    /// it reaches anything (a shape whose fields spill out of their struct is damage
    /// even where the walk has nothing to follow; `dump` refuses it too).
    pub(super) fn layouts(&self) -> Result<()> {
        for entry in self.table {
            if let Stored::Struct(_, size, fields) = entry {
                self.layout(*size, fields)?;
            }
        }
        Ok(())
    }

    /// A collection's element or entry value: walked here, or queued when the value
    /// nests deep through collections.
    fn element(&self, t: u32, bytes: &'a [u8], w: &mut Reach<'a>, depth: u32) -> Result<()> {
        if depth >= DEFER_AT {
            w.pending.push((t, bytes));
            return Ok(());
        }
        self.reach(t, bytes, w, depth + 1)
    }

    /// Checks the value of type `i` in `bytes` and what it reaches.
    fn reach(&self, i: u32, bytes: &'a [u8], w: &mut Reach<'a>, depth: u32) -> Result<()> {
        if depth > DEFER_AT + MAX_NESTING {
            return Err(bad_shape());
        }
        w.spend(1)?;
        if !self.needs(i, w)? {
            return Ok(());
        }
        let field = |at: usize, len: usize| -> Result<&'a [u8]> {
            bytes.get(at..at.checked_add(len).ok_or_else(bad_shape)?).ok_or_else(bad_shape)
        };
        let handle = || Handle::read_from_bytes(field(0, 16)?).map_err(|_| bad_shape());
        // A collection's handle, the first time it is seen (`None`: checked before).
        let first = |w: &mut Reach<'a>, h: Handle| -> Result<bool> {
            if !w.collections.insert((h.root, h.len)) {
                return Ok(false);
            }
            w.spend(h.len)?;
            w.counts.collections += 1;
            Ok(true)
        };
        match self.entry(i)? {
            Stored::Str | Stored::Bytes => {
                let b = PBytes::read_from_bytes(field(0, 16)?).map_err(|_| bad_shape())?;
                let text = matches!(self.entry(i)?, Stored::Str);
                if w.strings.insert((b.off, b.len, text)) {
                    w.spend(b.len / 64)?;
                    if text {
                        self.str_at(field(0, 16)?)?;
                    } else {
                        self.string(field(0, 16)?, false)?;
                    }
                    w.counts.strings += 1;
                }
            }
            Stored::Off(t) => {
                let off = u64::from_le_bytes(field(0, 8)?.try_into().map_err(|_| bad_shape())?);
                if off != 0 && w.pointers.insert(off) {
                    if let Some(at) = self.object(field(0, 8)?, *t)? {
                        w.pending.push((*t, at));
                        w.counts.pointers += 1;
                    }
                }
            }
            Stored::Array(t, n) => {
                let size = self.size(*t)?;
                for j in 0..usize::try_from(*n).map_err(|_| bad_shape())? {
                    self.reach(*t, field(j * size, size)?, w, depth + 1)?;
                }
            }
            Stored::Struct(_, _, fields) => {
                // Its layout was checked with the table's (`layouts`).
                for (_, at, t) in fields {
                    self.reach(*t, field(*at as usize, self.size(*t)?)?, w, depth + 1)?;
                }
            }
            Stored::Vec(t) => {
                let (h, spec) = (handle()?, VecSpec::new(self.size(*t)?));
                if first(w, h)? {
                    spec.verify(self.r, h).map_err(|e| self.collection_err(bytes, e))?;
                    if self.needs(*t, w)? {
                        for e in pvec::RawIter::new(self.r, spec, h) {
                            self.element(*t, e?.0, w, depth)?;
                        }
                    }
                }
            }
            Stored::Map(k, v) => {
                let h = handle()?;
                if first(w, h)? {
                    let spec =
                        MapSpec::new(self.key_width(*k)?, self.size(*v)?, self.key_check(*k));
                    spec.verify(self.r, h).map_err(|e| self.collection_err(bytes, e))?;
                    if self.needs(*v, w)? {
                        let all = (Bound::Unbounded, Bound::Unbounded);
                        for e in pmap::RawIter::new(self.r, spec, h, all.0, all.1) {
                            self.element(*v, e?.1, w, depth)?;
                        }
                    }
                }
            }
            Stored::HashMap(k, v) => {
                let h = handle()?;
                if first(w, h)? {
                    let spec =
                        HashSpec::new(self.key_width(*k)?, self.size(*v)?, self.key_check(*k));
                    spec.verify(self.r, h).map_err(|e| self.collection_err(bytes, e))?;
                    if self.needs(*v, w)? {
                        for e in phash::RawIter::new(self.r, spec, h) {
                            self.element(*v, e?.1, w, depth)?;
                        }
                    }
                }
            }
            Stored::Unsigned(_) | Stored::Signed(_) | Stored::Float(_) | Stored::Opaque(_) => {}
        }
        Ok(())
    }
}

impl<B: Backend> Snapshot<'_, B> {
    /// Checks everything the roots reach, walked by their stored shapes (what `mmf heap
    /// check` runs after [`verify`](Self::verify)): every collection in full (each node's
    /// bounds, header, order and checksum, as [`PMap::verify`](crate::PMap::verify)),
    /// the values in collections, every string and byte string, every pointer and what
    /// it points to — each distinct one once, so shared values cost one check and
    /// cycles end. Values nested deep through collections (a trie) are walked from a
    /// list, not by recursion. A root whose type has no shape cannot be followed: it is
    /// counted in [`Reached::opaque_roots`].
    ///
    /// ```
    /// use mmf_heap::{Heap, MemoryBackend, PMap, PStr, PVec};
    ///
    /// let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
    /// let mut tx = heap.write()?;
    /// let mut m: PMap<PStr, PVec<u32>> = PMap::new();
    /// let mut v = PVec::new();
    /// v.push(&mut tx, &7)?;
    /// m.insert(&mut tx, "seven", &v)?;
    /// tx.set_root("m", &m)?;
    /// tx.commit()?;
    /// let reached = heap.read()?.verify_reachable()?;
    /// assert_eq!((reached.roots, reached.collections), (1, 2));
    /// # Ok::<(), mmf_heap::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`] naming the first structure that fails (a node, a string, a
    /// pointer, the shape registry — also when its shapes would make the walk far larger
    /// than the heap: fields laid over each other, a value nested more than 64 deep in
    /// itself). A bad pointer or collection handle (out of bounds, misaligned, into space
    /// the commit holds free) is named where it is stored ("object pointer into freed
    /// space", "collection handle reaching freed space", ...).
    pub fn verify_reachable(&self) -> Result<Reached> {
        let registry = self.shapes()?;
        let tables: HashMap<(&str, u64), &shape::Table> =
            registry.iter().map(|(n, h, t)| ((n.as_str(), *h), t)).collect();
        let mut w = Reach {
            pending: Vec::new(),
            pointers: Default::default(),
            strings: Default::default(),
            collections: Default::default(),
            reaches: Vec::new(),
            // Generous for any heap a program wrote (each value is walked once), small
            // next to what overlapping shapes would cost.
            budget: self.commit.slot.alloc_end.saturating_add(1 << 20),
            counts: Reached::default(),
        };
        for (name, root) in self.commit.roots.iter() {
            if is_hidden(name) {
                continue;
            }
            let Some(table) = tables.get(&(name.as_str(), root.type_hash)) else {
                w.counts.opaque_roots += 1;
                continue;
            };
            if shape::size(table, 0) != Some(root.bytes.len() as u64) {
                return Err(bad_shape());
            }
            let walker = Walker { r: self as &dyn Source, table, limits: Limits::default() };
            w.reaches = vec![None; table.len()];
            walker.layouts()?;
            walker.reach(0, &root.bytes, &mut w, 0)?;
            while let Some((t, at)) = w.pending.pop() {
                walker.reach(t, at, &mut w, 0)?;
            }
            w.counts.roots += 1;
        }
        Ok(w.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Heap, MemoryBackend};

    fn walk(table: &shape::Table, bytes: &[u8]) -> Result<Reached> {
        let heap = Heap::create_with(MemoryBackend::new(), &Default::default()).unwrap();
        let snap = heap.read().unwrap();
        let walker = Walker { r: &snap as &dyn Source, table, limits: Limits::default() };
        let mut w = Reach {
            pending: Vec::new(),
            pointers: Default::default(),
            strings: Default::default(),
            collections: Default::default(),
            reaches: vec![None; table.len()],
            budget: 1 << 20,
            counts: Reached::default(),
        };
        walker.layouts()?;
        walker.reach(0, bytes, &mut w, 0)?;
        Ok(w.counts)
    }

    /// Three structs of 4,096 fields each laid over the same 16 bytes, down to a string:
    /// 4096³ visits if walked; refused at once as a bad shape.
    #[test]
    fn fields_laid_over_each_other_are_a_bad_shape() {
        let level = |name: &str, next: u32| {
            Stored::Struct(name.into(), 16, vec![(String::new(), 0, next); 4096])
        };
        let table = vec![level("A", 1), level("B", 2), level("C", 3), Stored::Str];
        let err = walk(&table, &[0; 16]).unwrap_err();
        assert!(matches!(err, Error::Corrupted { what: "shape registry", .. }), "{err:?}");
        // `dump` refuses it too (it built a value tree of 4096³ nodes, at its default depth).
        let heap = Heap::create_with(MemoryBackend::new(), &Default::default()).unwrap();
        let snap = heap.read().unwrap();
        let walker = Walker { r: &snap as &dyn Source, table: &table, limits: Limits::default() };
        assert!(walker.value(0, &[0; 16], 6).is_err());
        // Laid side by side, the same fields are a sound shape.
        let table = vec![
            Stored::Struct("A".into(), 32, vec![("a".into(), 0, 1), ("b".into(), 16, 1)]),
            Stored::Str,
        ];
        assert_eq!(walk(&table, &[0; 32]).unwrap().strings, 1, "one empty string, twice");
    }

    /// Fields of no bytes are not laid "over each other" (the layout check lets any
    /// number share an offset), so a pointer to a struct of 4,096 zero-size fields of a
    /// struct of 4,096 such fields, three levels down, made `shape::align` (which follows
    /// every field, where `reaches` is memoized) visit 4096³ fields: `check` hung on a
    /// 200 KB registry. (review-s8; a hang guard, not a timing: the fixed walk takes
    /// milliseconds.)
    #[test]
    fn zero_size_fields_do_not_multiply_the_alignment_walk() {
        let level = |name: &str, next: u32| {
            Stored::Struct(name.into(), 0, vec![(String::new(), 0, next); 4096])
        };
        let table = vec![
            Stored::Off(1),
            level("A", 2),
            level("B", 3),
            level("C", 4),
            Stored::Struct("D".into(), 0, vec![]),
        ];
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let align = shape::align(&table, 1);
            let walked = walk(&table, &4096u64.to_le_bytes()).map(drop);
            tx.send((align, walked))
        });
        let (align, _walked) =
            rx.recv_timeout(std::time::Duration::from_secs(120)).expect("the walk ends");
        assert_eq!(align, 1);
    }

    /// `dump` of a struct of no bytes whose fields are structs of no bytes (any number
    /// at one offset: the layout check allows it) built a value tree multiplied at each
    /// level: 4,096 fields over three levels were 4096³ values, from a 200 KB registry.
    /// Here 64 over three levels (64³ values before the fix): a value of no bytes has
    /// nothing to show below its name. (review-s8; older than 55c356d.)
    #[test]
    fn dump_of_zero_size_fields_does_not_multiply() {
        fn count(v: &super::super::Value) -> usize {
            use super::super::Value;
            match v {
                Value::Struct { fields, .. } => {
                    1 + fields.iter().map(|(_, v)| count(v)).sum::<usize>()
                }
                Value::Array { items, .. } => 1 + items.iter().map(count).sum::<usize>(),
                _ => 1,
            }
        }
        let level = |name: &str, next: u32| {
            Stored::Struct(name.into(), 0, vec![(String::new(), 0, next); 64])
        };
        let table = vec![
            Stored::Struct("R".into(), 8, vec![("a".into(), 0, 1), ("n".into(), 0, 5)]),
            level("A", 2),
            level("B", 3),
            level("C", 4),
            Stored::Struct("D".into(), 0, vec![]),
            Stored::Unsigned(8),
        ];
        let heap = Heap::create_with(MemoryBackend::new(), &Default::default()).unwrap();
        let snap = heap.read().unwrap();
        let walker = Walker { r: &snap as &dyn Source, table: &table, limits: Limits::default() };
        let v = walker.value(0, &7u64.to_le_bytes(), 6).unwrap();
        assert!(count(&v) <= 4, "{} values", count(&v));
        assert!(format!("{v:?}").contains('7'), "the number beside them is shown: {v:?}");
        // Arrays of elements of no bytes, nested: 20 items shown at each level (20^5).
        let mut table = vec![Stored::Struct("R".into(), 8, vec![("a".into(), 0, 1)])];
        table.extend((2..7).map(|t| Stored::Array(t, 1 << 40)));
        table.push(Stored::Struct("D".into(), 0, vec![]));
        let walker = Walker { r: &snap as &dyn Source, table: &table, limits: Limits::default() };
        let v = walker.value(0, &7u64.to_le_bytes(), 6).unwrap();
        assert!(count(&v) <= 4, "{} values", count(&v));
    }

    /// A struct of plain numbers (nothing to follow) whose field lies past its end: the
    /// check refused it only where the walk had something to follow, `dump` always.
    #[test]
    fn a_field_past_its_struct_is_a_bad_shape_where_nothing_is_followed() {
        let table = vec![
            Stored::Struct("A".into(), 8, vec![("a".into(), 0, 1), ("b".into(), 8, 1)]),
            Stored::Unsigned(8),
        ];
        let err = walk(&table, &[0; 8]).unwrap_err();
        assert!(matches!(err, Error::Corrupted { what: "shape registry", .. }), "{err:?}");
        let table =
            vec![Stored::Struct("A".into(), 8, vec![("a".into(), 0, 1)]), Stored::Unsigned(8)];
        assert_eq!(walk(&table, &[0; 8]).unwrap().roots, 0, "sound: walked, nothing counted");
    }

    /// Work out of proportion to the budget ends the walk with an error.
    #[test]
    fn the_budget_ends_a_walk_too_large_for_the_heap() {
        // 2^21 elements of an array of strings: 2^21 visits against a budget of 2^20.
        let table = vec![Stored::Array(1, 1 << 21), Stored::Str];
        let err = walk(&table, &vec![0; 16 << 21]).unwrap_err();
        assert!(matches!(err, Error::Corrupted { what, .. } if what.contains("far larger")));
    }
}
