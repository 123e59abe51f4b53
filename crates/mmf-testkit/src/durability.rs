//! Where durability is decided (Linux). A read through the page cache sees written bytes
//! whether or not they reached the device, so a test of a flush that only reads back
//! passes when the flush does nothing. These look where it counts: how many of a file's
//! pages the page cache still holds dirty or under write-back (`cachestat(2)`, Linux 6.5),
//! and what the device returns to a read that bypasses the cache (`O_DIRECT`).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// `cachestat`'s number, the same on every architecture (the unified syscall table since
/// Linux 5.1); the `libc` crate does not carry it for x86-64 and aarch64 glibc yet.
const SYS_CACHESTAT: libc::c_long = 451;

/// `struct cachestat_range` of `<linux/mman.h>`.
#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// `struct cachestat` of `<linux/mman.h>`.
#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// The page cache's view of a byte range of a file, in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCache {
    /// Pages of the range in the page cache.
    pub cached: u64,
    /// Of those, pages dirty (written, not yet on their way to the device).
    pub dirty: u64,
    /// Pages being written to the device now.
    pub writeback: u64,
}

impl PageCache {
    /// Nothing of the range is waiting to reach the device.
    pub fn clean(&self) -> bool {
        self.dirty == 0 && self.writeback == 0
    }
}

/// `cachestat(2)` of `len` bytes at `offset` of `file` (`len` 0: to the end of the file).
/// Panics with the reason if the kernel has no `cachestat` (before 6.5): the tests that
/// use it cannot decide anything without it.
pub fn page_cache(file: &File, offset: u64, len: u64) -> PageCache {
    let range = CachestatRange { off: offset, len };
    let mut out = Cachestat::default();
    // SAFETY: cachestat reads the range and fills `out`, both of the layout the kernel
    // defines; the descriptor is open; flags must be 0.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const CachestatRange,
            &mut out as *mut Cachestat,
            0,
        )
    };
    assert_eq!(rc, 0, "cachestat(2) failed: {}", std::io::Error::last_os_error());
    PageCache { cached: out.nr_cache, dirty: out.nr_dirty, writeback: out.nr_writeback }
}

/// Reads `len` bytes at `offset` of the file at `path` past the page cache (`O_DIRECT`,
/// whole 4 KiB blocks into an aligned buffer), as the device holds them. (A direct read
/// first writes back dirty cached pages of the range: check [`page_cache`] *before*
/// reading this way.)
pub fn read_direct(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    const BLOCK: usize = 4096;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} with O_DIRECT: {e}", path.display()));
    let start = offset / BLOCK as u64 * BLOCK as u64;
    let skip = (offset - start) as usize;
    let span = (skip + len).next_multiple_of(BLOCK);
    let mut raw = vec![0u8; span + BLOCK];
    let align = raw.as_ptr().align_offset(BLOCK);
    let buf = &mut raw[align..align + span];
    let mut done = 0;
    while done < span {
        let n = file.read_at(&mut buf[done..], start + done as u64).expect("O_DIRECT read");
        if n == 0 {
            break;
        }
        done += n;
    }
    assert!(done >= skip + len, "the file ends before {} + {len}", offset);
    buf[skip..skip + len].to_vec()
}
