//! Contract: the page cache of a whole file.
//!
//! Every platform provides `evict(&File)` (write dirty pages back, then drop the file's
//! cached pages; `Error::Unsupported` where the OS has no such
//! call) and `data_ranges(&File) -> Vec<Range<u64>>` (the byte ranges that hold data, holes
//! left out; the whole file where the file system does not tell).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{data_ranges, evict};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{data_ranges, evict};
