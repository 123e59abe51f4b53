//! Contract: file-mapping objects and views.
//!
//! Every platform provides:
//!
//! - `page_size()`, `allocation_granularity()` (views start at multiples of the latter);
//! - `file_kind(&File) -> FileKind`, `file_len(&File, FileKind)` (a block device's size
//!   from the device), `file_info(&File) -> FileInfo` (kind, length, the handle's access),
//!   `duplicate(&File)` (a second handle to the same open file) and
//!   `open_nonblocking(path, options)` (an open that never waits for a FIFO's other end;
//!   the handle it returns blocks as usual);
//! - `Section`, the file-mapping object: `from_file(file, access, size, file_len)` (grows
//!   the file to `size` for [`Access::ReadWrite`]; the caller has checked everything
//!   else), `anonymous(size)` (zero-filled memory shared by all its views), and
//!   `map(kind, offset, len, address) -> Region` at a granularity-aligned `offset`, at
//!   `address` if given — refused, never placed over an existing mapping;
//! - `Section::memory()`: what backs its pages ([`Memory`]);
//! - on a mapped range: `flush` (durable: data and the file's size reach the device),
//!   `flush_async` (write-back started), `advise` (given the [`Memory`], so that advice that
//!   cannot take effect is reported as not applied), `populate`, `lock`, `unlock`,
//!   `residency` (one flag per page); `lock` of a copy-on-write view pins the pages
//!   without writing them (no private copies). `populate` of pages past the end of a file
//!   truncated under the view is `Error::Truncated { offset: 0, .. }` (the caller puts
//!   in the view's offset).
//!
//! - `sync_dir(dir)`: the directory's entries durable;
//! - `write_file(file, offset, data)`: the file's own write at an offset (`pwrite`,
//!   `WriteFile`), coherent with every view of the file; `write_through_refusal(file)`: why
//!   the handle cannot write through (Linux `O_APPEND`, `O_DIRECT`; Windows overlapped); `source_faulted(&io::Error)`: the
//!   write's source buffer could not be read.
//!
//! [`Region`] (one OS mapping, unmapped on drop) and the page rounding are written here
//! once, over each platform's `unmap`.

use std::fs::File;

use crate::error::Result;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

pub(crate) use crate::sys::pal::page_size;

pub(crate) mod access;
pub use access::Access;
pub(crate) mod file_kind;
pub(crate) mod reserve;
pub use file_kind::FileKind;
#[cfg(target_os = "linux")]
pub(crate) use imp::allocatable_bytes;
#[cfg(windows)]
pub(crate) use imp::protection;
pub(crate) use imp::{
    Section, advise, allocation_granularity, current_len, duplicate, file_info, file_kind,
    file_len, flush, flush_async, free_bytes, lock, open_nonblocking, populate, residency,
    source_faulted, sync_dir, unlock, write_file, write_through_refusal,
};

impl Access {
    /// Whether a mapping of this access allows a view of `kind`.
    pub(crate) fn allows(self, kind: ViewKind) -> bool {
        kind != ViewKind::Write || self == Access::ReadWrite
    }
}

/// The kind of a view, as `FILE_MAP_READ` / `FILE_MAP_WRITE` / `FILE_MAP_COPY`
/// (`PROT_READ`+`MAP_SHARED`, `PROT_READ|PROT_WRITE`+`MAP_SHARED`, `+MAP_PRIVATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ViewKind {
    Read,
    Write,
    CopyOnWrite,
}

impl ViewKind {
    /// The kind's name in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ViewKind::Read => "read-only",
            ViewKind::Write => "read-write",
            ViewKind::CopyOnWrite => "copy-on-write",
        }
    }
}

/// How a view will be used, for the OS's read-ahead and paging (`madvise` advice).
///
/// ```
/// use mmf::{Advice, Mapping};
///
/// let view = Mapping::anonymous(1 << 20)?.view(..)?;
/// view.advise(Advice::Sequential)?; // Linux: applied; Windows: reported as not supported
/// # Ok::<(), mmf::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// No special treatment (undoes `Sequential` and `Random`).
    Normal,
    /// Pages will be read in order: read ahead aggressively, drop read pages early.
    Sequential,
    /// Pages will be read in no order: do not read ahead.
    Random,
    /// The pages will be needed soon: start reading them in the background.
    WillNeed,
    /// Back the view with transparent huge pages where the kernel has them.
    HugePages,
    /// Do not use transparent huge pages for the view.
    NoHugePages,
    /// Leave the view out of core dumps (large maps, secrets): `MADV_DONTDUMP`.
    DontDump,
    /// Include the view in core dumps again (undoes `DontDump`): `MADV_DODUMP`.
    DoDump,
}

/// What backs a section's pages, where advice depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Memory {
    /// Shared memory: anonymous and named pagefile-backed mappings, and files on tmpfs
    /// (Linux `shmem`, whose huge-page policy is its own).
    Shared,
    /// A file on a disk file system.
    File,
}

/// Whether advice took effect: information, not an error to handle (so not `#[must_use]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advised {
    /// The OS accepted the advice.
    Applied,
    /// This platform or kernel has no equivalent; nothing was done.
    NotSupported,
}

/// What the OS says about an open file that is about to be mapped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileInfo {
    /// Its length in bytes (a block device's size, from the device).
    pub len: u64,
    /// What it is: only regular files and block devices can be mapped.
    pub kind: FileKind,
    /// The access the handle grants, where the platform tells.
    pub access: Option<FileAccess>,
}

/// The access an open file handle grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileAccess {
    pub read: bool,
    pub write: bool,
}

/// A range of a view to flush: the mapped bytes, and where they are in which file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FlushRange<'a> {
    pub addr: *const u8,
    pub len: usize,
    /// The mapped file, where this process has a handle to it (its handle makes the
    /// file's metadata durable, or starts write-back). `None` for memory without a file
    /// behind it in this process: anonymous and named pagefile-backed memory, and on
    /// Windows a file's section opened by name.
    pub file: Option<&'a File>,
    /// The file offset of `addr`.
    #[cfg_attr(windows, allow(dead_code, reason = "FlushViewOfFile takes the address alone"))]
    pub file_offset: u64,
}

/// One OS mapping (`mmap` / `MapViewOfFileEx`), unmapped on drop.
#[derive(Debug)]
pub(crate) struct Region {
    base: *mut u8,
    len: usize,
}

impl Region {
    /// Takes ownership of a mapping the platform has just made.
    ///
    /// # Safety
    /// `base..base+len` is a mapping created by this module and owned by nothing else.
    unsafe fn new(base: *mut u8, len: usize) -> Region {
        Region { base, len }
    }

    /// The first mapped byte (granularity-aligned).
    pub(crate) fn base(&self) -> *mut u8 {
        self.base
    }

    /// Unmaps now and reports the OS's answer, which the drop ignores.
    pub(crate) fn unmap(mut self) -> Result<()> {
        let len = std::mem::take(&mut self.len);
        // SAFETY: `base..base+len` is the mapping this region owns, consumed here; `len` is
        // now 0, so the drop that follows does nothing.
        unsafe { imp::unmap(self.base, len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: the region owns the mapping and is being dropped. An error would mean
            // the range was not a mapping at all; there is nothing to do about it in a
            // destructor, and `unmap()` reports it for callers who care.
            let _ = unsafe { imp::unmap(self.base, self.len) };
        }
    }
}

/// `addr..addr+len` rounded out to whole pages: `(first page, end of the last page)`, as
/// the memory-management calls take it.
pub(crate) fn page_bounds(addr: *const u8, len: usize) -> (usize, usize) {
    let page = page_size();
    let start = addr as usize & !(page - 1);
    (start, (addr as usize + len).next_multiple_of(page))
}
