//! The file-mapping object (`CreateFileMapping`): what views are made of.

use std::fmt;
use std::fs::File;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::named::{CreationMode, Named, NamedSpec, validate_name};
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
#[derive(Clone, Debug)]
pub struct MappingOptions {
    access: Access,
    size: Option<u64>,
    name: Option<String>,
    creation: CreationMode,
    permissions: u32,
    foreign_owner: bool,
    global: bool,
    keep: bool,
}

impl Default for MappingOptions {
    fn default() -> Self {
        MappingOptions {
            access: Access::ReadOnly,
            size: None,
            name: None,
            creation: CreationMode::OpenOrCreate,
            permissions: 0o600,
            foreign_owner: false,
            global: false,
            keep: false,
        }
    }
}

impl MappingOptions {
    /// Read-only access, size of the file, no name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Give the mapping a name that other processes open it by (`lpName` of
    /// `CreateFileMapping`): `shm_open("/NAME")` on Linux, `Local\NAME` on Windows, so
    /// programs that do not use mmf share the same object. See [`crate::named`] for the
    /// lifetime and security rules.
    ///
    /// ```
    /// use mmf::{Access, CreationMode, Mapping, MappingOptions};
    ///
    /// # let name = format!("mmf-doc-{}", std::process::id());
    /// let shared = MappingOptions::new()
    ///     .access(Access::ReadWrite)
    ///     .size(4096)
    ///     .name(&name)
    ///     .creation(CreationMode::CreateNew)
    ///     .map_anonymous()?;
    /// shared.view_mut(..)?.write_at(0, b"hi")?;
    /// // Another process would do this:
    /// let opened = Mapping::open(&name, Access::ReadOnly)?;
    /// let mut buf = [0; 2];
    /// opened.view(..)?.read_at(0, &mut buf)?;
    /// assert_eq!(&buf, b"hi");
    /// # Ok::<(), mmf::Error>(())
    /// ```
    pub fn name(&mut self, name: &str) -> &mut Self {
        self.name = Some(name.to_owned());
        self
    }

    /// What to do when the name exists or not (default [`CreationMode::OpenOrCreate`], as
    /// `CreateFileMapping` does).
    pub fn creation(&mut self, creation: CreationMode) -> &mut Self {
        self.creation = creation;
        self
    }

    /// Linux: permission bits of a new named object (default `0o600`, owner only), set
    /// exactly whatever the umask. Only read and write bits are used. Ignored on Windows,
    /// where the object always gets an owner-only DACL.
    pub fn permissions(&mut self, mode: u32) -> &mut Self {
        self.permissions = mode & 0o666;
        self
    }

    /// Linux: accept a named object owned by another user (refused by default).
    pub fn allow_foreign_owner(&mut self, allow: bool) -> &mut Self {
        self.foreign_owner = allow;
        self
    }

    /// Windows: use the `Global\` namespace (visible to all sessions; needs
    /// `SeCreateGlobalPrivilege` to create) instead of the session's `Local\`. No effect on
    /// Linux, which has one namespace.
    pub fn global(&mut self, global: bool) -> &mut Self {
        self.global = global;
        self
    }

    /// Linux: a named object created with this stays after its last holder lets go, until
    /// [`named::remove`](crate::named::remove) (what `shm_open` objects do by default, and
    /// what `mmf shm create` without `--hold` does). Windows cannot keep a name without a
    /// holder: creating with `keep` there is [`Error::Unsupported`].
    pub fn keep(&mut self, keep: bool) -> &mut Self {
        self.keep = keep;
        self
    }

    fn spec<'a>(&self, name: &'a str) -> Result<NamedSpec<'a>> {
        validate_name(name)?;
        Ok(NamedSpec {
            name,
            creation: self.creation,
            access: self.access,
            size: self.size.filter(|&s| s > 0),
            permissions: self.permissions,
            foreign_owner: self.foreign_owner,
            global: self.global,
            keep: self.keep,
        })
    }

    /// `OpenFileMapping(name)`: opens an existing named mapping — pagefile-backed, or a
    /// file's mapping by its name alone. The [`access`](Self::access) is the access asked
    /// for; a [`size`](Self::size), if given, is the least size accepted.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::NotRegularFile`],
    /// [`Error::ForeignOwner`], [`Error::TooSmall`], or the OS's refusal.
    #[doc(alias = "OpenFileMapping")]
    #[doc(alias = "OpenFileMappingW")]
    #[doc(alias = "shm_open")]
    pub fn open_named(&self, name: &str) -> Result<Mapping> {
        let spec = self.spec(name)?;
        Ok(Mapping::from_named(sys::named::open(&spec)?, name, self.access))
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
        if let Some(name) = &self.name {
            let mut spec = self.spec(name)?;
            spec.size = Some(size);
            let opened = sys::named::create(&spec, Some((&file, file_len)))?;
            return Ok(Mapping::from_named(opened, name, self.access));
        }
        let section = sys::Section::from_file(&file, self.access, size, file_len)?;
        Ok(Mapping { section, file: Some(file), size, access: self.access, named: None })
    }

    /// `CreateFileMapping(INVALID_HANDLE_VALUE, ...)`: a pagefile-backed mapping of the
    /// given [`size`](Self::size), zero-filled, shared by all of its views (on Linux a
    /// `memfd`, or with a [`name`](Self::name) a `shm_open` object).
    ///
    /// # Errors
    /// [`Error::ZeroSize`] without a size, [`Error::TooLarge`], or the OS's refusal; with a
    /// name also [`Error::AlreadyExists`] ([`CreationMode::CreateNew`]) and the errors of
    /// [`open_named`](Self::open_named).
    pub fn map_anonymous(&self) -> Result<Mapping> {
        let size = self.size.unwrap_or(0);
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        if size > MAX_SIZE {
            return Err(Error::TooLarge { size });
        }
        if let Some(name) = &self.name {
            let opened = sys::named::create(&self.spec(name)?, None)?;
            return Ok(Mapping::from_named(opened, name, self.access));
        }
        let section = sys::Section::anonymous(size)?;
        Ok(Mapping { section, file: None, size, access: self.access, named: None })
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

    fn from_named(opened: crate::named::Opened, name: &str, access: Access) -> Mapping {
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

    pub(crate) fn section(&self) -> &sys::Section {
        &self.section
    }

    pub(crate) fn file(&self) -> Option<&Arc<File>> {
        self.file.as_ref()
    }

    pub(crate) fn named(&self) -> Option<&Arc<Named>> {
        self.named.as_ref()
    }
}
