//! The writes of write-through views
//! ([`ViewOptions::write_through`](crate::ViewOptions::write_through)): the file's own
//! `pwrite` / `WriteFile` at the view's offset, with the errors of a copy into a view.

use std::fs::File;
use std::io;

use super::View;
use crate::error::{Error, Result};
use crate::sys;

impl View {
    /// Writes `len` bytes from `src` to the file at the view's byte `offset` (checked by
    /// the caller to lie inside the view). `source` names the view `src` points into, with
    /// the offset there, when it is one: a source page that cannot be read (a truncated
    /// source file) is then that view's [`Error::Truncated`].
    ///
    /// # Safety
    /// `src..src+len` stays mapped for the call: the caller's buffer, or a live view.
    pub(super) unsafe fn write_file(
        &self,
        file: &File,
        offset: usize,
        src: *const u8,
        len: usize,
        source: Option<(&View, usize)>,
    ) -> Result<()> {
        let at = self.offset() + offset as u64;
        // SAFETY: as the caller promises; the OS reads the source and reports an unreadable
        // page as an error, never a fault.
        let result = unsafe { sys::map::write_file(file, at, src, len) };
        result.map_err(|e| write_error(e, offset, len, source))
    }
}

/// The error of a write-through write of `len` bytes at the view's `offset`.
fn write_error(e: io::Error, offset: usize, len: usize, source: Option<(&View, usize)>) -> Error {
    match (e.kind(), source) {
        (io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded, _) => {
            Error::StorageFull { offset, len }
        }
        (_, Some((src, src_offset))) if sys::map::source_faulted(&e) => {
            // As a guarded copy tells it: past the source file's end now, or the device.
            let end = src.offset() + (src_offset + len) as u64;
            match src.backing.as_deref().and_then(sys::map::current_len) {
                Some(file_len) if file_len < end => Error::Truncated { offset: src_offset, len },
                _ => Error::InPageError { offset: src_offset, len },
            }
        }
        _ => Error::Os { op: if cfg!(windows) { "WriteFile" } else { "pwrite" }, source: e },
    }
}
