//! Named mappings (`CreateFileMapping(.., name)`, `OpenFileMapping(name)`): names, their
//! checks, listing and removal. The lifetime and security machinery is in `sys`.
//!
//! # Lifetime
//!
//! A named object that mmf creates exists while some process holds a [`Mapping`] or a
//! [`View`](crate::View) of it, and disappears when the last holder lets go — also when
//! holders are killed, so no stale objects are left behind. Windows does this natively. On
//! Linux each holder keeps a shared `flock` on the object (the kernel drops it when the
//! process dies, however it dies); the last holder to let go in an orderly way takes the
//! lock exclusively and unlinks the name, and a small reaper process started by the creator
//! waits for the exclusive lock and unlinks the name when the last holder died without
//! letting go. An opener that finds the object unlinked while it waited for its lock treats
//! the name as gone (or, with [`CreationMode::OpenOrCreate`], creates it again).
//!
//! Objects that other programs created (Python's `multiprocessing.shared_memory`, for
//! example) can be opened but are never removed by mmf, except by [`remove`].
//!
//! # Security
//!
//! Linux: built whole as an unnamed `O_TMPFILE|O_CLOEXEC` file in `/dev/shm` with mode
//! exactly `0600` whatever the umask (wider only through [`MappingOptions::permissions`]),
//! then named with `linkat`, which like `O_CREAT|O_EXCL|O_NOFOLLOW` fails on any existing
//! name, symlink included; openers use `O_NOFOLLOW|O_CLOEXEC`. An object under the name that
//! is not a regular file, is owned by another user (unless
//! [`MappingOptions::allow_foreign_owner`]) or is smaller than asked is refused. A process
//! that forks without exec shares its parent's hold (the locked descriptor) until it exits.
//! Windows: an explicit owner-only DACL, handles not inheritable, and
//! [`CreationMode::CreateNew`] refuses a name that exists.
//!
//! [`MappingOptions::permissions`]: crate::MappingOptions::permissions
//! [`MappingOptions::allow_foreign_owner`]: crate::MappingOptions::allow_foreign_owner

use crate::error::Result;
use crate::sys;
use crate::sys::named::{NamedSpec, Opened};

mod name;
mod options;

pub use crate::sys::named::{Backing, CreationMode, NamedInfo};
pub use name::{MAX_NAME_LEN, validate_name};
pub use options::NameOptions;

#[cfg(doc)]
use crate::{Error, Mapping};

/// `CreateFileMapping` with a name: create or open, as `spec.creation` says.
pub(crate) fn create(
    spec: &NamedSpec<'_>,
    file: Option<(&std::sync::Arc<std::fs::File>, u64)>,
) -> Result<Opened> {
    match spec.creation {
        CreationMode::OpenExisting => sys::named::open(spec),
        CreationMode::CreateNew | CreationMode::OpenOrCreate => sys::named::create(spec, file),
    }
}

/// `OpenFileMapping`: the existing object.
pub(crate) fn open(spec: &NamedSpec<'_>) -> Result<Opened> {
    sys::named::open(spec)
}

/// A named mapping's name and its share of the object's lifetime; kept alive by the
/// [`Mapping`] and by every view of it.
#[derive(Debug)]
pub(crate) struct Named {
    pub name: String,
    pub created: bool,
    pub _hold: sys::named::Hold,
}

/// The named objects mmf created that exist now (Linux: those under `/dev/shm` with mmf's
/// mark and a live holder). Objects whose every holder died are removed on the way, as
/// their lifetime says.
///
/// ```no_run
/// for object in mmf::named::list()? {
///     println!("{} {} bytes", object.name, object.size);
/// }
/// # Ok::<(), mmf::Error>(())
/// ```
///
/// # Errors
/// The OS's refusal; on Windows [`Error::Unsupported`]: Win32 has no way to enumerate named
/// section objects.
///
/// # References
/// [`shm_overview(7)`](https://man7.org/linux/man-pages/man7/shm_overview.7.html)
pub fn list() -> Result<Vec<NamedInfo>> {
    sys::named::list(|name| validate_name(name).is_ok())
}

/// Removes the name now, whoever created it (`shm_unlink` on Linux). Holders keep their
/// mappings and views; new opens fail. On Windows a name lives exactly as long as its
/// handles, so this is [`Error::Unsupported`] there.
///
/// ```no_run
/// mmf::named::remove("stale-object")?;
/// # Ok::<(), mmf::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidName`], [`Error::NotFound`], or the OS's refusal.
///
/// # References
/// [`shm_unlink(3)`](https://man7.org/linux/man-pages/man3/shm_unlink.3.html)
#[doc(alias = "shm_unlink")]
pub fn remove(name: &str) -> Result<()> {
    validate_name(name)?;
    sys::named::remove(name)
}
