//! Durability: `FlushViewOfFile` and its async form, and [`Flushed`], what a flush did.
//!
//! What a flush costs is decided by what is dirty. A store through a mapping marks the whole
//! page-cache folio it lands in dirty (on Linux up to 2 MiB for a file cached in large
//! folios), and the flush writes all of it; the file's own write (`pwrite`, `WriteFile`)
//! dirties only the blocks it covers. Hence write-through views
//! ([`ViewOptions::write_through`](crate::ViewOptions::write_through)) for small durable
//! commits.

use super::View;
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::map::{Access, FlushRange, Memory, ViewKind};

/// What a flush did: whether the bytes now survive a crash of the machine, and if not why
/// there was nothing to write. Information, not an error (so not `#[must_use]`).
///
/// ```
/// use mmf::{Flushed, Mapping};
///
/// let view = Mapping::anonymous(4096)?.view_mut(..)?;
/// view.write_at(0, b"scratch")?;
/// // Anonymous memory has no storage behind it: nothing to write, ever.
/// assert_eq!(view.flush()?, Flushed::InMemory);
/// # Ok::<(), mmf::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flushed {
    /// The range's changes (and the file's size) are on the storage device.
    Durable,
    /// A copy-on-write view: the pages it wrote are private copies that never reach the
    /// file, so there was nothing to write.
    CopyOnWrite,
    /// A view of a read-only mapping: it cannot have changed anything, so it had nothing
    /// to write (the processes that write the file flush their own changes; on Linux a
    /// flush through a read-only file handle reaches nothing else).
    ReadOnly,
    /// Memory with no storage behind it — anonymous and named pagefile-backed memory, a
    /// file on tmpfs (`/dev/shm`) — so there was nothing to write: its bytes last until the
    /// last holder (or the machine) goes.
    InMemory,
    /// Windows, a file's section opened by name ([`Mapping::open`](crate::Mapping::open)):
    /// the pages were written to the file, but this process has no handle to the file to
    /// make its metadata (its size) durable; the file's own holders' flushes do that.
    PagesOnly,
}

impl Flushed {
    /// Whether the bytes now survive a crash of the machine.
    pub fn is_durable(self) -> bool {
        self == Flushed::Durable
    }
}

impl View {
    /// Writes the view's changes to the storage device and waits: afterwards they survive
    /// a crash of the machine. Returns what it did: [`Flushed::Durable`], or why there was
    /// nothing to write (a copy-on-write view, memory with no storage behind it).
    ///
    /// The cost is that of the dirty pages: a view with nothing dirty flushes in
    /// microseconds, whatever its size; a store through the mapping makes its whole
    /// page-cache folio dirty (up to 2 MiB on Linux), which the flush then writes. For
    /// small durable commits use a write-through view
    /// ([`ViewOptions::write_through`](crate::ViewOptions::write_through)), whose writes
    /// dirty only their blocks.
    ///
    /// ```
    /// use mmf::{Access, Flushed, MappingOptions};
    ///
    /// let file = tempfile::tempfile()?;
    /// let mapping = MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file)?;
    /// let view = mapping.view_mut(..)?;
    /// view.write_at(0, b"durable")?;
    /// # let on_tmpfs = view.flush()? == Flushed::InMemory;
    /// # if !on_tmpfs {
    /// assert_eq!(view.flush()?, Flushed::Durable);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Truncated`] if the file or object was truncated to end inside the view:
    /// what the view holds past the new end (written or not) never reaches the file — a
    /// truncation inside the last page raises no fault at the write, so this is where it
    /// shows; the OS's refusal (an I/O error of the device, for example).
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `msync(MS_SYNC)` of the range, which ends in `vfs_fsync_range(datasync)` —
    /// `fdatasync` limited to that file range: only its dirty pages are written, and the
    /// file's size is committed with them (a changed size is metadata a datasync must
    /// write: ext4, XFS and btrfs commit it with any range), so the size a mapping grew the
    /// file to is durable after any flush of any of its views. Windows: `FlushViewOfFile` (retried while another
    /// thread's flush holds the pages), then `FlushFileBuffers`, which writes the file's
    /// metadata — except for a view of a file's section opened by name, which has no
    /// handle to the file ([`Flushed::PagesOnly`]).
    ///
    /// # References
    /// [`msync(2)`](https://man7.org/linux/man-pages/man2/msync.2.html),
    /// [`FlushViewOfFile`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-flushviewoffile),
    /// [`FlushFileBuffers`](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-flushfilebuffers)
    #[doc(alias = "FlushViewOfFile")]
    #[doc(alias = "msync")]
    pub fn flush(&self) -> Result<Flushed> {
        self.flush_range(0, self.len())
    }

    /// [`flush`](Self::flush) for `len` bytes starting `offset` bytes into the view (any
    /// range; widened to whole pages internally). Only the range's dirty pages are written.
    ///
    /// ```
    /// use mmf::{Access, MappingOptions, ViewOptions};
    ///
    /// let file = tempfile::tempfile()?;
    /// let mapping = MappingOptions::new().access(Access::ReadWrite).size(1 << 20).map_file(&file)?;
    /// // A small commit: write through the file, sync the page that holds it.
    /// let view = ViewOptions::new().write_through(true).map_mut(&mapping)?;
    /// view.write_at(70_000, b"one record")?;
    /// view.flush_range(70_000, 10)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range outside the view; [`Error::Truncated`] if the file
    /// or object now ends inside the range (see [`flush`](Self::flush)); or the OS's
    /// refusal.
    ///
    /// # References
    /// As [`flush`](Self::flush).
    #[doc(alias = "FlushViewOfFile")]
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<Flushed> {
        let addr = self.at(offset, len)?;
        if self.kind == ViewKind::CopyOnWrite {
            return Ok(Flushed::CopyOnWrite);
        }
        if self.access != Access::ReadWrite {
            return Ok(Flushed::ReadOnly);
        }
        if self.memory == Memory::Shared {
            return Ok(Flushed::InMemory);
        }
        let file = self.file.as_deref();
        let done = if file.is_some() { Flushed::Durable } else { Flushed::PagesOnly };
        if len == 0 {
            return Ok(done);
        }
        let file_offset = self.offset() + offset as u64;
        sys::map::flush(FlushRange { addr, len, file, file_offset })?;
        self.ensure_within_file(offset, len)?;
        Ok(done)
    }

    /// Starts writing the view's changes back without waiting for the device: a way to
    /// overlap the device's work with more writing, before a final [`flush`](Self::flush).
    ///
    /// # Errors
    /// The OS's refusal.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `sync_file_range(SYNC_FILE_RANGE_WRITE)` on the file range
    /// (`msync(MS_ASYNC)` does nothing on Linux since 2.6.19). Windows: `FlushViewOfFile`
    /// alone, which starts the writes; the device may not have them yet.
    ///
    /// # References
    /// [`sync_file_range(2)`](https://man7.org/linux/man-pages/man2/sync_file_range.2.html),
    /// [`FlushViewOfFile`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-flushviewoffile)
    #[doc(alias = "FlushViewOfFile")]
    #[doc(alias = "sync_file_range")]
    pub fn flush_async(&self) -> Result<()> {
        self.flush_async_range(0, self.len())
    }

    /// [`flush_async`](Self::flush_async) for a byte range of the view.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range outside the view, or the OS's refusal.
    pub fn flush_async_range(&self, offset: usize, len: usize) -> Result<()> {
        let addr = self.at(offset, len)?;
        let nothing = self.kind == ViewKind::CopyOnWrite || self.access != Access::ReadWrite;
        if len == 0 || nothing || self.memory == Memory::Shared {
            return Ok(());
        }
        let file = self.file.as_deref();
        sys::map::flush_async(FlushRange {
            addr,
            len,
            file,
            file_offset: self.offset() + offset as u64,
        })
    }

    /// [`Error::Truncated`] if a writable view's range `offset..offset+len` reaches past the
    /// current end of its file or object: those bytes cannot have reached it.
    fn ensure_within_file(&self, offset: usize, len: usize) -> Result<()> {
        if self.kind != ViewKind::Write && self.through.is_none() {
            return Ok(());
        }
        let end = self.offset() + (offset + len) as u64;
        match self.backing.as_deref().and_then(sys::map::current_len) {
            Some(file_len) if file_len < end => Err(Error::Truncated { offset, len }),
            _ => Ok(()),
        }
    }
}
