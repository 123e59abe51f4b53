//! [`FileKind`]: what an open handle refers to. In a file of its own, importing nothing of
//! the crate, because `crate::error` names it too.

use std::fmt;

/// What kind of file an open handle refers to: `fstat`'s file type (and, for a regular
/// file, `fstatfs`'s file system) on Linux, `GetFileType` on Windows.
///
/// Only [`Regular`](Self::Regular) files and [`BlockDevice`](Self::BlockDevice)s can be
/// mapped ([`is_mappable`](Self::is_mappable)); the rest have no size that a mapping could
/// cover, and are read as streams (`read(2)`) instead. `MappingOptions::map_file` refuses
/// them with [`Error::NotMappable`], whose message names the kind.
///
/// ```
/// use mmf::FileKind;
///
/// let file = tempfile::tempfile()?;
/// assert_eq!(mmf::file::kind(&file)?, FileKind::Regular);
/// assert!(FileKind::Regular.is_mappable());
/// assert!(!FileKind::Fifo.is_mappable());
/// assert_eq!(FileKind::Fifo.to_string(), "a FIFO (named pipe)");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Platform-specific behaviour
///
/// Linux tells every kind. A regular file on a file system whose content the kernel makes
/// as it is read (procfs, sysfs, debugfs, tracefs, securityfs, cgroup) is a
/// [`Pseudo`](Self::Pseudo) file: `/proc/version` has size 0 but content, a sysfs
/// attribute has size 4096 whatever it holds, and neither can be mapped. Windows tells
/// [`Regular`](Self::Regular), [`Directory`](Self::Directory),
/// [`CharDevice`](Self::CharDevice) (`NUL`, `CON`) and [`Fifo`](Self::Fifo) (pipes and
/// sockets); it has no block devices that mmf maps.
///
/// [`Error::NotMappable`]: crate::error::Error::NotMappable
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// A regular file: mappable, its size is its length.
    Regular,
    /// A directory.
    Directory,
    /// A block device (a disk, a partition, a loop device): mappable on Linux, its size
    /// is the device's (`ioctl(BLKGETSIZE64)`), and a mapping cannot grow it.
    BlockDevice,
    /// A character device (`/dev/null`, `/dev/zero`, a terminal): a stream.
    CharDevice,
    /// A FIFO (named pipe): a stream, with a writer at the other end.
    Fifo,
    /// A Unix domain socket (which cannot even be opened as a file).
    Socket,
    /// A regular file whose content the kernel makes as it is read: a stream whose size
    /// says nothing about its content.
    Pseudo {
        /// The file system: `"procfs"`, `"sysfs"`, ...
        file_system: &'static str,
    },
    /// Anything else the OS reports.
    Other,
}

impl FileKind {
    /// Whether a file of this kind can be mapped: regular files and block devices.
    pub fn is_mappable(self) -> bool {
        matches!(self, FileKind::Regular | FileKind::BlockDevice)
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileKind::Regular => f.write_str("a regular file"),
            FileKind::Directory => f.write_str("a directory"),
            FileKind::BlockDevice => f.write_str("a block device"),
            FileKind::CharDevice => f.write_str("a character device"),
            FileKind::Fifo => f.write_str("a FIFO (named pipe)"),
            FileKind::Socket => f.write_str("a socket"),
            FileKind::Pseudo { file_system } => write!(f, "a {file_system} pseudo-file"),
            FileKind::Other => f.write_str("a special file"),
        }
    }
}
