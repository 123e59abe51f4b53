//! Contract: named objects (`CreateFileMapping` / `OpenFileMapping` with a name) and
//! their lifetime.
//!
//! Every platform provides:
//!
//! - `create(spec, file) -> Opened`: a new object of `spec.size` bytes (pagefile-backed,
//!   or the mapping of `file`) under `spec.name`, or — for
//!   [`CreationMode::OpenOrCreate`] — the existing one; never a half-made object;
//! - `open(spec) -> Opened`: the existing object, at least `spec.size` bytes;
//! - `Hold`: a holder's share of the object's lifetime. The object lives while a `Hold`
//!   exists in any process, and is gone when the last one is dropped or its process dies;
//! - `list(accept) -> Vec<NamedInfo>` for the names `accept` admits, and `remove(name)`.
//!
//! The [`CreationMode::OpenExisting`] shortcut and the name rules are the named layer's;
//! the size check every open makes is [`check_size`], written once here.

use std::fs::File;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::sys::map::{Access, Section};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{Hold, create, list, open, register_fork_handlers, remove};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{Hold, create, list, open, remove};

/// What creating a named object does when the name exists (or not).
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

/// Everything the platform needs to create or open a named object (the name checked).
#[derive(Debug)]
pub(crate) struct NamedSpec<'a> {
    pub name: &'a str,
    pub creation: CreationMode,
    pub access: Access,
    /// Size to create with, or the least size an opener accepts.
    pub size: Option<u64>,
    /// Unix permission bits of a new object (default `0o600`).
    #[cfg_attr(windows, allow(dead_code, reason = "Windows objects get an owner-only DACL"))]
    pub permissions: u32,
    /// Accept an object owned by another user.
    #[cfg_attr(windows, allow(dead_code, reason = "the DACL decides on Windows"))]
    pub foreign_owner: bool,
    /// Windows: the `Global\` namespace instead of `Local\`.
    #[cfg_attr(unix, allow(dead_code, reason = "Linux has one namespace"))]
    pub global: bool,
    /// The object outlives its holders until removed (Linux only).
    pub keep: bool,
}

/// What a platform's named create or open produced.
pub(crate) struct Opened {
    pub section: Section,
    pub size: u64,
    /// The mapped file, for a file's mapping (to flush it).
    pub file: Option<Arc<File>>,
    pub hold: Hold,
    /// This call created the object.
    pub created: bool,
}

/// What backs a named object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Pagefile-backed (shared memory): `shm_open` on Linux.
    Pagefile,
    /// A file's mapping, opened by name; the path of the file as the creator saw it.
    File(std::path::PathBuf),
}

/// A named object that mmf created and that exists now, as `mmf::named::list` reports it.
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
    /// Created with `keep` (`NameOptions::keep`): it stays until removed
    /// (`mmf::named::remove`), holders or not.
    pub kept: bool,
}

/// [`Error::TooSmall`] if an opened object of `size` bytes is smaller than `spec` asks.
pub(crate) fn check_size(spec: &NamedSpec<'_>, size: u64) -> Result<()> {
    let asked = spec.size.unwrap_or(1).max(1);
    if size < asked {
        return Err(Error::TooSmall { name: spec.name.into(), size, asked });
    }
    Ok(())
}
