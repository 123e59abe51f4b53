//! Windows: the Win32 calls of the classic example (`CreateFileMappingW`, `MapViewOfFileEx`,
//! `FlushViewOfFile`, `UnmapViewOfFile`, `CloseHandle`) and their companions, through
//! `windows-sys`. A file-mapping object is a section handle; views are `MapViewOfFileEx`
//! of it. Closing the handle leaves views mapped: Windows keeps the section alive while
//! views exist.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;
use std::sync::Arc;

use windows_sys::Wdk::Storage::FileSystem::{
    FILE_ACCESS_INFORMATION, FILE_MODE_INFORMATION, FILE_SYNCHRONOUS_IO_ALERT,
    FILE_SYNCHRONOUS_IO_NONALERT, FileAccessInformation, FileModeInformation,
    NtQueryInformationFile,
};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_COMMITMENT_LIMIT, ERROR_INVALID_ADDRESS, ERROR_LOCK_VIOLATION,
    ERROR_NOACCESS, ERROR_NOT_ENOUGH_MEMORY, ERROR_NOT_LOCKED, ERROR_WORKING_SET_QUOTA, HANDLE,
    INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_READ_DATA, FILE_TYPE_CHAR, FILE_TYPE_DISK, FILE_TYPE_PIPE, FILE_WRITE_DATA,
    FlushFileBuffers, GetFileType, WriteFile,
};
use windows_sys::Win32::System::IO::{IO_STATUS_BLOCK, OVERLAPPED};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP, FILE_MAP_COPY, FILE_MAP_READ, FILE_MAP_WRITE, FlushViewOfFile,
    MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFileEx, PAGE_PROTECTION_FLAGS, PAGE_READONLY,
    PAGE_READWRITE, PAGE_WRITECOPY, PrefetchVirtualMemory, UnmapViewOfFile, VirtualLock,
    VirtualUnlock, WIN32_MEMORY_RANGE_ENTRY,
};
use windows_sys::Win32::System::ProcessStatus::{
    K32QueryWorkingSetEx, PSAPI_WORKING_SET_EX_INFORMATION,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetProcessWorkingSetSize, SetProcessWorkingSetSize,
};

use super::{
    Access, Advice, Advised, FileAccess, FileInfo, FileKind, FlushRange, Memory, Region, ViewKind,
};
use crate::error::{Error, Result};
pub(crate) use crate::sys::pal::allocation_granularity;
use crate::sys::pal::{cvt, is, page_size, split};

/// `GetFileType`, then for a disk file `GetFileInformationByHandle` (directory or not).
/// Pipes and sockets are both `FILE_TYPE_PIPE`: [`FileKind::Fifo`].
pub(crate) fn file_kind(file: &File) -> io::Result<FileKind> {
    // SAFETY: the handle is open for the call; GetFileType only asks about it.
    let kind = unsafe { GetFileType(file.as_raw_handle() as HANDLE) };
    Ok(match kind {
        FILE_TYPE_DISK if file.metadata()?.is_dir() => FileKind::Directory,
        FILE_TYPE_DISK => FileKind::Regular,
        FILE_TYPE_CHAR => FileKind::CharDevice,
        FILE_TYPE_PIPE => FileKind::Fifo,
        _ => match io::Error::last_os_error() {
            // FILE_TYPE_UNKNOWN with an error: the call failed.
            e if e.raw_os_error().is_some_and(|code| code != 0) => return Err(e),
            _ => FileKind::Other,
        },
    })
}

/// The file's length (`GetFileInformationByHandle`) for a disk file; 0 for a device or a
/// pipe, which have none (and refuse the call). Windows maps no block devices.
pub(crate) fn file_len(file: &File, kind: FileKind) -> io::Result<u64> {
    match kind {
        FileKind::Regular | FileKind::Directory => Ok(file.metadata()?.len()),
        _ => Ok(0),
    }
}

/// Windows opens pipes and devices without waiting for anyone (`CreateFileW` on a busy
/// pipe fails with `ERROR_PIPE_BUSY`), so this is a plain open.
pub(crate) fn open_nonblocking(path: &Path, options: &OpenOptions) -> io::Result<File> {
    options.open(path)
}

/// `file_kind`, `GetFileInformationByHandle` for a disk file's length (a device or a pipe
/// has none), and the handle's granted access
/// from `NtQueryInformationFile(FileAccessInformation)` (`None` where the system does not
/// say; `CreateFileMappingW` then decides).
pub(crate) fn file_info(file: &File) -> Result<FileInfo> {
    let kind = file_kind(file).map_err(Error::os("GetFileType"))?;
    let len = file_len(file, kind).map_err(Error::os("GetFileInformationByHandle"))?;
    let mut info = FILE_ACCESS_INFORMATION { AccessFlags: 0 };
    // SAFETY: IO_STATUS_BLOCK is plain data that the call fills.
    let mut status: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is open for the call; the buffer is a FILE_ACCESS_INFORMATION of
    // the size passed.
    let rc = unsafe {
        NtQueryInformationFile(
            file.as_raw_handle() as HANDLE,
            &mut status,
            (&raw mut info).cast(),
            size_of::<FILE_ACCESS_INFORMATION>() as u32,
            FileAccessInformation,
        )
    };
    let flags = info.AccessFlags;
    let access = (rc >= 0).then_some(FileAccess {
        read: flags & FILE_READ_DATA != 0,
        write: flags & FILE_WRITE_DATA != 0,
    });
    Ok(FileInfo { len, kind, access })
}

/// The file's size now (`GetFileSizeEx`), if it can be had.
pub(crate) fn current_len(file: &File) -> Option<u64> {
    file.metadata().ok().map(|m| m.len())
}

/// Not asked on Windows: an in-page error carries its cause (`STATUS_DISK_FULL`).
pub(crate) fn free_bytes(_file: &File) -> Option<u64> {
    None
}

/// `DuplicateHandle`.
pub(crate) fn duplicate(file: &File) -> Result<File> {
    file.try_clone().map_err(Error::os("DuplicateHandle"))
}

/// The page protection of a section of this access.
pub(crate) fn protection(access: Access) -> PAGE_PROTECTION_FLAGS {
    match access {
        Access::ReadOnly => PAGE_READONLY,
        Access::ReadWrite => PAGE_READWRITE,
        Access::CopyOnWrite => PAGE_WRITECOPY,
    }
}

/// A file-mapping object (section handle); `CloseHandle` on drop.
#[derive(Debug)]
pub(crate) struct Section {
    handle: OwnedHandle,
    memory: Memory,
}

fn create(
    file: HANDLE,
    protect: PAGE_PROTECTION_FLAGS,
    size: u64,
    memory: Memory,
) -> io::Result<Section> {
    let (high, low) = split(size);
    // SAFETY: `file` is an open file handle or INVALID_HANDLE_VALUE (pagefile-backed);
    // no security attributes and no name.
    let handle =
        unsafe { CreateFileMappingW(file, std::ptr::null(), protect, high, low, std::ptr::null()) };
    if handle.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new section handle that nothing else owns.
    Ok(unsafe { Section::from_raw(handle, memory) })
}

impl Section {
    /// Takes ownership of a section handle.
    ///
    /// # Safety
    /// `handle` is an open section handle that nothing else closes.
    pub(crate) unsafe fn from_raw(handle: HANDLE, memory: Memory) -> Section {
        // SAFETY: as the caller promises.
        Section { handle: unsafe { OwnedHandle::from_raw_handle(handle.cast()) }, memory }
    }

    /// The same section, with what backs its pages as found out after opening it.
    pub(crate) fn with_memory(self, memory: Memory) -> Section {
        Section { memory, ..self }
    }

    /// What backs the section's pages.
    pub(crate) fn memory(&self) -> Memory {
        self.memory
    }

    /// A section handle is not a file: the mapping's file (if any) stands for it.
    pub(crate) fn backing(&self) -> Option<Arc<File>> {
        None
    }

    /// The raw section handle, for calls on it.
    pub(crate) fn handle(&self) -> HANDLE {
        self.handle.as_raw_handle().cast()
    }

    /// A second, non-inheritable handle to the same section (`DuplicateHandle`).
    pub(crate) fn try_clone(&self) -> Result<Section> {
        let handle = self.handle.try_clone().map_err(Error::os("DuplicateHandle"))?;
        Ok(Section { handle, memory: self.memory })
    }

    /// `CreateFileMappingW(file, ...)`: Windows itself grows the file to `size` for a
    /// read-write mapping, so `file_len` is not needed.
    pub(crate) fn from_file(
        file: &Arc<File>,
        access: Access,
        size: u64,
        _file_len: u64,
    ) -> Result<Self> {
        create(file.as_raw_handle() as HANDLE, protection(access), size, Memory::File).map_err(
            |e| {
                if is(&e, ERROR_ACCESS_DENIED) {
                    if access == Access::ReadWrite {
                        Error::FileNotWritable
                    } else {
                        Error::FileNotReadable
                    }
                } else {
                    Error::Os { op: "CreateFileMappingW", source: e }
                }
            },
        )
    }

    /// `CreateFileMappingW(INVALID_HANDLE_VALUE, ...)`: pagefile-backed, zero-filled. The
    /// whole size is charged against the commit limit now.
    pub(crate) fn anonymous(size: u64) -> Result<Self> {
        create(INVALID_HANDLE_VALUE, PAGE_READWRITE, size, Memory::Shared).map_err(|e| {
            if is(&e, ERROR_NOT_ENOUGH_MEMORY) || is(&e, ERROR_COMMITMENT_LIMIT) {
                Error::TooLarge { size }
            } else {
                Error::Os { op: "CreateFileMappingW", source: e }
            }
        })
    }

    /// `MapViewOfFileEx` of `len` bytes at the granularity-aligned `offset`; with an
    /// address, Windows places the view there or fails, never over an existing mapping.
    /// Waits while a growable view of this process swaps its views ([`ADDRESS_SPACE`]).
    pub(crate) fn map(
        &self,
        kind: ViewKind,
        offset: u64,
        len: usize,
        address: Option<usize>,
    ) -> Result<Region> {
        let access: FILE_MAP = match kind {
            ViewKind::Read => FILE_MAP_READ,
            ViewKind::Write => FILE_MAP_READ | FILE_MAP_WRITE,
            ViewKind::CopyOnWrite => FILE_MAP_COPY,
        };
        let (high, low) = split(offset);
        let base = address.unwrap_or(0) as *const core::ffi::c_void;
        let _placing = ADDRESS_SPACE.read().unwrap_or_else(|e| e.into_inner());
        // SAFETY: a new view at a system-chosen address, or at `base` where Windows refuses
        // (ERROR_INVALID_ADDRESS) if anything is mapped; no existing mapping is changed.
        let view = unsafe { MapViewOfFileEx(self.handle(), access, high, low, len, base) };
        if view.Value.is_null() {
            let err = io::Error::last_os_error();
            return Err(match address {
                Some(address) if is(&err, ERROR_INVALID_ADDRESS) => {
                    Error::AddressTaken { address, len }
                }
                None if is(&err, ERROR_NOT_ENOUGH_MEMORY) => Error::TooLarge { size: len as u64 },
                _ => Error::Os { op: "MapViewOfFileEx", source: err },
            });
        }
        // SAFETY: the view just mapped, owned by nothing else.
        Ok(unsafe { Region::new(view.Value.cast(), len) })
    }
}

/// Taken for reading around every placement of address space mmf makes in this process
/// (`MapViewOfFileEx`, `VirtualAlloc`), and for writing by a growable view while it
/// releases its range and maps the larger view there (Win32 cannot swap a view in place
/// without placeholders, which Wine lacks): so no view of mmf's own lands in that range
/// in the moment it is free. Placements outside mmf (the allocator, other libraries) are
/// not held back; the growth retries, then reports `AddressTaken`.
pub(crate) static ADDRESS_SPACE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// `UnmapViewOfFile`, which takes the view's base address alone.
///
/// # Safety
/// `addr` must be the base of a view this module mapped, and nothing may use it afterwards.
pub(super) unsafe fn unmap(addr: *mut u8, _len: usize) -> Result<()> {
    // SAFETY: the caller guarantees `addr` is our view's base and unused from now on.
    cvt(unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: addr.cast() }) })
        .map_err(Error::os("UnmapViewOfFile"))
}

/// `FlushViewOfFile`, retried while another thread's flush holds the pages
/// (`ERROR_LOCK_VIOLATION`).
fn flush_view(addr: *const u8, len: usize) -> Result<()> {
    let mut tries = 0;
    loop {
        // SAFETY: FlushViewOfFile only writes dirty pages back; it fails on unmapped memory.
        match cvt(unsafe { FlushViewOfFile(addr.cast(), len) }) {
            Err(e) if is(&e, ERROR_LOCK_VIOLATION) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            other => return other.map_err(Error::os("FlushViewOfFile")),
        }
    }
}

/// Durable: `FlushViewOfFile` then `FlushFileBuffers`, which also writes the file's
/// metadata (its size). A handle without write access had nothing to write. Without the
/// file's handle (a file's section opened by name), `FlushViewOfFile` alone: the pages are
/// written to the file, and the file's metadata wait for the file's own flushes.
pub(crate) fn flush(range: FlushRange<'_>) -> Result<()> {
    flush_view(range.addr, range.len)?;
    let Some(file) = range.file else { return Ok(()) };
    // SAFETY: the handle is open for the duration of the call.
    match cvt(unsafe { FlushFileBuffers(file.as_raw_handle() as HANDLE) }) {
        Err(e) if is(&e, ERROR_ACCESS_DENIED) => Ok(()),
        other => other.map_err(Error::os("FlushFileBuffers")),
    }
}

/// Nothing: NTFS logs directory entries, and `FlushFileBuffers` of the file forces the log.
pub(crate) fn sync_dir(_path: &Path, _dir: &Path) -> io::Result<()> {
    Ok(())
}

/// `FlushViewOfFile` alone: starts writing the pages; the device may not have them yet.
pub(crate) fn flush_async(range: FlushRange<'_>) -> Result<()> {
    flush_view(range.addr, range.len)
}

/// Only `WillNeed` has a Windows equivalent (`PrefetchVirtualMemory`); the rest are
/// reported as not applied.
pub(crate) fn advise(
    addr: *const u8,
    len: usize,
    advice: Advice,
    _memory: Memory,
) -> Result<Advised> {
    if advice != Advice::WillNeed {
        return Ok(Advised::NotSupported);
    }
    let range =
        WIN32_MEMORY_RANGE_ENTRY { VirtualAddress: addr.cast_mut().cast(), NumberOfBytes: len };
    // SAFETY: prefetching reads pages into memory; it never changes their contents.
    cvt(unsafe { PrefetchVirtualMemory(GetCurrentProcess(), 1, &range, 0) })
        .map(|()| Advised::Applied)
        .map_err(Error::os("PrefetchVirtualMemory"))
}

/// Prefetch, then touch one byte of every page so that the view is in the working set.
pub(crate) fn populate(addr: *const u8, len: usize, _write: bool) -> Result<()> {
    let _ = advise(addr, len, Advice::WillNeed, Memory::File)?;
    let (first, end) = super::page_bounds(addr, len);
    for p in (first..end).step_by(page_size()) {
        let at = p.max(addr as usize) as *const u8;
        // SAFETY: `at` lies inside the view the caller owns; a volatile read of one byte
        // faults the page in and is not optimised away.
        unsafe { std::ptr::read_volatile(at) };
    }
    Ok(())
}

/// `VirtualLock`; if the working-set quota is too small, grows it by the size of the
/// range (`SetProcessWorkingSetSize`) and tries once more.
/// `VirtualLock` reads pages in; it is not asked to treat copy-on-write views apart (Wine's
/// `mlock`-based implementation copies their pages, see `View::lock`).
pub(crate) fn lock(addr: *const u8, len: usize, _copy_on_write: bool) -> Result<()> {
    // SAFETY: VirtualLock only pins pages.
    let first = cvt(unsafe { VirtualLock(addr.cast(), len) });
    match first {
        Err(e) if is(&e, ERROR_WORKING_SET_QUOTA) => {
            let (mut min, mut max) = (0usize, 0usize);
            // SAFETY: the pseudo-handle of this process; out-pointers to locals.
            let grown = unsafe {
                GetProcessWorkingSetSize(GetCurrentProcess(), &mut min, &mut max) != 0
                    && SetProcessWorkingSetSize(GetCurrentProcess(), min + len, max + len) != 0
            };
            if !grown {
                return Err(Error::LockLimit { len, source: e });
            }
            // SAFETY: as above.
            cvt(unsafe { VirtualLock(addr.cast(), len) }).map_err(|e| {
                if is(&e, ERROR_WORKING_SET_QUOTA) {
                    Error::LockLimit { len, source: e }
                } else {
                    Error::Os { op: "VirtualLock", source: e }
                }
            })
        }
        other => other.map_err(Error::os("VirtualLock")),
    }
}

/// `WriteFile` of the `len` bytes at `data` to `offset` (an `OVERLAPPED` offset on the
/// synchronous handle), repeated for short writes. On a local file the cache manager and
/// every view of the file share the section's pages, so the views see the bytes when this
/// returns.
///
/// # Safety
/// `data..data+len` is memory of this process that stays mapped during the call (an
/// unreadable page fails the call with `ERROR_NOACCESS`).
pub(crate) unsafe fn write_file(
    file: &File,
    mut offset: u64,
    mut data: *const u8,
    mut len: usize,
) -> io::Result<()> {
    while len > 0 {
        // At most 1 GiB per call (WriteFile takes a u32 count).
        let chunk = u32::try_from(len.min(1 << 30)).unwrap_or(1 << 30);
        let (high, low) = split(offset);
        // SAFETY: OVERLAPPED is plain data; all zeros but the offset is a valid request.
        let mut at: OVERLAPPED = unsafe { std::mem::zeroed() };
        at.Anonymous.Anonymous.Offset = low;
        at.Anonymous.Anonymous.OffsetHigh = high;
        let mut written = 0u32;
        // SAFETY: the handle is open and synchronous; the caller guarantees the source is
        // mapped; `written` and `at` outlive the call, which completes before returning.
        cvt(unsafe {
            WriteFile(file.as_raw_handle() as HANDLE, data, chunk, &mut written, &mut at)
        })?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        // SAFETY: written <= chunk <= len, so the pointer stays inside the caller's range.
        data = unsafe { data.add(written as usize) };
        len -= written as usize;
        offset += u64::from(written);
    }
    Ok(())
}

/// Why the handle cannot serve a write-through view, if it cannot: a handle opened for
/// overlapped I/O (`FILE_FLAG_OVERLAPPED`) would finish a `WriteFile` after the call
/// returned, into buffers that are gone (`NtQueryInformationFile(FileModeInformation)`
/// shows no synchronous mode).
pub(crate) fn write_through_refusal(file: &File) -> Option<&'static str> {
    let mut info = FILE_MODE_INFORMATION { Mode: 0 };
    // SAFETY: IO_STATUS_BLOCK is plain data that the call fills.
    let mut status: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is open for the call; the buffer is a FILE_MODE_INFORMATION of the
    // size passed.
    let rc = unsafe {
        NtQueryInformationFile(
            file.as_raw_handle() as HANDLE,
            &mut status,
            (&raw mut info).cast(),
            size_of::<FILE_MODE_INFORMATION>() as u32,
            FileModeInformation,
        )
    };
    let synchronous = FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT;
    (rc < 0 || info.Mode & synchronous == 0).then_some(
        "the file's handle was opened for overlapped I/O (FILE_FLAG_OVERLAPPED), or its mode \
         cannot be read, so a write could finish after it returned: open the file without \
         FILE_FLAG_OVERLAPPED to write through, or use an ordinary read-write view",
    )
}

/// Whether a write failed because its source buffer could not be read
/// (`ERROR_NOACCESS`).
pub(crate) fn source_faulted(error: &io::Error) -> bool {
    is(error, ERROR_NOACCESS)
}

/// `VirtualUnlock`; pages that were not locked (`ERROR_NOT_LOCKED`) are already what was
/// asked, so unlocking twice succeeds, as `munlock` does on Linux.
pub(crate) fn unlock(addr: *const u8, len: usize) -> Result<()> {
    // SAFETY: VirtualUnlock only unpins pages.
    match cvt(unsafe { VirtualUnlock(addr.cast(), len) }) {
        Err(e) if is(&e, ERROR_NOT_LOCKED) => Ok(()),
        other => other.map_err(Error::os("VirtualUnlock")),
    }
}

/// `QueryWorkingSetEx`: for each page, whether it is in this process's working set.
pub(crate) fn residency(addr: *const u8, len: usize) -> Result<Vec<bool>> {
    let (first, end) = super::page_bounds(addr, len);
    let mut entries: Vec<PSAPI_WORKING_SET_EX_INFORMATION> = (first..end)
        .step_by(page_size())
        .map(|p| PSAPI_WORKING_SET_EX_INFORMATION {
            VirtualAddress: p as *mut _,
            ..Default::default()
        })
        .collect();
    let bytes = std::mem::size_of_val(entries.as_slice()) as u32;
    // SAFETY: `entries` is an array of the documented structure with VirtualAddress set,
    // and `bytes` is its size; the call fills the attributes.
    cvt(unsafe { K32QueryWorkingSetEx(GetCurrentProcess(), entries.as_mut_ptr().cast(), bytes) })
        .map_err(Error::os("QueryWorkingSetEx"))?;
    // SAFETY: `Flags` is the whole bit field of the union; bit 0 is `Valid`.
    Ok(entries.iter().map(|e| unsafe { e.VirtualAttributes.Flags } & 1 == 1).collect())
}
