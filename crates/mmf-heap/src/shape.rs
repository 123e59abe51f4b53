//! Shapes: how a [`Persist`] type is laid out — integers, strings, pointers, arrays,
//! structs with named fields, collections — kept in the heap for each named root, so
//! that a tool shows what a heap holds without the program's types (`mmf heap dump`).

use std::collections::HashMap;

use zerocopy::IntoBytes;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::persist::{PBytes, Persist};
use crate::roots::{RootValue, SHAPES_ROOT};
use crate::txn::{WriteTxn, root_value};

/// How a [`Persist`] type is laid out ([`Persist::SHAPE`]). Types without one are
/// [`Shape::Opaque`]: shown as bytes.
#[derive(Debug)]
pub enum Shape {
    /// An unsigned integer of this many bytes.
    Unsigned(u8),
    /// A signed integer of this many bytes.
    Signed(u8),
    /// A floating-point number of this many bytes.
    Float(u8),
    /// A [`PStr`](crate::PStr).
    Str,
    /// A [`PBytes`].
    Bytes,
    /// An [`Off<T>`](crate::Off) to a value of this shape.
    Off(fn() -> &'static Shape),
    /// An array `[T; N]`.
    Array(fn() -> &'static Shape, usize),
    /// A `#[repr(C)]` struct.
    Struct {
        /// The type's name.
        name: &'static str,
        /// Its size in bytes.
        size: usize,
        /// Its fields, in order.
        fields: &'static [Field],
    },
    /// A [`PVec<T>`](crate::PVec).
    Vec(fn() -> &'static Shape),
    /// A [`PMap<K, V>`](crate::PMap).
    Map(fn() -> &'static Shape, fn() -> &'static Shape),
    /// A [`PHashMap<K, V>`](crate::PHashMap).
    HashMap(fn() -> &'static Shape, fn() -> &'static Shape),
    /// Bytes of this length whose meaning the heap does not know.
    Opaque(usize),
}

/// A struct's field, as [`Shape::Struct`] lists it.
#[derive(Debug)]
pub struct Field {
    /// The field's name.
    pub name: &'static str,
    /// Its byte offset in the struct.
    pub offset: usize,
    /// Its shape.
    pub shape: fn() -> &'static Shape,
}

/// `T`'s shape, as a function pointer a [`Shape`] can hold (recursive types refer to
/// themselves through it).
pub fn shape_of<T: Persist>() -> &'static Shape {
    T::SHAPE
}

/// A shape as stored in the heap and read back: an entry of a table, children by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// See [`Shape`]; children are indexes into the table.
    Unsigned(u8),
    /// See [`Shape::Signed`].
    Signed(u8),
    /// See [`Shape::Float`].
    Float(u8),
    /// See [`Shape::Str`].
    Str,
    /// See [`Shape::Bytes`].
    Bytes,
    /// See [`Shape::Off`].
    Off(u32),
    /// See [`Shape::Array`].
    Array(u32, u64),
    /// See [`Shape::Struct`]: name, size, fields (name, offset, shape).
    Struct(String, u64, Vec<(String, u64, u32)>),
    /// See [`Shape::Vec`].
    Vec(u32),
    /// See [`Shape::Map`].
    Map(u32, u32),
    /// See [`Shape::HashMap`].
    HashMap(u32, u32),
    /// See [`Shape::Opaque`].
    Opaque(u64),
}

/// A table of stored shapes; entry 0 is the root's.
pub type Table = Vec<Stored>;

/// The table of `shape` and everything it refers to (structs once each, so that
/// recursive types end).
pub fn table(shape: &'static Shape) -> Table {
    let mut table = Vec::new();
    let mut structs = Vec::new();
    add(shape, &mut table, &mut structs);
    table
}

fn add(shape: &'static Shape, table: &mut Table, structs: &mut Vec<(String, u32)>) -> u32 {
    if let Shape::Struct { name, size, fields } = shape {
        let key = format!(
            "{name}/{size}/{}",
            fields.iter().map(|f| f.name).collect::<Vec<_>>().join(",")
        );
        if let Some(&(_, i)) = structs.iter().find(|(k, _)| *k == key) {
            return i;
        }
        let at = table.len() as u32;
        table.push(Stored::Opaque(*size as u64));
        structs.push((key, at));
        let fields = fields
            .iter()
            .map(|f| (f.name.to_owned(), f.offset as u64, add((f.shape)(), table, structs)))
            .collect();
        table[at as usize] = Stored::Struct((*name).to_owned(), *size as u64, fields);
        return at;
    }
    let at = table.len() as u32;
    table.push(Stored::Opaque(0));
    let stored = match shape {
        Shape::Unsigned(w) => Stored::Unsigned(*w),
        Shape::Signed(w) => Stored::Signed(*w),
        Shape::Float(w) => Stored::Float(*w),
        Shape::Str => Stored::Str,
        Shape::Bytes => Stored::Bytes,
        Shape::Off(t) => Stored::Off(add(t(), table, structs)),
        Shape::Array(t, n) => Stored::Array(add(t(), table, structs), *n as u64),
        Shape::Vec(t) => Stored::Vec(add(t(), table, structs)),
        Shape::Map(k, v) => Stored::Map(add(k(), table, structs), add(v(), table, structs)),
        Shape::HashMap(k, v) => Stored::HashMap(add(k(), table, structs), add(v(), table, structs)),
        Shape::Opaque(n) => Stored::Opaque(*n as u64),
        Shape::Struct { .. } => unreachable!("handled above"),
    };
    table[at as usize] = stored;
    at
}

/// The registry of root shapes: root name, type hash, table.
pub type Registry = Vec<(String, u64, Table)>;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The registry's bytes (`docs/heap-format.md`, "Shapes").
pub fn encode(registry: &Registry) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(registry.len() as u32).to_le_bytes());
    for (name, hash, table) in registry {
        put_str(&mut out, name);
        out.extend_from_slice(&hash.to_le_bytes());
        out.extend_from_slice(&(table.len() as u32).to_le_bytes());
        for s in table {
            let (tag, a, b): (u8, u64, u64) = match s {
                Stored::Unsigned(w) => (1, *w as u64, 0),
                Stored::Signed(w) => (2, *w as u64, 0),
                Stored::Float(w) => (3, *w as u64, 0),
                Stored::Str => (4, 0, 0),
                Stored::Bytes => (5, 0, 0),
                Stored::Off(t) => (6, *t as u64, 0),
                Stored::Array(t, n) => (7, *t as u64, *n),
                Stored::Struct(_, size, fields) => (8, *size, fields.len() as u64),
                Stored::Vec(t) => (9, *t as u64, 0),
                Stored::Map(k, v) => (10, *k as u64, *v as u64),
                Stored::HashMap(k, v) => (11, *k as u64, *v as u64),
                Stored::Opaque(n) => (12, *n, 0),
            };
            out.push(tag);
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes());
            if let Stored::Struct(name, _, fields) = s {
                put_str(&mut out, name);
                for (fname, offset, shape) in fields {
                    put_str(&mut out, fname);
                    out.extend_from_slice(&offset.to_le_bytes());
                    out.extend_from_slice(&shape.to_le_bytes());
                }
            }
        }
    }
    out
}

struct Reader<'a> {
    b: &'a [u8],
    at: u64,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let bad = Error::corrupted("shape registry", self.at);
        let (head, rest) = self.b.split_at_checked(n).ok_or(bad)?;
        self.b = rest;
        self.at += n as u64;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }
    fn str(&mut self) -> Result<String> {
        let at = self.at;
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| Error::corrupted("shape registry", at))
    }
}

/// Reads a registry from its bytes (at file offset `at`), checking that every index
/// stays inside its table.
///
/// # Errors
/// [`Error::Corrupted`] naming the shape registry.
pub fn decode(bytes: &[u8], at: u64) -> Result<Registry> {
    let mut r = Reader { b: bytes, at };
    let bad = |at| Error::corrupted("shape registry", at);
    let count = r.u32()?;
    let mut registry = Vec::new();
    for _ in 0..count {
        let name = r.str()?;
        let hash = r.u64()?;
        let len = r.u32()?;
        let mut table = Vec::new();
        for _ in 0..len {
            let tag = r.take(1)?[0];
            let (a, b) = (r.u64()?, r.u64()?);
            let here = r.at;
            let idx = |i: u64| if i < len as u64 { Ok(i as u32) } else { Err(bad(here)) };
            let width =
                |w: u64| if matches!(w, 1 | 2 | 4 | 8) { Ok(w as u8) } else { Err(bad(here)) };
            table.push(match tag {
                1 => Stored::Unsigned(width(a)?),
                2 => Stored::Signed(width(a)?),
                3 if matches!(a, 4 | 8) => Stored::Float(a as u8),
                4 => Stored::Str,
                5 => Stored::Bytes,
                6 => Stored::Off(idx(a)?),
                7 => Stored::Array(idx(a)?, b),
                9 => Stored::Vec(idx(a)?),
                10 => Stored::Map(idx(a)?, idx(b)?),
                11 => Stored::HashMap(idx(a)?, idx(b)?),
                12 => Stored::Opaque(a),
                8 => {
                    let sname = r.str()?;
                    let mut fields = Vec::new();
                    for _ in 0..b.min(4096) {
                        let fname = r.str()?;
                        let offset = r.u64()?;
                        let shape = r.u32()?;
                        fields.push((fname, offset, idx(shape as u64)?));
                    }
                    Stored::Struct(sname, a, fields)
                }
                _ => return Err(bad(r.at)),
            });
        }
        registry.push((name, hash, table));
    }
    Ok(registry)
}

impl<B: Backend> WriteTxn<'_, B> {
    /// Brings the shape registry up to the roots this transaction set or removed (at
    /// the commit). A registry that does not read back is rebuilt from these roots.
    pub(crate) fn flush_shapes(&mut self) -> Result<()> {
        if self.shapes.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.shapes);
        let old: Option<PBytes> = root_value(&self.roots, SHAPES_ROOT).ok().flatten();
        let found = old.map(|b| self.read_bytes(b).and_then(|bytes| decode(&bytes, b.off)));
        let mut registry = match &found {
            Some(Ok(registry)) => registry.clone(),
            _ => Registry::new(),
        };
        let mut changed = false;
        for (name, entry) in pending {
            let at = registry.iter().position(|(n, ..)| *n == name);
            match (entry, at) {
                (None, Some(i)) => {
                    registry.remove(i);
                }
                (Some((hash, _)), Some(i)) if registry[i].1 == hash => continue,
                (Some((hash, shape)), Some(i)) => registry[i] = (name, hash, table(shape)),
                (Some((hash, shape)), None) => registry.push((name, hash, table(shape))),
                (None, None) => continue,
            }
            changed = true;
        }
        if !changed {
            return Ok(());
        }
        if let (Some(b), Some(Ok(_))) = (old, &found) {
            // (A registry that did not read back is not known to be a block: left alone.)
            self.free_bytes(b)?;
        }
        let bytes = self.bytes(&encode(&registry))?;
        let value = RootValue { type_hash: PBytes::TYPE_HASH, bytes: bytes.as_bytes().to_vec() };
        self.roots.insert(SHAPES_ROOT.to_owned(), value);
        self.roots_changed = true;
        Ok(())
    }
}

/// The size in bytes of entry `i` of `table` (`None`: a cycle of arrays, or overflow).
pub fn size(table: &Table, i: u32) -> Option<u64> {
    fn go(table: &Table, i: u32, depth: u32) -> Option<u64> {
        if depth > 64 {
            return None;
        }
        Some(match table.get(i as usize)? {
            Stored::Unsigned(w) | Stored::Signed(w) | Stored::Float(w) => *w as u64,
            Stored::Str
            | Stored::Bytes
            | Stored::Vec(_)
            | Stored::Map(..)
            | Stored::HashMap(..) => 16,
            Stored::Off(_) => 8,
            Stored::Array(t, n) => go(table, *t, depth + 1)?.checked_mul(*n)?,
            Stored::Struct(_, size, _) | Stored::Opaque(size) => *size,
        })
    }
    go(table, i, 0)
}

/// The alignment in bytes that a value of entry `i` of `table` has at least (what a
/// pointer to one must be a multiple of): its fields' largest, 1 for opaque types (their
/// alignment is not stored), at most 16 (`Persist` types align to at most 16).
///
/// Each entry is visited once (a memo): fields of no bytes may repeat a type without
/// limit at one offset, and a walk of every field would multiply at each level.
pub fn align(table: &Table, i: u32) -> u64 {
    fn go(table: &Table, i: u32, depth: u32, memo: &mut HashMap<u32, u64>) -> u64 {
        if depth > 64 {
            return 1;
        }
        if let Some(&a) = memo.get(&i) {
            return a;
        }
        let a = match table.get(i as usize) {
            Some(Stored::Unsigned(w) | Stored::Signed(w) | Stored::Float(w)) => {
                u64::from(*w).clamp(1, 16)
            }
            Some(
                Stored::Str
                | Stored::Bytes
                | Stored::Vec(_)
                | Stored::Map(..)
                | Stored::HashMap(..),
            )
            | Some(Stored::Off(_)) => 8,
            Some(Stored::Array(t, _)) => go(table, *t, depth + 1, memo),
            Some(Stored::Struct(_, _, fields)) => {
                fields.iter().map(|(_, _, t)| go(table, *t, depth + 1, memo)).max().unwrap_or(1)
            }
            Some(Stored::Opaque(_)) | None => 1,
        };
        memo.insert(i, a);
        a
    }
    let a = go(table, i, 0, &mut HashMap::new());
    if a.is_power_of_two() { a } else { 1 }
}

/// A type's name as a shape spells it (`PMap<PStr, PVec<Record>>`).
pub fn name(table: &Table, i: u32) -> String {
    fn go(table: &Table, i: u32, depth: u32) -> String {
        if depth > 16 {
            return "…".into();
        }
        let n = |j: u32| go(table, j, depth + 1);
        match table.get(i as usize) {
            Some(Stored::Unsigned(w)) => format!("u{}", 8 * w),
            Some(Stored::Signed(w)) => format!("i{}", 8 * w),
            Some(Stored::Float(w)) => format!("f{}", 8 * w),
            Some(Stored::Str) => "PStr".into(),
            Some(Stored::Bytes) => "PBytes".into(),
            Some(Stored::Off(t)) => format!("Off<{}>", n(*t)),
            Some(Stored::Array(t, len)) => format!("[{}; {len}]", n(*t)),
            Some(Stored::Struct(name, ..)) => name.clone(),
            Some(Stored::Vec(t)) => format!("PVec<{}>", n(*t)),
            Some(Stored::Map(k, v)) => format!("PMap<{}, {}>", n(*k), n(*v)),
            Some(Stored::HashMap(k, v)) => format!("PHashMap<{}, {}>", n(*k), n(*v)),
            Some(Stored::Opaque(size)) => format!("({size} bytes)"),
            None => "?".into(),
        }
    }
    go(table, i, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Off, PMap, PStr, PVec};

    #[test]
    fn shapes_round_trip_and_recursive_types_end() {
        let t = table(<PMap<PStr, PVec<Off<[u64; 3]>>>>::SHAPE);
        assert_eq!(name(&t, 0), "PMap<PStr, PVec<Off<[u64; 3]>>>");
        let registry = vec![("r".to_owned(), 7, t)];
        assert_eq!(decode(&encode(&registry), 0).unwrap(), registry);
        let bytes = encode(&registry);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], 0).is_err(), "cut at {cut}");
        }
    }
}
