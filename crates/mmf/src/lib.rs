//! Memory-mapped files the Windows way, on Linux and Windows.
//!
//! A file is mapped in two steps, as with `CreateFileMapping` and `MapViewOfFile`: a
//! [`Mapping`] (the file-mapping object: a file or pagefile-backed memory, a maximum size,
//! an access) and any number of [`View`]s of it at any byte offset. Pages are loaded on
//! demand by the virtual-memory manager; [`View::flush`] (`FlushViewOfFile`) makes writes
//! durable; dropping a view unmaps it (`UnmapViewOfFile`), dropping the mapping closes it
//! (`CloseHandle`) and leaves the views valid.
//!
//! The seed's program: a 20 MiB file holding `HELLO, WORLD!` in UTF-16 and then zeros.
//!
//! ```
//! use std::fs::OpenOptions;
//! use mmf::{Access, MappingOptions};
//!
//! # let dir = tempfile::tempdir()?; let path = dir.path().join("mm.file");
//! let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
//! let mapping = MappingOptions::new().access(Access::ReadWrite).size(0x0140_0000).map_file(&file)?;
//! let mut view = mapping.view_mut(..)?; // map all
//! let text: Vec<u8> = "HELLO, WORLD!".encode_utf16().flat_map(u16::to_le_bytes).collect();
//! view.write_at(0, &text)?;
//! view.flush()?;
//! view.unmap()?;
//! drop(mapping);
//! drop(file);
//! assert_eq!(std::fs::metadata(&path)?.len(), 20 * 1024 * 1024);
//! assert_eq!(&std::fs::read(&path)?[..4], b"H\0E\0");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Soundness
//!
//! Mapped bytes may change under the process: other views of the same mapping, other
//! processes, other writers of the file. Safe code therefore reads and writes them through
//! copies ([`View::read_at`], [`ViewMut::write_at`]); a `&[u8]` over a view comes only from
//! the `unsafe` [`View::as_slice`] / [`ViewMut::as_mut_slice`], whose `# Safety` says what
//! the caller promises.
//!
//! # Platforms
//!
//! Linux (`mmap`, `memfd_create`, `msync`, `madvise`, `mincore`, `mlock`) and Windows (the
//! Win32 calls named in each item's docs). The allocation granularity is the page size on
//! Linux and 64 KiB on Windows; views hide it.

//!
//! # Layout
//!
//! One module per layer, each using only the ones below it: `map` (mappings, views,
//! copies; re-exported at the crate root) over [`named`] (names, their options and
//! lifetime) over `sys`, the only place that calls the OS. See `docs/design-notes.md`.

mod error;
mod map;
pub mod named;
#[allow(dead_code, unused_imports, reason = "the atomics the sync and channel layers will use")]
mod primitive;
mod sys;

pub use error::{Error, Result};
pub use map::{
    Access, Advice, Advised, FileKind, Mapping, MappingOptions, Residency, Shared, View, ViewMut,
    ViewOptions,
};
pub use map::{cache, file};
pub use named::CreationMode;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The largest size a mapping or view may have: what fits in the address space
/// (`isize::MAX` bytes).
pub const MAX_SIZE: u64 = isize::MAX as u64;

/// The size of a memory page (`sysconf(_SC_PAGESIZE)` / `GetSystemInfo().dwPageSize`).
///
/// ```
/// assert!(mmf::page_size().is_power_of_two());
/// ```
///
/// # References
/// [`sysconf(3)`](https://man7.org/linux/man-pages/man3/sysconf.3.html),
/// [`GetSystemInfo`](https://learn.microsoft.com/en-us/windows/win32/api/sysinfoapi/nf-sysinfoapi-getsysteminfo)
#[doc(alias = "GetSystemInfo")]
#[doc(alias = "sysconf")]
pub fn page_size() -> usize {
    sys::map::page_size()
}

/// The granularity at which the OS places views: the page size on Linux, 64 KiB on Windows
/// (`dwAllocationGranularity`). Views at any offset are aligned to it internally.
///
/// ```
/// assert_eq!(mmf::allocation_granularity() % mmf::page_size(), 0);
/// ```
///
/// # References
/// [`SYSTEM_INFO`](https://learn.microsoft.com/en-us/windows/win32/api/sysinfoapi/ns-sysinfoapi-system_info)
#[doc(alias = "dwAllocationGranularity")]
pub fn allocation_granularity() -> usize {
    sys::map::allocation_granularity()
}
