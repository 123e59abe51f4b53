//! Showing what a heap holds without the program's types: a root's value walked by the
//! shape stored with it (`mmf heap dump`) — structs by field, strings as text, byte
//! strings and opaque bytes as bytes, pointers followed, collections fully checked
//! ([`PMap::verify`](crate::PMap::verify) and the like) and their first entries shown.

use std::ops::Bound;

use zerocopy::FromBytes;

use crate::PBytes;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::phash::{self, HashSpec};
use crate::pmap::{self, Handle, MapSpec};
use crate::pvec::{self, VecSpec};
use crate::read::private::Source;
use crate::roots::SHAPES_ROOT;
use crate::shape::{self, Stored, Table};
use crate::snapshot::Snapshot;
use crate::txn::root_value;

mod reach;
pub use reach::Reached;

/// How much of a value [`Snapshot::dump`] shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Levels of nesting (structs, pointers, collections) shown; deeper ones are
    /// [`Value::Deeper`]. At most [`Limits::MAX_DEPTH`] (more is taken as that): pointers
    /// in a file can form a cycle, and each level is a level of recursion.
    pub depth: usize,
    /// Entries or elements shown per collection or array.
    pub items: usize,
    /// Bytes shown per string, byte string or opaque value.
    pub bytes: usize,
}

impl Limits {
    /// The deepest nesting a dump walks, whatever [`Limits::depth`] asks.
    pub const MAX_DEPTH: usize = 64;
}

impl Default for Limits {
    fn default() -> Self {
        Limits { depth: 6, items: 20, bytes: 64 }
    }
}

/// A value as [`Snapshot::dump`] shows it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// An unsigned integer.
    Unsigned(u64),
    /// A signed integer.
    Signed(i64),
    /// A floating-point number.
    Float(f64),
    /// A string: its first bytes (cut at a character) and its length in bytes.
    Str {
        /// The text shown.
        text: String,
        /// The whole length in bytes.
        len: u64,
    },
    /// Bytes: the first ones and the whole length (a byte string, a byte array key, or
    /// a value the heap has no shape for).
    Bytes {
        /// The bytes shown.
        head: Vec<u8>,
        /// The whole length.
        len: u64,
    },
    /// A pointer and what it points to (`None`: null).
    Off {
        /// The file offset.
        off: u64,
        /// The value there.
        target: Option<Box<Value>>,
    },
    /// An array: its first elements and its length.
    Array {
        /// The elements shown.
        items: Vec<Value>,
        /// The whole length.
        len: u64,
    },
    /// A struct's fields.
    Struct {
        /// The type's name.
        name: String,
        /// Field names and values.
        fields: Vec<(String, Value)>,
    },
    /// A vector's first elements and its length.
    Vec {
        /// The elements shown.
        items: Vec<Value>,
        /// The whole length.
        len: u64,
    },
    /// A map's first entries (in key order, or hash order for a hash map) and its length.
    Map {
        /// The entries shown.
        entries: Vec<(Value, Value)>,
        /// The whole length.
        len: u64,
        /// Whether it is a [`PHashMap`](crate::PHashMap).
        hashed: bool,
    },
    /// Nesting deeper than [`Limits::depth`].
    Deeper,
}

/// A named root as [`Snapshot::dump`] shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RootDump {
    /// The root's name.
    pub name: String,
    /// Its type as its shape spells it (`PMap<PStr, PVec<Record>>`), or its size when
    /// the heap has no shape for it.
    pub type_name: String,
    /// Its value.
    pub value: Value,
}

struct Walker<'a> {
    r: &'a dyn Source,
    table: &'a Table,
    limits: Limits,
}

fn bad_shape() -> Error {
    Error::corrupted("shape registry", 0)
}

impl<'a> Walker<'a> {
    /// The bytes the string or byte-string handle `field` points to (`text`: a string's,
    /// as the error names it); a bad pointer is damage where it is stored
    /// ([`stored_pointer`]).
    ///
    /// [`stored_pointer`]: crate::read::stored_pointer
    fn string(&self, field: &[u8], text: bool) -> Result<&'a [u8]> {
        let b = PBytes::read_from_bytes(field.get(..16).ok_or_else(bad_shape)?)
            .map_err(|_| bad_shape())?;
        let what = if text {
            ["pointer to a string", "pointer to a string in freed space"]
        } else {
            ["pointer to a byte string", "pointer to a byte string in freed space"]
        };
        crate::read::bytes_ref(self.r, b)
            .map_err(|e| crate::read::stored_pointer(self.r, field, what, b.off, e))
    }

    /// The text of the string handle `field`: [`string`](Self::string), then UTF-8.
    fn str_at(&self, field: &[u8]) -> Result<&'a str> {
        let bytes = self.string(field, true)?;
        std::str::from_utf8(bytes).map_err(|_| {
            // The handle `string` read: the text's offset.
            let handle = field.get(..16).and_then(|f| PBytes::read_from_bytes(f).ok());
            let off = handle.map_or(0, |b| b.off);
            Error::corrupted("string", off)
        })
    }

    /// The bytes of the object of type `t` the pointer `field` holds (`None`: null); a
    /// bad pointer is damage where it is stored.
    fn object(&self, field: &[u8], t: u32) -> Result<Option<&'a [u8]>> {
        let off = u64::from_le_bytes(
            field.get(..8).ok_or_else(bad_shape)?.try_into().map_err(|_| bad_shape())?,
        );
        if off == 0 {
            return Ok(None);
        }
        let size = self.size(t)?;
        let align = crate::shape::align(self.table, t);
        let what = ["object pointer", "object pointer into freed space"];
        self.r
            .block(off, size, align, "object pointer")
            .and_then(|at| crate::read::not_freed(self.r, off, size as u64).map(|()| Some(at)))
            .map_err(|e| crate::read::stored_pointer(self.r, field, what, off, e))
    }

    /// An error checking the collection whose handle is stored in `handle`: a node in
    /// space the commit holds free (`InvalidArgument` from `node::read`, which a stale
    /// handle passed by a program gets) is damage of the collection, named where its
    /// handle is stored; other errors already name the node that failed.
    fn collection_err(&self, handle: &[u8], e: Error) -> Error {
        match (e, self.r.offset_of(handle)) {
            (Error::InvalidArgument { .. }, Some(at)) => {
                Error::corrupted("collection handle reaching freed space", at)
            }
            (e, _) => e,
        }
    }

    /// A type's size from the shape registry, which is data a peer may have written: at
    /// most 4 GiB, so that the layouts computed from it (`4 × width + header`) and the
    /// ranges (`at + size`) cannot overflow; a bigger one is a bad shape.
    fn size(&self, i: u32) -> Result<usize> {
        shape::size(self.table, i)
            .filter(|&n| n <= u64::from(u32::MAX))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(bad_shape)
    }

    fn entry(&self, i: u32) -> Result<&Stored> {
        self.table.get(i as usize).ok_or_else(bad_shape)
    }

    fn value(&self, i: u32, bytes: &[u8], depth: usize) -> Result<Value> {
        let word = |w: usize| -> Result<u64> {
            let mut buf = [0u8; 8];
            buf[..w].copy_from_slice(bytes.get(..w).ok_or_else(bad_shape)?);
            Ok(u64::from_le_bytes(buf))
        };
        let handle = || {
            Handle::read_from_bytes(bytes.get(..16).ok_or_else(bad_shape)?).map_err(|_| bad_shape())
        };
        Ok(match self.entry(i)? {
            Stored::Unsigned(w) => Value::Unsigned(word(*w as usize)?),
            Stored::Signed(w) => {
                let shift = 64 - 8 * *w as u32;
                Value::Signed(((word(*w as usize)? << shift) as i64) >> shift)
            }
            Stored::Float(4) => Value::Float(f32::from_bits(word(4)? as u32) as f64),
            Stored::Float(_) => Value::Float(f64::from_bits(word(8)?)),
            Stored::Str => self.text(self.str_at(bytes)?),
            Stored::Bytes => self.bytes(self.string(bytes, false)?),
            Stored::Opaque(_) => self.bytes(bytes),
            _ if depth == 0 => Value::Deeper,
            Stored::Off(t) => {
                let off = word(8)?;
                let target = match self.object(bytes, *t)? {
                    None => None,
                    Some(at) => Some(Box::new(self.value(*t, at, depth - 1)?)),
                };
                Value::Off { off, target }
            }
            Stored::Array(t, n) => {
                let w = self.size(*t)?;
                // Elements of no bytes have nothing to show (and nested, such arrays
                // would multiply the items shown at each level).
                let shown = if w == 0 { 0 } else { (*n).min(self.limits.items as u64) };
                let items = (0..shown as usize)
                    .map(|j| {
                        self.value(
                            *t,
                            bytes.get(j * w..(j + 1) * w).ok_or_else(bad_shape)?,
                            depth - 1,
                        )
                    })
                    .collect::<Result<_>>()?;
                Value::Array { items, len: *n }
            }
            Stored::Struct(name, size, fields) => {
                self.layout(*size, fields)?;
                if *size == 0 {
                    // Nothing to show below its name; and fields of no bytes may be any
                    // number at one offset: followed, they multiply at each level.
                    return Ok(Value::Struct { name: name.clone(), fields: Vec::new() });
                }
                let fields = fields
                    .iter()
                    .map(|(fname, at, t)| {
                        let at = *at as usize;
                        let end = at.checked_add(self.size(*t)?).ok_or_else(bad_shape)?;
                        let field = bytes.get(at..end).ok_or_else(bad_shape)?;
                        Ok((fname.clone(), self.value(*t, field, depth - 1)?))
                    })
                    .collect::<Result<_>>()?;
                Value::Struct { name: name.clone(), fields }
            }
            Stored::Vec(t) => {
                let (h, spec) = (handle()?, VecSpec::new(self.size(*t)?));
                spec.verify(self.r, h).map_err(|e| self.collection_err(bytes, e))?;
                let items = pvec::RawIter::new(self.r, spec, h)
                    .take(self.limits.items)
                    .map(|e| self.value(*t, e?.0, depth - 1))
                    .collect::<Result<_>>()?;
                Value::Vec { items, len: h.len }
            }
            Stored::Map(k, v) => {
                let h = handle()?;
                let spec = MapSpec::new(self.key_width(*k)?, self.size(*v)?, self.key_check(*k));
                spec.verify(self.r, h).map_err(|e| self.collection_err(bytes, e))?;
                let entries =
                    pmap::RawIter::new(self.r, spec, h, Bound::Unbounded, Bound::Unbounded)
                        .take(self.limits.items)
                        .map(|e| self.entry_of(e?, *k, *v, depth))
                        .collect::<Result<_>>()?;
                Value::Map { entries, len: h.len, hashed: false }
            }
            Stored::HashMap(k, v) => {
                let h = handle()?;
                let spec = HashSpec::new(self.key_width(*k)?, self.size(*v)?, self.key_check(*k));
                spec.verify(self.r, h).map_err(|e| self.collection_err(bytes, e))?;
                let entries = phash::RawIter::new(self.r, spec, h)
                    .take(self.limits.items)
                    .map(|e| self.entry_of(e?, *k, *v, depth))
                    .collect::<Result<_>>()?;
                Value::Map { entries, len: h.len, hashed: true }
            }
        })
    }

    fn entry_of(
        &self,
        (key, val, _): crate::entries::RawEntry<'_>,
        k: u32,
        v: u32,
        depth: usize,
    ) -> Result<(Value, Value)> {
        Ok((self.key(k, key)?, self.value(v, val, depth - 1)?))
    }

    fn text(&self, s: &str) -> Value {
        let mut end = s.len().min(self.limits.bytes);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Value::Str { text: s[..end].to_owned(), len: s.len() as u64 }
    }

    fn bytes(&self, b: &[u8]) -> Value {
        Value::Bytes { head: b[..b.len().min(self.limits.bytes)].to_vec(), len: b.len() as u64 }
    }

    /// A key's encoded width in a node (0: variable), by its shape.
    fn key_width(&self, k: u32) -> Result<usize> {
        match self.entry(k)? {
            Stored::Unsigned(w) | Stored::Signed(w) => Ok(*w as usize),
            Stored::Str | Stored::Bytes => Ok(0),
            Stored::Array(t, n) if matches!(self.entry(*t)?, Stored::Unsigned(1)) => {
                usize::try_from(*n).map_err(|_| bad_shape())
            }
            _ => Err(bad_shape()),
        }
    }

    fn key_check(&self, k: u32) -> fn(&[u8]) -> bool {
        match self.entry(k) {
            Ok(Stored::Str) => |k| std::str::from_utf8(k).is_ok(),
            _ => |_| true,
        }
    }

    /// A key from its bytes in a node (big-endian integers, signed ones flipped).
    fn key(&self, k: u32, b: &[u8]) -> Result<Value> {
        let be = || {
            let mut buf = [0u8; 8];
            buf[8 - b.len().min(8)..].copy_from_slice(&b[..b.len().min(8)]);
            u64::from_be_bytes(buf)
        };
        Ok(match self.entry(k)? {
            Stored::Unsigned(_) => Value::Unsigned(be()),
            Stored::Signed(w) => {
                let bits = 8 * *w as u32;
                let flipped = be() ^ (1 << (bits - 1));
                Value::Signed(((flipped << (64 - bits)) as i64) >> (64 - bits))
            }
            Stored::Str => self.text(std::str::from_utf8(b).map_err(|_| bad_shape())?),
            _ => self.bytes(b),
        })
    }
}

impl<B: Backend> Snapshot<'_, B> {
    /// The root `name` walked by the shape the heap stored with it (`mmf heap dump`):
    /// structs by field, strings as text, pointers followed, collections checked in full
    /// ([`PMap::verify`](crate::PMap::verify) and the like) and their first entries
    /// shown, within `limits`. A root whose type has no shape is shown as bytes.
    ///
    /// ```
    /// use mmf_heap::dump::{Limits, Value};
    /// use mmf_heap::{Heap, MemoryBackend, PMap};
    ///
    /// let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
    /// let mut tx = heap.write()?;
    /// let mut m: PMap<u32, i16> = PMap::new();
    /// m.insert(&mut tx, &7, &-1)?;
    /// tx.set_root("m", &m)?;
    /// tx.commit()?;
    /// let dump = heap.read()?.dump("m", Limits::default())?.unwrap();
    /// assert_eq!(dump.type_name, "PMap<u32, i16>");
    /// let Value::Map { entries, .. } = dump.value else { unreachable!() };
    /// assert_eq!(entries, [(Value::Unsigned(7), Value::Signed(-1))]);
    /// # Ok::<(), mmf_heap::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupted`] naming the first structure that fails its check (a node, a
    /// string, the shape registry; a bad pointer or handle where it is stored).
    pub fn dump(&self, name: &str, limits: Limits) -> Result<Option<RootDump>> {
        let Some(root) = self.commit.roots.get(name) else { return Ok(None) };
        let table =
            match self.shapes()?.into_iter().find(|(n, h, _)| n == name && *h == root.type_hash) {
                Some((_, _, table)) => table,
                None => vec![Stored::Opaque(root.bytes.len() as u64)],
            };
        if shape::size(&table, 0) != Some(root.bytes.len() as u64) {
            return Err(bad_shape());
        }
        let walker = Walker { r: self as &dyn Source, table: &table, limits };
        let value = walker.value(0, &root.bytes, limits.depth.min(Limits::MAX_DEPTH))?;
        Ok(Some(RootDump { name: name.to_owned(), type_name: shape::name(&table, 0), value }))
    }

    /// The type of root `name` as its stored shape spells it, if the heap has one.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if the shape registry does not read back.
    pub fn type_name(&self, name: &str) -> Result<Option<String>> {
        let Some(root) = self.commit.roots.get(name) else { return Ok(None) };
        Ok(self
            .shapes()?
            .into_iter()
            .find(|(n, h, _)| n == name && *h == root.type_hash)
            .map(|(_, _, table)| shape::name(&table, 0)))
    }

    fn shapes(&self) -> Result<shape::Registry> {
        match root_value::<PBytes>(&self.commit.roots, SHAPES_ROOT)? {
            Some(b) => shape::decode(crate::read::bytes_ref(self, b)?, b.off),
            None => Ok(Vec::new()),
        }
    }
}
