//! Windows: the Win32 calls of the seed (`CreateFileMappingW`, `MapViewOfFileEx`,
//! `FlushViewOfFile`, `UnmapViewOfFile`, `CloseHandle`) and their companions, through
//! `windows-sys`. The only file (with `unix.rs`) that makes system calls.
//!
//! A file-mapping object is a section handle; views are `MapViewOfFileEx` of it. Closing
//! the handle leaves views mapped: Windows keeps the section alive while views exist.

use std::fs::File;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::sync::{Arc, OnceLock};

use windows_sys::Wdk::Storage::FileSystem::{
    FILE_ACCESS_INFORMATION, FileAccessInformation, NtQueryInformationFile,
};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_COMMITMENT_LIMIT, ERROR_INVALID_ADDRESS,
    ERROR_LOCK_VIOLATION, ERROR_NOT_ENOUGH_MEMORY, ERROR_WORKING_SET_QUOTA, HANDLE,
    INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{FILE_READ_DATA, FILE_WRITE_DATA, FlushFileBuffers};
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP, FILE_MAP_COPY, FILE_MAP_READ, FILE_MAP_WRITE, FlushViewOfFile,
    MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFileEx, PAGE_PROTECTION_FLAGS, PAGE_READONLY,
    PAGE_READWRITE, PAGE_WRITECOPY, PrefetchVirtualMemory, UnmapViewOfFile, VirtualLock,
    VirtualUnlock, WIN32_MEMORY_RANGE_ENTRY,
};
use windows_sys::Win32::System::ProcessStatus::{
    K32QueryWorkingSetEx, PSAPI_WORKING_SET_EX_INFORMATION,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetProcessWorkingSetSize, SetProcessWorkingSetSize,
};

use crate::error::{Error, Result};
use crate::{Access, Advice, Advised, ViewKind};

pub(crate) mod named;

/// Runs a copy. Windows refuses to truncate a file or section while it is mapped, so the
/// faults the Linux guard catches do not arise from truncation; in-page I/O errors (a
/// failing disk or network share) are not caught.
pub(crate) fn guarded(
    _first: Guarded<'_>,
    _second: Option<Guarded<'_>>,
    copy: impl FnOnce(),
) -> u8 {
    copy();
    0
}

/// A range a copy touches and its view's flag (the Linux guard's argument; unused here).
pub(crate) struct Guarded<'a> {
    #[allow(dead_code)]
    pub start: *const u8,
    #[allow(dead_code)]
    pub len: usize,
    #[allow(dead_code)]
    pub broken: &'a std::sync::atomic::AtomicBool,
}

/// A Win32 `BOOL` result: `FALSE` → the thread's last error.
pub(super) fn cvt(ok: i32) -> io::Result<()> {
    if ok == 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn is(err: &io::Error, code: u32) -> bool {
    err.raw_os_error() == Some(code as i32)
}

/// `GetSystemInfo`, asked once: (page size, allocation granularity).
fn system_info() -> (usize, usize) {
    static INFO: OnceLock<(usize, usize)> = OnceLock::new();
    *INFO.get_or_init(|| {
        // SAFETY: SYSTEM_INFO is plain data; GetSystemInfo fills it and cannot fail.
        let info = unsafe {
            let mut info: SYSTEM_INFO = std::mem::zeroed();
            GetSystemInfo(&mut info);
            info
        };
        (info.dwPageSize as usize, info.dwAllocationGranularity as usize)
    })
}

pub(crate) fn page_size() -> usize {
    system_info().0
}

/// `dwAllocationGranularity`: 64 KiB. Views start at multiples of it.
pub(crate) fn allocation_granularity() -> usize {
    system_info().1
}

/// The handle's granted access (`NtQueryInformationFile(FileAccessInformation)`), or
/// `None` where the system does not say; then `CreateFileMappingW` decides.
pub(crate) fn file_access(file: &File) -> io::Result<Option<(bool, bool)>> {
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
    if rc < 0 {
        return Ok(None);
    }
    let flags = info.AccessFlags;
    Ok(Some((flags & FILE_READ_DATA != 0, flags & FILE_WRITE_DATA != 0)))
}

/// A file-mapping object (section) handle; `CloseHandle` on drop.
#[derive(Debug)]
pub(crate) struct Section {
    pub(super) handle: HANDLE,
}

// SAFETY: a section handle may be used and closed from any thread.
unsafe impl Send for Section {}
// SAFETY: the handle is only passed to thread-safe Win32 calls.
unsafe impl Sync for Section {}

impl Drop for Section {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and closed once. Views stay valid. A failure would
        // mean the handle was already invalid; nothing to do about it in a destructor.
        unsafe { CloseHandle(self.handle) };
    }
}

pub(super) fn split(n: u64) -> (u32, u32) {
    ((n >> 32) as u32, n as u32)
}

fn create(file: HANDLE, protect: PAGE_PROTECTION_FLAGS, size: u64) -> io::Result<Section> {
    let (high, low) = split(size);
    // SAFETY: `file` is an open file handle or INVALID_HANDLE_VALUE (pagefile-backed);
    // no security attributes and no name.
    let handle =
        unsafe { CreateFileMappingW(file, std::ptr::null(), protect, high, low, std::ptr::null()) };
    if handle.is_null() { Err(io::Error::last_os_error()) } else { Ok(Section { handle }) }
}

impl Section {
    /// `CreateFileMappingW(file, ...)`: Windows itself grows the file to `size` for a
    /// read-write mapping.
    pub(crate) fn from_file(
        file: &Arc<File>,
        access: Access,
        size: u64,
        _len: u64,
    ) -> Result<Self> {
        let protect = match access {
            Access::ReadOnly => PAGE_READONLY,
            Access::ReadWrite => PAGE_READWRITE,
            Access::CopyOnWrite => PAGE_WRITECOPY,
        };
        create(file.as_raw_handle() as HANDLE, protect, size).map_err(|e| {
            if is(&e, ERROR_ACCESS_DENIED) {
                if access == Access::ReadWrite {
                    Error::FileNotWritable
                } else {
                    Error::FileNotReadable
                }
            } else {
                Error::Os { op: "CreateFileMappingW", source: e }
            }
        })
    }

    /// `CreateFileMappingW(INVALID_HANDLE_VALUE, ...)`: pagefile-backed, zero-filled. The
    /// whole size is charged against the commit limit now.
    pub(crate) fn anonymous(size: u64) -> Result<Self> {
        create(INVALID_HANDLE_VALUE, PAGE_READWRITE, size).map_err(|e| {
            if is(&e, ERROR_NOT_ENOUGH_MEMORY) || is(&e, ERROR_COMMITMENT_LIMIT) {
                Error::TooLarge { size }
            } else {
                Error::Os { op: "CreateFileMappingW", source: e }
            }
        })
    }

    /// `MapViewOfFileEx` of `len` bytes at the granularity-aligned `offset`; with an
    /// address, Windows places the view there or fails, never over an existing mapping.
    pub(crate) fn map(
        &self,
        kind: ViewKind,
        offset: u64,
        len: usize,
        address: Option<usize>,
    ) -> Result<*mut u8> {
        let access: FILE_MAP = match kind {
            ViewKind::Read => FILE_MAP_READ,
            ViewKind::Write => FILE_MAP_READ | FILE_MAP_WRITE,
            ViewKind::CopyOnWrite => FILE_MAP_COPY,
        };
        let (high, low) = split(offset);
        let base = address.unwrap_or(0) as *const core::ffi::c_void;
        // SAFETY: a new view at a system-chosen address, or at `base` where Windows refuses
        // (ERROR_INVALID_ADDRESS) if anything is mapped; no existing mapping is changed.
        let view = unsafe { MapViewOfFileEx(self.handle, access, high, low, len, base) };
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
        Ok(view.Value.cast())
    }
}

/// `UnmapViewOfFile`.
///
/// # Safety
/// `addr` must be the base of a view this crate mapped, and nothing may use it afterwards.
pub(crate) unsafe fn unmap(addr: *mut u8, _len: usize) -> io::Result<()> {
    // SAFETY: the caller guarantees `addr` is our view's base and unused from now on.
    cvt(unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: addr.cast() }) })
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
/// metadata (its size). A handle without write access had nothing to write.
pub(crate) fn flush(addr: *const u8, len: usize, file: Option<&File>) -> Result<()> {
    flush_view(addr, len)?;
    let Some(file) = file else { return Ok(()) };
    // SAFETY: the handle is open for the duration of the call.
    match cvt(unsafe { FlushFileBuffers(file.as_raw_handle() as HANDLE) }) {
        Err(e) if is(&e, ERROR_ACCESS_DENIED) => Ok(()),
        other => other.map_err(Error::os("FlushFileBuffers")),
    }
}

/// `FlushViewOfFile` alone: starts writing the pages; the device may not have them yet.
pub(crate) fn flush_async(
    addr: *const u8,
    len: usize,
    _file: Option<&File>,
    _offset: u64,
) -> Result<()> {
    flush_view(addr, len)
}

/// Only `WillNeed` has a Windows equivalent (`PrefetchVirtualMemory`); the rest are
/// reported as not applied.
pub(crate) fn advise(addr: *const u8, len: usize, advice: Advice) -> Result<Advised> {
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
    let _ = advise(addr, len, Advice::WillNeed)?;
    let page = page_size();
    let first = addr as usize & !(page - 1);
    for p in (first..addr as usize + len).step_by(page) {
        let at = p.max(addr as usize) as *const u8;
        // SAFETY: `at` lies inside the view the caller owns; a volatile read of one byte
        // faults the page in and is not optimised away.
        unsafe { std::ptr::read_volatile(at) };
    }
    Ok(())
}

/// `VirtualLock`; if the working-set quota is too small, grows it by the size of the
/// range (`SetProcessWorkingSetSize`) and tries once more.
pub(crate) fn lock(addr: *const u8, len: usize) -> Result<()> {
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
                return Err(Error::Os { op: "VirtualLock (working set quota)", source: e });
            }
            // SAFETY: as above.
            cvt(unsafe { VirtualLock(addr.cast(), len) }).map_err(Error::os("VirtualLock"))
        }
        other => other.map_err(Error::os("VirtualLock")),
    }
}

/// `VirtualUnlock`.
pub(crate) fn unlock(addr: *const u8, len: usize) -> Result<()> {
    // SAFETY: VirtualUnlock only unpins pages.
    cvt(unsafe { VirtualUnlock(addr.cast(), len) }).map_err(Error::os("VirtualUnlock"))
}

/// `QueryWorkingSetEx`: for each page, whether it is in this process's working set.
pub(crate) fn residency(addr: *const u8, len: usize) -> Result<Vec<bool>> {
    let page = page_size();
    let first = addr as usize & !(page - 1);
    let end = (addr as usize + len).next_multiple_of(page);
    let mut entries: Vec<PSAPI_WORKING_SET_EX_INFORMATION> = (first..end)
        .step_by(page)
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

/// Windows has no call that drops one file's pages from the cache.
pub(crate) fn evict(_file: &File) -> Result<()> {
    Err(Error::Unsupported { what: "evicting a file from the cache: Windows has no such call" })
}

/// The whole file: sparse ranges are not asked for on Windows.
pub(crate) fn data_ranges(file: &File) -> Result<Vec<std::ops::Range<u64>>> {
    let len = file.metadata().map_err(Error::os("GetFileSizeEx"))?.len();
    Ok(std::iter::once(0..len).filter(|r| !r.is_empty()).collect())
}
