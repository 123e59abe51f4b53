//! Views of a mapping (`MapViewOfFile`): read-only [`View`], writable [`ViewMut`].

use std::fs::File;
use std::ops::{Deref, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::named::Named;
use crate::{Advice, Advised, Mapping, Residency, copy, span, sys};

/// The kind of a view, as `FILE_MAP_READ` / `FILE_MAP_WRITE` / `FILE_MAP_COPY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ViewKind {
    Read,
    Write,
    CopyOnWrite,
}

impl ViewKind {
    fn name(self) -> &'static str {
        match self {
            ViewKind::Read => "read-only",
            ViewKind::Write => "read-write",
            ViewKind::CopyOnWrite => "copy-on-write",
        }
    }
}

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
    error: Option<RangeError>,
}

/// A range that could not be turned into offset and length, kept until the terminal call.
#[derive(Clone, Copy, Debug)]
struct RangeError {
    overflow: Option<(u64, u64)>,
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
                self.error = Some(RangeError { overflow: Some((offset, len)) })
            }
            Err(_) => self.error = Some(RangeError { overflow: None }),
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

    /// A read-only view (`FILE_MAP_READ`).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] (offset or end past the mapping), [`Error::Overflow`]
    /// (`offset + len` overflows), [`Error::EmptyRange`], [`Error::TooLarge`],
    /// [`Error::AddressMisaligned`], [`Error::AddressTaken`], or the OS's refusal.
    #[doc(alias = "MapViewOfFile")]
    pub fn map(&self, mapping: &Mapping) -> Result<View> {
        self.map_kind(mapping, ViewKind::Read)
    }

    /// A read-write view (`FILE_MAP_WRITE`): writes reach the mapping, every other view of
    /// it and the file.
    ///
    /// # Errors
    /// As [`map`](Self::map), and [`Error::AccessDenied`] for a mapping that is not
    /// read-write.
    #[doc(alias = "MapViewOfFile")]
    pub fn map_mut(&self, mapping: &Mapping) -> Result<ViewMut> {
        self.map_kind(mapping, ViewKind::Write).map(|view| ViewMut { view })
    }

    /// A copy-on-write view (`FILE_MAP_COPY`): it reads the mapping, and the pages it
    /// writes become private copies that nobody else sees and that never reach the file.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    #[doc(alias = "MapViewOfFile")]
    pub fn map_copy(&self, mapping: &Mapping) -> Result<ViewMut> {
        self.map_kind(mapping, ViewKind::CopyOnWrite).map(|view| ViewMut { view })
    }

    fn map_kind(&self, mapping: &Mapping, kind: ViewKind) -> Result<View> {
        match self.error {
            Some(RangeError { overflow: Some((offset, len)) }) => {
                return Err(Error::Overflow { offset, len });
            }
            Some(RangeError { overflow: None }) => return Err(Error::EmptyRange),
            None => {}
        }
        if !mapping.access().allows(kind) {
            return Err(Error::AccessDenied { view: kind.name(), mapping: mapping.access() });
        }
        let granularity = sys::allocation_granularity();
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
        let base = mapping.section().map(kind, place.map_offset, place.map_len, base_address)?;
        let view = View {
            region: Region { base, len: place.map_len },
            // SAFETY: delta < map_len, so the data pointer stays inside the new mapping.
            data: unsafe { base.add(place.delta) },
            len: place.len,
            offset: self.offset,
            kind,
            file: mapping.file().cloned(),
            _named: mapping.named().cloned(),
            broken: AtomicBool::new(false),
        };
        if self.populate {
            sys::populate(view.data, view.len, kind != ViewKind::Read)?;
        }
        Ok(view)
    }
}

/// The OS mapping behind a view; unmapped on drop.
#[derive(Debug)]
struct Region {
    base: *mut u8,
    len: usize,
}

impl Region {
    fn unmap(mut self) -> Result<()> {
        let len = std::mem::take(&mut self.len);
        // SAFETY: `base..base+len` is the mapping this region created; the view that owned
        // it has been consumed, so no reference into it outlives this call. `len` is now 0,
        // so the drop that follows does nothing.
        unsafe { sys::unmap(self.base, len) }.map_err(Error::os("munmap/UnmapViewOfFile"))
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: as in `unmap`: the owning view is being dropped. An error here would
            // mean the range was not a mapping at all; there is nothing to do about it in a
            // destructor, and `unmap()` reports it for callers who care.
            let _ = unsafe { sys::unmap(self.base, self.len) };
        }
    }
}

/// A read-only view of a [`Mapping`] (`MapViewOfFile`); unmapped on drop
/// (`UnmapViewOfFile`).
///
/// Safe code reads it through copies ([`read_at`](Self::read_at)), because other views,
/// processes or writers of the file may change the bytes at any time; a `&[u8]` over it
/// needs the promise of [`as_slice`](Self::as_slice).
///
/// ```
/// use mmf::Mapping;
///
/// let mapping = Mapping::anonymous(8192)?;
/// mapping.view_mut(4000..4010)?.write_at(0, b"0123456789")?;
/// let view = mapping.view(4005..)?;
/// let mut buf = [0u8; 5];
/// view.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"56789");
/// # Ok::<(), mmf::Error>(())
/// ```
#[derive(Debug)]
pub struct View {
    region: Region,
    data: *mut u8,
    len: usize,
    offset: u64,
    kind: ViewKind,
    file: Option<Arc<File>>,
    /// Keeps a named object alive while the view exists, as on Windows.
    _named: Option<Arc<Named>>,
    /// A guarded copy caught a truncation: some pages are now private zero pages, so every
    /// later copy is refused rather than silently reading zeros or losing writes.
    broken: AtomicBool,
}

// SAFETY: a View owns its mapping; shared access only reads through volatile copies or raw
// pointers, and the OS calls it makes are thread-safe. Moving it to another thread moves
// the ownership of the mapping with it.
unsafe impl Send for View {}
// SAFETY: every `&self` method either reads memory through volatile copies (racing writers
// are documented to give torn bytes, never UB in our code) or makes thread-safe OS calls.
unsafe impl Sync for View {}

impl View {
    /// Number of bytes in the view (never 0).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: views of zero bytes are refused. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The view's byte offset in its mapping.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether a guarded copy found the object truncated under this view; every copy
    /// through it then fails with [`Error::Truncated`]. Map a new view.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Address of the view's first byte.
    pub fn as_ptr(&self) -> *const u8 {
        self.data
    }

    /// Copies `buf.len()` bytes starting `offset` bytes into the view.
    ///
    /// Guarded: if a peer truncated the file or object so that part of the range no longer
    /// exists, this returns [`Error::Truncated`] instead of the process dying of SIGBUS (on
    /// Linux; Windows refuses to truncate mapped files and sections). The view is then
    /// broken: every later copy through it returns [`Error::Truncated`] too; map a new view
    /// within the object's current size.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Overflow`] if the range is not inside the view;
    /// [`Error::Truncated`] as above.
    #[inline]
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        span::check_sub(offset, buf.len(), self.len)?;
        // SAFETY: the range was checked to lie inside this live view.
        let src = unsafe { self.data.add(offset) };
        let len = buf.len();
        // SAFETY: `src..src+len` is mapped and readable for the whole copy; if a peer
        // truncated the object, the guard turns the fault into `faulted`.
        self.guard(offset, len, || unsafe { copy::read_volatile(src, buf) })
    }

    /// Runs a copy of `len` bytes at `offset` under the fault guard.
    #[inline]
    fn guard(&self, offset: usize, len: usize, copy: impl FnOnce()) -> Result<()> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(Error::Truncated { offset, len });
        }
        // SAFETY: callers pass ranges checked to lie inside this view.
        let start = unsafe { self.data.add(offset) };
        let range = sys::Guarded { start, len, broken: &self.broken };
        // A fault on this thread, or on another that broke the view meanwhile (its zero
        // pages may have fed this copy).
        if sys::guarded(range, None, copy) != 0 || self.broken.load(Ordering::SeqCst) {
            return Err(Error::Truncated { offset, len });
        }
        Ok(())
    }

    /// The view as a byte slice.
    ///
    /// # Safety
    /// For as long as the slice lives, nothing may change the bytes: no other view of the
    /// mapping (in this process or another), no other writer of the file, and no
    /// `write_at` through this view; and nobody may truncate the file below the view's end
    /// (touching a page past the end of the file raises SIGBUS / an in-page error).
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the pointer and length describe this live view; the caller promises the
        // bytes do not change while the slice is borrowed.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    /// Writes the view's changes to the storage device and waits (`FlushViewOfFile`,
    /// then `FlushFileBuffers` on Windows; `msync(MS_SYNC)` on Linux, which also makes the
    /// file's size durable). Nothing to do for copy-on-write and anonymous views.
    ///
    /// # Errors
    /// The OS's refusal (an I/O error of the device, for example).
    #[doc(alias = "FlushViewOfFile")]
    #[doc(alias = "msync")]
    pub fn flush(&self) -> Result<()> {
        self.flush_range(0, self.len)
    }

    /// [`flush`](Self::flush) for `len` bytes starting `offset` bytes into the view (any
    /// range; widened to whole pages internally).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range outside the view, or the OS's refusal.
    #[doc(alias = "FlushViewOfFile")]
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<()> {
        span::check_sub(offset, len, self.len)?;
        if len == 0 || !self.writes_back() {
            return Ok(());
        }
        // SAFETY: offset <= len of this live view.
        sys::flush(unsafe { self.data.add(offset) }, len, self.file.as_deref())
    }

    /// Whether flushing this view has anything to write: copy-on-write pages never reach
    /// the file, and anonymous memory has no file.
    fn writes_back(&self) -> bool {
        self.kind != ViewKind::CopyOnWrite && self.file.is_some()
    }

    /// Starts writing the view's changes back without waiting (`sync_file_range` on Linux,
    /// where `msync(MS_ASYNC)` does nothing; `FlushViewOfFile` alone on Windows).
    ///
    /// # Errors
    /// The OS's refusal.
    #[doc(alias = "FlushViewOfFile")]
    pub fn flush_async(&self) -> Result<()> {
        self.flush_async_range(0, self.len)
    }

    /// [`flush_async`](Self::flush_async) for a byte range of the view.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range outside the view, or the OS's refusal.
    pub fn flush_async_range(&self, offset: usize, len: usize) -> Result<()> {
        span::check_sub(offset, len, self.len)?;
        if len == 0 || !self.writes_back() {
            return Ok(());
        }
        // SAFETY: offset <= len of this live view.
        let addr = unsafe { self.data.add(offset) };
        let file_offset = self.offset + offset as u64;
        sys::flush_async(addr, len, self.file.as_deref(), file_offset)
    }

    /// Tells the OS how the view will be used (`madvise` on Linux). Advice the platform
    /// has no equivalent for returns [`Advised::NotSupported`] instead of pretending.
    ///
    /// # Errors
    /// The OS's refusal.
    #[doc(alias = "madvise")]
    pub fn advise(&self, advice: Advice) -> Result<Advised> {
        sys::advise(self.data, self.len, advice)
    }

    /// Starts reading `len` bytes from `offset` into memory in the background
    /// (`MADV_WILLNEED` on Linux, `PrefetchVirtualMemory` on Windows).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range outside the view, or the OS's refusal.
    #[doc(alias = "PrefetchVirtualMemory")]
    pub fn prefetch(&self, offset: usize, len: usize) -> Result<Advised> {
        span::check_sub(offset, len, self.len)?;
        // SAFETY: offset <= len of this live view.
        sys::advise(unsafe { self.data.add(offset) }, len, Advice::WillNeed)
    }

    /// Faults `len` bytes from `offset` in now and waits for them (`MADV_POPULATE_READ` /
    /// `_WRITE` on Linux; prefetch and touch on Windows): what
    /// [`ViewOptions::populate`] does at map time, for any part of the view.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range outside the view, or the OS's refusal.
    pub fn populate(&self, offset: usize, len: usize) -> Result<()> {
        span::check_sub(offset, len, self.len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: offset <= len of this live view.
        sys::populate(unsafe { self.data.add(offset) }, len, self.kind != ViewKind::Read)
    }

    /// Faults the view in and keeps it in RAM (`mlock` / `VirtualLock`) until
    /// [`unlock`](Self::unlock) or unmap.
    ///
    /// # Errors
    /// The OS's refusal; on Linux the message says to raise `RLIMIT_MEMLOCK` when that is
    /// what stopped it.
    #[doc(alias = "mlock")]
    #[doc(alias = "VirtualLock")]
    pub fn lock(&self) -> Result<()> {
        sys::lock(self.data, self.len)
    }

    /// Lets the OS page the view out again (`munlock` / `VirtualUnlock`).
    ///
    /// # Errors
    /// The OS's refusal.
    #[doc(alias = "munlock")]
    #[doc(alias = "VirtualUnlock")]
    pub fn unlock(&self) -> Result<()> {
        sys::unlock(self.data, self.len)
    }

    /// Which pages of the view are in memory now (`mincore` on Linux: page-cache residency
    /// for file views, whether or not this process touched them; `QueryWorkingSetEx` on
    /// Windows).
    ///
    /// # Errors
    /// The OS's refusal.
    #[doc(alias = "mincore")]
    #[doc(alias = "QueryWorkingSetEx")]
    pub fn residency(&self) -> Result<Residency> {
        let page = crate::page_size();
        let first_page = self.data as usize / page;
        let pages = sys::residency(self.data, self.len)?;
        Ok(Residency::new(page, self.data as usize - first_page * page, pages))
    }

    /// Unmaps the view now (`UnmapViewOfFile` / `munmap`) and reports the OS's answer,
    /// which dropping the view ignores.
    ///
    /// # Errors
    /// The OS's refusal.
    #[doc(alias = "UnmapViewOfFile")]
    #[doc(alias = "munmap")]
    pub fn unmap(self) -> Result<()> {
        self.region.unmap()
    }
}

/// A writable view: read-write (`FILE_MAP_WRITE`) or copy-on-write (`FILE_MAP_COPY`).
/// Everything a [`View`] does, plus writing.
///
/// ```
/// use mmf::{Access, MappingOptions};
///
/// let file = tempfile::tempfile()?;
/// let mapping = MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file)?;
/// let mut view = mapping.view_mut(..)?;
/// view.write_at(10, b"persisted")?;
/// view.flush()?; // durable
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ViewMut {
    view: View,
}

impl Deref for ViewMut {
    type Target = View;
    fn deref(&self) -> &View {
        &self.view
    }
}

impl ViewMut {
    /// Copies `data` into the view starting `offset` bytes in.
    ///
    /// Guarded like [`View::read_at`]: writes past a peer's truncation are lost and
    /// reported as [`Error::Truncated`].
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Overflow`] if the range is not inside the view;
    /// [`Error::Truncated`] as above.
    #[inline]
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        span::check_sub(offset, data.len(), self.view.len)?;
        // SAFETY: the range was checked to lie inside this live view.
        let dst = unsafe { self.view.data.add(offset) };
        let len = data.len();
        // SAFETY: `dst..dst+len` is mapped and writable, and `&mut self` means no slice
        // from `as_mut_slice` is alive; a fault from a truncating peer is caught.
        self.view.guard(offset, len, || unsafe { copy::write_volatile(dst, data) })
    }

    /// Copies `len` bytes from `src` (at `src_offset`) into this view (at `offset`) in one
    /// pass, without a buffer in between: the fast way to move bytes between two mappings.
    /// Guarded like [`View::read_at`] on both sides. If both views show overlapping bytes
    /// of one mapping, what the overlap holds afterwards is unspecified (as with `memcpy`;
    /// every other byte is copied exactly).
    ///
    /// ```
    /// use mmf::Mapping;
    ///
    /// let (a, b) = (Mapping::anonymous(8192)?, Mapping::anonymous(8192)?);
    /// let mut src = a.view_mut(..)?;
    /// src.write_at(100, b"moved")?;
    /// let mut dst = b.view_mut(..)?;
    /// dst.copy_from(4000, &src, 100, 5)?;
    /// let mut buf = [0; 5];
    /// dst.read_at(4000, &mut buf)?;
    /// assert_eq!(&buf, b"moved");
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Overflow`] if either range is not inside its view;
    /// [`Error::Truncated`] if either view's object was truncated under it (the view that
    /// faulted is broken from then on).
    pub fn copy_from(
        &mut self,
        offset: usize,
        src: &View,
        src_offset: usize,
        len: usize,
    ) -> Result<()> {
        span::check_sub(offset, len, self.view.len)?;
        span::check_sub(src_offset, len, src.len)?;
        if self.view.broken.load(Ordering::Relaxed) || src.broken.load(Ordering::Relaxed) {
            return Err(Error::Truncated { offset, len });
        }
        // SAFETY: both offsets were checked to lie inside their live views.
        let (from, to) = unsafe { (src.data.add(src_offset), self.view.data.add(offset)) };
        let first = sys::Guarded { start: to, len, broken: &self.view.broken };
        let second = sys::Guarded { start: from, len, broken: &src.broken };
        let copy = || {
            // SAFETY: `from..from+len` is readable and `to..to+len` writable for the copy,
            // and `&mut self` means no slice from `as_mut_slice` is alive; faults are caught.
            unsafe { copy::copy_volatile(from, to, len) }
        };
        let faulted = sys::guarded(first, Some(second), copy);
        let broken = self.view.broken.load(Ordering::SeqCst) || src.broken.load(Ordering::SeqCst);
        if faulted != 0 || broken { Err(Error::Truncated { offset, len }) } else { Ok(()) }
    }

    /// Address of the view's first byte, for writing.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.view.data
    }

    /// The view as a mutable byte slice.
    ///
    /// # Safety
    /// As [`View::as_slice`]: for as long as the slice lives, nobody else reads or writes
    /// the bytes (other views, other processes, the file's other users) and nobody
    /// truncates the file below the view's end.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the pointer and length describe this live, writable view; the caller
        // promises exclusive access while the slice is borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.view.data, self.view.len) }
    }

    /// Unmaps the view now; see [`View::unmap`].
    ///
    /// # Errors
    /// The OS's refusal.
    #[doc(alias = "UnmapViewOfFile")]
    pub fn unmap(self) -> Result<()> {
        self.view.unmap()
    }
}
