//! The heap's errors: what went wrong and what to do about it.

use std::fmt;
use std::io;

/// The result of heap operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a heap operation can fail with.
///
/// Bad bytes in the file are always [`Error::Corrupted`] (or [`Error::NotAHeap`] /
/// [`Error::UnsupportedFormat`] for a file that was never a heap of this version), never
/// undefined behaviour or a panic.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A structure in the file failed a check (checksum, bounds, alignment, a field out of
    /// range): `what` names the structure, `offset` is its byte offset in the file.
    Corrupted {
        /// The structure that failed its check ("commit slot", "manifest", "root directory").
        what: &'static str,
        /// Its byte offset in the file.
        offset: u64,
    },
    /// The file does not start with the heap's magic bytes: not a heap file.
    NotAHeap,
    /// The file is a heap of a format version this library does not read.
    UnsupportedFormat {
        /// The version in the file's superblock.
        found: u32,
        /// The version this library reads and writes.
        supported: u32,
    },
    /// A named root holds a value of another type than the one asked for.
    TypeMismatch {
        /// The root's name.
        root: String,
        /// The type hash of the type asked for ([`Persist::TYPE_HASH`](crate::Persist)).
        expected: u64,
        /// The type hash stored with the root.
        found: u64,
    },
    /// The device is full (`ENOSPC`, `ERROR_DISK_FULL`) or a quota is exhausted: the
    /// transaction is not committed, the heap stays at its last commit. Free space or
    /// commit less at a time.
    StorageFull,
    /// A write to an object that an earlier transaction committed: committed objects are
    /// immutable (readers may see them). Allocate a new one and free the old.
    Immutable {
        /// The object's byte offset.
        offset: u64,
    },
    /// An argument is out of the range the heap supports (a root name, a value's size).
    InvalidArgument {
        /// What was wrong.
        what: &'static str,
    },
    /// The heap was opened read-only: no write transactions.
    ReadOnly,
    /// An operation of the file system or the mapping failed.
    Io {
        /// The operation ("write", "sync", "grow", "map").
        op: &'static str,
        /// The cause.
        source: io::Error,
    },
}

impl Error {
    /// `Corrupted { what, offset }`.
    pub(crate) fn corrupted(what: &'static str, offset: u64) -> Self {
        Error::Corrupted { what, offset }
    }

    /// An I/O error of `op`, a full device told apart.
    pub fn io(op: &'static str, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Error::StorageFull,
            _ => Error::Io { op, source },
        }
    }

    /// A mapping error of `op`, a full device told apart.
    pub(crate) fn map(op: &'static str, e: mmf::Error) -> Self {
        match e {
            mmf::Error::StorageFull { .. } => Error::StorageFull,
            e => Error::Io { op, source: io::Error::other(e) },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Corrupted { what, offset } => write!(
                f,
                "the heap file is corrupted: the {what} at byte offset {offset} failed its check"
            ),
            Error::NotAHeap => {
                write!(f, "not an mmf heap file (its first bytes are not the heap's magic)")
            }
            Error::UnsupportedFormat { found, supported } if *found < *supported => write!(
                f,
                "the heap file has format version {found}, written by an older mmf-heap; this \
                 one reads version {supported} (docs/heap-format.md, \"Versions\", says what \
                 changed): read it with the mmf-heap that wrote it and copy the data into a new heap"
            ),
            Error::UnsupportedFormat { found, supported } => write!(
                f,
                "the heap file has format version {found}, written by a newer mmf-heap; this \
                 one reads version {supported}: use a newer mmf-heap"
            ),
            Error::TypeMismatch { root, expected, found } => write!(
                f,
                "the root {root:?} holds another type (type hash {found:#018x}, asked for {expected:#018x})"
            ),
            Error::StorageFull => write!(
                f,
                "no space left on the device: the transaction was not committed, the heap is at its last commit"
            ),
            Error::Immutable { offset } => write!(
                f,
                "the object at byte offset {offset} was committed by an earlier transaction and is immutable: allocate a new one"
            ),
            Error::InvalidArgument { what } => write!(f, "invalid argument: {what}"),
            Error::ReadOnly => write!(f, "the heap is open read-only: no write transactions"),
            Error::Io { op, source } => write!(f, "{op} failed: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io { source, .. } => source,
            Error::StorageFull => io::Error::new(io::ErrorKind::StorageFull, e),
            Error::Corrupted { .. } | Error::NotAHeap | Error::UnsupportedFormat { .. } => {
                io::Error::new(io::ErrorKind::InvalidData, e)
            }
            e => io::Error::other(e),
        }
    }
}
