//! The page cache of whole files: eviction and where a sparse file holds data. (Residency
//! is [`View::residency`](crate::View::residency); bringing pages in is
//! [`ViewOptions::populate`](crate::ViewOptions::populate) and
//! [`View::prefetch`](crate::View::prefetch).)

use std::fs::File;
use std::ops::Range;

use crate::error::Result;
use crate::sys;

/// Drops the file's pages from the page cache: writes dirty pages back first
/// (`fdatasync`), then `posix_fadvise(POSIX_FADV_DONTNEED)` (what `vmtouch -e` does, which
/// alone would leave dirty pages in). Pages that a process has locked stay.
///
/// ```
/// let file = tempfile::tempfile()?;
/// match mmf::cache::evict(&file) {
///     Ok(()) => {}
///     Err(mmf::Error::Unsupported { .. }) => assert!(cfg!(windows)),
///     Err(e) => return Err(e.into()),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// The OS's refusal; [`Error::Unsupported`](crate::Error::Unsupported) on Windows, which has
/// no call that drops one file's cached pages.
///
/// # References
/// [`fdatasync(2)`](https://man7.org/linux/man-pages/man2/fdatasync.2.html),
/// [`posix_fadvise(2)`](https://man7.org/linux/man-pages/man2/posix_fadvise.2.html)
#[doc(alias = "posix_fadvise")]
pub fn evict(file: &File) -> Result<()> {
    sys::cache::evict(file)
}

/// The byte ranges of the file that hold data, in order (`lseek(SEEK_DATA / SEEK_HOLE)`):
/// the holes of a sparse file are left out. Where the file system does not tell, and on
/// Windows, the whole file is one range; a block device is one range of its size.
///
/// ```
/// let file = tempfile::tempfile()?;
/// file.set_len(1 << 30)?; // a 1 GiB hole
/// let ranges = mmf::cache::data_ranges(&file)?;
/// if cfg!(target_os = "linux") {
///     assert!(ranges.is_empty());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// The OS's refusal.
///
/// # References
/// [`lseek(2)`](https://man7.org/linux/man-pages/man2/lseek.2.html)
#[doc(alias = "SEEK_DATA")]
pub fn data_ranges(file: &File) -> Result<Vec<Range<u64>>> {
    sys::cache::data_ranges(file)
}
