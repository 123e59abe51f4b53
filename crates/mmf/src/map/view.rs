//! Views of a mapping (`MapViewOfFile`): read-only [`View`], writable [`ViewMut`], and
//! their copies in and out. How a view is asked for is in `view_options.rs`; what the OS
//! does for its pages in `view_os.rs`.

use std::fs::File;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Mapping;
use super::span::{self, Placement};
use crate::error::{Error, Result};
use crate::named::Named;
use crate::sys;
use crate::sys::fault::zero_fill::{self, ZeroFill};
use crate::sys::fault::{Cause, Fault, Guarded};
use crate::sys::map::{Access, Memory, Region, ViewKind};

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
    /// The registration of the view's pages for zero pages in place of lost ones (mmf's own
    /// shared structures: `ViewMut::zero_fill_lost_pages`). First, so that it is dropped
    /// before `region` unmaps the pages.
    lost_pages: Option<ZeroFill>,
    /// The OS mapping; `None` for an empty view, which maps nothing.
    region: Option<Region>,
    data: *mut u8,
    len: usize,
    offset: u64,
    pub(super) kind: ViewKind,
    /// The mapping's access: a view of a read-only mapping has nothing to flush.
    pub(super) access: Access,
    /// What backs the pages (advice depends on it).
    pub(super) memory: Memory,
    /// The mapped file, where this process has a handle to it.
    pub(super) file: Option<Arc<File>>,
    /// The file or object whose pages the view shows, where this process has a handle to
    /// it: its size tells a truncation from other faults.
    pub(super) backing: Option<Arc<File>>,
    /// Write-through views: the file that `write_at` and `copy_from` write with its own
    /// calls (the view itself is mapped read-only).
    pub(super) through: Option<Arc<File>>,
    /// Keeps a named object alive while the view exists, as on Windows.
    pub(super) named: Option<Arc<Named>>,
    /// A guarded copy caught a fault and the fallback guard (other than x86-64) put private
    /// zero pages in: every later copy is refused rather than silently reading zeros or
    /// losing writes. Never raised on x86-64.
    broken: AtomicBool,
}

// SAFETY: a View owns its mapping; shared access goes through the guarded copies (opaque
// assembly, or relaxed atomics) or raw pointers, and the OS calls it makes are thread-safe.
// Moving it to another thread moves the ownership of the mapping with it.
unsafe impl Send for View {}
// SAFETY: every `&self` method either copies through the guarded routines (racing writers
// give torn bytes, as documented) or makes thread-safe OS calls.
unsafe impl Sync for View {}

impl View {
    /// The view of `place` in the mapping `region` just made of `mapping`.
    pub(super) fn new(
        region: Option<Region>,
        place: &Placement,
        offset: u64,
        kind: ViewKind,
        mapping: &Mapping,
    ) -> View {
        sys::fault::install();
        let data = match &region {
            // SAFETY: delta < map_len, so the data pointer stays inside the new mapping.
            Some(region) => unsafe { region.base().add(place.delta) },
            // Nothing is mapped: a dangling, non-null pointer that is never read or written
            // (every access has length 0).
            None => std::ptr::NonNull::dangling().as_ptr(),
        };
        View {
            lost_pages: None,
            region,
            data,
            len: place.len,
            offset,
            kind,
            access: mapping.access(),
            memory: mapping.section().memory(),
            file: mapping.file().cloned(),
            backing: mapping.section().backing().or_else(|| mapping.file().cloned()),
            through: None,
            named: mapping.named().cloned(),
            broken: AtomicBool::new(false),
        }
    }

    /// A view whose pages someone else maps and unmaps (a growable view's reservation):
    /// it starts at `data` with no bytes; [`set_len`](Self::set_len) admits them as they
    /// are mapped.
    pub(super) fn unowned(data: *mut u8, offset: u64, kind: ViewKind, mapping: &Mapping) -> View {
        let mut view = View::new(None, &span::Placement::empty(), offset, kind, mapping);
        view.data = data;
        view
    }

    /// Admits `len` bytes from the view's start; the caller has mapped them.
    pub(super) fn set_len(&mut self, len: usize) {
        self.len = len;
    }

    /// Number of bytes in the view (0 for an empty view).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view has no bytes: an empty view (`mapping.view(n..n)`, or `view(size..)`)
    /// maps nothing, and every copy through it has length 0.
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

    /// The address of the view's byte `offset`, once `offset..offset+len` is checked to lie
    /// inside the view: the one place where a view computes a pointer into itself.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Overflow`].
    #[inline]
    pub(crate) fn at(&self, offset: usize, len: usize) -> Result<*mut u8> {
        span::check_sub(offset, len, self.len)?;
        // SAFETY: offset <= offset + len <= self.len, so the pointer stays inside (or one
        // past the end of) this live view.
        Ok(unsafe { self.data.add(offset) })
    }

    /// [`Error::Truncated`] for the range if a guarded copy found this view truncated.
    #[inline]
    pub(crate) fn ensure_intact(&self, offset: usize, len: usize) -> Result<()> {
        // Only the fallback guard breaks views: on x86-64 there is nothing to look at.
        if cfg!(not(target_arch = "x86_64")) && self.broken.load(Ordering::Relaxed) {
            return Err(Error::Truncated { offset, len });
        }
        Ok(())
    }

    /// The range `start..start+len` of this view, for the fault guard.
    fn guarded(&self, start: *const u8, len: usize) -> Guarded<'_> {
        Guarded { start, len, broken: &self.broken }
    }

    /// Copies `buf.len()` bytes starting `offset` bytes into the view.
    ///
    /// A racing writer (another view, process or writer of the file) may leave a mix of
    /// old and new bytes in `buf`, as `pread` racing `pwrite` does; nothing worse.
    ///
    /// ```
    /// let mapping = mmf::Mapping::anonymous(4096)?;
    /// mapping.view_mut(..)?.write_at(10, b"abc")?;
    /// let mut buf = [0; 3];
    /// mapping.view(..)?.read_at(10, &mut buf)?;
    /// assert_eq!(&buf, b"abc");
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Overflow`] if the range is not inside the view;
    /// [`Error::Truncated`] if the file or object was truncated under it;
    /// [`Error::InPageError`] if the device could not deliver a page. The bytes of `buf`
    /// are then unspecified.
    ///
    /// # Platform-specific behaviour
    ///
    /// A fault of the access becomes the error instead of the death of the process: Linux
    /// catches the `SIGBUS`, Windows the in-page error (and, under Wine, the access
    /// violation of a file truncated by a Linux process; Windows itself refuses to truncate
    /// a mapped file). On x86-64 the view keeps showing the object: if it grows back, reads
    /// succeed again. On other Linux architectures the view is then *broken*
    /// ([`is_broken`](Self::is_broken)) and refuses every later copy.
    #[inline]
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        if let Ok(word) = <&mut [u8; 8]>::try_from(&mut *buf) {
            if let Some(value) = self.load8(offset) {
                *word = value;
                return Ok(());
            }
        }
        self.read_at_copy(offset, buf)
    }

    /// An 8-byte [`read_at`](Self::read_at) in as few instructions as it takes: `None` if
    /// the range is not inside the view, the view is broken, or the load faulted (the
    /// copy path then says which). A random read of a big file waits for memory, and how
    /// many such waits a core overlaps depends on how many instructions each read takes:
    /// the copy path's set-up, inlined into a caller's loop, made it 2.1–2.4x plain loads
    /// (1M random reads of a cached 1 GiB file, AMD EPYC), 1.8–1.9x without it.
    #[inline(always)]
    fn load8(&self, offset: usize) -> Option<[u8; 8]> {
        let src = self.at(offset, 8).ok()?;
        self.ensure_intact(offset, 8).ok()?;
        // SAFETY: `src..src+8` is inside this live view (`at`); faults are caught.
        unsafe { sys::fault::load8(src, self.guarded(src, 8)) }.ok()
    }

    /// [`read_at`](Self::read_at) of any length, by a guarded copy.
    #[inline(never)]
    fn read_at_copy(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let src = self.at(offset, buf.len())?;
        let len = buf.len();
        self.ensure_intact(offset, len)?;
        let range = self.guarded(src, len);
        let dst = buf.as_mut_ptr();
        self.guarded_copy(offset, len, false, || {
            // SAFETY: `src..src+len` is inside this live view and `buf` is ours to write;
            // faults are caught.
            unsafe { sys::fault::copy(dst, src, len, [Some(range), None]) }
        })
    }

    /// Runs a guarded copy; a fault becomes the error [`fault_error`](Self::fault_error)
    /// names. A fault that looks like neither a truncation nor a full file system is tried
    /// again a few times first: a peer may have truncated the object and grown it back
    /// between the fault and the look at its size, and a copy that then succeeds was only
    /// racing that peer. The first try is inline (a small copy pays no call); the tries
    /// after a fault are [`retrying`](Self::retrying)'s, out of line.
    #[inline(always)]
    fn guarded_copy(
        &self,
        offset: usize,
        len: usize,
        write: bool,
        mut copy: impl FnMut() -> std::result::Result<(), Fault>,
    ) -> Result<()> {
        match copy() {
            Ok(()) => Ok(()),
            Err(fault) => self.retrying(fault, offset, len, write, copy),
        }
    }

    /// [`guarded_copy`](Self::guarded_copy) after the first try faulted with `fault`.
    #[cold]
    #[inline(never)]
    fn retrying(
        &self,
        mut fault: Fault,
        offset: usize,
        len: usize,
        write: bool,
        mut copy: impl FnMut() -> std::result::Result<(), Fault>,
    ) -> Result<()> {
        let mut tries = 0;
        loop {
            let error = self.fault_error(fault, offset, len, write);
            // Only an intact view is worth another try: where the fallback guard caught the
            // fault (Linux other than x86-64), a private zero page now stands where the
            // object's page was, and a second copy would "succeed" on its zeros.
            if !matches!(error, Error::InPageError { .. })
                || fault.cause != Cause::Unknown
                || self.ensure_intact(offset, len).is_err()
            {
                return Err(error);
            }
            tries += 1;
            if tries == 3 {
                return Err(error);
            }
            let Err(again) = copy() else { return Ok(()) };
            fault = again;
        }
    }

    /// The error for a fault of a copy of `len` bytes at the view's byte `offset`:
    /// truncated if the faulting page now lies past the end of the file or object; no space
    /// if a write could not get a page and the file system is full; an in-page error
    /// otherwise.
    #[cold]
    pub(crate) fn fault_error(
        &self,
        fault: Fault,
        offset: usize,
        len: usize,
        write: bool,
    ) -> Error {
        let at = self.offset + (fault.addr.saturating_sub(self.data as usize)) as u64;
        let backing = self.backing.as_deref();
        if backing.and_then(sys::map::current_len).is_some_and(|end| at >= end) {
            return Error::Truncated { offset, len };
        }
        let full = || backing.and_then(sys::map::free_bytes).is_some_and(|free| free < 65_536);
        match fault.cause {
            Cause::NoSpace => Error::StorageFull { offset, len },
            Cause::Unknown if write && full() => Error::StorageFull { offset, len },
            Cause::Unknown | Cause::Io => Error::InPageError { offset, len },
        }
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

    /// Unmaps the view now (`UnmapViewOfFile` / `munmap`) and reports the OS's answer,
    /// which dropping the view ignores.
    ///
    /// ```
    /// let view = mmf::Mapping::anonymous(4096)?.view(..)?;
    /// view.unmap()?;
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// The OS's refusal.
    ///
    /// # References
    /// [`munmap(2)`](https://man7.org/linux/man-pages/man2/munmap.2.html),
    /// [`UnmapViewOfFile`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-unmapviewoffile)
    #[doc(alias = "UnmapViewOfFile")]
    #[doc(alias = "munmap")]
    pub fn unmap(self) -> Result<()> {
        self.region.map_or(Ok(()), Region::unmap)
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
    /// A view that may write.
    pub(super) fn new(view: View) -> ViewMut {
        ViewMut { view }
    }

    /// The read-only side, to change (a growable view's length).
    pub(super) fn inner_mut(&mut self) -> &mut View {
        &mut self.view
    }

    /// Registers the view's pages for zero pages in place of pages its object loses (a
    /// peer truncating it: `sys::fault::zero_fill`), for mmf's own shared structures, whose
    /// plain atomics admit any bytes and which check the returned flag after each
    /// operation. The view keeps the registration and drops it before it unmaps. `None`
    /// if the view maps nothing of its own (empty, or a growable view's pages) or all
    /// registration slots are taken.
    pub(crate) fn zero_fill_lost_pages(&mut self) -> Option<&'static AtomicBool> {
        let view = &mut self.view;
        view.region.as_ref()?; // nothing mapped of its own
        if view.lost_pages.is_none() {
            view.lost_pages = Some(zero_fill::register(view.data, view.len)?);
        }
        view.lost_pages.as_ref().map(ZeroFill::flag)
    }

    /// Copies `data` into the view starting `offset` bytes in.
    ///
    /// Takes `&self`: a write through a view is a write to memory that other views and
    /// processes share, like a store through the atomics of [`get`](Self::get). So a
    /// process can hold a typed reference into its view and still write through it:
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// let mapping = mmf::Mapping::anonymous(4096)?;
    /// let view = mapping.view_mut(..)?;
    /// let counter: &AtomicU64 = view.get(0)?;
    /// counter.fetch_add(1, Ordering::Relaxed);
    /// view.write_at(64, b"status: running")?; // while `counter` is held
    /// assert!(view.write_at(4094, b"end").is_err()); // past the end
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfRange`] or [`Error::Overflow`] if the range is not inside the view;
    /// [`Error::Truncated`] as for [`View::read_at`]: writes past a peer's truncation are
    /// lost and reported; [`Error::StorageFull`] when the file system had no block for a
    /// page the write needed.
    ///
    /// # Write-through views
    ///
    /// On a view made with [`ViewOptions::write_through`](crate::ViewOptions::write_through)
    /// this is the file's own write at the view's offset (`pwrite`, `WriteFile`): every view
    /// sees the bytes when it returns, a full disk is [`Error::StorageFull`] from the write,
    /// and a write past the file's current end (a peer truncated it) extends the file again,
    /// as `pwrite` does.
    #[inline]
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        let len = data.len();
        let dst = self.view.at(offset, len)?;
        if let Some(file) = &self.view.through {
            // SAFETY: `data` is the caller's live buffer.
            return unsafe { self.view.write_file(file, offset, data.as_ptr(), len, None) };
        }
        self.view.ensure_intact(offset, len)?;
        let range = self.view.guarded(dst, len);
        let copy = || {
            // SAFETY: `dst..dst+len` is mapped and writable; no slice from `as_mut_slice` is
            // alive (it borrows the view mutably, and this borrows it shared), and one from
            // `as_slice` comes with the caller's promise that nothing writes meanwhile; a fault
            // from a truncating peer is caught.
            unsafe { sys::fault::copy_into_view(dst, data.as_ptr(), len, [Some(range), None]) }
        };
        self.view.guarded_copy(offset, len, true, copy)
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
    /// faulted is broken from then on); [`Error::StorageFull`] as for
    /// [`write_at`](Self::write_at).
    ///
    /// On a write-through view this is one `pwrite` / `WriteFile` straight from `src`'s
    /// pages: one copy, as `write_at` with a buffer would need two.
    pub fn copy_from(
        &self,
        offset: usize,
        src: &View,
        src_offset: usize,
        len: usize,
    ) -> Result<()> {
        let to = self.view.at(offset, len)?;
        let from = src.at(src_offset, len)?;
        if let Some(file) = &self.view.through {
            src.ensure_intact(src_offset, len)?;
            let source = Some((src, src_offset));
            // SAFETY: `from..from+len` lies inside `src`, which the borrow keeps mapped.
            return unsafe { self.view.write_file(file, offset, from, len, source) };
        }
        self.view.ensure_intact(offset, len)?;
        src.ensure_intact(src_offset, len)?;
        let ranges = [Some(self.view.guarded(to, len)), Some(src.guarded(from, len))];
        let mut tries = 0;
        loop {
            // SAFETY: `from..from+len` is readable and `to..to+len` writable for the copy; no
            // slice from `as_mut_slice` is alive (as in `write_at`); faults are caught.
            let Err(fault) = (unsafe { sys::fault::copy_into_view(to, from, len, ranges) }) else {
                return Ok(());
            };
            // The fault is on the side whose range holds the faulting address.
            let into_self = (to as usize..to as usize + len).contains(&fault.addr);
            let error = if into_self {
                self.view.fault_error(fault, offset, len, true)
            } else {
                src.fault_error(fault, src_offset, len, false)
            };
            // As `retrying`: an unexplained fault may be a peer's truncate-and-regrow.
            tries += 1;
            let unexplained =
                matches!(error, Error::InPageError { .. }) && fault.cause == Cause::Unknown;
            if !unexplained || tries == 3 {
                return Err(error);
            }
        }
    }

    /// Address of the view's first byte, for writing. A write-through view's pages are
    /// mapped read-only: a store through this pointer there faults (`SIGSEGV` / access
    /// violation) — write with [`write_at`](Self::write_at).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.view.data
    }

    /// The view as a mutable byte slice.
    ///
    /// # Safety
    /// As [`View::as_slice`]: for as long as the slice lives, nobody else reads or writes
    /// the bytes (other views, other processes, the file's other users) and nobody
    /// truncates the file below the view's end. The view is not write-through
    /// ([`ViewOptions::write_through`](crate::ViewOptions::write_through)): its pages are
    /// mapped read-only, and a store through the slice would kill the process.
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
