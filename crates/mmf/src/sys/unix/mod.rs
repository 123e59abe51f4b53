//! Linux: `mmap(2)` and friends through `libc`. The only file (with `windows.rs`) that
//! makes system calls.
//!
//! A file-mapping object is the file descriptor itself (a `dup` of the caller's file, or a
//! `memfd` for anonymous mappings); views are `mmap`s of it. Closing the descriptor leaves
//! views mapped, which is exactly what `CloseHandle` on a mapping does on Windows.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::{Access, Advice, Advised, ViewKind};

mod fault;
pub(crate) mod named;
mod reaper;

pub(crate) use fault::{Guarded, guarded};

/// Held for reading while a named object's view is mapped and marked `MADV_DONTFORK`, and
/// for writing while the reaper forks.
pub(super) static FORK: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// `-1` → the last OS error; everything else passes through.
pub(super) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// `sysconf(_SC_PAGESIZE)`, asked once.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it only reads a system constant.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).ok().filter(|s| s.is_power_of_two()).unwrap_or(4096)
    })
}

/// Linux places views at any page boundary: the granularity is the page size.
pub(crate) fn allocation_granularity() -> usize {
    page_size()
}

/// Whether the open file allows reading and writing (`fcntl(F_GETFL)`).
pub(crate) fn file_access(file: &File) -> io::Result<Option<(bool, bool)>> {
    // SAFETY: F_GETFL only reads the status flags of a descriptor we own for the call.
    let flags = cvt(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) })?;
    Ok(Some(match flags & libc::O_ACCMODE {
        libc::O_RDONLY => (true, false),
        libc::O_WRONLY => (false, true),
        _ => (true, true),
    }))
}

/// A file-mapping object: the descriptor that views are mapped from.
#[derive(Debug)]
pub(crate) struct Section {
    fd: Arc<File>,
    /// Views are not inherited by `fork` (`MADV_DONTFORK`): a named object's views hold
    /// its lifetime lock, which a forked reaper must not keep.
    dontfork: bool,
}

impl Section {
    /// `CreateFileMapping` on a file: grows the file to `size` when a read-write mapping
    /// asks for more than it holds (the caller has checked everything else).
    pub(crate) fn from_file(file: &Arc<File>, access: Access, size: u64, len: u64) -> Result<Self> {
        if access == Access::ReadWrite && size > len {
            file.set_len(size).map_err(Error::os("ftruncate"))?;
        }
        Ok(Section { fd: Arc::clone(file), dontfork: false })
    }

    /// A pagefile-backed mapping: a `memfd` of `size` zero bytes, so that every view of it
    /// shares the same pages.
    pub(crate) fn anonymous(size: u64) -> Result<Self> {
        // SAFETY: the name is a valid NUL-terminated string; the flags are valid.
        let fd = cvt(unsafe { libc::memfd_create(c"mmf-anonymous".as_ptr(), libc::MFD_CLOEXEC) })
            .map_err(Error::os("memfd_create"))?;
        // SAFETY: memfd_create returned a new descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size).map_err(|e| match e.raw_os_error() {
            Some(libc::EFBIG) | Some(libc::ENOSPC) | Some(libc::ENOMEM) => Error::TooLarge { size },
            _ => Error::Os { op: "ftruncate", source: e },
        })?;
        Ok(Section { fd: Arc::new(file), dontfork: false })
    }

    /// The mapping object of a named shared-memory object.
    pub(crate) fn shared(fd: Arc<File>) -> Self {
        Section { fd, dontfork: true }
    }

    /// `mmap` of `len` bytes at the granularity-aligned file `offset`, at `address` if given
    /// (`MAP_FIXED_NOREPLACE`: refused, never placed over an existing mapping).
    pub(crate) fn map(
        &self,
        kind: ViewKind,
        offset: u64,
        len: usize,
        address: Option<usize>,
    ) -> Result<*mut u8> {
        let (prot, mut flags) = match kind {
            ViewKind::Read => (libc::PROT_READ, libc::MAP_SHARED),
            ViewKind::Write => (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED),
            ViewKind::CopyOnWrite => (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE),
        };
        if address.is_some() {
            flags |= libc::MAP_FIXED_NOREPLACE;
        }
        let hint = address.unwrap_or(0) as *mut libc::c_void;
        // A named object's view and its MADV_DONTFORK are made together, never across a
        // reaper's fork (which would copy the view and with it the object's lock).
        let _no_fork = self.dontfork.then(|| FORK.read().unwrap_or_else(|e| e.into_inner()));
        let off = libc::off_t::try_from(offset).map_err(|_| Error::TooLarge { size: offset })?;
        // SAFETY: with no address this creates a new mapping wherever the kernel chooses,
        // which never touches an existing one; with an address, MAP_FIXED_NOREPLACE makes
        // the kernel refuse (EEXIST) rather than replace anything mapped there.
        let ptr = unsafe { libc::mmap(hint, len, prot, flags, self.fd.as_raw_fd(), off) };
        if ptr == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            return Err(match (err.raw_os_error(), address) {
                (Some(libc::EEXIST), Some(address)) => Error::AddressTaken { address, len },
                (Some(libc::ENOMEM), None) => Error::TooLarge { size: len as u64 },
                _ => Error::Os { op: "mmap", source: err },
            });
        }
        if let Some(address) = address {
            if ptr as usize != address {
                // A kernel older than 4.17 treats the flag as a hint and may place the view
                // elsewhere: undo it and refuse, as documented.
                // SAFETY: `ptr..ptr+len` is the mapping just created, not yet shared.
                let _ = unsafe { unmap(ptr.cast(), len) };
                return Err(Error::AddressTaken { address, len });
            }
        }
        if self.dontfork {
            // SAFETY: MADV_DONTFORK only changes what a future fork copies.
            if let Err(e) = cvt(unsafe { libc::madvise(ptr, len, libc::MADV_DONTFORK) }) {
                // SAFETY: the mapping just created, not yet shared.
                let _ = unsafe { unmap(ptr.cast(), len) };
                return Err(Error::Os { op: "madvise(MADV_DONTFORK)", source: e });
            }
        }
        Ok(ptr.cast())
    }
}

/// `munmap`.
///
/// # Safety
/// `addr..addr+len` must be a mapping this crate created, and no reference into it may be
/// used afterwards.
pub(crate) unsafe fn unmap(addr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: the caller guarantees the range is ours and unused from now on.
    cvt(unsafe { libc::munmap(addr.cast(), len) }).map(drop)
}

/// Rounds `addr..addr+len` out to whole pages, as the memory-management calls require.
fn page_span(addr: *const u8, len: usize) -> (*mut libc::c_void, usize) {
    let page = page_size();
    let start = addr as usize & !(page - 1);
    let end = (addr as usize + len).next_multiple_of(page);
    (start as *mut libc::c_void, end - start)
}

/// `msync(MS_SYNC)`: writes the dirty pages of the range and waits. On Linux it ends in
/// `vfs_fsync_range(datasync)`, so the data and the file size reach the device.
pub(crate) fn flush(addr: *const u8, len: usize, _file: Option<&File>) -> Result<()> {
    let (start, len) = page_span(addr, len);
    // SAFETY: msync does not change memory contents; on an unmapped range it fails with
    // ENOMEM instead of touching anything.
    cvt(unsafe { libc::msync(start, len, libc::MS_SYNC) }).map(drop).map_err(Error::os("msync"))
}

/// Starts write-back of the file range without waiting: `sync_file_range(WRITE)`.
/// (`msync(MS_ASYNC)` is a no-op on Linux since 2.6.19, so it would start nothing.)
pub(crate) fn flush_async(
    _addr: *const u8,
    len: usize,
    file: Option<&File>,
    offset: u64,
) -> Result<()> {
    let Some(file) = file else { return Ok(()) };
    let (off, n) = (offset as libc::off64_t, len as libc::off64_t);
    // SAFETY: sync_file_range only schedules write-back of the descriptor's page cache.
    cvt(unsafe { libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) })
        .map(drop)
        .map_err(Error::os("sync_file_range"))
}

/// `madvise`. Advice the kernel lacks (`EINVAL` for huge pages without THP) is reported as
/// not applied rather than as an error.
pub(crate) fn advise(addr: *const u8, len: usize, advice: Advice) -> Result<Advised> {
    let flag = match advice {
        Advice::Normal => libc::MADV_NORMAL,
        Advice::Sequential => libc::MADV_SEQUENTIAL,
        Advice::Random => libc::MADV_RANDOM,
        Advice::WillNeed => libc::MADV_WILLNEED,
        Advice::HugePages => libc::MADV_HUGEPAGE,
        Advice::NoHugePages => libc::MADV_NOHUGEPAGE,
    };
    let (start, len) = page_span(addr, len);
    // SAFETY: none of these advice values changes memory contents (MADV_DONTNEED and
    // MADV_FREE, which can, are not offered); on an unmapped range madvise fails.
    match cvt(unsafe { libc::madvise(start, len, flag) }) {
        Ok(_) => Ok(Advised::Applied),
        Err(e)
            if e.raw_os_error() == Some(libc::EINVAL)
                && matches!(advice, Advice::HugePages | Advice::NoHugePages) =>
        {
            Ok(Advised::NotSupported)
        }
        Err(e) => Err(Error::Os { op: "madvise", source: e }),
    }
}

/// Faults the range in now: `MADV_POPULATE_WRITE` for writable views (so later stores take
/// no write-protect fault), `MADV_POPULATE_READ` otherwise; before Linux 5.14 falls back to
/// `MADV_WILLNEED` (read-ahead only).
pub(crate) fn populate(addr: *const u8, len: usize, write: bool) -> Result<()> {
    let flag = if write { libc::MADV_POPULATE_WRITE } else { libc::MADV_POPULATE_READ };
    let (start, len) = page_span(addr, len);
    // SAFETY: populating faults pages in (breaking copy-on-write for a private writable
    // view, which keeps its contents); it never changes what the memory holds.
    match cvt(unsafe { libc::madvise(start, len, flag) }) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            advise(start.cast(), len, Advice::WillNeed).map(drop)
        }
        Err(e) => Err(Error::Os { op: "madvise(MADV_POPULATE)", source: e }),
    }
}

/// `mlock`: faults the range in and keeps it in RAM.
pub(crate) fn lock(addr: *const u8, len: usize) -> Result<()> {
    let (start, len) = page_span(addr, len);
    // SAFETY: mlock only pins pages; it does not change their contents.
    cvt(unsafe { libc::mlock(start, len) }).map(drop).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOMEM) | Some(libc::EPERM) | Some(libc::EAGAIN) => Error::Os {
            op: "mlock (raise RLIMIT_MEMLOCK, e.g. `ulimit -l`, or lock less)",
            source: e,
        },
        _ => Error::Os { op: "mlock", source: e },
    })
}

/// `munlock`.
pub(crate) fn unlock(addr: *const u8, len: usize) -> Result<()> {
    let (start, len) = page_span(addr, len);
    // SAFETY: munlock only unpins pages.
    cvt(unsafe { libc::munlock(start, len) }).map(drop).map_err(Error::os("munlock"))
}

/// `mincore`: for each page of the range, whether it is in memory (for file views: in the
/// page cache, mapped by this process or not).
pub(crate) fn residency(addr: *const u8, len: usize) -> Result<Vec<bool>> {
    let (start, len) = page_span(addr, len);
    let mut vec = vec![0u8; len / page_size()];
    // SAFETY: `vec` has one byte for each page of the page-aligned range, as mincore needs.
    cvt(unsafe { libc::mincore(start, len, vec.as_mut_ptr().cast()) })
        .map_err(Error::os("mincore"))?;
    Ok(vec.into_iter().map(|b| b & 1 == 1).collect())
}

/// `fdatasync`, then `posix_fadvise(POSIX_FADV_DONTNEED)` over the whole file.
pub(crate) fn evict(file: &File) -> Result<()> {
    file.sync_data().map_err(Error::os("fdatasync"))?;
    // SAFETY: advice about our own descriptor's page cache; no memory is touched.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(Error::Os { op: "posix_fadvise", source: io::Error::from_raw_os_error(rc) });
    }
    Ok(())
}

/// Data ranges by `lseek(SEEK_DATA)` / `lseek(SEEK_HOLE)`.
pub(crate) fn data_ranges(file: &File) -> Result<Vec<std::ops::Range<u64>>> {
    let len = file.metadata().map_err(Error::os("fstat"))?.len();
    // lseek moves the file offset: seek on an open file description of our own, so that
    // the caller's offset stays where it was.
    let own = File::open(format!("/proc/self/fd/{}", file.as_raw_fd()));
    let file = own.as_ref().unwrap_or(file);
    let seek = |offset: u64, whence| -> io::Result<Option<u64>> {
        // SAFETY: lseek only moves the offset of a descriptor we are allowed to move.
        let at = unsafe { libc::lseek(file.as_raw_fd(), offset as libc::off_t, whence) };
        match at {
            -1 if io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) => Ok(None),
            -1 => Err(io::Error::last_os_error()),
            at => Ok(Some(at as u64)),
        }
    };
    let mut ranges = Vec::new();
    let mut at = 0;
    while at < len {
        let start = match seek(at, libc::SEEK_DATA) {
            Ok(Some(start)) => start,
            Ok(None) => break, // only a hole up to the end
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return Ok(std::iter::once(0..len).collect());
            }
            Err(e) => return Err(Error::Os { op: "lseek(SEEK_DATA)", source: e }),
        };
        let end =
            seek(start, libc::SEEK_HOLE).map_err(Error::os("lseek(SEEK_HOLE)"))?.unwrap_or(len);
        ranges.push(start..end.min(len));
        at = end;
    }
    Ok(ranges)
}
