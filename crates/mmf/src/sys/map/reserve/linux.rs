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

/// The object grown from `old_len` to `new_len` bytes, never shrunk.
///
/// Growers of one file take turns: each holds an OFD write lock (`F_OFD_SETLKW`) on one
/// byte far past any file's end ([`GROW_LOCK_AT`]), through an open file description of
/// its own ([`GrowLock`]), while it reads the size and extends it,
/// so none can read a size, lose a race to a larger growth and then set its smaller one.
/// Under that lock a write-through view (`allocate` false: its writes report a full disk
/// themselves) extends the file with `ftruncate(new_len)`, which allocates nothing; any
/// other view with `fallocate(fd, 0, old_len, new_len - old_len)`, so that a full file
/// system is `ENOSPC` now, not a `SIGBUS` at a later store.
///
/// Without the lock (a lock of somebody else's covers that byte, or the file system has
/// no locks) growth only uses calls that never shrink a file: `fallocate` of the new part,
/// or of its last byte only for a write-through view. That last byte's block costs ext4
/// about a third of `write()`'s speed when a log is appended in 1 MiB steps (one allocated
/// block per step splits its delayed allocation), which is why the lock is the first
/// choice. Where the file system cannot allocate (`EOPNOTSUPP`): `ftruncate` if the file
/// is still shorter. A failed allocation is undone with `ftruncate(old_len)`. The section
/// needs no replacing: `None`.
pub(crate) fn grow_object(
    section: &Section,
    _file: Option<&Arc<File>>,
    _access: Access,
    (old_len, new_len): (u64, u64),
    allocate: bool,
) -> Result<Option<Section>> {
    let fd = section.fd();
    let lock = GrowLock::take(fd);
    let old_len = match &lock {
        Some(_) => fd.metadata().map_err(Error::os("fstat"))?.len(),
        None => old_len,
    };
    if old_len >= new_len {
        return Ok(None); // another process grew it meanwhile
    }
    if lock.is_some() && !allocate {
        return fd.set_len(new_len).map(|()| None).map_err(|e| truncate_error(e, new_len));
    }
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
            return fd.set_len(new_len).map(|()| None).map_err(|e| truncate_error(e, new_len));
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

fn truncate_error(e: io::Error, new_len: u64) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) => Error::GrowNoSpace { size: new_len, source: e },
        _ => Error::Os { op: "ftruncate", source: e },
    }
}

/// Gives the object its old size back after a growth whose mapping failed, unless another
/// process has grown it further meanwhile: under the growers' lock, so that none grows it
/// between the look and the cut (without the lock, as [`grow_object`]'s fallback, the
/// look and the cut are open to that race).
pub(crate) fn undo_growth(section: &Section, (old_len, new_len): (u64, u64)) {
    let fd = section.fd();
    let _lock = GrowLock::take(fd);
    if fd.metadata().is_ok_and(|m| m.len() == new_len) {
        let _ = fd.set_len(old_len);
    }
}

/// The byte whose OFD lock growers of one file take turns on: far past the end of any file
/// (locks may lie past the end), where no user's record lock is likely to be.
const GROW_LOCK_AT: libc::off_t = libc::off_t::MAX - 1;

/// An OFD write lock on [`GROW_LOCK_AT`] of a file, taken through a new open file
/// description of it (`/proc/self/fd/N` opened again): OFD locks belong to the description,
/// and the section's descriptor shares its description with every view of the mapping and,
/// after a `fork`, with the child — growers there would all "hold" one lock at once. The
/// lock goes when the description is closed (dropped), also when the grower is killed.
struct GrowLock {
    /// Held only to be closed when the growth is done: that releases the lock.
    _description: File,
}

impl GrowLock {
    /// Takes the lock, waiting for another grower that holds it (for a `fstat` and one
    /// extension: microseconds). `None` when a lock that is not a grower's covers the byte
    /// (a user's whole-file `fcntl` lock: waiting on it could wait forever, even on this
    /// process's own lock), or the file cannot be opened again for writing (no `/proc`, a
    /// file whose mode no longer lets this user open it), or the file system has no locks.
    fn take(file: &File) -> Option<GrowLock> {
        let again = format!("/proc/self/fd/{}", file.as_raw_fd());
        let own = File::options().write(true).open(again).ok()?;
        loop {
            match lock_op(&own, libc::F_OFD_SETLK, libc::F_WRLCK as libc::c_short) {
                Ok(_) => return Some(GrowLock { _description: own }),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => {}
                Err(_) => return None,
            }
            // Who holds it? Wait only for another grower: an OFD lock (pid -1) on exactly
            // this byte.
            let holder = lock_op(&own, libc::F_OFD_GETLK, libc::F_WRLCK as libc::c_short).ok()?;
            if holder.l_type == libc::F_UNLCK as libc::c_short {
                continue; // released meanwhile
            }
            if (holder.l_start, holder.l_len, holder.l_pid) != (GROW_LOCK_AT, 1, -1) {
                return None;
            }
            match lock_op(&own, libc::F_OFD_SETLKW, libc::F_WRLCK as libc::c_short) {
                Ok(_) => return Some(GrowLock { _description: own }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }
}

/// `fcntl(fd, cmd, &flock { l_type, SEEK_SET, GROW_LOCK_AT, 1, pid 0 })`; the flock back
/// (what `F_OFD_GETLK` reports).
fn lock_op(file: &File, cmd: libc::c_int, l_type: libc::c_short) -> io::Result<libc::flock> {
    // SAFETY: flock is plain data; all zero is a valid value, filled in below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = GROW_LOCK_AT;
    fl.l_len = 1;
    // SAFETY: fcntl reads (and for F_OFD_GETLK writes) the flock it is given, which lives
    // for the call; the descriptor is open for as long as `file` is.
    cvt(unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl) })?;
    Ok(fl)
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
