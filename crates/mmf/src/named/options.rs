//! [`NameOptions`]: how a named object is created or opened, for every kind of named
//! object (mappings now; sync areas and channels take the same options).

use super::name::validate_name;
use crate::error::Result;
use crate::sys::map::Access;
use crate::sys::named::{CreationMode, NamedSpec};

/// How to create or open a named object: what to do when the name exists, who may use a
/// new object, and how long it lives. The name itself is given to the terminal call.
///
/// ```
/// use mmf::{Access, CreationMode, MappingOptions, named::NameOptions};
///
/// # let name = format!("mmf-doc-nameopts-{}", std::process::id());
/// let mut private = NameOptions::new();
/// private.creation(CreationMode::CreateNew).permissions(0o600);
/// let mapping = MappingOptions::new()
///     .access(Access::ReadWrite)
///     .size(4096)
///     .name(&name)
///     .name_options(private.clone())
///     .map_anonymous()?;
/// assert!(mapping.created());
/// # Ok::<(), mmf::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct NameOptions {
    creation: CreationMode,
    permissions: u32,
    foreign_owner: bool,
    global: bool,
    keep: bool,
}

impl Default for NameOptions {
    fn default() -> Self {
        NameOptions {
            creation: CreationMode::OpenOrCreate,
            permissions: 0o600,
            foreign_owner: false,
            global: false,
            keep: false,
        }
    }
}

impl NameOptions {
    /// Open or create; owner-only; this user's objects only; the session's namespace;
    /// gone with the last holder.
    pub fn new() -> Self {
        Self::default()
    }

    /// What to do when the name exists or not (default [`CreationMode::OpenOrCreate`], as
    /// `CreateFileMapping` does).
    pub fn creation(&mut self, creation: CreationMode) -> &mut Self {
        self.creation = creation;
        self
    }

    /// Permission bits of a new object (default `0o600`, owner only), set exactly whatever
    /// the umask. Only read and write bits are used.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux only: Windows objects always get an owner-only DACL, and this is ignored.
    pub fn permissions(&mut self, mode: u32) -> &mut Self {
        self.permissions = mode & 0o666;
        self
    }

    /// Accept an object owned by another user (refused by default).
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux only: on Windows the object's DACL decides who may open it.
    pub fn allow_foreign_owner(&mut self, allow: bool) -> &mut Self {
        self.foreign_owner = allow;
        self
    }

    /// Use the `Global\` namespace (visible to all sessions; needs
    /// `SeCreateGlobalPrivilege` to create) instead of the session's `Local\`.
    ///
    /// # Platform-specific behaviour
    ///
    /// Windows only: Linux has one namespace, and this has no effect there.
    pub fn global(&mut self, global: bool) -> &mut Self {
        self.global = global;
        self
    }

    /// The object stays after its last holder lets go, until
    /// [`named::remove`](crate::named::remove) (what `shm_open` objects do by default).
    ///
    /// # Platform-specific behaviour
    ///
    /// Windows cannot keep a name without a holder: creating with `keep` there is
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    pub fn keep(&mut self, keep: bool) -> &mut Self {
        self.keep = keep;
        self
    }

    /// The platform's request for `name` (checked by [`validate_name`]).
    pub(crate) fn spec<'a>(
        &self,
        name: &'a str,
        access: Access,
        size: Option<u64>,
    ) -> Result<NamedSpec<'a>> {
        validate_name(name)?;
        Ok(NamedSpec {
            name,
            creation: self.creation,
            access,
            size: size.filter(|&s| s > 0),
            permissions: self.permissions,
            foreign_owner: self.foreign_owner,
            global: self.global,
            keep: self.keep,
        })
    }
}
