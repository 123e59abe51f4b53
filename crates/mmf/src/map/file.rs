//! Files before they are mapped: what kind a file is ([`kind`], [`FileKind`]) and an open
//! that never hangs on a FIFO ([`open`]) — for programs that map paths a user gives them,
//! which may name a FIFO, a device or a `/proc` file as easily as a regular file — and
//! after creating one, making its name durable ([`sync_parent`]).
//!
//! ```no_run
//! use std::fs::OpenOptions;
//! use mmf::{Access, FileKind, Mapping};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (file, kind) = mmf::file::open("input.bin", OpenOptions::new().read(true))?;
//! if kind.is_mappable() {
//!     let _view = Mapping::from_file(&file, Access::ReadOnly)?.view(..)?;
//!     // ... read through the view
//! } else {
//!     // a FIFO, a device, /proc/...: read `file` as a stream
//!     std::io::copy(&mut &file, &mut std::io::sink())?;
//! }
//! # Ok(()) }
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use crate::sys;
pub use crate::sys::map::FileKind;

/// Opens `path` with `options` without ever waiting in the open itself, and says what it
/// opened: a FIFO with no writer (or no reader) opens at once instead of blocking, a
/// terminal does not become the controlling terminal. The handle returned reads and
/// writes as usual (blocking), so a FIFO can then be read as a stream.
///
/// Check the [`FileKind`] before anything else: only [`FileKind::is_mappable`] files can
/// be mapped. A FIFO opened for reading with no writer reads as empty (end of file at
/// once).
///
/// ```
/// use std::fs::OpenOptions;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("data.bin");
/// std::fs::write(&path, b"bytes")?;
/// let (file, kind) = mmf::file::open(&path, OpenOptions::new().read(true))?;
/// assert_eq!(kind, mmf::FileKind::Regular);
/// assert_eq!(mmf::Mapping::from_file(&file, mmf::Access::ReadOnly)?.size(), 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// What the open or `fstat` returns (`NotFound`, `PermissionDenied`, ...). A socket
/// cannot be opened at all (Linux: `ENXIO`, "No such device or address"); nor can a FIFO
/// for writing alone while it has no reader — open it for reading and writing.
///
/// # Platform-specific behaviour
///
/// Linux: `open(2)` with `O_NONBLOCK | O_NOCTTY` added (replacing any custom flags set on
/// `options`), `fstat(2)` / `fstatfs(2)`, then `fcntl(F_SETFL)` clears `O_NONBLOCK`.
/// Windows: `CreateFileW` never waits for a pipe's other end (a busy pipe fails), so this
/// is `options.open(path)` and `GetFileType`.
///
/// # References
/// [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html) (`O_NONBLOCK`),
/// [`fifo(7)`](https://man7.org/linux/man-pages/man7/fifo.7.html),
/// [`GetFileType`](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-getfiletype)
#[doc(alias = "O_NONBLOCK")]
pub fn open(path: impl AsRef<Path>, options: &OpenOptions) -> io::Result<(File, FileKind)> {
    let file = sys::map::open_nonblocking(path.as_ref(), options)?;
    let kind = sys::map::file_kind(&file)?;
    Ok((file, kind))
}

/// What kind of file `file` is open on.
///
/// ```
/// let file = tempfile::tempfile()?;
/// assert_eq!(mmf::file::kind(&file)?, mmf::FileKind::Regular);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// What `fstat` / `GetFileType` returns.
///
/// # Platform-specific behaviour
///
/// Linux: `fstat(2)`, and for a regular file `fstatfs(2)`, which tells a
/// [`FileKind::Pseudo`] file (procfs, sysfs, ...). Windows: `GetFileType` and
/// `GetFileInformationByHandle`.
///
/// # References
/// [`fstat(2)`](https://man7.org/linux/man-pages/man2/fstat.2.html),
/// [`fstatfs(2)`](https://man7.org/linux/man-pages/man2/fstatfs.2.html),
/// [`GetFileType`](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-getfiletype)
#[doc(alias = "GetFileType")]
#[doc(alias = "fstat")]
pub fn kind(file: &File) -> io::Result<FileKind> {
    sys::map::file_kind(file)
}

/// The number of bytes a mapping of `file` would cover, for a file of `kind`: a block
/// device's size, read from the device, or the file's length. (A block device's
/// `metadata().len()` is 0.)
///
/// ```
/// let file = tempfile::tempfile()?;
/// file.set_len(12345)?;
/// assert_eq!(mmf::file::len(&file, mmf::file::kind(&file)?)?, 12345);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// What `fstat` / `ioctl` / `GetFileSizeEx` returns.
///
/// # Platform-specific behaviour
///
/// Linux: `ioctl(BLKGETSIZE64)` for a [`FileKind::BlockDevice`], else `fstat(2)`'s
/// `st_size`. Windows: `GetFileSizeEx`.
///
/// # References
/// [`ioctl(2)`](https://man7.org/linux/man-pages/man2/ioctl.2.html) and `BLKGETSIZE64` in
/// `<linux/fs.h>`, [`fstat(2)`](https://man7.org/linux/man-pages/man2/fstat.2.html),
/// [`GetFileSizeEx`](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-getfilesizeex)
#[doc(alias = "BLKGETSIZE64")]
pub fn len(file: &File, kind: FileKind) -> io::Result<u64> {
    sys::map::file_len(file, kind)
}

/// Makes the entry of `path` in its directory durable: after creating, renaming or
/// removing a file, this is what makes the *name* survive a crash of the machine (a flush
/// of the file makes its bytes and size durable, not the directory's record of it).
///
/// ```
/// use std::io::Write;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("new.bin");
/// let mut file = std::fs::File::create(&path)?;
/// file.write_all(b"data")?;
/// file.sync_all()?; // the bytes and size
/// mmf::file::sync_parent(&path)?; // the name
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// What opening or syncing the directory returns (`NotFound` if it is gone;
/// `PermissionDenied` when neither the directory nor the file can be opened).
///
/// # Platform-specific behaviour
///
/// Linux: `open(dir, O_RDONLY | O_DIRECTORY)` then `fsync(2)` on it (a relative path
/// with no directory part means the current directory); in a directory this process may
/// write but not read, `syncfs(2)` through the file itself instead (it syncs the whole file
/// system, which includes the entry). Windows: nothing to do — NTFS
/// writes directory entries to its log, which `FlushFileBuffers` of the file (where every
/// durable [`View::flush`](crate::View::flush) ends) forces to the disk with everything
/// logged before it.
///
/// # References
/// [`fsync(2)`](https://man7.org/linux/man-pages/man2/fsync.2.html) ("Calling fsync()
/// does not necessarily ensure that the entry in the directory containing the file has
/// also reached disk. For that an explicit fsync() on a file descriptor for the directory
/// is also needed.")
#[doc(alias = "fsync")]
pub fn sync_parent(path: impl AsRef<Path>) -> io::Result<()> {
    let dir = match path.as_ref().parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    sys::map::sync_dir(path.as_ref(), dir)
}
