//! The file-mapping object (`CreateFileMapping`): what views are made of.

use std::fs::File;
use std::sync::Arc;

use super::{MappingOptions, View, ViewMut, ViewOptions};
use crate::error::Result;
use crate::named::Named;
use crate::sys;
use crate::sys::map::Access;

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
    section: sys::map::Section,
    file: Option<Arc<File>>,
    size: u64,
    access: Access,
    named: Option<Arc<Named>>,
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

    /// `OpenFileMapping(access, name)`: opens the named mapping another process created;
    /// see [`MappingOptions::open_named`].
    ///
    /// # Errors
    /// As [`MappingOptions::open_named`].
    #[doc(alias = "OpenFileMapping")]
    #[doc(alias = "OpenFileMappingW")]
    pub fn open(name: &str, access: Access) -> Result<Mapping> {
        MappingOptions::new().access(access).open_named(name)
    }

    /// The mapping of a named object that `sys` created or opened.
    pub(super) fn from_named(opened: sys::named::Opened, name: &str, access: Access) -> Mapping {
        let named = Named { name: name.to_owned(), created: opened.created, _hold: opened.hold };
        Mapping {
            section: opened.section,
            file: opened.file,
            size: opened.size,
            access,
            named: Some(Arc::new(named)),
        }
    }

    /// The name, for a named mapping.
    pub fn name(&self) -> Option<&str> {
        self.named.as_deref().map(|n| n.name.as_str())
    }

    /// Whether this call created the named object (`false` when it opened an existing one,
    /// and for unnamed mappings) — what `GetLastError() != ERROR_ALREADY_EXISTS` tells after
    /// `CreateFileMapping`.
    pub fn created(&self) -> bool {
        self.named.as_deref().is_some_and(|n| n.created)
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

    /// Builds a mapping of an unnamed object.
    pub(super) fn new(
        section: sys::map::Section,
        file: Option<Arc<File>>,
        size: u64,
        access: Access,
    ) -> Mapping {
        Mapping { section, file, size, access, named: None }
    }

    pub(crate) fn section(&self) -> &sys::map::Section {
        &self.section
    }

    pub(crate) fn file(&self) -> Option<&Arc<File>> {
        self.file.as_ref()
    }

    pub(crate) fn named(&self) -> Option<&Arc<Named>> {
        self.named.as_ref()
    }
}
