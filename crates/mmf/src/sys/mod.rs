//! The platform layer: the only place that calls `libc` or `windows-sys`.
//!
//! Each backend defines the same items (as Rust's std does in `library/std/src/sys`):
//! `page_size`, `allocation_granularity`, `file_access`, `Section` (the file-mapping object:
//! `from_file`, `anonymous`, `map`), `unmap`, `flush`, `flush_async`, `advise`, `populate`,
//! `lock`, `unlock` and `residency`. Everything above this module is platform-free.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
