//! What the OS does for a view's pages: advice, prefetch, populate, lock, residency
//! (flushes are in `flush.rs`). Each call reaches `sys` once; `View` keeps the pointers.

use super::{Residency, View};
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::map::{Advice, Advised, ViewKind};

#[cfg(doc)]
use crate::ViewOptions;

impl View {
    /// Tells the OS how the view will be used. Advice the platform has no equivalent for
    /// returns [`Advised::NotSupported`] instead of pretending.
    ///
    /// # Errors
    /// The OS's refusal.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `madvise`. [`Advice::HugePages`] is `NotSupported` where it cannot take
    /// effect: on shared memory (anonymous and named mappings, files on tmpfs) while the
    /// shmem huge-page policy (`/sys/kernel/mm/transparent_hugepage/shmem_enabled`, `never`
    /// by default) allows none, and on a kernel without transparent huge pages.
    /// Windows: only [`Advice::WillNeed`] (`PrefetchVirtualMemory`); the rest are
    /// `NotSupported`.
    ///
    /// # References
    /// [`madvise(2)`](https://man7.org/linux/man-pages/man2/madvise.2.html),
    /// [`PrefetchVirtualMemory`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-prefetchvirtualmemory)
    #[doc(alias = "madvise")]
    pub fn advise(&self, advice: Advice) -> Result<Advised> {
        if self.is_empty() {
            return Ok(Advised::Applied); // nothing to advise about
        }
        sys::map::advise(self.as_ptr(), self.len(), advice, self.memory)
    }

    /// Starts reading `len` bytes from `offset` into memory in the background.
    ///
    /// ```
    /// let view = mmf::Mapping::anonymous(1 << 20)?.view(..)?;
    /// let _ = view.prefetch(0, 64 * 1024)?;
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range outside the view, or the OS's refusal.
    ///
    /// # References
    /// [`madvise(2)`](https://man7.org/linux/man-pages/man2/madvise.2.html) (`MADV_WILLNEED`),
    /// [`PrefetchVirtualMemory`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-prefetchvirtualmemory)
    #[doc(alias = "PrefetchVirtualMemory")]
    pub fn prefetch(&self, offset: usize, len: usize) -> Result<Advised> {
        let start = self.at(offset, len)?;
        if len == 0 {
            return Ok(Advised::Applied);
        }
        sys::map::advise(start, len, Advice::WillNeed, self.memory)
    }

    /// Faults `len` bytes from `offset` in now and waits for them: what
    /// [`ViewOptions::populate`] does at map time, for any part of the view.
    ///
    /// ```
    /// let view = mmf::Mapping::anonymous(1 << 20)?.view(..)?;
    /// view.populate(0, view.len())?;
    /// assert_eq!(view.residency()?.resident_pages(), view.residency()?.pages());
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range outside the view, [`Error::Truncated`] (Linux) when
    /// the file was truncated under the view and the range reaches past its new end, or the
    /// OS's refusal.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `MADV_POPULATE_WRITE` for read-write views (later stores take no write
    /// fault), `MADV_POPULATE_READ` otherwise — copy-on-write views included, so that they
    /// keep showing the file (and a peer's later writes to it) until they write a page
    /// themselves; `MADV_WILLNEED` before Linux 5.14; `EFAULT` (a page
    /// past the end of the file) is [`Error::Truncated`]. Windows:
    /// `PrefetchVirtualMemory`, then one read of every page (Windows does not let a mapped
    /// file be truncated).
    ///
    /// # References
    /// [`madvise(2)`](https://man7.org/linux/man-pages/man2/madvise.2.html),
    /// [`PrefetchVirtualMemory`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-prefetchvirtualmemory)
    pub fn populate(&self, offset: usize, len: usize) -> Result<()> {
        let start = self.at(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        sys::map::populate(start, len, self.kind == ViewKind::Write).map_err(|e| match e {
            Error::Truncated { .. } => Error::Truncated { offset, len },
            e => e,
        })
    }

    /// Faults the view in and keeps it in RAM until [`unlock`](Self::unlock) or unmap.
    ///
    /// A copy-on-write view's pages are locked as they are, not copied (Linux): the view
    /// keeps showing the file (and a peer's writes to it) until it writes a page, whose
    /// private copy is then locked in its place.
    ///
    /// # Errors
    /// [`Error::LockLimit`] when the process's limit of locked memory stops it, or the OS's
    /// refusal.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `mlock`, limited by `RLIMIT_MEMLOCK` (`ulimit -l`) unless privileged; for a
    /// copy-on-write view `mlock2(MLOCK_ONFAULT)` then `MADV_POPULATE_READ`, because `mlock`
    /// write-faults every page of a private writable mapping into a private copy (before
    /// Linux 5.14, which has no `MADV_POPULATE_READ`, such pages are locked as they are
    /// first touched).
    /// Windows: `VirtualLock`; when the working-set quota is too small it is raised by the
    /// view's size once (`SetProcessWorkingSetSize`), and not lowered by `unlock`. Wine
    /// implements `VirtualLock` with `mlock`, so under Wine a locked copy-on-write view gets
    /// private copies of its pages and stops following the file.
    ///
    /// # References
    /// [`mlock(2)`](https://man7.org/linux/man-pages/man2/mlock.2.html),
    /// [`VirtualLock`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-virtuallock)
    #[doc(alias = "mlock")]
    #[doc(alias = "VirtualLock")]
    pub fn lock(&self) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        sys::map::lock(self.as_ptr(), self.len(), self.kind == ViewKind::CopyOnWrite)
    }

    /// Lets the OS page the view out again. Unlocking pages that are not locked succeeds
    /// (on Windows too, where `VirtualUnlock` itself would fail with `ERROR_NOT_LOCKED`).
    ///
    /// # Errors
    /// The OS's refusal.
    ///
    /// # References
    /// [`munlock(2)`](https://man7.org/linux/man-pages/man2/munlock.2.html),
    /// [`VirtualUnlock`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-virtualunlock)
    #[doc(alias = "munlock")]
    #[doc(alias = "VirtualUnlock")]
    pub fn unlock(&self) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        sys::map::unlock(self.as_ptr(), self.len())
    }

    /// Which pages of the view are in memory now.
    ///
    /// ```
    /// let mapping = mmf::Mapping::anonymous(1 << 20)?;
    /// let mut view = mapping.view_mut(..)?;
    /// view.write_at(0, b"x")?;
    /// assert!(view.residency()?.is_resident(0));
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// The OS's refusal.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `mincore`, page-cache residency for file views, whether or not this process
    /// touched the pages. Windows: `QueryWorkingSetEx`, this process's working set.
    ///
    /// # References
    /// [`mincore(2)`](https://man7.org/linux/man-pages/man2/mincore.2.html),
    /// [`QueryWorkingSetEx`](https://learn.microsoft.com/en-us/windows/win32/api/psapi/nf-psapi-queryworkingsetex)
    #[doc(alias = "mincore")]
    #[doc(alias = "QueryWorkingSetEx")]
    pub fn residency(&self) -> Result<Residency> {
        let page = sys::map::page_size();
        if self.is_empty() {
            return Ok(Residency::new(page, 0, Vec::new()));
        }
        let data = self.as_ptr() as usize;
        let pages = sys::map::residency(self.as_ptr(), self.len())?;
        Ok(Residency::new(page, data - data / page * page, pages))
    }
}
