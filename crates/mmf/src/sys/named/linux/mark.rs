//! mmf's mark on a named object it created: the extended attribute `user.mmf`.
//!
//! `mmf1 LIFETIME pagefile` or `mmf1 LIFETIME file DEV INO SIZE\nPATH`, where LIFETIME is
//! `scoped` (gone with its last holder) or `kept` (until removed). Another process wrote
//! these bytes (any process of the same user can), so the parser accepts exactly this
//! grammar and refuses everything else with `None`; it never panics.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::sys::pal::cvt;

const ATTR: &CStr = c"user.mmf";

/// The longest mark: a header of at most 80 bytes (`mmf1 scoped file ` and three 20-digit
/// numbers) and a path of up to `PATH_MAX` bytes. Longer marks are neither written nor read.
const MAX_LEN: usize = 4096 + 128;

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
    pub(super) fn parse(text: &str) -> Option<Mark> {
        let (head, path) = match text.split_once('\n') {
            Some((head, path)) => (head, Some(path)),
            None => (text, None),
        };
        let mut words = head.split(' ');
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
            ("file", Some(path)) if !path.is_empty() && !path.contains('\0') => {
                let mut num = || words.next()?.parse::<u64>().ok();
                let (dev, ino, size) = (num()?, num()?, num()?);
                Some(FileMark { dev, ino, size, path: PathBuf::from(path) })
            }
            _ => return None,
        };
        if words.next().is_some() {
            return None; // trailing words: not a mark this version wrote
        }
        Some(Mark { kept, file })
    }

    /// The mark's text, as `parse` reads it.
    pub(super) fn render(&self) -> String {
        let lifetime = if self.kept { "kept" } else { "scoped" };
        match &self.file {
            None => format!("mmf1 {lifetime} pagefile"),
            Some(f) => {
                format!("mmf1 {lifetime} file {} {} {}\n{}", f.dev, f.ino, f.size, f.path.display())
            }
        }
    }
}

/// The object's mark (`fgetxattr`); `None` if it has none, or not a valid one.
pub(super) fn read(file: &File) -> Option<Mark> {
    let mut buf = vec![0u8; MAX_LEN];
    // SAFETY: the buffer is writable for its length.
    let n = unsafe {
        libc::fgetxattr(file.as_raw_fd(), ATTR.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    };
    let n = usize::try_from(n).ok()?;
    Mark::parse(std::str::from_utf8(&buf[..n]).ok()?)
}

/// Marks the object (`fsetxattr`). A mark longer than [`MAX_LEN`] (a path past `PATH_MAX`)
/// is refused with `ENAMETOOLONG`: openers could not read it.
pub(super) fn write(file: &File, mark: &Mark) -> io::Result<()> {
    let text = mark.render();
    if text.len() > MAX_LEN {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    // SAFETY: the value pointer and length describe `text`'s bytes.
    cvt(unsafe {
        libc::fsetxattr(file.as_raw_fd(), ATTR.as_ptr(), text.as_ptr().cast(), text.len(), 0)
    })
    .map(drop)
}

#[cfg(test)]
mod tests;
