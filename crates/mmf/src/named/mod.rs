//! Named mappings (`CreateFileMapping(.., name)`, `OpenFileMapping(name)`): names, their
//! checks, listing and removal. The lifetime and security machinery is in `sys`.
//!
//! # Lifetime
//!
//! A named object that mmf creates exists while some process holds a [`Mapping`] or a
//! [`View`](crate::View) of it, and disappears when the last holder lets go — also when
//! holders are killed. A dead object is never visible: once the last holder is gone,
//! opening says [`Error::NotFound`], [`CreationMode::CreateNew`] succeeds and
//! [`CreationMode::OpenOrCreate`] creates fresh zeroed memory, at once. Windows does this
//! natively. On Linux:
//!
//! - every holder keeps a shared `flock` on the object; the kernel drops it however the
//!   holder's process ends;
//! - the last holder to let go in an orderly way unlinks the name at once;
//! - every open, create and [`list`] of a name checks whether anybody still holds it (an
//!   exclusive lock granted at once means nobody does) and removes it if not;
//! - each process that creates objects starts one small helper, `mmf-reaper CREATOR_PID`
//!   in `ps`: a fresh run of the program's executable that takes over before `main` (a few
//!   MiB, none of the creator's memory or descriptors, its own session). It watches the
//!   creator's objects for closes and unlinks each one whose last holder is gone, so that
//!   objects nobody opens again still give their memory back; it exits once its creator
//!   and their objects are gone. It is not the creator's child (a `wait(-1)` never waits
//!   for it). It cannot be turned off, and it does not start where it cannot (mmf inside a
//!   shared library such as a Python extension, a C library other than glibc, no `/proc`),
//!   nor survive what kills a whole process group (a PID namespace's end, a cgroup kill):
//!   then the next open, create or listing removes a dead object instead.
//!
//! **`fork`**: a child that forks without exec inherits the mapping and its views, and is a
//! holder of the object in its own right (mmf gives it a locked description of its own
//! during the fork): the object lives while either process holds it, whichever lets go
//! first, in order or killed. The child's copies work (reads, writes, atomics).
//!
//! Objects that other programs created (Python's `multiprocessing.shared_memory`, for
//! example) are used without locking and never removed by mmf, except by [`remove`]; nor
//! are objects of another user, whatever their mark says (also when running as root).
//! [`MappingOptions::keep`](crate::MappingOptions::keep) makes an object stay until
//! removed, holders or not.
//!
//! A pagefile-backed object's memory is reserved when it is created (Linux: `fallocate`),
//! so a full `/dev/shm` is [`Error::NoSpace`] then, never a `SIGBUS` at a later write.
//!
//! One window remains on Linux, which has no "unlink if still this inode" call: between
//! checking that the name still names a dead object and unlinking it, another process
//! could [`remove`] that name and create a new object under it; the new object's name
//! would then be removed (its holders keep it).
//!
//! # Security
//!
//! Linux: built whole as an unnamed `O_TMPFILE|O_CLOEXEC` file in `/dev/shm` with mode
//! exactly `0600` whatever the umask (wider only through [`MappingOptions::permissions`]),
//! then named with `linkat`, which like `O_CREAT|O_EXCL|O_NOFOLLOW` fails on any existing
//! name, symlink included. Every open of a name is `O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC` and
//! checks the type first, so a FIFO or device planted under a name is refused
//! ([`Error::NotRegularFile`]) and never waited on; [`list`] skips it. An object owned by
//! another user is refused unless [`MappingOptions::allow_foreign_owner`]; one smaller
//! than asked is refused. A waiting lock is never unbounded: a process holding an
//! exclusive lock on an mmf object gives [`Error::Busy`] after two seconds. A named *file*
//! mapping records the file it maps in an extended attribute of the object, which anyone
//! who may write the object could rewrite: it is used only on objects this user owns and
//! nobody else may write (a file mapping cannot be created with group or other write
//! permission), or [`Error::UntrustedFile`]; and the size mapped is the file's own (at
//! most the recorded size). Windows: an explicit owner-only DACL, handles not inheritable,
//! and [`CreationMode::CreateNew`] refuses a name that exists.
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
    /// Windows: in the `Global\` namespace (the sync layer names its wake-ups after it).
    pub global: bool,
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
