//! Memory-mapped files the Windows way, on Linux and Windows.
//!
//! A file is mapped in two steps, as with `CreateFileMapping` and `MapViewOfFile`: a
//! [`Mapping`] (the file-mapping object: a file or pagefile-backed memory, a maximum size,
//! an access) and any number of [`View`]s of it at any byte offset. Pages are loaded on
//! demand by the virtual-memory manager; [`View::flush`] (`FlushViewOfFile`) makes writes
//! durable; dropping a view unmaps it (`UnmapViewOfFile`), dropping the mapping closes it
//! (`CloseHandle`) and leaves the views valid.
//!
//! The classic `CreateFileMapping` example: a 20 MiB file holding `HELLO, WORLD!` in UTF-16
//! and then zeros.
//!
//! ```
//! use std::fs::OpenOptions;
//!
//! use mmf::{Access, MappingOptions};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let path = std::env::temp_dir().join(format!("mm-{}.file", std::process::id()));
//!     let file =
//!         OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
//!     let mapping =
//!         MappingOptions::new().access(Access::ReadWrite).size(0x0140_0000).map_file(&file)?;
//!     let view = mapping.view_mut(..)?; // map all
//!     let text: Vec<u8> = "HELLO, WORLD!".encode_utf16().flat_map(u16::to_le_bytes).collect();
//!     view.write_at(0, &text)?;
//!     view.flush()?;
//!     view.unmap()?;
//!     drop(mapping);
//!     drop(file);
//!     assert_eq!(std::fs::metadata(&path)?.len(), 20 * 1024 * 1024);
//!     assert_eq!(&std::fs::read(&path)?[..4], b"H\0E\0");
//!     std::fs::remove_file(&path)?;
//!     Ok(())
//! }
//! ```
//!
//! # A guide to the three uses
//!
//! ## Sharing data between processes
//!
//! Give a mapping a name ([`MappingOptions::name`]); other processes open it by that name
//! ([`Mapping::open`], or [`MappingOptions::wait`] for a reader that may start first). Keep
//! counters and flags in atomics or `#[repr(C)]` types of atomics ([`Shared`],
//! [`ViewMut::get`]; a read-only view offers [`View::atomic_u64`] to load), and text or
//! records in copies ([`ViewMut::write_at`], [`View::read_at`]). The object lives while any
//! process holds it ([`named`]).
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use mmf::{Access, Mapping, MappingOptions};
//!
//! fn main() -> Result<(), mmf::Error> {
//!     let name = format!("guide-{}", std::process::id());
//!     // The publisher.
//!     let mapping = MappingOptions::new().size(4096).name(&name).map_anonymous()?;
//!     let view = mapping.view_mut(..)?;
//!     let counter: &AtomicU64 = view.get(0)?;
//!     counter.fetch_add(1, Ordering::AcqRel);
//!     view.write_at(64, b"status: running\0")?;
//!
//!     // A monitor, normally another process.
//!     let monitor = Mapping::open(&name, Access::ReadOnly)?.view(..)?;
//!     let mut status = [0u8; 15];
//!     monitor.read_at(64, &mut status)?;
//!     assert_eq!(monitor.atomic_u64(0)?.load(Ordering::Acquire), 1);
//!     assert_eq!(&status, b"status: running");
//!     Ok(())
//! }
//! ```
//!
//! ## Fast reads and writes of large files
//!
//! Map the file once ([`Mapping::from_file`]) and slide views over it
//! ([`ViewOptions`]: any offset, any length), telling the OS how you read
//! ([`View::advise`]). Copy out in large pieces ([`View::read_at`]); move bytes between
//! files view to view ([`ViewMut::copy_from`]). [`View::residency`], [`View::populate`],
//! [`View::lock`] and [`cache`] show and steer what is in memory.
//!
//! ```
//! use std::io::Write;
//!
//! use mmf::{Access, Advice, Mapping, ViewOptions};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let path = std::env::temp_dir().join(format!("lines-{}.txt", std::process::id()));
//!     let mut out = std::fs::File::create(&path)?;
//!     for i in 0..100_000 {
//!         writeln!(out, "line {i}")?;
//!     }
//!     drop(out);
//!
//!     let mapping = Mapping::from_file(&std::fs::File::open(&path)?, Access::ReadOnly)?;
//!     const WINDOW: u64 = 1 << 20;
//!     let (mut lines, mut buf) = (0, vec![0u8; WINDOW as usize]);
//!     let mut at = 0;
//!     while at < mapping.size() {
//!         let len = WINDOW.min(mapping.size() - at);
//!         let view = ViewOptions::new().offset(at).len(len).map(&mapping)?;
//!         view.advise(Advice::Sequential)?;
//!         view.read_at(0, &mut buf[..len as usize])?;
//!         lines += buf[..len as usize].iter().filter(|&&b| b == b'\n').count();
//!         at += len;
//!     }
//!     assert_eq!(lines, 100_000);
//!     std::fs::remove_file(&path)?;
//!     Ok(())
//! }
//! ```
//!
//! ## Persisting data structures
//!
//! Lay the structure out as `#[repr(C)]` fields at fixed offsets of a file mapping, update it
//! through atomics or copies, and make it durable with [`View::flush`]. The next run maps
//! the same file and finds it. (A crash-safe heap of typed collections in a file, with
//! checksummed commits, is planned as the `mmf-heap` crate; until then a crash between two
//! writes leaves whatever reached the disk.)
//!
//! ```
//! use std::fs::OpenOptions;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use mmf::{Access, MappingOptions};
//!
//! fn runs(path: &std::path::Path) -> Result<u64, Box<dyn std::error::Error>> {
//!     let file = OpenOptions::new().read(true).write(true).create(true).open(path)?;
//!     let mapping = MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file)?;
//!     let view = mapping.view_mut(..)?;
//!     let count = view.atomic_u64(0)?.fetch_add(1, Ordering::AcqRel) + 1;
//!     view.flush()?; // survives a crash of the machine from here on
//!     Ok(count)
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let path = std::env::temp_dir().join(format!("runs-{}.bin", std::process::id()));
//!     assert_eq!(runs(&path)?, 1);
//!     assert_eq!(runs(&path)?, 2); // a later run finds what the first one left
//!     std::fs::remove_file(&path)?;
//!     Ok(())
//! }
//! ```
//!
//! # Offsets
//!
//! Positions in a mapping or a file are `u64`: files outgrow the address space of a
//! process. Positions inside a view are `usize`: a view is memory. A view may be empty
//! (`mapping.view(n..n)`); it maps nothing.
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

#[cfg_attr(mmf_loom, allow(dead_code))]
pub mod channel;
mod error;
mod map;
pub mod named;
#[allow(unused_imports, reason = "not every algorithm uses every atomic")]
#[cfg_attr(mmf_loom, allow(dead_code))]
mod primitive;
pub mod sync;
mod sys;

pub use error::{Error, Result};
pub use map::{
    Access, Advice, Advised, FileKind, Flushed, GrowView, GrowViewMut, LoadOnly, Mapping,
    MappingOptions, Number, Residency, Shared, Stream, View, ViewMut, ViewOptions,
};
pub use map::{cache, file};
pub use named::CreationMode;
/// The layout proofs the typed accessors take ([`View::read`], [`ViewMut::write`]):
/// derive `FromBytes`, `IntoBytes`, `Immutable` and `KnownLayout` from here so that the
/// versions match.
pub use zerocopy;

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
