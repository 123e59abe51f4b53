//! What the OS does for a view's pages: flush, advice, prefetch, populate, lock,
//! residency. Each call reaches `sys` once; `View` keeps the pointers.

use super::{Residency, View};
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::map::{Advice, Advised, ViewKind};

#[cfg(doc)]
use crate::ViewOptions;

impl View {
    /// Writes the view's changes to the storage device and waits: afterwards they survive
    /// a crash of the machine. Nothing to do for copy-on-write views (their pages never
    /// reach the file).
    ///
    /// ```
    /// use mmf::{Access, MappingOptions};
    ///
    /// let file = tempfile::tempfile()?;
    /// let mapping = MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file)?;
    /// let mut view = mapping.view_mut(..)?;
    /// view.write_at(0, b"durable")?;
    /// view.flush()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Truncated`] if the file or object was truncated to end inside the view:
    /// what the view holds past the new end (written or not) never reaches the file — a
    /// truncation inside the last page raises no fault at the write, so this is where it
    /// shows; the OS's refusal (an I/O error of the device, for example).
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `msync(MS_SYNC)`, which ends in `fdatasync` of the range and so also makes
    /// the file's size durable; memory with no file behind it (anonymous, named
    /// pagefile-backed) has nothing to write. Windows: `FlushViewOfFile` (retried while
    /// another thread's flush holds the pages) for every view that is not copy-on-write,
    /// then `FlushFileBuffers`, which writes the file's metadata — except for a view of a
    /// file's section opened by name ([`Mapping::open`](crate::Mapping::open)), which has
    /// no handle to the file: its pages reach the file, and the file's metadata are made
    /// durable by the file's own holders' flushes.
    ///
    /// # References
    /// [`msync(2)`](https://man7.org/linux/man-pages/man2/msync.2.html),
    /// [`FlushViewOfFile`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-flushviewoffile),
    /// [`FlushFileBuffers`](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-flushfilebuffers)
    #[doc(alias = "FlushViewOfFile")]
    #[doc(alias = "msync")]
    pub fn flush(&self) -> Result<()> {
        self.flush_range(0, self.len())
    }

    /// [`flush`](Self::flush) for `len` bytes starting `offset` bytes into the view (any
    /// range; widened to whole pages internally).
    ///
    /// ```
    /// use mmf::{Access, MappingOptions};
    ///
    /// let file = tempfile::tempfile()?;
    /// let mapping = MappingOptions::new().access(Access::ReadWrite).size(1 << 20).map_file(&file)?;
    /// let mut view = mapping.view_mut(..)?;
    /// view.write_at(70_000, b"one record")?;
    /// view.flush_range(70_000, 10)?; // only the page that holds it
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range outside the view; [`Error::Truncated`] if the file
    /// or object now ends inside the range (see [`flush`](Self::flush)); or the OS's
    /// refusal.
    ///
    /// # References
    /// As [`flush`](Self::flush).
    #[doc(alias = "FlushViewOfFile")]
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<()> {
        let Some(range) = self.flush_request(offset, len)? else { return Ok(()) };
        sys::map::flush(range)?;
        self.ensure_within_file(offset, len)
    }

    /// Starts writing the view's changes back without waiting for the device.
    ///
    /// # Errors
    /// The OS's refusal.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `sync_file_range(SYNC_FILE_RANGE_WRITE)` on the file range
    /// (`msync(MS_ASYNC)` does nothing on Linux since 2.6.19). Windows: `FlushViewOfFile`
    /// alone, which starts the writes; the device may not have them yet.
    ///
    /// # References
    /// [`sync_file_range(2)`](https://man7.org/linux/man-pages/man2/sync_file_range.2.html),
    /// [`FlushViewOfFile`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-flushviewoffile)
    #[doc(alias = "FlushViewOfFile")]
    #[doc(alias = "sync_file_range")]
    pub fn flush_async(&self) -> Result<()> {
        self.flush_async_range(0, self.len())
    }

    /// [`flush_async`](Self::flush_async) for a byte range of the view.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a range outside the view, or the OS's refusal.
    pub fn flush_async_range(&self, offset: usize, len: usize) -> Result<()> {
        match self.flush_request(offset, len)? {
            Some(range) => sys::map::flush_async(range),
            None => Ok(()),
        }
    }

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
    /// Linux: `MADV_POPULATE_WRITE` for writable views (later stores take no write fault),
    /// `MADV_POPULATE_READ` otherwise; `MADV_WILLNEED` before Linux 5.14; `EFAULT` (a page
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
        sys::map::populate(start, len, self.kind != ViewKind::Read).map_err(|e| match e {
            Error::Truncated { .. } => Error::Truncated { offset, len },
            e => e,
        })
    }

    /// Faults the view in and keeps it in RAM until [`unlock`](Self::unlock) or unmap.
    ///
    /// # Errors
    /// [`Error::LockLimit`] when the process's limit of locked memory stops it, or the OS's
    /// refusal.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `mlock`, limited by `RLIMIT_MEMLOCK` (`ulimit -l`) unless privileged.
    /// Windows: `VirtualLock`; when the working-set quota is too small it is raised by the
    /// view's size once (`SetProcessWorkingSetSize`), and not lowered by `unlock`.
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
        sys::map::lock(self.as_ptr(), self.len())
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

    /// [`Error::Truncated`] if a writable view's range `offset..offset+len` reaches past the
    /// current end of its file or object: those bytes cannot have reached it.
    fn ensure_within_file(&self, offset: usize, len: usize) -> Result<()> {
        if self.kind != ViewKind::Write {
            return Ok(());
        }
        let end = self.offset() + (offset + len) as u64;
        match self.backing.as_deref().and_then(sys::map::current_len) {
            Some(file_len) if file_len < end => Err(Error::Truncated { offset, len }),
            _ => Ok(()),
        }
    }
}
