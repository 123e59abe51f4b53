//! Linux: an anonymous `PROT_NONE` reservation (`MAP_NORESERVE`: address space only, no
//! memory charged), over which the object's pages are mapped with `MAP_FIXED` — only ever
//! inside the reservation, which this module alone owns, so nothing else is replaced.
//! One `munmap` of the whole range unmaps everything.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::sys::map::{Access, Section, ViewKind};
use crate::sys::pal::{cvt, page_size};

/// The step in which a reservation is mapped: 64 MiB.
const MAP_AHEAD: usize = 64 << 20;

/// Address space for a growable view; the mapped part at its start.
#[derive(Debug)]
pub(crate) struct Reserved {
    base: *mut u8,
    capacity: usize,
    mapped: usize,
    kind: ViewKind,
    map_offset: u64,
}

impl Reserved {
    /// `mmap(NULL, capacity, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE)`, then the
    /// first `initial` bytes mapped from the section.
    pub(crate) fn new(
        section: &Section,
        kind: ViewKind,
        map_offset: u64,
        capacity: usize,
        initial: usize,
    ) -> Result<Reserved> {
        let capacity = capacity.next_multiple_of(page_size());
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        // SAFETY: a new mapping wherever the kernel chooses (no address), which never
        // touches an existing one; PROT_NONE pages cannot be read or written.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), capacity, libc::PROT_NONE, flags, -1, 0) };
        if ptr == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::ENOMEM) => Error::TooLarge { size: capacity as u64 },
                _ => Error::Os { op: "mmap(PROT_NONE)", source: err },
            });
        }
        let mut reserved = Reserved { base: ptr.cast(), capacity, mapped: 0, kind, map_offset };
        reserved.extend(section, section, initial)?; // on failure the drop unmaps it all
        Ok(reserved)
    }

    /// The first byte of the reservation.
    pub(crate) fn base(&self) -> *mut u8 {
        self.base
    }

    /// Bytes mapped from the start (whole pages).
    pub(crate) fn mapped(&self) -> usize {
        self.mapped
    }

    /// Maps the section over the reservation up to `to` bytes from its start:
    /// `mmap(base + mapped, .., MAP_SHARED|MAP_FIXED, fd, map_offset + mapped)`, rounded up
    /// to [`MAP_AHEAD`] so that a view growing in small steps maps rarely. Pages past the
    /// object's end may be mapped that way (Linux allows it); the view's length keeps every
    /// access before the end. Linux sections grow with their object, so `_old` is not
    /// needed.
    pub(crate) fn extend(&mut self, _old: &Section, new: &Section, to: usize) -> Result<()> {
        if to <= self.mapped {
            return Ok(());
        }
        let end = to.next_multiple_of(MAP_AHEAD).min(self.capacity);
        let (prot, share) = match self.kind {
            ViewKind::Read => (libc::PROT_READ, libc::MAP_SHARED),
            ViewKind::Write => (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED),
            ViewKind::CopyOnWrite => (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE),
        };
        let offset = self.map_offset + self.mapped as u64;
        let off = libc::off_t::try_from(offset).map_err(|_| Error::TooLarge { size: offset })?;
        let len = end - self.mapped;
        // SAFETY: mapped <= end <= capacity, so the address stays inside the reservation.
        let at = unsafe { self.base.add(self.mapped) };
        // SAFETY: `at..at+len` lies inside this reservation, which this module alone owns
        // and which holds only its own PROT_NONE placeholder there (nothing of anyone else,
        // and no bytes anybody refers to): MAP_FIXED replaces exactly that placeholder.
        let ptr = unsafe {
            libc::mmap(at.cast(), len, prot, share | libc::MAP_FIXED, new.fd().as_raw_fd(), off)
        };
        if ptr == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            self.restore_placeholder(at, len);
            return Err(Error::Os { op: "mmap(MAP_FIXED)", source: err });
        }
        self.mapped = end;
        Ok(())
    }

    /// After a failed `MAP_FIXED` the range may be left unmapped: put the placeholder back
    /// (`MAP_FIXED_NOREPLACE`, which changes nothing if it is still there) so that no
    /// other mapping of the process lands inside the reservation.
    fn restore_placeholder(&self, at: *mut u8, len: usize) {
        let flags = libc::MAP_PRIVATE
            | libc::MAP_ANONYMOUS
            | libc::MAP_NORESERVE
            | libc::MAP_FIXED_NOREPLACE;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; it only fills a
        // hole inside this reservation. If it fails the hole stays; nothing else changes.
        let ptr = unsafe { libc::mmap(at.cast(), len, libc::PROT_NONE, flags, -1, 0) };
        if ptr != libc::MAP_FAILED && ptr.cast() != at {
            // An old kernel placed it elsewhere: undo that.
            // SAFETY: the mapping just made, owned by nothing else.
            unsafe { libc::munmap(ptr, len) };
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        // SAFETY: the whole reservation (placeholder and the pieces mapped over it) belongs
        // to this value; the view that pointed into it is gone. An error would mean it was
        // not mapped; there is nothing to do about that in a destructor.
        unsafe { libc::munmap(self.base.cast(), self.capacity) };
    }
}

/// `fallocate(fd, 0, old_len, new_len - old_len)`: the object grows with its blocks
/// allocated (a full file system is `ENOSPC` now, not a `SIGBUS` at a later write). Where
/// `allocate` is false (the view writes with the file's own calls, which report a full
/// disk themselves) only the last byte is allocated, `fallocate(fd, 0, new_len - 1, 1)`:
/// what extends the file without allocating the rest. Growth never shrinks: `fallocate`
/// only ever extends a file, so a process that read `old_len`, then lost the race to
/// another process growing the file further, does not cut the other's growth back (as
/// `ftruncate(new_len)` would). Where the file system cannot allocate (`EOPNOTSUPP`):
/// `ftruncate` if the file is still shorter, which is open to that race. A failed growth
/// is undone with `ftruncate(old_len)`. The section needs no replacing: `None`.
pub(crate) fn grow_object(
    section: &Section,
    _file: Option<&Arc<File>>,
    _access: Access,
    (old_len, new_len): (u64, u64),
    allocate: bool,
) -> Result<Option<Section>> {
    let fd = section.fd();
    let (start, len) = match allocate {
        true => (old_len, new_len - old_len),
        false => (new_len - 1, 1),
    };
    let start = libc::off_t::try_from(start).map_err(|_| Error::TooLarge { size: new_len })?;
    let len = libc::off_t::try_from(len).map_err(|_| Error::TooLarge { size: new_len })?;
    // SAFETY: fallocate only allocates blocks of the descriptor's file and extends it.
    let result = cvt(unsafe { libc::fallocate(fd.as_raw_fd(), 0, start, len) });
    let err = match result {
        Ok(_) => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            if fd.metadata().map_err(Error::os("fstat"))?.len() >= new_len {
                return Ok(None);
            }
            return fd.set_len(new_len).map(|()| None).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOSPC) | Some(libc::EFBIG) => {
                    Error::GrowNoSpace { size: new_len, source: e }
                }
                _ => Error::Os { op: "ftruncate", source: e },
            });
        }
        Err(e) => e,
    };
    // Undo a partial allocation (the file may have grown part of the way).
    if fd.metadata().is_ok_and(|m| m.len() != old_len) {
        let _ = fd.set_len(old_len);
    }
    Err(match err.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => {
            Error::GrowNoSpace { size: new_len, source: err }
        }
        _ => Error::Os { op: "fallocate", source: err },
    })
}

/// The same section: on Linux it maps whatever size its object has now.
pub(crate) fn current_section(
    section: &Section,
    _file: Option<&Arc<File>>,
    _access: Access,
    _len: u64,
) -> Result<Option<Section>> {
    let _ = section;
    Ok(None)
}
