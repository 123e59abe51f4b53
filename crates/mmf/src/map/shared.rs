//! Typed access to memory that peers change: atomics at aligned offsets, and `#[repr(C)]`
//! types made of atomics, marked by the `unsafe` trait [`Shared`].

use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize, AtomicU8, AtomicU16, AtomicU32,
    AtomicU64, AtomicUsize,
};

use super::{View, ViewMut};
use crate::error::{Error, Result};

/// A type that may be placed in memory that other views and processes change while a
/// `&Self` to it exists.
///
/// # Safety
///
/// Implement it only for a type that
/// - has a defined layout (`#[repr(C)]` or `#[repr(transparent)]`) that every peer agrees
///   on, and contains no pointers or references;
/// - is valid for every bit pattern (a peer may write any bytes), so no `bool`, `char`,
///   enums, or `AtomicBool`;
/// - can be changed behind a shared reference only through interior mutability: every field
///   that a peer may write while `&Self` is held is an atomic (or made of them). Plain
///   integer fields are allowed only if no peer changes them while the value is shared
///   (written once before publishing, for example).
///
/// ```
/// use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
/// use mmf::{Mapping, Shared};
///
/// #[repr(C)]
/// struct Header {
///     sequence: AtomicU64,
///     readers: AtomicU32,
///     flags: AtomicU32,
/// }
/// // SAFETY: repr(C), atomics only, every bit pattern valid.
/// unsafe impl Shared for Header {}
///
/// let mapping = Mapping::anonymous(4096)?;
/// let view = mapping.view_mut(..)?;
/// let header: &Header = view.get(64)?;
/// header.sequence.fetch_add(1, Ordering::AcqRel);
/// assert_eq!(view.atomic_u64(64)?.load(Ordering::Acquire), 1);
/// # Ok::<(), mmf::Error>(())
/// ```
pub unsafe trait Shared: Sync {}

macro_rules! shared_atomics {
    ($($t:ty),*) => {
        // SAFETY: atomics are UnsafeCell-based, repr(transparent) over an integer of the
        // same size, and valid for every bit pattern.
        $(unsafe impl Shared for $t {})*
    };
}
shared_atomics!(
    AtomicU8,
    AtomicU16,
    AtomicU32,
    AtomicU64,
    AtomicUsize,
    AtomicI8,
    AtomicI16,
    AtomicI32,
    AtomicI64,
    AtomicIsize
);

// SAFETY: an array of `Shared` elements has no padding between them and inherits each
// element's guarantees.
unsafe impl<T: Shared, const N: usize> Shared for [T; N] {}

/// A `std` atomic integer seen through a view that may only read: all it offers is
/// [`load`](LoadOnly::load). A store into a read-only view would fault, so a read-only view
/// hands out these instead of the atomics themselves ([`View::atomic_u64`] and friends).
///
/// ```
/// use std::sync::atomic::Ordering;
///
/// let mapping = mmf::Mapping::anonymous(4096)?;
/// mapping.view_mut(..)?.atomic_u64(8)?.store(42, Ordering::Release);
/// let monitor = mapping.view(..)?; // read-only, as in a monitoring process
/// assert_eq!(monitor.atomic_u64(8)?.load(Ordering::Acquire), 42);
/// # Ok::<(), mmf::Error>(())
/// ```
///
/// For a `#[repr(C)]` header of atomics, read each field at its offset:
/// `view.atomic_u64(std::mem::offset_of!(Header, sequence))`.
///
/// # Platform-specific behaviour
///
/// On the targets mmf supports (x86-64, AArch64) an atomic load is a plain load. A target
/// that implements 64-bit atomic loads with a compare-and-exchange (32-bit x86) would fault
/// on a read-only page.
#[repr(transparent)]
pub struct LoadOnly<A>(A);

macro_rules! load_only {
    ($($atomic:ident $int:ty, $method:ident;)*) => {
        $(
            impl LoadOnly<$atomic> {
                /// The value, as [`
                #[doc = stringify!($atomic)]
                /// ::load`](std::sync::atomic::
                #[doc = stringify!($atomic)]
                /// ::load) reads it.
                pub fn load(&self, order: std::sync::atomic::Ordering) -> $int {
                    self.0.load(order)
                }
            }

            impl View {
                /// The
                #[doc = concat!(" `", stringify!($atomic), "` ")]
                /// at `offset`, for loading only (see [`LoadOnly`]); a writable view's
                /// [`ViewMut::
                #[doc = stringify!($method)]
                /// `] gives the atomic itself.
                ///
                /// # Errors
                /// As [`ViewMut::get`].
                pub fn $method(&self, offset: usize) -> Result<&LoadOnly<$atomic>> {
                    // SAFETY: LoadOnly is repr(transparent) over the atomic, and offers
                    // only loads, which never write the (possibly read-only) page.
                    self.shared::<$atomic>(offset).map(|a| unsafe {
                        &*(a as *const $atomic).cast::<LoadOnly<$atomic>>()
                    })
                }
            }
        )*
    };
}
load_only!(
    AtomicU8 u8, atomic_u8;
    AtomicU16 u16, atomic_u16;
    AtomicU32 u32, atomic_u32;
    AtomicU64 u64, atomic_u64;
    AtomicI32 i32, atomic_i32;
    AtomicI64 i64, atomic_i64;
);

impl View {
    /// The checked `&T` at `offset` (bounds, alignment, broken view); shared by
    /// [`ViewMut::get`] and the load-only accessors.
    fn shared<T: Shared>(&self, offset: usize) -> Result<&T> {
        let ptr = self.at(offset, size_of::<T>())?;
        self.ensure_intact(offset, size_of::<T>())?;
        if (ptr as usize) % align_of::<T>() != 0 {
            return Err(Error::Misaligned { offset, align: align_of::<T>() });
        }
        // SAFETY: the bytes are inside this live view, aligned for T; T: Shared makes any
        // bit pattern valid and admits changes by peers through shared references
        // (interior mutability only); the borrow of `self` keeps the view mapped. Callers
        // on read-only views expose no store (LoadOnly).
        Ok(unsafe { &*ptr.cast::<T>() })
    }
}

impl ViewMut {
    /// A `&T` over the bytes at `offset`: bounds and alignment checked, lifetime tied to
    /// the view. Only writable views hand these out, since atomics may store; a read-only
    /// view offers load-only atomics ([`View::atomic_u64`], [`LoadOnly`]).
    ///
    /// A peer that truncates the object under the view makes an access through it raise
    /// SIGBUS (only the copies of `read_at`/`write_at`/`copy_from` are guarded). A view a
    /// guarded copy found truncated refuses to hand out references; ones handed out before
    /// then point at private zero pages where the object was cut.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Overflow`] if `T` does not fit at `offset`;
    /// [`Error::Misaligned`] if `offset` does not give `T` its alignment;
    /// [`Error::Truncated`] if the view is broken; [`Error::WriteThrough`] on a write-through
    /// view, whose pages are read-only (its load-only atomics still work, through `Deref`).
    pub fn get<T: Shared>(&self, offset: usize) -> Result<&T> {
        if self.through.is_some() {
            return Err(Error::WriteThrough {
                reason: "its pages are mapped read-only, so it hands out no references \
                         that could store; write with write_at, and load with the load-only \
                         atomics of View (`View::atomic_u64(&view, offset)`)",
            });
        }
        self.shared(offset)
    }

    /// The `AtomicU64` at `offset` (a multiple of 8 bytes into the view's alignment), to
    /// load and store.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        self.get(offset)
    }

    /// The `AtomicU32` at `offset`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        self.get(offset)
    }
}

impl View {
    /// For the sync layer: whether the view is shared and writable (not read-only, not
    /// copy-on-write), and the file or object behind it where this process has one (Linux:
    /// sync areas take their liveness locks on it).
    pub(crate) fn sync_backing(&self) -> (bool, Option<std::sync::Arc<std::fs::File>>) {
        (self.kind == crate::sys::map::ViewKind::Write, self.backing.clone())
    }

    /// For the sync layer: the name of the named object the view shows, and whether it is
    /// in Windows' `Global\` namespace (what every process of a named mapping knows it by).
    pub(crate) fn sync_name(&self) -> Option<(&str, bool)> {
        self.named.as_deref().map(|n| (n.name.as_str(), n.global))
    }
}
