//! The error type: every refusal says what was wrong and what to do.

use std::fmt;
use std::io;

use crate::sys::map::access::Access;
use crate::sys::map::file_kind::FileKind;

/// What went wrong creating a mapping or a view, or using one.
///
/// Each variant's message names the cause and the fix. Errors from the OS keep the
/// [`io::Error`] as their [`source`](std::error::Error::source) and say which call failed.
/// `Error` converts into [`io::Error`] so `?` works in functions returning `io::Result`.
///
/// ```
/// use mmf::{Error, Mapping};
///
/// let file = tempfile::tempfile()?; // empty
/// let err = Mapping::from_file(&file, mmf::Access::ReadWrite).unwrap_err();
/// assert!(matches!(err, Error::EmptyFile));
/// assert!(err.to_string().contains("give a size"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[non_exhaustive]
pub enum Error {
    /// The file is empty and no size was given (Windows refuses this too).
    EmptyFile,
    /// An anonymous mapping was asked for with size 0.
    ZeroSize,
    /// An unnamed anonymous mapping was asked for read-only: nothing could ever write it.
    ReadOnlyAnonymous,
    /// The handle is a directory, which cannot be mapped.
    IsDirectory,
    /// The handle is a file that cannot be mapped: a FIFO, a socket, a character device,
    /// a procfs or sysfs pseudo-file (see [`FileKind::is_mappable`]). Read it as a stream
    /// instead.
    NotMappable {
        /// What the file is.
        kind: FileKind,
    },
    /// The size asked for is past the end of a file that cannot grow (a block device).
    CannotGrow {
        /// The size asked for.
        size: u64,
        /// The file's (device's) size.
        len: u64,
        /// What the file is.
        kind: FileKind,
    },
    /// A read-write mapping of a file that was opened without write access.
    FileNotWritable,
    /// A mapping of a file that was opened without read access.
    FileNotReadable,
    /// The size is past the end of the file and the mapping's access cannot grow it.
    SizePastEnd {
        /// The size asked for.
        size: u64,
        /// The file's length.
        file_len: u64,
        /// The access of the mapping that was asked for.
        access: Access,
    },
    /// A size or length that cannot fit in the address space.
    TooLarge {
        /// The size asked for, in bytes.
        size: u64,
    },
    /// A range that starts or ends past the end of the mapping or view.
    OutOfRange {
        /// Start of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// Size of the mapping or view it must fit in.
        size: u64,
    },
    /// `offset + len` does not fit in a `u64`.
    Overflow {
        /// Start of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
    },
    /// A range whose end lies before its start (`9..5`).
    ReversedRange {
        /// Start of the range.
        start: u64,
        /// Its (exclusive) end.
        end: u64,
    },
    /// A kind of view the mapping's access does not allow (a read-write view of a
    /// read-only mapping).
    AccessDenied {
        /// The view that was asked for: `"read-write"`, ...
        view: &'static str,
        /// The mapping's access.
        mapping: Access,
    },
    /// A requested view address that is not aligned the way the view's offset is.
    AddressMisaligned {
        /// The address asked for.
        address: usize,
        /// The address modulo the allocation granularity must equal this.
        expected_remainder: usize,
        /// The allocation granularity.
        granularity: usize,
    },
    /// A requested view address whose range is already (partly) mapped.
    AddressTaken {
        /// The address asked for.
        address: usize,
        /// The number of bytes that had to be free there.
        len: usize,
    },
    /// A name that cannot be used for a named mapping.
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// [`CreationMode::CreateNew`](crate::CreationMode::CreateNew) and the name exists
    /// (possibly planted by someone else).
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// No object has this name.
    NotFound {
        /// The name.
        name: String,
    },
    /// The object under the name is not a regular shared-memory object (a symlink, a
    /// directory, a device...).
    NotRegularFile {
        /// The name.
        name: String,
    },
    /// The object under the name belongs to another user.
    ForeignOwner {
        /// The name.
        name: String,
        /// The owner's user id.
        owner: u32,
    },
    /// The object is smaller than the size asked for.
    TooSmall {
        /// The name.
        name: String,
        /// Its size.
        size: u64,
        /// The size asked for.
        asked: u64,
    },
    /// The named object is locked exclusively by another process for longer than a
    /// moment (mmf itself only ever holds such a lock for an instant).
    Busy {
        /// The name.
        name: String,
    },
    /// There is no room for a new named object in the shared-memory file system.
    NoSpace {
        /// The object's size in bytes.
        size: u64,
        /// The bytes still free there.
        available: u64,
    },
    /// A named file mapping whose record of the file it maps could have been written by a
    /// user other than this one (the object is writable by others, or owned by someone
    /// else); mapping the file it names could write into any file this user may write.
    UntrustedFile {
        /// The name.
        name: String,
    },
    /// The object or file was truncated under a view, and a guarded copy touched a page
    /// that no longer exists (SIGBUS caught), or [`View::populate`](crate::View::populate)
    /// found pages past the new end.
    Truncated {
        /// Offset in the view of the copy that faulted.
        offset: usize,
        /// Length of that copy.
        len: usize,
    },
    /// A write through a view needed a page that the file system had no space for (a
    /// sparse file on a full disk, a full tmpfs): the fault was caught inside the copy.
    StorageFull {
        /// Offset in the view of the copy that faulted.
        offset: usize,
        /// Length of that copy.
        len: usize,
    },
    /// The device could not read or write a page of the view (an I/O error of a disk or
    /// network share, a hardware memory error): the fault was caught inside the copy.
    InPageError {
        /// Offset in the view of the copy that faulted.
        offset: usize,
        /// Length of that copy.
        len: usize,
    },
    /// An atomic or typed access at an offset that is not aligned for its type.
    Misaligned {
        /// The offset in the view.
        offset: usize,
        /// The alignment the type needs.
        align: usize,
    },
    /// A growable view was asked to grow past the address space reserved for it; nothing
    /// changed.
    GrowPastReserve {
        /// The length asked for, in bytes from the view's start.
        len: u64,
        /// The most it can grow to.
        reserve: u64,
    },
    /// The file system had no space to grow the file or object to the new size; nothing
    /// changed.
    GrowNoSpace {
        /// The size asked for, in bytes.
        size: u64,
        /// What the OS said.
        source: io::Error,
    },
    /// Locking pages in memory was refused by the process's limit of locked memory.
    LockLimit {
        /// The number of bytes asked to lock.
        len: usize,
        /// What the OS said.
        source: io::Error,
    },
    /// No usable sync area (`mmf::sync`) at this offset: none was initialized there, it
    /// was written by an incompatible version or corrupted by a peer, the view is too small
    /// for it, or its participant table is full.
    SyncArea {
        /// The area's offset in the view.
        offset: usize,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// A channel (`mmf::channel`) cannot be made or used as asked: options out of range,
    /// an existing channel with other parameters, an endpoint that is already taken.
    Channel {
        /// The channel's name.
        name: String,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// Shared state that a peer writes does not add up: a channel header of another format,
    /// a position or a record length that cannot be (written by a program that is not mmf,
    /// or corrupted). Nothing was read past it.
    Corrupted {
        /// What was found, where.
        reason: String,
    },
    /// A message larger than the channel's maximum message size.
    MessageTooLarge {
        /// The message's length in bytes.
        len: usize,
        /// The channel's maximum, in bytes.
        max: u32,
    },
    /// A semaphore release would pass the semaphore's maximum (`ERROR_TOO_MANY_POSTS`);
    /// the count is unchanged.
    SemaphoreFull {
        /// The count when the release was refused.
        count: u32,
        /// The units released.
        n: u32,
        /// The maximum.
        max: u32,
    },
    /// A write-through view ([`ViewOptions::write_through`](crate::ViewOptions::write_through))
    /// cannot be made, or cannot do what was asked.
    WriteThrough {
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// The operation has no equivalent on this platform.
    Unsupported {
        /// What, and why.
        what: &'static str,
    },
    /// The OS refused an operation.
    Os {
        /// The operation, in the OS's terms (`"mmap"`, `"MapViewOfFile"`, ...).
        op: &'static str,
        /// What the OS said.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn os(op: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Os { op, source }
    }

    /// The [`io::ErrorKind`] that best describes this error.
    pub fn kind(&self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self {
            Error::Os { source, .. } | Error::LockLimit { source, .. } => source.kind(),
            Error::GrowNoSpace { .. } => K::StorageFull,
            Error::FileNotWritable | Error::FileNotReadable | Error::AccessDenied { .. } => {
                K::PermissionDenied
            }
            Error::IsDirectory => K::IsADirectory,
            Error::AddressTaken { .. } | Error::AlreadyExists { .. } => K::AlreadyExists,
            Error::NotFound { .. } => K::NotFound,
            Error::Busy { .. } => K::WouldBlock,
            Error::NoSpace { .. } => K::StorageFull,
            Error::UntrustedFile { .. } => K::PermissionDenied,
            Error::ForeignOwner { .. } => K::PermissionDenied,
            Error::Truncated { .. } => K::UnexpectedEof,
            Error::StorageFull { .. } => K::StorageFull,
            Error::InPageError { .. } => K::Other,
            Error::Unsupported { .. } => K::Unsupported,
            Error::TooLarge { .. } => K::OutOfMemory,
            Error::Corrupted { .. } => K::InvalidData,
            _ => K::InvalidInput,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyFile => f.write_str(
                "the file is empty and no mapping size was given: give a size to grow the file \
                 (the file must be open for writing)",
            ),
            Error::ZeroSize => f.write_str("an anonymous mapping needs a size of at least 1 byte"),
            Error::ReadOnlyAnonymous => f.write_str(
                "a read-only anonymous mapping without a name could only ever hold zeros: map \
                 it read-write (the default for anonymous memory), or give it a name so that \
                 another process can write it",
            ),
            Error::IsDirectory => f.write_str("a directory cannot be mapped: give a regular file"),
            Error::NotMappable { kind: kind @ FileKind::Pseudo { .. } } => write!(
                f,
                "{kind} cannot be mapped: the kernel makes its content as it is read, and its \
                 size says nothing about it; read it as a stream (read(2)) instead"
            ),
            Error::NotMappable { kind } => write!(
                f,
                "{kind} cannot be mapped: it is a stream, with no size and no pages to map; \
                 read it as a stream (read(2)) instead, or map a regular file or a block device"
            ),
            Error::CannotGrow { size, len, kind } => write!(
                f,
                "mapping size {size} is past the end of {kind} ({len} bytes), which a mapping \
                 cannot grow: map at most {len} bytes"
            ),
            Error::FileNotWritable => f.write_str(
                "the file was opened without write access, so it cannot have a read-write \
                 mapping: open it with write access, or map it read-only or copy-on-write",
            ),
            Error::FileNotReadable => f.write_str(
                "the file was opened without read access: open it for reading to map it",
            ),
            Error::SizePastEnd { size, file_len, access } => write!(
                f,
                "mapping size {size} is past the end of the file ({file_len} bytes) and a \
                 {access} mapping cannot grow it: map at most {file_len} bytes, or use a \
                 read-write mapping of a file opened for writing"
            ),
            Error::TooLarge { size } => write!(
                f,
                "{size} bytes do not fit in this process's address space: map a smaller view"
            ),
            Error::OutOfRange { offset, len, size } => write!(
                f,
                "range {offset}..{} ({len} bytes) is past the end ({size} bytes): keep offset \
                 and length inside the mapping",
                offset.saturating_add(*len)
            ),
            Error::Overflow { offset, len } => write!(
                f,
                "offset {offset} + length {len} overflows a 64-bit byte count: give a smaller \
                 offset or length"
            ),
            Error::ReversedRange { start, end } => write!(
                f,
                "range {start}..{end} ends before it starts: give a start at or before its end"
            ),
            Error::AccessDenied { view, mapping } => write!(
                f,
                "a {view} view of a {mapping} mapping is not allowed: create the mapping with \
                 read-write access, or ask for a read-only or copy-on-write view"
            ),
            Error::AddressMisaligned { address, expected_remainder, granularity } => write!(
                f,
                "address {address:#x} cannot hold this view: the view's offset needs an address \
                 that is {expected_remainder:#x} past a multiple of {granularity:#x}"
            ),
            Error::AddressTaken { address, len } => write!(
                f,
                "address range {address:#x}..{:#x} is already in use: choose another address, \
                 or let the system choose one",
                address.saturating_add(*len)
            ),
            Error::InvalidName { name, reason } => write!(
                f,
                "invalid name {name:?}: {reason}; use 1 to 200 characters from A-Z a-z 0-9 . _ - \
                 (not starting with '.')"
            ),
            Error::AlreadyExists { name } => write!(
                f,
                "a named object {name:?} already exists: choose another name, open it instead, \
                 or remove it if it is stale and yours"
            ),
            Error::NotFound { name } => write!(
                f,
                "no named object {name:?} exists: create it first (its last holder may have \
                 closed it)"
            ),
            Error::NotRegularFile { name } => write!(
                f,
                "the object under the name {name:?} is not a regular shared-memory object (a \
                 symlink or something planted there?): refusing to use it; remove it or choose \
                 another name"
            ),
            Error::ForeignOwner { name, owner } => write!(
                f,
                "the object {name:?} belongs to user {owner}, not to you: refusing to use it \
                 (a program that trusts that user may allow it: \
                 `NameOptions::allow_foreign_owner`); ask its owner to remove it, or use \
                 another name"
            ),
            Error::TooSmall { name, size: 0, asked: _ } => write!(
                f,
                "the object {name:?} is empty (0 bytes): there is nothing to map; open it once \
                 its creator has given it a size, or remove it if it is stale"
            ),
            Error::TooSmall { name, size, asked } => write!(
                f,
                "the object {name:?} has {size} bytes, less than the {asked} asked for: ask for \
                 at most {size} bytes"
            ),
            Error::Busy { name } => write!(
                f,
                "the named object {name:?} is locked exclusively by another process (not an \
                 mmf holder): try again later, or find the process that locks it"
            ),
            Error::NoSpace { size, available } => write!(
                f,
                "no space in /dev/shm for an object of {size} bytes ({available} bytes free): \
                 remove named objects that are no longer needed, or ask for less"
            ),
            Error::UntrustedFile { name } => write!(
                f,
                "the named file mapping {name:?} is writable by other users or owned by \
                 another user, so its record of the file it maps may be forged: refusing to \
                 map that file; create named file mappings without group or other write \
                 permission, and open the file itself if you trust it"
            ),
            Error::Truncated { offset, len } => write!(
                f,
                "the object or file was truncated under the view: the copy of {len} bytes at \
                 offset {offset} touched a page past its new end; keep copies within its \
                 current size (or map a new view)"
            ),
            Error::StorageFull { offset, len } => write!(
                f,
                "no space for a page of the file: the write of {len} bytes at offset {offset} \
                 needed a page that the file system (full disk or tmpfs) could not give; free \
                 space, or allocate the file's blocks before writing (posix_fallocate)"
            ),
            Error::InPageError { offset, len } => write!(
                f,
                "the device failed to read or write a page: the copy of {len} bytes at offset \
                 {offset} touched a page that could not be brought in; check the disk or share \
                 and its logs"
            ),
            Error::Misaligned { offset, align } => write!(
                f,
                "offset {offset} is not a multiple of {align}, which this type needs: use an \
                 aligned offset"
            ),
            Error::GrowPastReserve { len, reserve } => write!(
                f,
                "cannot grow the view to {len} bytes in place: only {reserve} bytes of address \
                 space were reserved for it; nothing changed. Reserve more when making the \
                 view, or map a new one"
            ),
            Error::GrowNoSpace { size, source } => write!(
                f,
                "no space to grow the file to {size} bytes ({source}); nothing changed: free \
                 space or grow less"
            ),
            Error::LockLimit { len, source } => write!(
                f,
                "locking {len} bytes in memory was refused ({source}): the process's limit of \
                 locked memory is too low; raise it (Linux: RLIMIT_MEMLOCK, `ulimit -l`; \
                 Windows: the working-set quota) or lock less"
            ),
            Error::SyncArea { offset, reason } => {
                write!(f, "sync area at offset {offset} of the view: {reason}")
            }
            Error::Channel { name, reason } => write!(f, "channel {name:?}: {reason}"),
            Error::Corrupted { reason } => write!(
                f,
                "corrupted shared state: {reason} (written by a peer that is not mmf, or a \
                 bug): recreate the object"
            ),
            Error::MessageTooLarge { len, max } => write!(
                f,
                "a message of {len} bytes is larger than the channel's maximum of {max}: \
                 split it, or create the channel with a larger maximum message size"
            ),
            Error::SemaphoreFull { count, n, max } => write!(
                f,
                "releasing {n} would take the semaphore's count from {count} past its maximum \
                 {max}: release fewer (each acquire should be matched by one release)"
            ),
            Error::WriteThrough { reason } => write!(f, "write-through view: {reason}"),
            Error::Unsupported { what } => write!(f, "not supported on this platform: {what}"),
            Error::Os { op, source } => write!(f, "{op} failed: {source}"),
        }
    }
}

/// The message, as `Display` writes it (an OS error's includes its code): what
/// `fn main() -> Result<(), Box<dyn std::error::Error>>` prints on failure, and what
/// `unwrap` shows.
///
/// ```
/// let err = mmf::Mapping::open("no-such-name-anywhere", mmf::Access::ReadOnly).unwrap_err();
/// assert_eq!(format!("{err:?}"), err.to_string());
/// assert!(format!("{err:?}").contains("create it first"));
/// ```
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os { source, .. }
            | Error::LockLimit { source, .. }
            | Error::GrowNoSpace { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        // The OS error stays reachable through `source()`; the message keeps the call's name.
        io::Error::new(err.kind(), err)
    }
}

/// The result of mmf's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
