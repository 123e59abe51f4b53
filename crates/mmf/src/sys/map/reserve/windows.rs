//! Windows: `VirtualAlloc(MEM_RESERVE)` keeps the range free; the view is one
//! `MapViewOfFileEx` at its start. A view cannot be extended, so growing releases the
//! reservation after the view, unmaps the view, and maps the larger section whole at the
//! same base address, then reserves the rest again. Placeholders
//! (`VirtualAlloc2(MEM_RESERVE_PLACEHOLDER)`, `MapViewOfFile3(MEM_REPLACE_PLACEHOLDER)`)
//! would keep the range reserved throughout, but Wine 8 rejects them
//! (`ERROR_INVALID_PARAMETER`), so this fallback is what the Windows leg runs. mmf's own
//! views and reservations wait while the range is free (`ADDRESS_SPACE`); something else
//! in the process (the allocator, another library) could still take it in that moment: the
//! map then fails (`MapViewOfFileEx` never replaces anything), the old view is mapped back,
//! the growth tries again a few times, then is an error (`AddressTaken`). The range is
//! reserved top-down (`MEM_TOP_DOWN`) so that placements searching from the bottom pass it by.

use std::fs::File;
use std::sync::Arc;

use windows_sys::Win32::Foundation::{ERROR_DISK_FULL, ERROR_INVALID_ADDRESS};
use windows_sys::Win32::System::Memory::{
    FILE_MAP, FILE_MAP_COPY, FILE_MAP_READ, FILE_MAP_WRITE, MEM_RELEASE, MEM_RESERVE,
    MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFileEx, PAGE_NOACCESS, UnmapViewOfFile, VirtualAlloc,
    VirtualFree,
};
use windows_sys::Win32::System::SystemServices::MEM_TOP_DOWN;

use crate::error::{Error, Result};
use crate::sys::map::windows::ADDRESS_SPACE;
use crate::sys::map::{Access, Section, ViewKind, allocation_granularity};
use crate::sys::pal::{is, split};

/// Address space for a growable view; the view mapped at its start.
#[derive(Debug)]
pub(crate) struct Reserved {
    base: *mut u8,
    capacity: usize,
    /// Bytes of the view mapped at `base` (0: none).
    mapped: usize,
    kind: ViewKind,
    map_offset: u64,
    /// Whether the range after the view is reserved (one `VirtualAlloc` region).
    tail: bool,
}

impl Reserved {
    /// Reserves `capacity` bytes, then maps the first `initial` from the section.
    pub(crate) fn new(
        section: &Section,
        kind: ViewKind,
        map_offset: u64,
        capacity: usize,
        initial: usize,
    ) -> Result<Reserved> {
        let capacity = capacity.next_multiple_of(allocation_granularity());
        let mut tries = 0;
        loop {
            let placing = ADDRESS_SPACE.read().unwrap_or_else(|e| e.into_inner());
            // Top-down, above what the process allocates bottom-up (heaps, stacks, views):
            // while a growth frees the range for a moment, a placement outside mmf that
            // searches from the bottom finds a lower hole first. (The Windows leg lost a
            // low range to such a placement once in ~20 runs of the growth-while-mapping
            // test before this.)
            let flags = MEM_RESERVE | MEM_TOP_DOWN;
            // SAFETY: a new reservation wherever the system chooses; no memory changes.
            let base = unsafe { VirtualAlloc(std::ptr::null(), capacity, flags, PAGE_NOACCESS) };
            drop(placing);
            if base.is_null() {
                return Err(Error::TooLarge { size: capacity as u64 });
            }
            let mut reserved =
                Reserved { base: base.cast(), capacity, mapped: 0, kind, map_offset, tail: true };
            match reserved.extend(section, section, initial) {
                Ok(()) => return Ok(reserved),
                // Another thread took the range between release and map: try elsewhere.
                Err(Error::AddressTaken { .. }) if tries < 8 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The first byte of the reservation.
    pub(crate) fn base(&self) -> *mut u8 {
        self.base
    }

    /// Bytes of the view mapped from the start.
    pub(crate) fn mapped(&self) -> usize {
        self.mapped
    }

    /// Maps `to` bytes from the start with `new` (covering them), in place of the view
    /// of `old`; on failure maps the old view back where it can. The range is free for a
    /// moment while the views change (Win32 cannot swap a view in place without
    /// placeholders, which Wine lacks): a thread that maps something there meanwhile makes
    /// this try again, a few times, before it reports `AddressTaken`.
    pub(crate) fn extend(&mut self, old: &Section, new: &Section, to: usize) -> Result<()> {
        let mut tries = 0;
        loop {
            match self.extend_once(old, new, to) {
                Err(Error::AddressTaken { .. }) if tries < 16 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                other => return other,
            }
        }
    }

    fn extend_once(&mut self, old: &Section, new: &Section, to: usize) -> Result<()> {
        let end = to.min(self.capacity);
        if end <= self.mapped {
            return Ok(());
        }
        // No view of mmf's own may be placed in this range while it is free.
        let _swapping = ADDRESS_SPACE.write().unwrap_or_else(|e| e.into_inner());
        self.release_tail();
        let before = std::mem::take(&mut self.mapped);
        if before > 0 {
            // SAFETY: `base` is the view this reservation mapped; the growable view that
            // points into it is borrowed mutably by the caller, so nothing uses it now.
            unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: self.base.cast() }) };
        }
        let result = self.map_view(new, end);
        match &result {
            Ok(()) => self.mapped = end,
            Err(_) if before > 0 && self.map_view(old, before).is_ok() => self.mapped = before,
            Err(_) => {}
        }
        self.reserve_tail();
        result
    }

    /// `MapViewOfFileEx(section, .., map_offset, len, base)`: there or nowhere.
    fn map_view(&self, section: &Section, len: usize) -> Result<()> {
        let access: FILE_MAP = match self.kind {
            ViewKind::Read => FILE_MAP_READ,
            ViewKind::Write => FILE_MAP_READ | FILE_MAP_WRITE,
            ViewKind::CopyOnWrite => FILE_MAP_COPY,
        };
        let (high, low) = split(self.map_offset);
        // SAFETY: a new view at `base`, which this reservation owns and has just released;
        // Windows refuses (ERROR_INVALID_ADDRESS) rather than replace anything there.
        let view =
            unsafe { MapViewOfFileEx(section.handle(), access, high, low, len, self.base.cast()) };
        if view.Value.is_null() {
            let err = std::io::Error::last_os_error();
            return Err(if is(&err, ERROR_INVALID_ADDRESS) {
                Error::AddressTaken { address: self.base as usize, len }
            } else {
                Error::Os { op: "MapViewOfFileEx", source: err }
            });
        }
        Ok(())
    }

    /// Where the reserved range after the view starts.
    fn tail_start(&self) -> *mut u8 {
        // SAFETY: the view's granularity-rounded end is at most the capacity, so the
        // pointer stays inside (or one past) the reservation.
        unsafe { self.base.add(self.mapped.next_multiple_of(allocation_granularity())) }
    }

    fn release_tail(&mut self) {
        if std::mem::take(&mut self.tail) {
            // SAFETY: the tail is one region this reservation reserved with VirtualAlloc;
            // nothing is mapped in it.
            unsafe { VirtualFree(self.tail_start().cast(), 0, MEM_RELEASE) };
        }
    }

    fn reserve_tail(&mut self) {
        let start = self.tail_start();
        let len = self.capacity - (start as usize - self.base as usize);
        if len > 0 {
            // SAFETY: reserves free address space at `start` (or fails if something took
            // it); no memory changes.
            let got = unsafe { VirtualAlloc(start.cast(), len, MEM_RESERVE, PAGE_NOACCESS) };
            self.tail = !got.is_null();
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if self.mapped > 0 {
            // SAFETY: the view this reservation mapped; its growable view is gone. Errors
            // cannot be handled in a destructor.
            unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: self.base.cast() }) };
        }
        self.release_tail();
    }
}

/// What cannot grow on Windows: a section without a file (pagefile-backed, or a file's
/// section opened by name).
fn no_file() -> Error {
    Error::Unsupported {
        what: "growing a pagefile-backed section (or a section opened by name): Windows \
               sections keep the size they were created with; create it at its largest size",
    }
}

/// `CreateFileMappingW(file, .., new_len)`: a new section of the larger size, which
/// extends the file (a full disk is `ERROR_DISK_FULL`). The file cannot be shrunk back
/// while it is mapped, so a later failure leaves it longer.
pub(crate) fn grow_object(
    _section: &Section,
    file: Option<&Arc<File>>,
    access: Access,
    (_old_len, new_len): (u64, u64),
    _allocate: bool,
) -> Result<Option<Section>> {
    let file = file.ok_or_else(no_file)?;
    match Section::from_file(file, access, new_len, 0) {
        Err(Error::Os { source, .. }) if is(&source, ERROR_DISK_FULL) => {
            Err(Error::GrowNoSpace { size: new_len, source })
        }
        other => other.map(Some),
    }
}

/// A new section of `len` bytes of the file another holder grew.
pub(crate) fn current_section(
    _section: &Section,
    file: Option<&Arc<File>>,
    access: Access,
    len: u64,
) -> Result<Option<Section>> {
    let file = file.ok_or_else(no_file)?;
    Section::from_file(file, access, len, 0).map(Some)
}
