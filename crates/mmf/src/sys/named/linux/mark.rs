//! mmf's mark on a named object it created: the extended attribute `user.mmf`.
//!
//! `mmf1 LIFETIME pagefile` or `mmf1 LIFETIME file DEV INO SIZE\nPATH`, where LIFETIME is
//! `scoped` (gone with its last holder) or `kept` (until removed) and PATH is the raw bytes
//! of the file's path (any bytes but NUL). Another process wrote these bytes (anyone who
//! may write the object may set its attributes), so the parser accepts exactly this
//! grammar and refuses everything else with `None`; it never panics. Whether a parsed mark
//! may be *trusted* is the caller's decision (see `Trust` in `mod.rs`).

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::sys::pal::cvt;

const ATTR: &CStr = c"user.mmf";

/// The largest attribute value Linux stores (`XATTR_SIZE_MAX`).
const XATTR_SIZE_MAX: usize = 65_536;

/// What the mark says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mark {
    /// Created with `keep`: stays until removed.
    pub kept: bool,
    /// For a file's mapping: the file's identity and path, and the mapping's size.
    pub file: Option<FileMark>,
}

/// The file behind a named file mapping, as its creator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileMark {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub path: PathBuf,
}

impl Mark {
    /// Parses a mark; `None` for anything that is not exactly mmf's format.
    pub(super) fn parse(bytes: &[u8]) -> Option<Mark> {
        let (head, path) = match bytes.iter().position(|&b| b == b'\n') {
            Some(at) => (&bytes[..at], Some(&bytes[at + 1..])),
            None => (bytes, None),
        };
        let mut words = std::str::from_utf8(head).ok()?.split(' ');
        if words.next()? != "mmf1" {
            return None;
        }
        let kept = match words.next()? {
            "kept" => true,
            "scoped" => false,
            _ => return None,
        };
        let file = match (words.next()?, path) {
            ("pagefile", None) => None,
            ("file", Some(path)) if !path.is_empty() && !path.contains(&0) => {
                let mut num = || words.next()?.parse::<u64>().ok();
                let (dev, ino, size) = (num()?, num()?, num()?);
                Some(FileMark { dev, ino, size, path: OsStr::from_bytes(path).into() })
            }
            _ => return None,
        };
        if words.next().is_some() {
            return None; // trailing words: not a mark this version wrote
        }
        Some(Mark { kept, file })
    }

    /// The mark's bytes, as `parse` reads them.
    pub(super) fn render(&self) -> Vec<u8> {
        let lifetime = if self.kept { "kept" } else { "scoped" };
        match &self.file {
            None => format!("mmf1 {lifetime} pagefile").into_bytes(),
            Some(f) => {
                let mut text =
                    format!("mmf1 {lifetime} file {} {} {}\n", f.dev, f.ino, f.size).into_bytes();
                text.extend_from_slice(f.path.as_os_str().as_bytes());
                text
            }
        }
    }
}

/// The object's mark (`fgetxattr`, sized by asking first); `None` if it has none, or not
/// a valid one.
pub(super) fn read(file: &File) -> Option<Mark> {
    let get = |buf: &mut [u8]| {
        // SAFETY: the buffer is writable for its length (an empty buffer, whose pointer is
        // dangling, asks for the size only).
        let n = unsafe {
            libc::fgetxattr(file.as_raw_fd(), ATTR.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        usize::try_from(n).ok()
    };
    // The value may grow between asking and reading (a peer rewriting it): ask again then.
    for _ in 0..4 {
        let len = get(&mut [])?.min(XATTR_SIZE_MAX);
        let mut buf = vec![0u8; len];
        if let Some(n) = get(&mut buf) {
            return Mark::parse(&buf[..n]);
        }
    }
    None
}

/// Marks the object (`fsetxattr`).
pub(super) fn write(file: &File, mark: &Mark) -> io::Result<()> {
    let bytes = mark.render();
    // SAFETY: the value pointer and length describe `bytes`.
    cvt(unsafe {
        libc::fsetxattr(file.as_raw_fd(), ATTR.as_ptr(), bytes.as_ptr().cast(), bytes.len(), 0)
    })
    .map(drop)
}

#[cfg(test)]
mod tests;
