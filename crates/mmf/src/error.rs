//! The error type: every refusal says what was wrong and what to do.

use std::fmt;
use std::io;

use crate::Access;

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
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The file is empty and no size was given (Windows refuses this too).
    EmptyFile,
    /// An anonymous mapping was asked for with size 0.
    ZeroSize,
    /// The handle is a directory, which cannot be mapped.
    IsDirectory,
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
    /// A view of zero bytes was asked for.
    EmptyRange,
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
            Error::Os { source, .. } => source.kind(),
            Error::FileNotWritable | Error::FileNotReadable | Error::AccessDenied { .. } => {
                K::PermissionDenied
            }
            Error::IsDirectory => K::IsADirectory,
            Error::AddressTaken { .. } => K::AlreadyExists,
            Error::TooLarge { .. } => K::OutOfMemory,
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
            Error::IsDirectory => f.write_str("a directory cannot be mapped: give a regular file"),
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
            Error::EmptyRange => {
                f.write_str("a view of 0 bytes was asked for: give a length of at least 1")
            }
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
            Error::Os { op, source } => write!(f, "{op} failed: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os { source, .. } => Some(source),
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
