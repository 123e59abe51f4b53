//! The state of the data file's page cache, which decides what mapping it costs.
//!
//! Since Linux 6.x, ext4, XFS and tmpfs keep a file's cache in *large folios* (up to 2 MiB)
//! when it was written or read sequentially and free memory was not fragmented: a view
//! maps such a folio with one page-table entry per 2 MiB (or one batched call per folio),
//! about 1 ms for a whole cached GiB here. Read at random, or when memory is too fragmented
//! for large allocations (after a long run has churned the page cache, say), the cache is
//! in 4 KiB folios and every page is mapped on its own: about 75 ms per GiB here, which
//! `read()` does not pay. The benches measure both states and say which one they ran in.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use mmf::{Access, Mapping, ViewOptions};

/// `/proc/kpageflags` bits: the page is the head or a tail of a compound (large) folio.
const KPF_COMPOUND_HEAD: u64 = 1 << 15;
const KPF_COMPOUND_TAIL: u64 = 1 << 16;
/// `/proc/self/pagemap`: the entry's page frame number, and "present".
const PFN_MASK: u64 = (1 << 55) - 1;
const PRESENT: u64 = 1 << 63;

fn advise(file: &File, advice: libc::c_int) {
    // SAFETY: posix_fadvise only changes the kernel's read-ahead policy for the descriptor.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, advice) };
    assert_eq!(rc, 0, "posix_fadvise");
}

/// Evicts the file, then reads it back sequentially in 1 MiB pieces: read-ahead fills the
/// cache with large folios where memory allows.
pub fn cache_sequentially(file: &File) {
    mmf::cache::evict(file).expect("evict");
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while let Ok(n @ 1..) = file.read_at(&mut buf, at) {
        at += n as u64;
    }
}

/// Evicts the file, then reads it back 4 KiB at a time with `POSIX_FADV_RANDOM` (no
/// read-ahead): the cache holds it in 4 KiB folios, as on a host whose memory is too
/// fragmented for larger ones.
pub fn cache_in_small_folios(file: &File) {
    mmf::cache::evict(file).expect("evict");
    advise(file, libc::POSIX_FADV_RANDOM);
    let mut buf = vec![0u8; 4096];
    let mut at = 0;
    while let Ok(n @ 1..) = file.read_at(&mut buf, at) {
        at += n as u64;
    }
    advise(file, libc::POSIX_FADV_NORMAL);
}

/// The share of the file's cached pages that belong to large folios (every 16th page
/// looked at), or `None` where the kernel does not tell (page frame numbers need
/// `CAP_SYS_ADMIN`).
pub fn large_folio_share(file: &File) -> Option<f64> {
    let mapping = Mapping::from_file(file, Access::ReadOnly).ok()?;
    let view = ViewOptions::new().populate(true).map(&mapping).ok()?;
    let pagemap = File::open("/proc/self/pagemap").ok()?;
    let flags = File::open("/proc/kpageflags").ok()?;
    let base = view.as_ptr() as u64 / 4096;
    let (mut seen, mut large) = (0u64, 0u64);
    for page in (0..view.len() as u64 / 4096).step_by(16) {
        let mut entry = [0u8; 8];
        pagemap.read_exact_at(&mut entry, (base + page) * 8).ok()?;
        let entry = u64::from_le_bytes(entry);
        let pfn = entry & PFN_MASK;
        if entry & PRESENT == 0 {
            continue;
        }
        if pfn == 0 {
            return None; // not allowed to see frame numbers
        }
        let mut word = [0u8; 8];
        flags.read_exact_at(&mut word, pfn * 8).ok()?;
        let word = u64::from_le_bytes(word);
        seen += 1;
        large += u64::from(word & (KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL) != 0);
    }
    (seen > 0).then(|| large as f64 / seen as f64)
}

/// Says on stderr which state the cache is in before a group runs.
pub fn report(group: &str, file: &File) {
    match large_folio_share(file) {
        Some(share) => {
            eprintln!("{group}: {:.0}% of the cached file in large folios", share * 100.0)
        }
        None => eprintln!("{group}: folio sizes unknown (needs root for /proc/kpageflags)"),
    }
}
