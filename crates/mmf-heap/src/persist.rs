//! What may live in a heap: [`Persist`] types (plain bytes with a layout proof from
//! zerocopy and a type hash), base-relative pointers [`Off<T>`], and blobs ([`PBytes`],
//! [`PStr`]).

use std::fmt;
use std::marker::PhantomData;

use xxhash_rust::const_xxh3::xxh3_64_with_seed;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::shape::{Shape, shape_of};

/// A type whose values can be stored in a heap file and read back from its bytes.
///
/// The supertraits are zerocopy's proofs: every bit pattern is a valid value
/// ([`FromBytes`]), the value has no padding ([`IntoBytes`]) and no interior mutability
/// ([`Immutable`]). Together they make reading any bytes of the file as `T` sound — a
/// corrupted value is a wrong value, never undefined behaviour. `TYPE_HASH` identifies
/// the type and its layout: a named root remembers it, and reading a root as another type
/// is [`Error::TypeMismatch`](crate::Error::TypeMismatch).
///
/// Implement it for your `#[repr(C)]` structs with `#[derive(Persist)]`
/// ([`derive@crate::Persist`]), next to zerocopy's derives; it computes the hash from the
/// type's name, size and fields and refuses at compile time what cannot be stored (enums,
/// unions, no `#[repr(C)]`, alignment above 16 bytes, borrowed fields).
/// [`persist!`](crate::persist!) does the same without a derive and gives the same hash.
///
/// ```
/// use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
/// use mmf_heap::{Off, PStr, Persist};
///
/// #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
/// #[zerocopy(crate = "mmf_heap::zerocopy")]
/// #[repr(C)]
/// struct Node {
///     value: u64,
///     label: PStr,
///     next: Off<Node>, // a recursive type: Off hashes its target by NAME_HASH
/// }
///
/// assert_ne!(Node::TYPE_HASH, Node::NAME_HASH);
/// ```
pub trait Persist: FromBytes + IntoBytes + Immutable + KnownLayout + Copy + 'static {
    /// A hash of the type's name and layout (xxh3-64), fields included.
    const TYPE_HASH: u64;
    /// A hash of the type's name, size and declared fields that does not follow
    /// pointers: what [`Off<T>`] hashes its target by, so that recursive types (a node
    /// with an `Off<Node>`) have a hash. Defaults to `TYPE_HASH`.
    const NAME_HASH: u64 = Self::TYPE_HASH;
    /// How the type is laid out, for tools that show a heap without the program's types
    /// (`mmf heap dump`). Defaults to opaque bytes; [`persist!`](crate::persist!) lists
    /// the fields.
    const SHAPE: &'static Shape = &Shape::Opaque(size_of::<Self>());
}

/// The type hash of a type described by `text` (its name and fields, as
/// [`derive(Persist)`](derive@crate::Persist) and [`persist!`](crate::persist!) spell
/// them) of `size` bytes with the given field hashes, at compile time. ASCII whitespace
/// in `text` is ignored: how the source spaces a type (`[u8; 4]`, `Off < T >`) or how a
/// compiler version prints it does not change a hash stored in a file.
/// `docs/heap-format.md` ("Type hashes") defines it.
pub const fn type_hash(text: &str, size: usize, fields: &[u64]) -> u64 {
    let mut h = text_hash(text.as_bytes(), size as u64);
    let mut i = 0;
    while i < fields.len() {
        h = xxh3_64_with_seed(&fields[i].to_le_bytes(), h);
        i += 1;
    }
    h
}

/// xxh3-64 of `text` without its ASCII whitespace, seeded with `seed`; text longer than
/// [`TEXT_CHUNK`] bytes (without whitespace) is hashed a chunk at a time, each chunk
/// seeded with the hash of the ones before.
const fn text_hash(text: &[u8], seed: u64) -> u64 {
    let mut buf = [0u8; TEXT_CHUNK];
    let (mut n, mut i, mut h) = (0, 0, seed);
    while i < text.len() {
        if !matches!(text[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0c) {
            if n == TEXT_CHUNK {
                h = xxh3_64_with_seed(&buf, h);
                n = 0;
            }
            buf[n] = text[i];
            n += 1;
        }
        i += 1;
    }
    xxh3_64_with_seed(buf.split_at(n).0, h)
}

/// The chunk of [`text_hash`].
const TEXT_CHUNK: usize = 1024;

macro_rules! primitive {
    ($($t:ty => $shape:ident),*) => {$(
        impl Persist for $t {
            const TYPE_HASH: u64 = type_hash(stringify!($t), size_of::<$t>(), &[]);
            const SHAPE: &'static Shape = &Shape::$shape(size_of::<$t>() as u8);
        }
    )*};
}
primitive!(u8 => Unsigned, u16 => Unsigned, u32 => Unsigned, u64 => Unsigned, i8 => Signed,
    i16 => Signed, i32 => Signed, i64 => Signed, f32 => Float, f64 => Float);

impl<T: Persist, const N: usize> Persist for [T; N] {
    const TYPE_HASH: u64 = type_hash("[T; N]", N, &[T::TYPE_HASH]);
    const SHAPE: &'static Shape = &Shape::Array(shape_of::<T>, N);
}

/// A base-relative pointer to a `T` in the heap: the byte offset of the value in the file
/// (0 is null — offset 0 is the superblock). Copying or moving the object that holds it
/// never invalidates it; reading through it is bounds- and alignment-checked.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct Off<T> {
    raw: u64,
    _type: PhantomData<T>,
}

impl<T> Off<T> {
    /// The null pointer.
    pub const NULL: Self = Off { raw: 0, _type: PhantomData };

    /// A pointer to byte offset `raw` of the file.
    pub const fn from_raw(raw: u64) -> Self {
        Off { raw, _type: PhantomData }
    }

    /// The byte offset in the file.
    pub const fn raw(self) -> u64 {
        self.raw
    }

    /// Whether this is [`Off::NULL`].
    pub const fn is_null(self) -> bool {
        self.raw == 0
    }
}

impl<T> Clone for Off<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Off<T> {}
impl<T> PartialEq for Off<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<T> Eq for Off<T> {}
impl<T> fmt::Debug for Off<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Off({:#x})", self.raw)
    }
}
impl<T> Default for Off<T> {
    fn default() -> Self {
        Self::NULL
    }
}

impl<T: Persist> Persist for Off<T> {
    const TYPE_HASH: u64 = type_hash("Off<T>", 8, &[T::NAME_HASH]);
    const SHAPE: &'static Shape = &Shape::Off(shape_of::<T>);
}

/// An immutable byte string in the heap: offset and length. Read it with
/// [`Snapshot::bytes`](crate::Snapshot::bytes); make one with
/// [`WriteTxn::bytes`](crate::WriteTxn::bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PBytes {
    pub(crate) off: u64,
    pub(crate) len: u64,
}

impl PBytes {
    /// The empty byte string (no block).
    pub const EMPTY: PBytes = PBytes { off: 0, len: 0 };

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Persist for PBytes {
    const TYPE_HASH: u64 = type_hash("PBytes", 16, &[]);
    const SHAPE: &'static Shape = &Shape::Bytes;
}

/// An immutable UTF-8 string in the heap (checked when made and when read): [`PBytes`]
/// that are text.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(transparent)]
pub struct PStr {
    pub(crate) bytes: PBytes,
}

impl PStr {
    /// The empty string.
    pub const EMPTY: PStr = PStr { bytes: PBytes::EMPTY };

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.bytes.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.len == 0
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> PBytes {
        self.bytes
    }
}

impl Persist for PStr {
    const TYPE_HASH: u64 = type_hash("PStr", 16, &[]);
    const SHAPE: &'static Shape = &Shape::Str;
}

/// Implements [`Persist`] for a `#[repr(C)]` struct that derives zerocopy's `FromBytes`,
/// `IntoBytes`, `Immutable` and `KnownLayout` (and `Clone`, `Copy`), listing its fields:
/// the type hash covers the name, the size and each field's name and type hash, and the
/// field list is checked against the struct at compile time (a missing, extra or
/// retyped field does not compile). The same hash as `#[derive(Persist)]`
/// ([`derive@crate::Persist`]), which is shorter and checks more (alignment, `repr`).
///
/// ```
/// use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
/// use mmf_heap::{Off, PStr, Persist};
///
/// #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
/// #[zerocopy(crate = "mmf_heap::zerocopy")]
/// #[repr(C)]
/// struct Account {
///     id: u64,
///     balance: i64,
///     name: PStr,
///     next: Off<Account>,
/// }
/// mmf_heap::persist!(Account { id: u64, balance: i64, name: PStr, next: Off<Account> });
///
/// assert_ne!(Account::TYPE_HASH, u64::TYPE_HASH);
/// ```
#[macro_export]
macro_rules! persist {
    ($name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        impl $crate::Persist for $name {
            const TYPE_HASH: u64 = $crate::persist::type_hash(
                concat!(stringify!($name), "{", $(stringify!($field), ":", stringify!($ty), ",",)* "}"),
                ::core::mem::size_of::<$name>(),
                &[$(<$ty as $crate::Persist>::TYPE_HASH),*],
            );
            const NAME_HASH: u64 = $crate::persist::type_hash(
                concat!(stringify!($name), "{", $(stringify!($field), ":", stringify!($ty), ",",)* "}"),
                ::core::mem::size_of::<$name>(),
                &[],
            );
            const SHAPE: &'static $crate::Shape = &$crate::Shape::Struct {
                name: stringify!($name),
                size: ::core::mem::size_of::<$name>(),
                fields: &[$($crate::shape::Field {
                    name: stringify!($field),
                    offset: ::core::mem::offset_of!($name, $field),
                    shape: $crate::shape::shape_of::<$ty>,
                }),*],
            };
        }
        const _: () = {
            // The field list must be exactly the struct's: this pattern is exhaustive.
            #[allow(dead_code, unused_variables)]
            fn fields_match(v: &$name) {
                let $name { $($field),* } = v;
                $(let _: &$ty = $field;)*
            }
        };
    };
}
