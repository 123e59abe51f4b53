//! [`ViewOptions`]: the arguments of `MapViewOfFileEx`, and the [`Mapping`] shortcuts for
//! them (`view`, `view_mut`, `view_copy`).

use std::ops::RangeBounds;

use super::{Mapping, View, ViewMut, span};
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::map::ViewKind;

/// How to map a view: range, requested address, populate; then `map`, `map_mut` or
/// `map_copy` (the arguments of `MapViewOfFileEx`).
///
/// ```
/// use mmf::{Mapping, ViewOptions};
///
/// let mapping = Mapping::anonymous(1 << 20)?;
/// // Any byte offset: the library aligns to the allocation granularity and hides it.
/// let view = ViewOptions::new().offset(12_345).len(100).populate(true).map(&mapping)?;
/// assert_eq!((view.offset(), view.len()), (12_345, 100));
/// # Ok::<(), mmf::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ViewOptions {
    offset: u64,
    len: Option<u64>,
    address: Option<usize>,
    populate: bool,
    write_through: bool,
    error: Option<RangeError>,
}

/// A range that could not be turned into offset and length, kept until the terminal call.
#[derive(Clone, Copy, Debug)]
enum RangeError {
    Overflow { offset: u64, len: u64 },
    Reversed { start: u64, end: u64 },
}

impl ViewOptions {
    /// The whole mapping, placed by the system, faulted in on demand.
    pub fn new() -> Self {
        Self::default()
    }

    /// Byte offset of the view in the mapping (any value; default 0).
    pub fn offset(&mut self, offset: u64) -> &mut Self {
        self.offset = offset;
        self
    }

    /// Length in bytes (default: to the end of the mapping).
    pub fn len(&mut self, len: u64) -> &mut Self {
        self.len = Some(len);
        self
    }

    /// Offset and length from a range: `..`, `a..b`, `a..`, `a..=b`.
    pub fn range(&mut self, range: impl RangeBounds<u64>) -> &mut Self {
        match span::from_range(range) {
            Ok((offset, len)) => {
                self.offset = offset;
                self.len = len;
                self.error = None;
            }
            Err(Error::Overflow { offset, len }) => {
                self.error = Some(RangeError::Overflow { offset, len })
            }
            Err(Error::ReversedRange { start, end }) => {
                self.error = Some(RangeError::Reversed { start, end })
            }
            Err(_) => unreachable!("from_range fails only with Overflow or ReversedRange"),
        }
        self
    }

    /// Map the view so that its first byte is at `address` (`MapViewOfFileEx` with a base
    /// address). The view is placed there or refused with [`Error::AddressTaken`]; it never
    /// replaces anything already mapped. `address` must lie as far past a multiple of
    /// [`allocation_granularity`](crate::allocation_granularity) as the offset does
    /// ([`Error::AddressMisaligned`] otherwise).
    #[doc(alias = "MapViewOfFileEx")]
    pub fn address(&mut self, address: usize) -> &mut Self {
        self.address = Some(address);
        self
    }

    /// Fault every page in while mapping (`MADV_POPULATE_READ`/`_WRITE` on Linux,
    /// `PrefetchVirtualMemory` on Windows), so that first accesses do not wait for I/O.
    pub fn populate(&mut self, populate: bool) -> &mut Self {
        self.populate = populate;
        self
    }

    /// Map to read, write with the file's own calls: a read-write view
    /// ([`map_mut`](Self::map_mut)) of a file whose [`write_at`](ViewMut::write_at) and
    /// [`copy_from`](ViewMut::copy_from) are the file's writes at the view's offset
    /// (`pwrite`, `WriteFile`) and whose reads stay loads from the mapping — LMDB's and
    /// SQLite's default.
    ///
    /// What it buys:
    ///
    /// - **small durable commits**: a write dirties only the blocks it covers, where a store
    ///   through the mapping dirties its whole page-cache folio (up to 2 MiB on Linux), so
    ///   [`flush_range`](View::flush_range) after a small write costs what syncing those
    ///   blocks costs (as `pwrite` + `fdatasync`), not the folio's 512× more;
    /// - **errors, not signals**: a full disk is [`Error::StorageFull`] from the write
    ///   itself, never a fault on a store;
    /// - **no stray stores**: the view is mapped read-only, so a wild pointer cannot change
    ///   the file through it.
    ///
    /// Every view of the file, in this process or another, sees the bytes when `write_at`
    /// returns. On Linux mappings and file writes share one page cache. On Windows the cache
    /// manager and the views of a local file share the section's pages; Microsoft does not
    /// promise that coherence for files on a network share (a remote file's views are not
    /// coherent even with each other), nor for handles opened with
    /// `FILE_FLAG_NO_BUFFERING` — use ordinary views there.
    ///
    /// The cost: each write is a system call (~1 µs), against a store's nanoseconds. Fill or
    /// copy in large pieces (1 MiB), or use an ordinary view for many tiny writes that are
    /// flushed together.
    ///
    /// ```
    /// use mmf::{Access, MappingOptions, ViewOptions};
    ///
    /// let file = tempfile::tempfile()?;
    /// let mapping = MappingOptions::new().access(Access::ReadWrite).size(1 << 20).map_file(&file)?;
    /// let log = ViewOptions::new().write_through(true).map_mut(&mapping)?;
    /// log.write_at(4096, b"commit 1")?;
    /// log.flush_range(4096, 8)?; // as pwrite + fdatasync of that block
    /// // Every other view sees it at once.
    /// let mut seen = [0; 8];
    /// mapping.view(..)?.read_at(4096, &mut seen)?;
    /// assert_eq!(&seen, b"commit 1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Applies to [`map_mut`](Self::map_mut) only; [`map`](Self::map) and
    /// [`map_copy`](Self::map_copy) refuse it ([`Error::WriteThrough`]), as does a mapping
    /// with no file handle in this process (anonymous memory, a named pagefile-backed
    /// object, a file's section opened by name on Windows), and a handle that cannot write
    /// at an offset synchronously: Linux `O_APPEND` (`pwrite` would append) or `O_DIRECT`
    /// (aligned writes only), Windows `FILE_FLAG_OVERLAPPED`. (A peer sharing the open file
    /// description can still set `O_APPEND` later with `fcntl`; the writes would then
    /// append.) On Windows the view's writes move the file pointer of the handle it was
    /// made from (`WriteFile` with an offset moves it, and the mapping's handle is a
    /// duplicate sharing it); Linux's `pwrite` moves nothing.
    #[doc(alias = "pwrite")]
    #[doc(alias = "WriteFile")]
    pub fn write_through(&mut self, write_through: bool) -> &mut Self {
        self.write_through = write_through;
        self
    }

    /// A read-only view (`FILE_MAP_READ`).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] (offset or end past the mapping), [`Error::Overflow`]
    /// (`offset + len` overflows), [`Error::ReversedRange`], [`Error::TooLarge`],
    /// [`Error::AddressMisaligned`], [`Error::AddressTaken`], or the OS's refusal.
    ///
    /// # Platform-specific behaviour
    ///
    /// The OS maps from a multiple of the allocation granularity (the page size on Linux,
    /// 64 KiB on Windows) and the view starts inside that; the view hides it. With an
    /// address, Linux uses `MAP_FIXED_NOREPLACE` and Windows `MapViewOfFileEx`'s base
    /// address: both refuse rather than replace an existing mapping.
    /// # References
    /// [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html),
    /// [`MapViewOfFileEx`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-mapviewoffileex)
    #[doc(alias = "MapViewOfFile")]
    #[doc(alias = "mmap")]
    pub fn map(&self, mapping: &Mapping) -> Result<View> {
        self.map_kind(mapping, ViewKind::Read)
    }

    /// A read-write view (`FILE_MAP_WRITE`): writes reach the mapping, every other view of
    /// it and the file.
    ///
    /// # Errors
    /// As [`map`](Self::map), and [`Error::AccessDenied`] for a mapping that is not
    /// read-write.
    ///
    /// # References
    /// [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html),
    /// [`MapViewOfFileEx`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-mapviewoffileex)
    #[doc(alias = "MapViewOfFile")]
    pub fn map_mut(&self, mapping: &Mapping) -> Result<ViewMut> {
        self.map_kind(mapping, ViewKind::Write).map(ViewMut::new)
    }

    /// A copy-on-write view (`FILE_MAP_COPY`): it reads the mapping, and the pages it
    /// writes become private copies that nobody else sees and that never reach the file.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `MAP_PRIVATE`. Windows: `FILE_MAP_COPY`.
    ///
    /// # References
    /// [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html),
    /// [`MapViewOfFileEx`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-mapviewoffileex)
    #[doc(alias = "MapViewOfFile")]
    pub fn map_copy(&self, mapping: &Mapping) -> Result<ViewMut> {
        self.map_kind(mapping, ViewKind::CopyOnWrite).map(ViewMut::new)
    }

    fn map_kind(&self, mapping: &Mapping, kind: ViewKind) -> Result<View> {
        match self.error {
            Some(RangeError::Overflow { offset, len }) => {
                return Err(Error::Overflow { offset, len });
            }
            Some(RangeError::Reversed { start, end }) => {
                return Err(Error::ReversedRange { start, end });
            }
            None => {}
        }
        if !mapping.access().allows(kind) {
            return Err(Error::AccessDenied { view: kind.name(), mapping: mapping.access() });
        }
        let through = match (self.write_through, kind) {
            (false, _) => None,
            (true, ViewKind::Write) => {
                Some(mapping.file().cloned().ok_or(Error::WriteThrough {
                    reason: "this mapping has no file handle in this process to write with \
                         (anonymous memory, a named pagefile-backed object, or on Windows a \
                         file's section opened by name): use an ordinary read-write view",
                })?)
            }
            (true, _) => {
                return Err(Error::WriteThrough {
                    reason: "only read-write views write through (map_mut); read-only and \
                             copy-on-write views never write the file",
                });
            }
        };
        if let Some(reason) = through.as_deref().and_then(sys::map::write_through_refusal) {
            return Err(Error::WriteThrough { reason });
        }
        // A write-through view is mapped read-only: its writes are the file's own.
        let kind = if through.is_some() { ViewKind::Read } else { kind };
        let granularity = sys::map::allocation_granularity();
        let place = span::place(self.offset, self.len, mapping.size(), granularity)?;
        let base_address = match self.address {
            None => None,
            Some(address) if address % granularity == place.delta => Some(address - place.delta),
            Some(address) => {
                return Err(Error::AddressMisaligned {
                    address,
                    expected_remainder: place.delta,
                    granularity,
                });
            }
        };
        if place.len == 0 {
            // An empty view maps nothing (the OS refuses zero-length views), wherever it is.
            let mut view = View::new(None, &place, self.offset, kind, mapping);
            view.through = through;
            return Ok(view);
        }
        let region = mapping.section().map(kind, place.map_offset, place.map_len, base_address)?;
        let mut view = View::new(Some(region), &place, self.offset, kind, mapping);
        view.through = through;
        if self.populate {
            view.populate(0, view.len())?;
        }
        Ok(view)
    }
}

/// Views of a mapping: the shortcuts for [`ViewOptions`].
impl Mapping {
    /// `MapViewOfFile(FILE_MAP_READ)` of a byte range (`..`, `a..b`, `a..`, `a..=b`).
    ///
    /// # Errors
    /// As [`ViewOptions::map`].
    ///
    /// # References
    /// [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html),
    /// [`MapViewOfFileEx`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-mapviewoffileex)
    #[doc(alias = "MapViewOfFile")]
    pub fn view(&self, range: impl std::ops::RangeBounds<u64>) -> Result<View> {
        ViewOptions::new().range(range).map(self)
    }

    /// `MapViewOfFile(FILE_MAP_WRITE)` of a byte range; needs a read-write mapping.
    ///
    /// # Errors
    /// As [`ViewOptions::map_mut`].
    ///
    /// # References
    /// [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html),
    /// [`MapViewOfFileEx`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-mapviewoffileex)
    #[doc(alias = "MapViewOfFile")]
    pub fn view_mut(&self, range: impl std::ops::RangeBounds<u64>) -> Result<ViewMut> {
        ViewOptions::new().range(range).map_mut(self)
    }

    /// `MapViewOfFile(FILE_MAP_COPY)` of a byte range: writes stay private to the view.
    ///
    /// # Errors
    /// As [`ViewOptions::map_copy`].
    ///
    /// # References
    /// [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html),
    /// [`MapViewOfFileEx`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-mapviewoffileex)
    #[doc(alias = "MapViewOfFile")]
    pub fn view_copy(&self, range: impl std::ops::RangeBounds<u64>) -> Result<ViewMut> {
        ViewOptions::new().range(range).map_copy(self)
    }
}
