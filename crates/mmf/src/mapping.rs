//! The file-mapping object (`CreateFileMapping`): what views are made of.

use std::fmt;
use std::fs::File;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::view::{View, ViewKind, ViewMut, ViewOptions};
use crate::{MAX_SIZE, sys};

/// The protection of a mapping object, and so which views it allows
/// (`PAGE_READONLY`, `PAGE_READWRITE`, `PAGE_WRITECOPY` on Windows).
///
/// | mapping | read-only view | read-write view | copy-on-write view |
/// |---|---|---|---|
/// | `ReadOnly` | yes | no | yes |
/// | `ReadWrite` | yes | yes | yes |
/// | `CopyOnWrite` | yes | no | yes |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Access {
    /// Views may read the file; writing needs a copy-on-write view.
    #[default]
    ReadOnly,
    /// Views may read and write the file; the file must be open for reading and writing.
    /// Only this access grows a file to the mapping's size.
    ReadWrite,
    /// Views read the file and write private copies of its pages; the file never changes.
    CopyOnWrite,
}

impl Access {
    pub(crate) fn allows(self, kind: ViewKind) -> bool {
        kind != ViewKind::Write || self == Access::ReadWrite
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::ReadOnly => "read-only",
            Access::ReadWrite => "read-write",
            Access::CopyOnWrite => "copy-on-write",
        })
    }
}

/// How to create a [`Mapping`]: access and maximum size (the arguments of
/// `CreateFileMapping`), then one terminal call.
///
/// ```
/// use mmf::{Access, MappingOptions};
///
/// let file = tempfile::tempfile()?;
/// // An empty file opened for writing grows to the mapping's size, as on Windows.
/// let mapping = MappingOptions::new().access(Access::ReadWrite).size(1 << 20).map_file(&file)?;
/// assert_eq!(mapping.size(), 1 << 20);
/// assert_eq!(file.metadata()?.len(), 1 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct MappingOptions {
    access: Access,
    size: Option<u64>,
}

impl MappingOptions {
    /// Read-only access, size of the file.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mapping's protection (default [`Access::ReadOnly`]).
    pub fn access(&mut self, access: Access) -> &mut Self {
        self.access = access;
        self
    }

    /// The maximum size in bytes. For a file: `0` or unset means the file's size; more than
    /// the file holds grows it (read-write access only). Required for anonymous mappings.
    pub fn size(&mut self, size: u64) -> &mut Self {
        self.size = Some(size);
        self
    }

    /// `CreateFileMapping(file, ...)`: a mapping of an open file.
    ///
    /// The mapping keeps its own handle to the file (`dup` / `DuplicateHandle` semantics),
    /// so `file` may be closed afterwards.
    ///
    /// # Errors
    /// [`Error::IsDirectory`], [`Error::FileNotReadable`], [`Error::FileNotWritable`] (read-write
    /// mapping of a file opened read-only), [`Error::EmptyFile`] (no size for an empty file),
    /// [`Error::SizePastEnd`] (a size the access cannot grow the file to),
    /// [`Error::TooLarge`], or the OS's refusal.
    #[doc(alias = "CreateFileMapping")]
    #[doc(alias = "CreateFileMappingW")]
    pub fn map_file(&self, file: &File) -> Result<Mapping> {
        let meta = file.metadata().map_err(Error::os("fstat"))?;
        if meta.is_dir() {
            return Err(Error::IsDirectory);
        }
        if let Some((read, write)) = sys::file_access(file).map_err(Error::os("fcntl"))? {
            if !read {
                return Err(Error::FileNotReadable);
            }
            if self.access == Access::ReadWrite && !write {
                return Err(Error::FileNotWritable);
            }
        }
        let file_len = meta.len();
        let size = match self.size {
            None | Some(0) if file_len == 0 => return Err(Error::EmptyFile),
            None | Some(0) => file_len,
            Some(size) => size,
        };
        if size > MAX_SIZE {
            return Err(Error::TooLarge { size });
        }
        if size > file_len && self.access != Access::ReadWrite {
            return Err(Error::SizePastEnd { size, file_len, access: self.access });
        }
        let file = Arc::new(file.try_clone().map_err(Error::os("dup"))?);
        let section = sys::Section::from_file(&file, self.access, size, file_len)?;
        Ok(Mapping { section, file: Some(file), size, access: self.access })
    }

    /// `CreateFileMapping(INVALID_HANDLE_VALUE, ...)`: a pagefile-backed mapping of the
    /// given [`size`](Self::size), zero-filled, shared by all of its views (on Linux a
    /// `memfd`).
    ///
    /// # Errors
    /// [`Error::ZeroSize`] without a size, [`Error::TooLarge`], or the OS's refusal.
    pub fn map_anonymous(&self) -> Result<Mapping> {
        let size = self.size.unwrap_or(0);
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        if size > MAX_SIZE {
            return Err(Error::TooLarge { size });
        }
        let section = sys::Section::anonymous(size)?;
        Ok(Mapping { section, file: None, size, access: self.access })
    }
}

/// A file-mapping object: a file (or pagefile-backed memory) with a maximum size and an
/// access, from which [`View`]s are mapped.
///
/// Dropping it is `CloseHandle`: views already mapped stay valid.
///
/// ```
/// use mmf::{Access, Mapping};
///
/// let mapping = Mapping::anonymous(4096)?;
/// let mut a = mapping.view_mut(..)?;
/// let b = mapping.view(100..200)?;
/// drop(mapping); // views outlive the mapping object
/// a.write_at(100, b"shared")?;
/// let mut buf = [0; 6];
/// b.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"shared");
/// # Ok::<(), mmf::Error>(())
/// ```
#[derive(Debug)]
pub struct Mapping {
    section: sys::Section,
    file: Option<Arc<File>>,
    size: u64,
    access: Access,
}

impl Mapping {
    /// A mapping of the whole file with the given access; see [`MappingOptions::map_file`].
    #[doc(alias = "CreateFileMapping")]
    pub fn from_file(file: &File, access: Access) -> Result<Mapping> {
        MappingOptions::new().access(access).map_file(file)
    }

    /// A read-write, zero-filled, pagefile-backed mapping of `size` bytes; see
    /// [`MappingOptions::map_anonymous`].
    pub fn anonymous(size: u64) -> Result<Mapping> {
        MappingOptions::new().access(Access::ReadWrite).size(size).map_anonymous()
    }

    /// The mapping's size in bytes: views must lie inside it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The mapping's access.
    pub fn access(&self) -> Access {
        self.access
    }

    /// `MapViewOfFile(FILE_MAP_READ)` of a byte range (`..`, `a..b`, `a..`, `a..=b`).
    ///
    /// # Errors
    /// As [`ViewOptions::map`].
    #[doc(alias = "MapViewOfFile")]
    pub fn view(&self, range: impl std::ops::RangeBounds<u64>) -> Result<View> {
        ViewOptions::new().range(range).map(self)
    }

    /// `MapViewOfFile(FILE_MAP_WRITE)` of a byte range; needs a read-write mapping.
    ///
    /// # Errors
    /// As [`ViewOptions::map_mut`].
    #[doc(alias = "MapViewOfFile")]
    pub fn view_mut(&self, range: impl std::ops::RangeBounds<u64>) -> Result<ViewMut> {
        ViewOptions::new().range(range).map_mut(self)
    }

    /// `MapViewOfFile(FILE_MAP_COPY)` of a byte range: writes stay private to the view.
    ///
    /// # Errors
    /// As [`ViewOptions::map_copy`].
    #[doc(alias = "MapViewOfFile")]
    pub fn view_copy(&self, range: impl std::ops::RangeBounds<u64>) -> Result<ViewMut> {
        ViewOptions::new().range(range).map_copy(self)
    }

    pub(crate) fn section(&self) -> &sys::Section {
        &self.section
    }

    pub(crate) fn file(&self) -> Option<&Arc<File>> {
        self.file.as_ref()
    }
}
