//! Contract: the fault guard around copies in and out of mapped memory.
//!
//! Every platform provides `guarded(first, second, copy) -> bool`: it runs `copy`, which
//! touches the [`Guarded`] range `first` (and `second`, if given), and returns whether a
//! fault inside those ranges was caught (the copy then finished on zeros, and the range's
//! view has its `broken` flag raised). Every fault outside them stays fatal, as if no guard
//! were installed. Copies do not nest.
//!
//! # Platform-specific behaviour
//!
//! - Linux catches the `SIGBUS` a truncated file or shared-memory object raises.
//! - Windows refuses to truncate a mapped file or section, so the fault Linux catches does
//!   not arise there; in-page I/O errors (`EXCEPTION_IN_PAGE_ERROR`) are not caught yet,
//!   and the Windows guard only runs the copy.

use std::sync::atomic::AtomicBool;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::guarded;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::guarded;

/// A range a guarded copy touches, and the flag of the view it belongs to.
#[cfg_attr(windows, allow(dead_code, reason = "the Windows guard does not catch faults yet"))]
pub(crate) struct Guarded<'a> {
    pub start: *const u8,
    pub len: usize,
    pub broken: &'a AtomicBool,
}
