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
    ///
    /// Known gap: on a kernel that leaves the range unmapped (before 6.12 for most
    /// failures), another thread could map something into the hole before this runs; the
    /// drop's `munmap` of the whole reservation would then unmap it. `EEXIST` here cannot
    /// tell that apart from the common case (the placeholder is still there), so nothing
    /// is done about it yet.
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

/// Grows the object from `old_len` to `new_len` bytes in two steps, neither of which can
/// shrink it:
///
/// 1. if `allocate`, `fallocate(fd, FALLOC_FL_KEEP_SIZE, old_len, new_len - old_len)`
///    reserves the blocks without changing the size, so a full file system is `ENOSPC`
///    now, not a `SIGBUS` at a later write, and a failure leaves the size as it was.
///    First `fstatvfs` checks that the file system has the room (the free blocks a process
///    may use: all of them for root, less the reserved ones for others): a failed
///    reservation keeps the blocks it got past the end (ext4, XFS; tmpfs gives them back)
///    until the file's next growth, truncation or deletion, which would leave the disk
///    full for everyone else. Only space taken by another writer between the check and
///    the reservation, or a quota (`EDQUOT`; `fstatvfs` does not see quotas), still
///    fails there;
///    where `allocate` is false (the view writes with the file's own calls, which report a
///    full disk themselves) nothing is reserved;
/// 2. `fallocate(fd, 0, new_len - 1, 1)` extends the file to `new_len` if it is shorter:
///    one block, already reserved by step 1.
///
/// Nothing is ever undone with `ftruncate(old_len)`: a process that read `old_len`, then
/// lost the race to another process growing the file further, would cut the other's
/// growth — and its data — off. Where the file system cannot `fallocate` (`EOPNOTSUPP`;
/// some FUSE and network file systems): step 1 is skipped and step 2 is `ftruncate` if
/// the file is still shorter, which is open to that race. The section needs no replacing:
/// `None`.
pub(crate) fn grow_object(
    section: &Section,
    _file: Option<&Arc<File>>,
    _access: Access,
    (old_len, new_len): (u64, u64),
    allocate: bool,
) -> Result<Option<Section>> {
    let fd = section.fd();
    let offset = |n: u64| libc::off_t::try_from(n).map_err(|_| Error::TooLarge { size: new_len });
    let no_space = |e: std::io::Error, op: &'static str| match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => {
            Error::GrowNoSpace { size: new_len, source: e }
        }
        _ => Error::Os { op, source: e },
    };
    if allocate && new_len > old_len {
        if let Some(free) = crate::sys::map::allocatable_bytes(fd) {
            let need = new_len - old_len;
            // The extent tree's own blocks, and a few to spare: a reservation that fails
            // part of the way keeps what it got (see above).
            if need.saturating_add(need / 512).saturating_add(64 << 10) > free {
                let source = std::io::Error::from_raw_os_error(libc::ENOSPC);
                return Err(Error::GrowNoSpace { size: new_len, source });
            }
        }
        let (start, len) = (offset(old_len)?, offset(new_len - old_len)?);
        // SAFETY: fallocate only reserves blocks of the descriptor's file; KEEP_SIZE
        // leaves its size and bytes as they are.
        match cvt(unsafe { libc::fallocate(fd.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, start, len) })
        {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
            Err(e) => return Err(no_space(e, "fallocate(FALLOC_FL_KEEP_SIZE)")),
        }
    }
    let last = offset(new_len - 1)?;
    // SAFETY: fallocate of one byte only extends the file (never shrinks it, never changes
    // bytes that are there).
    match cvt(unsafe { libc::fallocate(fd.as_raw_fd(), 0, last, 1) }) {
        Ok(_) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            if fd.metadata().map_err(Error::os("fstat"))?.len() >= new_len {
                return Ok(None);
            }
            fd.set_len(new_len).map(|()| None).map_err(|e| no_space(e, "ftruncate"))
        }
        Err(e) => Err(no_space(e, "fallocate")),
    }
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
