//! Linux: `fdatasync` + `posix_fadvise(POSIX_FADV_DONTNEED)`; `lseek(SEEK_DATA/SEEK_HOLE)`.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;

use crate::error::{Error, Result};

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

/// Data ranges by `lseek(SEEK_DATA)` / `lseek(SEEK_HOLE)`, up to the file's length (a
/// block device's size, whose `st_size` is 0).
pub(crate) fn data_ranges(file: &File) -> Result<Vec<Range<u64>>> {
    let kind = crate::sys::map::file_kind(file).map_err(Error::os("fstat"))?;
    let len = crate::sys::map::file_len(file, kind).map_err(Error::os("fstat"))?;
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
