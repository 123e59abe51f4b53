//! Contract: copies in and out of mapped memory that turn a fault into an error.
//!
//! Every platform provides:
//!
//! - `install()`: installs the fault handler (once per process; views call it when they
//!   are made, so the copies themselves check nothing);
//! - `copy(dst, src, len, ranges)`: copies `len` bytes forward in one pass;
//!   `copy_into_view` the same into a view, where large copies may stream past the caches;
//! - `load8(src, range)`: loads 8 bytes at any alignment;
//!
//! each returning [`Fault`] instead of the process dying when the access faults inside a
//! guarded routine: a file or shared-memory object truncated under a view, no space for a
//! page of a sparse file or full tmpfs, an I/O error of the device. On Linux, a fault of any
//! other access inside a region of mmf's own shared structures (a channel's mapping,
//! [`zero_fill`]) gets a private zero page over the lost page and raises the region's flag.
//! Every other fault stays fatal, as if no handler were installed, and a signal sent with
//! `kill` goes where it would have gone — the handler stays installed either way.
//!
//! The copies are meant not to be data races in Rust's memory model when a peer writes
//! the same bytes (another view, process or writer of the file). On x86-64 they are
//! assembly the compiler cannot see into: an `asm` block may be explained as any sequence
//! of accesses the machine could do, here byte-wise atomic ones (x86 loads and stores of
//! a byte are atomic), which race with nothing. Elsewhere they are relaxed atomic loads and
//! stores, word by word — with one caveat the Rust rules leave open: a racing atomic of a
//! different size (a user's `AtomicU32` from `get` next to an 8-byte word of the copy) is
//! not covered (rust-lang/rust#128778).
//!
//! # Platform-specific behaviour
//!
//! - x86-64 (Linux and Windows): an exception table (`x86_64.rs`): the handler compares
//!   the faulting instruction with the two guarded accesses and resumes at a fix-up; nothing
//!   is stored per copy, and the mapping is left as it is (a truncated-then-regrown object
//!   reads again). Linux handles `SIGBUS`; Windows handles `EXCEPTION_IN_PAGE_ERROR` and the
//!   `EXCEPTION_ACCESS_VIOLATION` that Wine raises for a truncated file, with a vectored
//!   exception handler.
//! - Other Linux architectures (`fallback.rs`): the copy registers its ranges in
//!   thread-locals, and the `SIGBUS` handler maps a private zero page over the faulting page
//!   so the copy completes; the view is then *broken* (its `broken` flag, which the
//!   [`Guarded`] ranges carry) and refuses every later copy.

use std::sync::atomic::AtomicBool;

#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_os = "linux")]
mod sigbus;
#[cfg(target_os = "linux")]
pub(crate) use sigbus::{fork_child, fork_parent, fork_prepare};

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod linux;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(crate) use linux::install;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{copy, copy_into_view, load8};

#[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
mod fallback;
#[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
pub(crate) use fallback::{copy, copy_into_view, install, load8};

#[cfg(any(test, all(target_os = "linux", not(target_arch = "x86_64"))))]
mod words;

pub(crate) mod zero_fill;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::install;

#[cfg(all(windows, not(target_arch = "x86_64")))]
compile_error!("mmf on Windows needs x86-64: the guarded copies are x86-64 assembly");

/// A fault inside a guarded copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    /// The address whose access faulted.
    pub addr: usize,
    /// What the platform says of the cause.
    pub cause: Cause,
}

/// The cause of a fault, as far as the platform tells it at the fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    not(target_arch = "x86_64"),
    allow(dead_code, reason = "the fallback guard does not tell causes apart")
)]
pub(crate) enum Cause {
    /// Not told (Linux `BUS_ADRERR`: past the end of the file, no space for the page, or an
    /// I/O error; Wine's access violation for a truncated file): the caller looks at the
    /// file's size and free space.
    Unknown,
    /// No space for the page (Windows `STATUS_DISK_FULL`).
    NoSpace,
    /// The device failed (Windows in-page I/O errors, Linux hardware memory errors).
    Io,
}

/// A range a guarded copy touches, and the flag of the view it belongs to (used where
/// the guard works by ranges: the fallback).
#[cfg_attr(
    target_arch = "x86_64",
    allow(dead_code, reason = "the exception table needs no ranges")
)]
#[derive(Clone, Copy)]
pub(crate) struct Guarded<'a> {
    pub start: *const u8,
    pub len: usize,
    pub broken: &'a AtomicBool,
}
