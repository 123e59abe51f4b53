//! [`Key`]: the types that key a [`PMap`](crate::PMap) or a
//! [`PHashMap`](crate::PHashMap), and how they are kept in a node — as bytes whose order
//! is the key's order (integers big-endian, signed ones with the sign bit flipped;
//! strings and byte strings as they are), so that every map compares keys by content.

use crate::persist::{PBytes, PStr, Persist};

/// The longest key in bytes (a [`PStr`] or [`PBytes`] key; LMDB's default limit).
pub const MAX_KEY: usize = 511;

/// A type that can key a [`PMap`](crate::PMap) or [`PHashMap`](crate::PHashMap): the
/// unsigned and signed integers, byte arrays `[u8; N]`, and [`PStr`] / [`PBytes`], whose
/// keys are compared by content and kept in the map's nodes (looked up as `&str` /
/// `&[u8]`). Sealed.
pub trait Key: Persist + sealed::Sealed {
    /// What a lookup takes: the integer, `str` for [`PStr`], `[u8]` for [`PBytes`].
    type Query: ?Sized;
    /// What iteration yields: the integer, `&str`, `&[u8]`.
    type Ref<'a>;
    #[doc(hidden)]
    /// The encoded length of every key (0: it varies).
    const WIDTH: usize;
    #[doc(hidden)]
    /// The key's bytes, in the key's order.
    fn encode<'q>(q: &'q Self::Query, buf: &'q mut [u8; 8]) -> &'q [u8];
    #[doc(hidden)]
    /// The key back from its bytes (`None`: not a valid key of this type).
    fn decode(bytes: &[u8]) -> Option<Self::Ref<'_>>;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Key for $t {
            type Query = $t;
            type Ref<'a> = $t;
            const WIDTH: usize = size_of::<$t>();
            #[inline]
            fn encode<'q>(q: &'q $t, buf: &'q mut [u8; 8]) -> &'q [u8] {
                buf[..size_of::<$t>()].copy_from_slice(&q.to_be_bytes());
                &buf[..size_of::<$t>()]
            }
            #[inline]
            fn decode(bytes: &[u8]) -> Option<$t> {
                bytes.try_into().ok().map(<$t>::from_be_bytes)
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64);

macro_rules! signed {
    ($($t:ty => $u:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Key for $t {
            type Query = $t;
            type Ref<'a> = $t;
            const WIDTH: usize = size_of::<$t>();
            #[inline]
            fn encode<'q>(q: &'q $t, buf: &'q mut [u8; 8]) -> &'q [u8] {
                let flipped = (*q as $u) ^ (1 << (<$u>::BITS - 1));
                buf[..size_of::<$t>()].copy_from_slice(&flipped.to_be_bytes());
                &buf[..size_of::<$t>()]
            }
            #[inline]
            fn decode(bytes: &[u8]) -> Option<$t> {
                let u = bytes.try_into().ok().map(<$u>::from_be_bytes)?;
                Some((u ^ (1 << (<$u>::BITS - 1))) as $t)
            }
        }
    )*};
}
signed!(i8 => u8, i16 => u16, i32 => u32, i64 => u64);

impl<const N: usize> sealed::Sealed for [u8; N] {}
impl<const N: usize> Key for [u8; N] {
    type Query = [u8; N];
    type Ref<'a> = [u8; N];
    const WIDTH: usize = N;
    fn encode<'q>(q: &'q [u8; N], _: &'q mut [u8; 8]) -> &'q [u8] {
        q
    }
    fn decode(bytes: &[u8]) -> Option<[u8; N]> {
        bytes.try_into().ok()
    }
}

impl sealed::Sealed for PStr {}
impl Key for PStr {
    type Query = str;
    type Ref<'a> = &'a str;
    const WIDTH: usize = 0;
    fn encode<'q>(q: &'q str, _: &'q mut [u8; 8]) -> &'q [u8] {
        q.as_bytes()
    }
    fn decode(bytes: &[u8]) -> Option<&str> {
        std::str::from_utf8(bytes).ok()
    }
}

impl sealed::Sealed for PBytes {}
impl Key for PBytes {
    type Query = [u8];
    type Ref<'a> = &'a [u8];
    const WIDTH: usize = 0;
    fn encode<'q>(q: &'q [u8], _: &'q mut [u8; 8]) -> &'q [u8] {
        q
    }
    fn decode(bytes: &[u8]) -> Option<&[u8]> {
        Some(bytes)
    }
}

/// The first 8 bytes of a key, zero-padded, as a big-endian number: keys compare as their
/// prefixes do, then (equal prefixes) by their remaining bytes and length.
#[inline]
pub(crate) fn prefix(key: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = key.len().min(8);
    buf[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<K: Key>(q: &K::Query) -> Vec<u8> {
        K::encode(q, &mut [0; 8]).to_vec()
    }

    #[test]
    fn encodings_keep_the_order_and_round_trip() {
        let ints = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in ints.windows(2) {
            assert!(enc::<i64>(&w[0]) < enc::<i64>(&w[1]), "{w:?}");
        }
        for i in ints {
            assert_eq!(i64::decode(&enc::<i64>(&i)), Some(i));
        }
        assert!(enc::<u32>(&255) < enc::<u32>(&256));
        assert_eq!(i8::decode(&enc::<i8>(&-128)), Some(-128));
        assert!(prefix(b"a") < prefix(b"b") && prefix(b"a") == prefix(b"a\0"));
        assert_eq!(PStr::decode(b"\xff"), None);
    }
}
