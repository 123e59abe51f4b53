//! Regions of shared memory whose lost pages are replaced by zero pages instead of killing
//! the process: the mappings of mmf's own shared structures (a channel's ring and its
//! embedded sync area), whose every word is touched by plain atomics, not guarded copies.
//!
//! Those structures already treat every word a peer wrote as untrusted: positions, lengths
//! and lock words are validated on each read, so a page of zeros is just one more thing a
//! hostile peer could have written. What they could not survive is a peer that *truncates*
//! the shared-memory object: the next access to a page past the new end raises `SIGBUS`,
//! and no validation runs before the process dies. A registered region turns that into
//! zeros:
//!
//! - the `SIGBUS` handler (after the exception table of the guarded routines has declined
//!   the fault) finds the faulting address in a registered region, maps a private zero page
//!   over the faulting page (`mmap(MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS)`), raises the
//!   region's `broken` flag and returns; the access runs again on the zero page;
//! - the structure checks the region's flag ([`ZeroFill::flag`]) after each operation and
//!   reports the truncation as an error instead of trusting what it read (the zero page is
//!   private: the peers no longer see this process's stores, nor it theirs).
//!
//! The flag stays raised for the life of the registration: a region whose pages were
//! replaced no longer shows the object, even if a peer grows it back.
//!
//! The table is a fixed array of slots (a signal handler cannot allocate or lock), each a
//! sequence lock over `start..end`: odd while it changes, so a handler never takes a
//! half-written slot for a region. A registration is kept by the view it covers
//! (`ViewMut::zero_fill_lost_pages`), which drops it before it unmaps the pages, and no
//! thread can be inside a region's structure while its view is dropped: the handler never
//! maps over memory that is no longer the region's.
//!
//! Windows has no such fault: a named object there is a pagefile-backed section, which no
//! process can shrink. [`register`] is a no-op there and its flag is never raised.

#[cfg(target_os = "linux")]
pub(super) use linux::repair;
#[cfg(target_os = "linux")]
pub(crate) use linux::{ZeroFill, register};
#[cfg(windows)]
pub(crate) use windows::{ZeroFill, register};

/// How many regions a process can have registered at once (one a channel handle or a named
/// Mutex/Event/Semaphore handle).
pub(crate) const SLOTS: usize = 4096;

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*, fence};

    use super::SLOTS;

    struct Slot {
        /// Sequence: odd while the slot changes; 0 and even otherwise.
        seq: AtomicUsize,
        start: AtomicUsize,
        /// One past the region's last byte; 0 for a free slot.
        end: AtomicUsize,
        /// Whether a page of the region was replaced.
        broken: AtomicBool,
        /// Whether a registration owns the slot.
        taken: AtomicBool,
    }

    #[allow(clippy::declare_interior_mutable_const, reason = "only the array's initialiser")]
    const FREE: Slot = Slot {
        seq: AtomicUsize::new(0),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        broken: AtomicBool::new(false),
        taken: AtomicBool::new(false),
    };

    static TABLE: [Slot; SLOTS] = [FREE; SLOTS];

    /// The page size, recorded by the first registration (the handler makes no call for it).
    static PAGE: AtomicUsize = AtomicUsize::new(0);

    /// A registered region; dropping it unregisters the region. The view it covers keeps
    /// it and drops it before the view unmaps its pages.
    #[derive(Debug)]
    pub(crate) struct ZeroFill {
        slot: usize,
        /// The slot's flag (checked after every channel operation: one load).
        broken: &'static AtomicBool,
    }

    /// Registers `start..start + len` (mapped shared and read-write for as long as the
    /// registration lives; a fault there replaces the whole page that holds it). `None` if
    /// all [`SLOTS`] are taken.
    pub(crate) fn register(start: *const u8, len: usize) -> Option<ZeroFill> {
        super::super::install();
        PAGE.store(crate::sys::pal::page_size(), Relaxed);
        let start = start as usize;
        for (i, slot) in TABLE.iter().enumerate() {
            if slot.taken.compare_exchange(false, true, Acquire, Relaxed).is_err() {
                continue;
            }
            let seq = slot.seq.load(Relaxed);
            slot.seq.store(seq + 1, Relaxed); // odd: changing
            fence(Release);
            slot.broken.store(false, Relaxed);
            slot.start.store(start, Relaxed);
            slot.end.store(start + len, Relaxed);
            slot.seq.store(seq + 2, Release);
            return Some(ZeroFill { slot: i, broken: &slot.broken });
        }
        None
    }

    impl ZeroFill {
        /// The region's flag: raised once a page of it was replaced by a zero page (what the
        /// structure read since may be zeros, and its stores no longer reach the peers).
        /// Valid while the registration lives.
        #[inline(always)]
        pub(crate) fn flag(&self) -> &'static AtomicBool {
            self.broken
        }
    }

    impl Drop for ZeroFill {
        fn drop(&mut self) {
            let slot = &TABLE[self.slot];
            let seq = slot.seq.load(Relaxed);
            slot.seq.store(seq + 1, Relaxed);
            fence(Release);
            slot.end.store(0, Relaxed);
            slot.start.store(0, Relaxed);
            slot.seq.store(seq + 2, Release);
            slot.taken.store(false, Release);
        }
    }

    /// In the `SIGBUS` handler, for a fault at `addr` that no guarded routine claimed: if
    /// `addr` is in a registered region, maps a private zero page over its page, raises the
    /// region's flag and returns true (the access is then re-run). Only atomics and one
    /// `mmap`, which is a plain system call on Linux.
    pub(crate) fn repair(addr: usize) -> bool {
        for slot in &TABLE {
            let seq = slot.seq.load(Acquire);
            if seq & 1 == 1 {
                continue; // changing: not a region this thread can be touching
            }
            let (start, end) = (slot.start.load(Relaxed), slot.end.load(Relaxed));
            fence(Acquire);
            if slot.seq.load(Relaxed) != seq || !(start <= addr && addr < end) {
                continue;
            }
            slot.broken.store(true, SeqCst);
            // Read after the slot: the Acquire load of its `seq` saw the registration's
            // Release store, after its store of the page size (read first, another thread's
            // first registration could leave it 0 here, and `page - 1` wrap).
            let page = PAGE.load(Relaxed);
            let at = (addr & !(page - 1)) as *mut libc::c_void;
            let flags = libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            // SAFETY: replaces one page of a registered region (a shared mapping that the
            // registration keeps mapped, whose object no longer has this page) with a
            // private zero page. Every access to the region is an atomic of the structure
            // that registered it, which admits any bytes; the raised flag tells it to stop
            // trusting them.
            let p =
                unsafe { libc::mmap(at, page, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
            return p != libc::MAP_FAILED;
        }
        false
    }
}

#[cfg(windows)]
mod windows {
    use std::sync::atomic::AtomicBool;

    /// No region needs repairing on Windows (a section cannot shrink).
    #[derive(Debug)]
    pub(crate) struct ZeroFill;

    /// A no-op on Windows; always `Some`.
    pub(crate) fn register(_start: *const u8, _len: usize) -> Option<ZeroFill> {
        Some(ZeroFill)
    }

    /// Never raised.
    static NEVER: AtomicBool = AtomicBool::new(false);

    impl ZeroFill {
        /// A flag that is never raised on Windows.
        #[inline(always)]
        pub(crate) fn flag(&self) -> &'static AtomicBool {
            &NEVER
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

    use super::register;

    /// A shared mapping of two pages of a memfd, which the test then truncates to one page.
    fn two_pages() -> (libc::c_int, *mut u8, usize) {
        let page = crate::sys::pal::page_size();
        // SAFETY: plain system calls on a new memfd; the mapping is checked.
        unsafe {
            let fd = libc::memfd_create(c"mmf-zero-fill".as_ptr(), 0);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, 2 * page as libc::off_t), 0);
            let prot = libc::PROT_READ | libc::PROT_WRITE;
            let p = libc::mmap(std::ptr::null_mut(), 2 * page, prot, libc::MAP_SHARED, fd, 0);
            assert_ne!(p, libc::MAP_FAILED);
            (fd, p.cast(), page)
        }
    }

    #[test]
    fn a_lost_page_of_a_region_reads_as_zeros_and_raises_its_flag() {
        let (fd, p, page) = two_pages();
        // SAFETY: both words are in the mapping (8-aligned, page-aligned base).
        let (first, second) =
            unsafe { (AtomicU64::from_ptr(p.cast()), AtomicU64::from_ptr(p.add(page).cast())) };
        first.store(7, SeqCst);
        second.store(9, SeqCst);
        let region = register(p, 2 * page).expect("a free slot");
        let broken = || region.flag().load(SeqCst);
        assert!(!broken());
        // SAFETY: shrinks the test's own memfd.
        assert_eq!(unsafe { libc::ftruncate(fd, page as libc::off_t) }, 0);
        assert_eq!(first.load(SeqCst), 7, "the page that stays");
        assert!(!broken());
        assert_eq!(second.load(SeqCst), 0, "the lost page, now a zero page");
        assert!(broken());
        second.store(5, SeqCst); // lands on the private page
        assert_eq!(second.load(SeqCst), 5);
        drop(region);
        // SAFETY: unmaps and closes what `two_pages` made.
        unsafe {
            libc::munmap(p.cast(), 2 * page);
            libc::close(fd);
        }
    }

    /// Takes every free slot for a moment: no other test of this binary opens a channel.
    #[test]
    fn a_dropped_registration_frees_its_slot() {
        let (fd, p, page) = two_pages();
        let held: Vec<_> = std::iter::from_fn(|| register(p, page)).collect();
        assert!(!held.is_empty() && held.len() <= super::SLOTS);
        assert!(register(p, page).is_none(), "every slot is taken");
        drop(held);
        assert!(register(p, page).is_some(), "the slots are free again");
        // SAFETY: unmaps and closes what `two_pages` made.
        unsafe {
            libc::munmap(p.cast(), 2 * page);
            libc::close(fd);
        }
    }
}
