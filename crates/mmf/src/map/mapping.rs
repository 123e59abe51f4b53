//! The file-mapping object (`CreateFileMapping`) and how to create one: [`Mapping`],
//! [`MappingOptions`]. Views of it are made in `view.rs`.

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::MAX_SIZE;
use crate::error::{Error, Result};
use crate::named::{self, CreationMode, NameOptions, Named};
use crate::sys;
use crate::sys::map::{Access, FileKind};

/// How to create a [`Mapping`]: access and maximum size (the arguments of
/// `CreateFileMapping`), a name if other processes are to open it, then one terminal call.
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
    /// `None`: read-only for files, read-write for anonymous memory.
    access: Option<Access>,
    size: Option<u64>,
    name: Option<String>,
    naming: NameOptions,
    /// How long `open_named` waits for the name to appear.
    wait: Option<Duration>,
}

impl MappingOptions {
    /// No name; the file's size; read-only for a file, read-write for anonymous memory
    /// (which would otherwise only ever hold zeros).
    pub fn new() -> Self {
        Self::default()
    }

    /// The mapping's protection (default [`Access::ReadOnly`] for a file,
    /// [`Access::ReadWrite`] for anonymous memory).
    pub fn access(&mut self, access: Access) -> &mut Self {
        self.access = Some(access);
        self
    }

    /// The maximum size in bytes. For a file: `0` or unset means the file's size; more than
    /// the file holds grows it (read-write access only). Required for anonymous mappings.
    pub fn size(&mut self, size: u64) -> &mut Self {
        self.size = Some(size);
        self
    }

    /// Give the mapping a name that other processes open it by (`lpName` of
    /// `CreateFileMapping`), so that programs that do not use mmf share the same object.
    /// See [`crate::named`] for the lifetime and security rules.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `shm_open("/NAME")`, the object `/dev/shm/NAME`. Windows: `Local\NAME` (or
    /// `Global\NAME`, see [`global`](Self::global)).
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

    /// All the settings of the name at once (creation mode, permissions, owner check,
    /// namespace, lifetime): the [`NameOptions`] every kind of named object takes.
    pub fn name_options(&mut self, options: NameOptions) -> &mut Self {
        self.naming = options;
        self
    }

    /// See [`NameOptions::creation`].
    pub fn creation(&mut self, creation: CreationMode) -> &mut Self {
        self.naming.creation(creation);
        self
    }

    /// See [`NameOptions::permissions`].
    pub fn permissions(&mut self, mode: u32) -> &mut Self {
        self.naming.permissions(mode);
        self
    }

    /// See [`NameOptions::allow_foreign_owner`].
    pub fn allow_foreign_owner(&mut self, allow: bool) -> &mut Self {
        self.naming.allow_foreign_owner(allow);
        self
    }

    /// See [`NameOptions::global`].
    pub fn global(&mut self, global: bool) -> &mut Self {
        self.naming.global(global);
        self
    }

    /// See [`NameOptions::keep`].
    pub fn keep(&mut self, keep: bool) -> &mut Self {
        self.naming.keep(keep);
        self
    }

    /// With [`open_named`](Self::open_named): wait up to `timeout` for the name to appear,
    /// instead of failing at once with [`Error::NotFound`] — for a reader that may start
    /// before its creator. It polls, starting at 1 ms and backing off to 50 ms.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # let name = format!("mmf-doc-wait-{}", std::process::id());
    /// let creator = {
    ///     let name = name.clone();
    ///     std::thread::spawn(move || {
    ///         std::thread::sleep(Duration::from_millis(50));
    ///         mmf::MappingOptions::new().size(4096).name(&name).map_anonymous()
    ///     })
    /// };
    /// let opened = mmf::MappingOptions::new().wait(Duration::from_secs(10)).open_named(&name)?;
    /// assert!(opened.size() >= 4096);
    /// # drop(creator.join().unwrap()?);
    /// # Ok::<(), mmf::Error>(())
    /// ```
    pub fn wait(&mut self, timeout: Duration) -> &mut Self {
        self.wait = Some(timeout);
        self
    }

    /// `OpenFileMapping(name)`: opens an existing named mapping — pagefile-backed, or a
    /// file's mapping by its name alone. The [`access`](Self::access) is the access asked
    /// for; a [`size`](Self::size), if given, is the least size accepted.
    ///
    /// ```
    /// # let name = format!("mmf-doc-open-{}", std::process::id());
    /// # let _creator = mmf::MappingOptions::new().access(mmf::Access::ReadWrite).size(100)
    /// #     .name(&name).map_anonymous()?;
    /// let opened = mmf::MappingOptions::new().size(64).open_named(&name)?;
    /// assert!(opened.size() >= 100);
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`] (after the [`wait`](Self::wait), if
    /// any), [`Error::NotRegularFile`],
    /// [`Error::ForeignOwner`], [`Error::TooSmall`], or the OS's refusal.
    ///
    /// # References
    /// [`shm_open(3)`](https://man7.org/linux/man-pages/man3/shm_open.3.html),
    /// [`OpenFileMappingW`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-openfilemappingw)
    #[doc(alias = "OpenFileMapping")]
    #[doc(alias = "OpenFileMappingW")]
    #[doc(alias = "shm_open")]
    pub fn open_named(&self, name: &str) -> Result<Mapping> {
        let access = self.access.unwrap_or(Access::ReadOnly);
        let spec = self.naming.spec(name, access, self.size)?;
        let deadline = self.wait.map(|wait| Instant::now() + wait);
        let mut pause = Duration::from_millis(1);
        loop {
            match named::open(&spec) {
                Err(Error::NotFound { .. }) if deadline.is_some_and(|d| Instant::now() < d) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                opened => return Ok(Mapping::from_named(opened?, &spec, access)),
            }
        }
    }

    /// `CreateFileMapping(file, ...)`: a mapping of an open file.
    ///
    /// The mapping keeps its own handle to the file (`dup` / `DuplicateHandle`), so `file`
    /// may be closed afterwards. With a [`name`](Self::name), other processes can open the
    /// file's mapping by that name.
    ///
    /// ```
    /// use mmf::{Access, MappingOptions};
    ///
    /// let file = tempfile::tempfile()?;
    /// file.set_len(8192)?;
    /// let mapping = MappingOptions::new().access(Access::ReadWrite).map_file(&file)?;
    /// assert_eq!(mapping.size(), 8192); // the file's size
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::IsDirectory`], [`Error::NotMappable`] (a FIFO, socket, character device or
    /// procfs/sysfs pseudo-file: see [`FileKind`]), [`Error::FileNotReadable`],
    /// [`Error::FileNotWritable`] (read-write mapping of a file opened read-only),
    /// [`Error::EmptyFile`] (no size for an empty file), [`Error::SizePastEnd`] (a size the
    /// access cannot grow the file to), [`Error::CannotGrow`] (a size past the end of a
    /// block device), [`Error::TooLarge`], or the OS's refusal; with a name also the errors
    /// of [`map_anonymous`](Self::map_anonymous).
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// let proc_file = std::fs::File::open("/proc/version")?;
    /// let err = mmf::Mapping::from_file(&proc_file, mmf::Access::ReadOnly).unwrap_err();
    /// assert!(matches!(err, mmf::Error::NotMappable { .. }));
    /// assert!(err.to_string().starts_with("a procfs pseudo-file cannot be mapped"));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux grows the file with `ftruncate` when a read-write mapping is larger than it;
    /// Windows grows it inside `CreateFileMappingW`. Linux maps block devices (a disk, a
    /// partition, a loop device) too: their size is the device's (`ioctl(BLKGETSIZE64)`),
    /// and the mapping's size must fit in it.
    ///
    /// # References
    /// [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html),
    /// [`CreateFileMappingW`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-createfilemappingw)
    #[doc(alias = "CreateFileMapping")]
    #[doc(alias = "CreateFileMappingW")]
    pub fn map_file(&self, file: &File) -> Result<Mapping> {
        let access = self.access.unwrap_or(Access::ReadOnly);
        let info = sys::map::file_info(file)?;
        match info.kind {
            FileKind::Regular | FileKind::BlockDevice => {}
            FileKind::Directory => return Err(Error::IsDirectory),
            kind => return Err(Error::NotMappable { kind }),
        }
        if let Some(handle) = info.access {
            if !handle.read {
                return Err(Error::FileNotReadable);
            }
            if access == Access::ReadWrite && !handle.write {
                return Err(Error::FileNotWritable);
            }
        }
        let file_len = info.len;
        let size = match self.size {
            None | Some(0) if file_len == 0 => return Err(Error::EmptyFile),
            None | Some(0) => file_len,
            Some(size) => size,
        };
        if size > MAX_SIZE {
            return Err(Error::TooLarge { size });
        }
        if size > file_len && info.kind == FileKind::BlockDevice {
            return Err(Error::CannotGrow { size, len: file_len, kind: info.kind });
        }
        if size > file_len && access != Access::ReadWrite {
            return Err(Error::SizePastEnd { size, file_len, access });
        }
        let file = Arc::new(sys::map::duplicate(file)?);
        if let Some(name) = &self.name {
            let spec = self.naming.spec(name, access, Some(size))?;
            let opened = named::create(&spec, Some((&file, file_len)))?;
            return Ok(Mapping::from_named(opened, &spec, access));
        }
        let section = sys::map::Section::from_file(&file, access, size, file_len)?;
        Ok(Mapping::new(section, Some(file), size, access))
    }

    /// `CreateFileMapping(INVALID_HANDLE_VALUE, ...)`: a pagefile-backed mapping of the
    /// given [`size`](Self::size), zero-filled, shared by all of its views.
    ///
    /// ```
    /// let mapping = mmf::MappingOptions::new().access(mmf::Access::ReadWrite).size(4096)
    ///     .map_anonymous()?;
    /// assert_eq!(mapping.size(), 4096);
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// Its access is [`Access::ReadWrite`] unless set: read-only anonymous memory that no
    /// other process can open by name could only ever hold zeros, and is refused.
    ///
    /// # Errors
    /// [`Error::ZeroSize`] without a size, [`Error::ReadOnlyAnonymous`], [`Error::TooLarge`],
    /// or the OS's refusal; with a name also [`Error::AlreadyExists`]
    /// ([`CreationMode::CreateNew`]) and the errors of [`open_named`](Self::open_named).
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: a `memfd`, or with a name a `shm_open` object built whole and then linked
    /// under its name. Windows: a pagefile-backed section; the whole size is charged against
    /// the commit limit at creation, and an opener learns the size in whole pages.
    ///
    /// # References
    /// [`memfd_create(2)`](https://man7.org/linux/man-pages/man2/memfd_create.2.html),
    /// [`shm_open(3)`](https://man7.org/linux/man-pages/man3/shm_open.3.html),
    /// [`CreateFileMappingW`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-createfilemappingw)
    #[doc(alias = "CreateFileMapping")]
    #[doc(alias = "memfd_create")]
    pub fn map_anonymous(&self) -> Result<Mapping> {
        let size = self.size.unwrap_or(0);
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        if size > MAX_SIZE {
            return Err(Error::TooLarge { size });
        }
        let access = self.access.unwrap_or(Access::ReadWrite);
        if let Some(name) = &self.name {
            let spec = self.naming.spec(name, access, Some(size))?;
            let opened = named::create(&spec, None)?;
            return Ok(Mapping::from_named(opened, &spec, access));
        }
        if access == Access::ReadOnly {
            return Err(Error::ReadOnlyAnonymous);
        }
        let section = sys::map::Section::anonymous(size)?;
        Ok(Mapping::new(section, None, size, access))
    }
}

/// A file-mapping object: a file (or pagefile-backed memory) with a maximum size and an
/// access, from which [`View`](crate::View)s are mapped.
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
    ///
    /// ```
    /// let file = tempfile::tempfile()?;
    /// file.set_len(4096)?;
    /// let mapping = mmf::Mapping::from_file(&file, mmf::Access::ReadOnly)?;
    /// assert_eq!(mapping.size(), 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`MappingOptions::map_file`]; an empty file is [`Error::EmptyFile`].
    #[doc(alias = "CreateFileMapping")]
    pub fn from_file(file: &File, access: Access) -> Result<Mapping> {
        MappingOptions::new().access(access).map_file(file)
    }

    /// A read-write, zero-filled, pagefile-backed mapping of `size` bytes; see
    /// [`MappingOptions::map_anonymous`].
    ///
    /// The memory is *shared*, as a pagefile-backed section is on Windows: every view of the
    /// mapping shows the same bytes, and after `fork` the parent and the child see each
    /// other's writes (memmap2's anonymous map, by contrast, is private: a child gets its
    /// own copy). For memory private to one view, use a copy-on-write view
    /// ([`view_copy`](Self::view_copy)).
    ///
    /// # Errors
    /// As [`MappingOptions::map_anonymous`]: [`Error::ZeroSize`], [`Error::TooLarge`].
    #[doc(alias = "memfd_create")]
    pub fn anonymous(size: u64) -> Result<Mapping> {
        MappingOptions::new().access(Access::ReadWrite).size(size).map_anonymous()
    }

    /// `OpenFileMapping(access, name)`: opens the named mapping another process created;
    /// see [`MappingOptions::open_named`].
    ///
    /// # Errors
    /// As [`MappingOptions::open_named`].
    ///
    /// # References
    /// [`shm_open(3)`](https://man7.org/linux/man-pages/man3/shm_open.3.html),
    /// [`OpenFileMappingW`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-openfilemappingw)
    #[doc(alias = "OpenFileMapping")]
    #[doc(alias = "OpenFileMappingW")]
    pub fn open(name: &str, access: Access) -> Result<Mapping> {
        MappingOptions::new().access(access).open_named(name)
    }

    /// The mapping of a named object that `sys` created or opened.
    fn from_named(
        opened: sys::named::Opened,
        spec: &sys::named::NamedSpec<'_>,
        access: Access,
    ) -> Mapping {
        let named = Named {
            name: spec.name.to_owned(),
            global: spec.global,
            created: opened.created,
            _hold: opened.hold,
        };
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

    /// Builds a mapping of an unnamed object.
    fn new(
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
