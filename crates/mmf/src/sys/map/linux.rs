//! Linux: `mmap(2)` and friends. A file-mapping object is a file descriptor (a `dup` of
//! the caller's file, a `memfd`, or a named `/dev/shm` object); views are `mmap`s of it.
//! Closing the descriptor leaves views mapped, which is exactly what `CloseHandle` on a
//! mapping does on Windows.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use super::{
    Access, Advice, Advised, FileAccess, FileInfo, FileKind, FlushRange, Memory, Region, ViewKind,
};
use crate::error::{Error, Result};
use crate::sys::pal::{cvt, cvt_r, page_size};

/// Linux places views at any page boundary: the granularity is the page size.
pub(crate) fn allocation_granularity() -> usize {
    page_size()
}

/// `fstat(2)` for the type, then `fstatfs(2)` for a regular file's file system.
pub(crate) fn file_kind(file: &File) -> io::Result<FileKind> {
    use std::os::unix::fs::FileTypeExt;
    let t = file.metadata()?.file_type();
    Ok(if t.is_file() {
        // SAFETY: `statfs` is plain data that fstatfs fills.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a pointer to a statfs buffer.
        cvt(unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) })?;
        // File systems whose regular files the kernel makes as they are read: their sizes
        // say nothing about their content, and they cannot be mapped.
        let pseudo = [
            (libc::PROC_SUPER_MAGIC, "procfs"),
            (libc::SYSFS_MAGIC, "sysfs"),
            (libc::DEBUGFS_MAGIC, "debugfs"),
            (libc::TRACEFS_MAGIC, "tracefs"),
            (libc::SECURITYFS_MAGIC, "securityfs"),
            (libc::CGROUP_SUPER_MAGIC, "cgroup"),
            (libc::CGROUP2_SUPER_MAGIC, "cgroup2"),
            (libc::BPF_FS_MAGIC, "bpf"),
        ];
        match pseudo.iter().find(|(magic, _)| *magic == st.f_type) {
            Some(&(_, file_system)) => FileKind::Pseudo { file_system },
            None => FileKind::Regular,
        }
    } else if t.is_dir() {
        FileKind::Directory
    } else if t.is_block_device() {
        FileKind::BlockDevice
    } else if t.is_char_device() {
        FileKind::CharDevice
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_socket() {
        FileKind::Socket
    } else {
        FileKind::Other
    })
}

/// `ioctl(BLKGETSIZE64)`: a block device's size in bytes (its `st_size` is 0).
fn device_size(file: &File) -> io::Result<u64> {
    const BLKGETSIZE64: libc::Ioctl = libc::_IOR::<u64>(0x12, 114);
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points to a local.
    cvt(unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64, &mut size) })?;
    Ok(size)
}

/// The bytes a mapping of the file covers: a block device's size (`ioctl(BLKGETSIZE64)`),
/// else `st_size`.
pub(crate) fn file_len(file: &File, kind: FileKind) -> io::Result<u64> {
    match kind {
        FileKind::BlockDevice => device_size(file),
        _ => Ok(file.metadata()?.len()),
    }
}

/// `fstat`, `fstatfs`, `ioctl(BLKGETSIZE64)` for a block device, and `fcntl(F_GETFL)`.
pub(crate) fn file_info(file: &File) -> Result<FileInfo> {
    let kind = file_kind(file).map_err(Error::os("fstat"))?;
    let len = file_len(file, kind).map_err(|e| match kind {
        FileKind::BlockDevice => Error::Os { op: "ioctl(BLKGETSIZE64)", source: e },
        _ => Error::Os { op: "fstat", source: e },
    })?;
    // SAFETY: F_GETFL only reads the status flags of a descriptor we own for the call.
    let flags = cvt(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) })
        .map_err(Error::os("fcntl(F_GETFL)"))?;
    let (read, write) = match flags & libc::O_ACCMODE {
        libc::O_RDONLY => (true, false),
        libc::O_WRONLY => (false, true),
        _ => (true, true),
    };
    Ok(FileInfo { len, kind, access: Some(FileAccess { read, write }) })
}

/// `open(path, flags | O_NONBLOCK | O_NOCTTY)`, then `fcntl(F_SETFL)` clears `O_NONBLOCK`
/// again: the open itself never waits for a FIFO's other end, and the handle then reads
/// and writes as usual. (The options' custom flags are replaced.)
pub(crate) fn open_nonblocking(path: &Path, options: &OpenOptions) -> io::Result<File> {
    let file = options.clone().custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL only reads the status flags of the descriptor just opened.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: F_SETFL changes only the status flags of the descriptor just opened.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) })?;
    Ok(file)
}

/// The file's size now (`fstat`; a block device's from the device), if it can be had.
pub(crate) fn current_len(file: &File) -> Option<u64> {
    let kind = file_kind(file).ok()?;
    file_len(file, kind).ok()
}

/// `fstatvfs` of the file's file system, if it can be had.
fn statvfs(file: &File) -> Option<libc::statvfs> {
    // SAFETY: statvfs is plain data that fstatvfs fills.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a pointer to a statvfs buffer.
    let ok = unsafe { libc::fstatvfs(file.as_raw_fd(), &mut st) } == 0;
    ok.then_some(st)
}

/// The bytes an unprivileged user may still allocate in the file's file system
/// (`fstatvfs`), if it can be had.
pub(crate) fn free_bytes(file: &File) -> Option<u64> {
    statvfs(file).map(|st| st.f_bavail.saturating_mul(st.f_frsize))
}

/// The bytes this process may still allocate in the file's file system: `f_bfree` for
/// root (which may use the blocks reserved for it), `f_bavail` for others; `None` where
/// the file system gives no block counts (some FUSE and virtual ones).
pub(crate) fn allocatable_bytes(file: &File) -> Option<u64> {
    let st = statvfs(file).filter(|st| st.f_blocks > 0)?;
    // SAFETY: geteuid cannot fail and has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let blocks = if root { st.f_bfree } else { st.f_bavail };
    Some(blocks.saturating_mul(st.f_frsize))
}

/// `fcntl(F_DUPFD_CLOEXEC)`.
pub(crate) fn duplicate(file: &File) -> Result<File> {
    file.try_clone().map_err(Error::os("fcntl(F_DUPFD_CLOEXEC)"))
}

/// A file-mapping object: the descriptor that views are mapped from.
#[derive(Debug)]
pub(crate) struct Section {
    fd: Arc<File>,
    memory: Memory,
}

impl Section {
    /// `CreateFileMapping` on a file: `ftruncate` grows the file to `size` when a
    /// read-write mapping asks for more than its `file_len` bytes.
    pub(crate) fn from_file(
        file: &Arc<File>,
        access: Access,
        size: u64,
        file_len: u64,
    ) -> Result<Self> {
        if access == Access::ReadWrite && size > file_len {
            file.set_len(size).map_err(Error::os("ftruncate"))?;
        }
        // A regular file on tmpfs is memory; a device node on devtmpfs is the device's.
        let regular = file_kind(file).is_ok_and(|kind| kind == FileKind::Regular);
        let memory = if regular && on_tmpfs(file) { Memory::Shared } else { Memory::File };
        Ok(Section { fd: Arc::clone(file), memory })
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
        Ok(Section { fd: Arc::new(file), memory: Memory::Shared })
    }

    /// The mapping object of a named shared-memory object. Its views are inherited by a
    /// `fork` child like any other mapping (the child is then a holder until it unmaps
    /// them or exits).
    pub(crate) fn shared(fd: Arc<File>) -> Self {
        Section { fd, memory: Memory::Shared }
    }

    /// The object's descriptor, to map more of it and to grow it (growable views).
    pub(crate) fn fd(&self) -> &File {
        &self.fd
    }

    /// A second reference to the same object.
    pub(crate) fn try_clone(&self) -> Result<Section> {
        Ok(Section { fd: Arc::clone(&self.fd), memory: self.memory })
    }

    /// What backs the section's pages.
    pub(crate) fn memory(&self) -> Memory {
        self.memory
    }

    /// The file or object the section maps (its descriptor).
    pub(crate) fn backing(&self) -> Option<Arc<File>> {
        Some(Arc::clone(&self.fd))
    }

    /// `mmap` of `len` bytes at the granularity-aligned file `offset`, at `address` if given
    /// (`MAP_FIXED_NOREPLACE`: refused, never placed over an existing mapping).
    pub(crate) fn map(
        &self,
        kind: ViewKind,
        offset: u64,
        len: usize,
        address: Option<usize>,
    ) -> Result<Region> {
        let (prot, mut flags) = match kind {
            ViewKind::Read => (libc::PROT_READ, libc::MAP_SHARED),
            ViewKind::Write => (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED),
            ViewKind::CopyOnWrite => (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE),
        };
        if address.is_some() {
            flags |= libc::MAP_FIXED_NOREPLACE;
        }
        let hint = address.unwrap_or(0) as *mut libc::c_void;
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
        // SAFETY: `ptr..ptr+len` is the mapping just created, owned by nothing else; from
        // here on the region unmaps it if we refuse it below.
        let region = unsafe { Region::new(ptr.cast(), len) };
        if address.is_some_and(|address| ptr as usize != address) {
            // A kernel older than 4.17 treats the flag as a hint and may place the view
            // elsewhere: undo it (by dropping the region) and refuse, as documented.
            return Err(Error::AddressTaken { address: address.unwrap_or(0), len });
        }
        Ok(region)
    }
}

/// `munmap`.
///
/// # Safety
/// `addr..addr+len` must be a mapping this module created, and nothing may use it
/// afterwards.
pub(super) unsafe fn unmap(addr: *mut u8, len: usize) -> Result<()> {
    // SAFETY: the caller guarantees the range is ours and unused from now on.
    cvt(unsafe { libc::munmap(addr.cast(), len) }).map(drop).map_err(Error::os("munmap"))
}

/// `addr..addr+len` rounded out to whole pages, as the memory-management calls take it.
fn page_span(addr: *const u8, len: usize) -> (*mut libc::c_void, usize) {
    let (start, end) = super::page_bounds(addr, len);
    (start as *mut libc::c_void, end - start)
}

/// `msync(MS_SYNC)`: writes the dirty pages of the range and waits. On Linux it ends in
/// `vfs_fsync_range(datasync)`, so the data and the file size reach the device. Memory
/// with no file behind it has nothing to write.
pub(crate) fn flush(range: FlushRange<'_>) -> Result<()> {
    if range.file.is_none() {
        return Ok(());
    }
    let (start, len) = page_span(range.addr, range.len);
    // SAFETY: msync does not change memory contents; on an unmapped range it fails with
    // ENOMEM instead of touching anything.
    cvt(unsafe { libc::msync(start, len, libc::MS_SYNC) }).map(drop).map_err(Error::os("msync"))
}

/// `fsync` of the directory `dir` that holds `path`: its entries (names of files created,
/// renamed, removed in it) reach the device. A directory this process may not read
/// (write and search permission only) cannot be opened to sync: then `syncfs` of the file
/// system, through `path` itself — slower, as it syncs everything, but it covers the entry.
pub(crate) fn sync_dir(path: &Path, dir: &Path) -> io::Result<()> {
    match OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(dir) {
        Ok(dir) => dir.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            let file = OpenOptions::new()
                .read(true)
                .open(path)
                .or_else(|_| OpenOptions::new().write(true).open(path))
                .map_err(|_| e)?;
            // SAFETY: syncfs only writes back the file system of an open descriptor.
            cvt(unsafe { libc::syncfs(file.as_raw_fd()) }).map(drop)
        }
        Err(e) => Err(e),
    }
}

/// Starts write-back of the file range without waiting: `sync_file_range(WRITE)`.
/// (`msync(MS_ASYNC)` is a no-op on Linux since 2.6.19, so it would start nothing.)
pub(crate) fn flush_async(range: FlushRange<'_>) -> Result<()> {
    let Some(file) = range.file else { return Ok(()) };
    let (off, n) = (range.file_offset as libc::off64_t, range.len as libc::off64_t);
    let fd = file.as_raw_fd();
    // SAFETY: sync_file_range only schedules write-back of the descriptor's page cache.
    cvt(unsafe { libc::sync_file_range(fd, off, n, libc::SYNC_FILE_RANGE_WRITE) })
        .map(drop)
        .map_err(Error::os("sync_file_range"))
}

/// Whether the file lives on tmpfs (its pages are `shmem`): `fstatfs`.
fn on_tmpfs(file: &File) -> bool {
    // SAFETY: statfs is plain data that fstatfs fills.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a pointer to a statfs buffer.
    let ok = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } == 0;
    ok && st.f_type == libc::TMPFS_MAGIC
}

/// Whether shared memory can get transparent huge pages at all here: the `shmem_enabled`
/// policy (`/sys/kernel/mm/transparent_hugepage/shmem_enabled`, and per-size knobs that
/// do not merely inherit it) is something other than `never` / `deny`. It is `never` by
/// default, and `MADV_HUGEPAGE` on shared memory then succeeds and does nothing.
fn shmem_huge_pages_possible() -> bool {
    const THP: &str = "/sys/kernel/mm/transparent_hugepage";
    let chosen = |path: &str| -> Option<String> {
        let text = std::fs::read_to_string(path).ok()?;
        let start = text.find('[')? + 1;
        let end = start + text[start..].find(']')?;
        Some(text[start..end].to_owned())
    };
    let allows = |policy: &str| matches!(policy, "always" | "within_size" | "advise" | "force");
    let top = chosen(&format!("{THP}/shmem_enabled"));
    let top_allows = top.as_deref().is_some_and(allows);
    if top_allows {
        return true;
    }
    let Ok(sizes) = std::fs::read_dir(THP) else { return false };
    sizes.flatten().any(|size| {
        let knob = size.path().join("shmem_enabled");
        knob.to_str().and_then(chosen).is_some_and(|p| allows(&p))
    })
}

/// `madvise`. Advice that cannot take effect is reported as not applied rather than as an
/// error or a false success: huge pages for shared memory under a `never` shmem policy,
/// and huge-page advice the kernel lacks (`EINVAL` without THP).
pub(crate) fn advise(
    addr: *const u8,
    len: usize,
    advice: Advice,
    memory: Memory,
) -> Result<Advised> {
    if advice == Advice::HugePages && memory == Memory::Shared && !shmem_huge_pages_possible() {
        return Ok(Advised::NotSupported);
    }
    let flag = match advice {
        Advice::Normal => libc::MADV_NORMAL,
        Advice::Sequential => libc::MADV_SEQUENTIAL,
        Advice::Random => libc::MADV_RANDOM,
        Advice::WillNeed => libc::MADV_WILLNEED,
        Advice::HugePages => libc::MADV_HUGEPAGE,
        Advice::NoHugePages => libc::MADV_NOHUGEPAGE,
        Advice::DontDump => libc::MADV_DONTDUMP,
        Advice::DoDump => libc::MADV_DODUMP,
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
            advise(start.cast(), len, Advice::WillNeed, Memory::File).map(drop)
        }
        // A page past the end of the file (truncated under the view) cannot be faulted in.
        Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {
            Err(Error::Truncated { offset: 0, len })
        }
        Err(e) => Err(Error::Os { op: "madvise(MADV_POPULATE)", source: e }),
    }
}

/// `mlock`: faults the range in and keeps it in RAM. For a copy-on-write view,
/// `mlock2(MLOCK_ONFAULT)` then `MADV_POPULATE_READ`: `mlock` would write-fault every page
/// of a private writable mapping into a private copy, and the view would stop seeing the
/// file; this way the page-cache pages are locked as they are, and copied only when the
/// view writes them.
pub(crate) fn lock(addr: *const u8, len: usize, copy_on_write: bool) -> Result<()> {
    let (start, span) = page_span(addr, len);
    let limit = |op| {
        move |e: io::Error| match e.raw_os_error() {
            Some(libc::ENOMEM) | Some(libc::EPERM) | Some(libc::EAGAIN) => {
                Error::LockLimit { len, source: e }
            }
            _ => Error::Os { op, source: e },
        }
    };
    if !copy_on_write {
        // SAFETY: mlock only pins pages; it does not change their contents.
        return cvt(unsafe { libc::mlock(start, span) }).map(drop).map_err(limit("mlock"));
    }
    // SAFETY: mlock2 only marks the range to be pinned as pages come in; no contents change.
    cvt(unsafe { libc::mlock2(start, span, libc::MLOCK_ONFAULT) })
        .map_err(limit("mlock2(MLOCK_ONFAULT)"))?;
    populate(addr, len, false).inspect_err(|_| {
        // Leave nothing locked behind an error (the pages it did bring in stay in memory
        // only as long as the OS likes).
        // SAFETY: munlock only unpins pages.
        let _ = unsafe { libc::munlock(start, span) };
    })
}

/// `pwrite` of the `len` bytes at `data` to `offset` of the file (interrupted and short
/// writes continue). The page cache is the one every mapping of the file shows, so every
/// view sees the bytes when this returns.
///
/// # Safety
/// `data..data+len` is memory of this process that stays mapped during the call: the
/// caller's buffer, or a view (the kernel reads it; a page it cannot read is `EFAULT`,
/// never a signal).
pub(crate) unsafe fn write_file(
    file: &File,
    mut offset: u64,
    mut data: *const u8,
    mut len: usize,
) -> io::Result<()> {
    while len > 0 {
        let at = libc::off64_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        // SAFETY: the caller guarantees `data..data+len` stays mapped; the kernel copies from
        // it and reports an unreadable page as EFAULT.
        let n = cvt_r(|| unsafe { libc::pwrite64(file.as_raw_fd(), data.cast(), len, at) })?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let n = n as usize;
        // SAFETY: n <= len, so the pointer stays inside (or one past) the caller's range.
        data = unsafe { data.add(n) };
        len -= n;
        offset += n as u64;
    }
    Ok(())
}

/// Why the open file cannot serve a write-through view, if it cannot (`fcntl(F_GETFL)`):
/// with `O_APPEND` Linux puts every `pwrite` at the end of the file whatever its offset
/// (`pwrite(2)`, BUGS); with `O_DIRECT` writes must be aligned to the device's blocks.
pub(crate) fn write_through_refusal(file: &File) -> Option<&'static str> {
    // SAFETY: F_GETFL only reads the status flags of an open descriptor.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    if flags == -1 {
        return Some("the file's status flags cannot be read (fcntl F_GETFL failed)");
    }
    if flags & libc::O_APPEND != 0 {
        return Some(
            "the file was opened for appending (O_APPEND), so every write would go to its \
             end whatever the offset: open it without append to write through, or use an \
             ordinary read-write view",
        );
    }
    if flags & libc::O_DIRECT != 0 {
        return Some(
            "the file was opened with O_DIRECT, whose writes must be aligned to the \
             device's blocks: open it without O_DIRECT to write through, or use an ordinary \
             read-write view",
        );
    }
    None
}

/// Whether a write failed because its source buffer could not be read (`EFAULT`: a
/// mapped source truncated under it).
pub(crate) fn source_faulted(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::EFAULT)
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
