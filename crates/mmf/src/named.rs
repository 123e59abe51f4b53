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

use crate::error::{Error, Result};
use crate::sys;

#[cfg(doc)]
use crate::Mapping;

/// What creating a named mapping does when the name exists (or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CreationMode {
    /// Create the object; [`Error::AlreadyExists`] if the name is taken.
    CreateNew,
    /// Open the object; [`Error::NotFound`] if there is none.
    OpenExisting,
    /// Open the object if it exists, create it otherwise (what `CreateFileMapping` with a
    /// name does).
    #[default]
    OpenOrCreate,
}

/// Everything the platform layer needs to create or open a named object.
#[derive(Debug)]
pub(crate) struct NamedSpec<'a> {
    pub name: &'a str,
    pub creation: CreationMode,
    pub access: crate::Access,
    /// Size to create with, or the least size an opener accepts.
    pub size: Option<u64>,
    /// Unix permission bits of a new object (default `0o600`).
    #[cfg_attr(windows, allow(dead_code))]
    pub permissions: u32,
    /// Accept an object owned by another user.
    #[cfg_attr(windows, allow(dead_code))]
    pub foreign_owner: bool,
    /// Windows: the `Global\` namespace instead of `Local\`.
    #[cfg_attr(unix, allow(dead_code))]
    pub global: bool,
    /// The object outlives its holders until removed (Linux only).
    pub keep: bool,
}

/// What a platform's named create or open produced.
pub(crate) struct Opened {
    pub section: sys::Section,
    pub size: u64,
    pub file: Option<std::sync::Arc<std::fs::File>>,
    pub hold: sys::named::Hold,
    pub created: bool,
}

/// A named mapping's name and its share of the object's lifetime; kept alive by the
/// [`Mapping`] and by every view of it.
#[derive(Debug)]
pub(crate) struct Named {
    pub name: String,
    pub created: bool,
    pub _hold: sys::named::Hold,
}

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Checks a name: 1 to [`MAX_NAME_LEN`] characters from `A-Z a-z 0-9 . _ -`, not starting
/// with `.`, the same on every platform. The OS name is the name itself: `/NAME` for
/// `shm_open` on Linux, `Local\NAME` (or `Global\NAME`) on Windows.
///
/// ```
/// assert!(mmf::named::validate_name("hello_world_mmf").is_ok());
/// assert!(mmf::named::validate_name("../etc/passwd").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidName`], saying what is wrong.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: &'static str| Err(Error::InvalidName { name: name.into(), reason });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 200 bytes");
    }
    if name.starts_with('.') {
        return bad("it starts with '.'");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return bad("it has characters other than A-Z a-z 0-9 . _ -");
    }
    Ok(())
}

/// What backs a named object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Pagefile-backed (shared memory): `shm_open` on Linux.
    Pagefile,
    /// A file's mapping, opened by name; the path of the file as the creator saw it.
    File(std::path::PathBuf),
}

/// A named object that mmf created and that exists now, as [`list`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedInfo {
    /// The name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The owner's user id on Linux; `None` on Windows.
    pub owner: Option<u32>,
    /// What backs it.
    pub backing: Backing,
    /// Created with [`MappingOptions::keep`](crate::MappingOptions::keep): it stays until
    /// [`remove`]d, holders or not.
    pub kept: bool,
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
pub fn list() -> Result<Vec<NamedInfo>> {
    sys::named::list()
}

/// Removes the name now, whoever created it (`shm_unlink` on Linux). Holders keep their
/// mappings and views; new opens fail. On Windows a name lives exactly as long as its
/// handles, so this is [`Error::Unsupported`] there.
///
/// # Errors
/// [`Error::InvalidName`], [`Error::NotFound`], or the OS's refusal.
pub fn remove(name: &str) -> Result<()> {
    validate_name(name)?;
    sys::named::remove(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a", "hello_world_mmf", "psm_1a2b", "x.y-z", &"n".repeat(200)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "..", "a/b", "/lead", "sp ace", "ünï", "a\\b", &"n".repeat(201)]
        {
            let err = validate_name(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad}");
            assert!(err.to_string().contains("name"), "{err}");
        }
    }
}
