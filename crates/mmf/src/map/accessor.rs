//! Typed accessors: plain-old-data values and slices read and written at an offset of a
//! view by copy (.NET's `MemoryMappedViewAccessor.Read<T>` / `Write<T>`, Java's
//! `MappedByteBuffer.getInt` / `putLong`), on zerocopy's layout proofs, and numbers in an
//! explicit byte order.
//!
//! Every access is a guarded copy ([`View::read_at`], [`ViewMut::write_at`]), so a value
//! never aliases memory a peer may change, and a fault is an error.

use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::{View, ViewMut};
use crate::error::{Error, Result};

#[cfg(doc)]
use crate::Mapping;

impl View {
    /// Bounds first ([`Error::OutOfRange`], [`Error::Overflow`]), then [`Error::Misaligned`]
    /// unless the `len` bytes at the view's byte `offset` start at a multiple of `align`
    /// in memory (and so in the mapping: a view keeps its offset's alignment up to the
    /// allocation granularity). Nothing empty is misaligned.
    fn check_align(&self, offset: usize, len: usize, align: usize) -> Result<()> {
        let at = self.at(offset, len)?;
        if len != 0 && (at as usize) % align != 0 {
            return Err(Error::Misaligned { offset, align });
        }
        Ok(())
    }

    /// Reads the `T` at the view's byte `offset`, by copy (.NET's `Read<T>`).
    ///
    /// `T` is any type every bit pattern of which is valid ([`zerocopy::FromBytes`]:
    /// integers, floats, arrays, `#[repr(C)]` structs of them deriving it). The offset must
    /// be aligned for `T`; fields a format does not align are read with align-1 types
    /// (`[u8; N]`, [`zerocopy::byteorder::U32`] and friends) or [`read_le`](Self::read_le)
    /// / [`read_be`](Self::read_be). The value is in the machine's byte order.
    ///
    /// ```
    /// use mmf::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    ///
    /// #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Debug, PartialEq)]
    /// #[repr(C)]
    /// struct Entry {
    ///     key: u64,
    ///     value: [u32; 2],
    /// }
    ///
    /// let mapping = mmf::Mapping::anonymous(4096)?;
    /// let view = mapping.view_mut(..)?;
    /// view.write(64, &Entry { key: 7, value: [1, 2] })?;
    /// assert_eq!(view.read::<Entry>(64)?, Entry { key: 7, value: [1, 2] });
    /// assert_eq!(view.read::<u64>(64)?, 7);
    /// assert!(view.read::<u64>(65).is_err()); // misaligned
    /// assert!(view.read::<u64>(4092).is_err()); // past the end
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Misaligned`] if `offset` is not aligned for `T`; [`Error::OutOfRange`] or
    /// [`Error::Overflow`] if `T` does not fit at `offset`; the fault errors of
    /// [`read_at`](Self::read_at) ([`Error::Truncated`], [`Error::InPageError`]).
    ///
    /// # References
    /// [`MemoryMappedViewAccessor.Read<T>`](https://learn.microsoft.com/en-us/dotnet/api/system.io.unmanagedmemoryaccessor.read),
    /// [`zerocopy::FromBytes`]
    #[doc(alias = "Read")]
    #[doc(alias = "getInt")]
    pub fn read<T: FromBytes>(&self, offset: usize) -> Result<T> {
        self.check_align(offset, size_of::<T>(), align_of::<T>())?;
        self.read_unaligned(offset)
    }

    /// Reads a `T` at any offset, aligned or not: [`read`](Self::read) without the
    /// alignment check, for packed formats (the copy needs no alignment).
    ///
    /// # Errors
    /// As [`read`](Self::read), without [`Error::Misaligned`].
    pub fn read_unaligned<T: FromBytes>(&self, offset: usize) -> Result<T> {
        let mut value = std::mem::MaybeUninit::<T>::zeroed();
        // SAFETY: the MaybeUninit is size_of::<T>() bytes, all initialized (zeroed), and
        // borrowed mutably for the copy alone.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(value.as_mut_ptr().cast::<u8>(), size_of::<T>())
        };
        self.read_at(offset, bytes)?;
        // SAFETY: every byte was initialized above and then overwritten by the copy;
        // T: FromBytes makes every bit pattern a valid T.
        Ok(unsafe { value.assume_init() })
    }

    /// Reads `out.len()` values of `T` starting at the view's byte `offset` (aligned for
    /// `T`), in one copy.
    ///
    /// ```
    /// let mapping = mmf::Mapping::anonymous(4096)?;
    /// let view = mapping.view_mut(..)?;
    /// view.write_slice(8, &[1.5f64, -2.0, 3.25])?;
    /// let mut out = [0f64; 3];
    /// view.read_slice(8, &mut out)?;
    /// assert_eq!(out, [1.5, -2.0, 3.25]);
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`read`](Self::read), for the whole slice.
    #[doc(alias = "ReadArray")]
    pub fn read_slice<T: FromBytes + IntoBytes>(&self, offset: usize, out: &mut [T]) -> Result<()> {
        self.check_align(offset, size_of_val(out), align_of::<T>())?;
        self.read_at(offset, out.as_mut_bytes())
    }

    /// Reads the number at the view's byte `offset` stored little-endian, at any offset
    /// (Java's `getInt` after `order(LITTLE_ENDIAN)`; the byte order of mmf's own formats).
    ///
    /// ```
    /// let mapping = mmf::Mapping::anonymous(4096)?;
    /// let view = mapping.view_mut(..)?;
    /// view.write_at(3, &[0x78, 0x56, 0x34, 0x12])?;
    /// assert_eq!(view.read_le::<u32>(3)?, 0x1234_5678);
    /// assert_eq!(view.read_be::<u32>(3)?, 0x7856_3412);
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Overflow`], and the fault errors of
    /// [`read_at`](Self::read_at).
    pub fn read_le<T: Number>(&self, offset: usize) -> Result<T> {
        let mut bytes = T::Bytes::default();
        self.read_at(offset, bytes.as_mut())?;
        Ok(T::from_le(bytes))
    }

    /// Reads the number at the view's byte `offset` stored big-endian (network order), at
    /// any offset (Java's `getInt`, whose default order this is).
    ///
    /// # Errors
    /// As [`read_le`](Self::read_le).
    pub fn read_be<T: Number>(&self, offset: usize) -> Result<T> {
        let mut bytes = T::Bytes::default();
        self.read_at(offset, bytes.as_mut())?;
        Ok(T::from_be(bytes))
    }
}

impl ViewMut {
    /// Writes `value` at the view's byte `offset` (aligned for `T`), by copy (.NET's
    /// `Write<T>`); machine byte order. See [`View::read`] for an example.
    ///
    /// `T` is any type without padding or interior mutability ([`zerocopy::IntoBytes`] +
    /// [`zerocopy::Immutable`]).
    ///
    /// # Errors
    /// [`Error::Misaligned`], [`Error::OutOfRange`], [`Error::Overflow`], and the errors of
    /// [`write_at`](Self::write_at) ([`Error::Truncated`], [`Error::StorageFull`]); nothing
    /// is written when the offset is refused.
    ///
    /// # References
    /// [`MemoryMappedViewAccessor.Write<T>`](https://learn.microsoft.com/en-us/dotnet/api/system.io.unmanagedmemoryaccessor.write),
    /// [`zerocopy::IntoBytes`]
    #[doc(alias = "Write")]
    #[doc(alias = "putLong")]
    pub fn write<T: IntoBytes + Immutable>(&self, offset: usize, value: &T) -> Result<()> {
        self.check_align(offset, size_of::<T>(), align_of::<T>())?;
        self.write_at(offset, value.as_bytes())
    }

    /// Writes `value` at any offset, aligned or not: [`write`](Self::write) without the
    /// alignment check.
    ///
    /// # Errors
    /// As [`write`](Self::write), without [`Error::Misaligned`].
    pub fn write_unaligned<T: IntoBytes + Immutable>(
        &self,
        offset: usize,
        value: &T,
    ) -> Result<()> {
        self.write_at(offset, value.as_bytes())
    }

    /// Writes the values of `values` one after another from the view's byte `offset`
    /// (aligned for `T`), in one copy. See [`View::read_slice`].
    ///
    /// # Errors
    /// As [`write`](Self::write), for the whole slice.
    #[doc(alias = "WriteArray")]
    pub fn write_slice<T: IntoBytes + Immutable>(&self, offset: usize, values: &[T]) -> Result<()> {
        self.check_align(offset, size_of_val(values), align_of::<T>())?;
        self.write_at(offset, values.as_bytes())
    }

    /// Writes `value` little-endian at any offset. See [`View::read_le`].
    ///
    /// # Errors
    /// As [`write_at`](Self::write_at).
    pub fn write_le<T: Number>(&self, offset: usize, value: T) -> Result<()> {
        self.write_at(offset, value.to_le().as_ref())
    }

    /// Writes `value` big-endian (network order) at any offset (Java's `putLong`).
    ///
    /// # Errors
    /// As [`write_at`](Self::write_at).
    pub fn write_be<T: Number>(&self, offset: usize, value: T) -> Result<()> {
        self.write_at(offset, value.to_be().as_ref())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A primitive number that [`View::read_le`] and friends read and write in an explicit
/// byte order: `u8`–`u128`, `i8`–`i128`, `f32`, `f64` (not `usize`/`isize`, whose size
/// depends on the machine). Sealed.
pub trait Number: sealed::Sealed + Copy {
    /// The number's bytes, `[u8; size_of::<Self>()]`.
    type Bytes: Default + AsRef<[u8]> + AsMut<[u8]>;
    /// `from_le_bytes`.
    fn from_le(bytes: Self::Bytes) -> Self;
    /// `from_be_bytes`.
    fn from_be(bytes: Self::Bytes) -> Self;
    /// `to_le_bytes`.
    fn to_le(self) -> Self::Bytes;
    /// `to_be_bytes`.
    fn to_be(self) -> Self::Bytes;
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Number for $t {
            type Bytes = [u8; size_of::<$t>()];
            fn from_le(bytes: Self::Bytes) -> Self {
                <$t>::from_le_bytes(bytes)
            }
            fn from_be(bytes: Self::Bytes) -> Self {
                <$t>::from_be_bytes(bytes)
            }
            fn to_le(self) -> Self::Bytes {
                self.to_le_bytes()
            }
            fn to_be(self) -> Self::Bytes {
                self.to_be_bytes()
            }
        }
    )*};
}
numbers!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);
