//! Where the heap's bytes live: the [`Backend`] trait, the file on mmf ([`FileBackend`]:
//! a read-only mapping to read, `pwrite` / `WriteFile` to write, `fdatasync` /
//! `FlushFileBuffers` to sync) and plain memory ([`MemoryBackend`]).
//!
//! The trait is the seam the crash tests use: a backend that keeps unsynced writes apart
//! and drops or tears them at a simulated power loss shows what a real disk may do.

use std::fs::File;
use std::sync::{Arc, Mutex, RwLock};

use mmf::{Access, Mapping, View, ViewMut, ViewOptions};

use crate::error::{Error, Result};
use crate::mem::Mapped;

/// The storage a heap runs on.
///
/// The heap's promise to a backend: it writes only inside the length it last asked for
/// with [`grow`](Self::grow) (or the length at open), and syncs before it relies on
/// anything being durable. A backend's promise to the heap: what it read back is what was
/// written last (or, after a crash, what the device kept); [`sync`](Self::sync) returns
/// only when every write before it is durable; [`grow`](Self::grow) makes the new length
/// durable before it returns.
#[allow(clippy::len_without_is_empty, reason = "a heap's storage is never empty")]
pub trait Backend: Send + Sync {
    /// The current length in bytes.
    ///
    /// # Errors
    /// The storage's error.
    fn len(&self) -> Result<u64>;

    /// Fills `buf` with the bytes at `offset`.
    ///
    /// # Errors
    /// The storage's error; a range past the end is an error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Writes `data` at `offset` (inside the current length).
    ///
    /// # Errors
    /// The storage's error; a full device is [`Error::StorageFull`].
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()>;

    /// Makes every write so far durable (`fdatasync`).
    ///
    /// # Errors
    /// The storage's error. After a failed sync, writes since the last successful one may
    /// or may not be durable (and on Linux may never become so: the kernel can drop them).
    fn sync(&self) -> Result<()>;

    /// Starts sending the `len` bytes at `offset`, written before, to the device without
    /// waiting for them: a hint that lets a large commit's device work overlap its
    /// remaining writes. Durability still comes from [`sync`](Self::sync) alone, which
    /// also reports what this may have failed to start. (Default: nothing.)
    fn start_sync(&self, offset: u64, len: u64) {
        let _ = (offset, len);
    }

    /// Grows the storage to `len` bytes (zeros), durably (`ftruncate` + `fsync`).
    ///
    /// # Errors
    /// The storage's error; a full device is [`Error::StorageFull`].
    fn grow(&self, len: u64) -> Result<()>;

    /// Looks at the storage's length again, which another process may have grown, makes
    /// the new bytes readable, and returns the length. (Default: [`len`](Self::len), for
    /// storage no other process shares.)
    ///
    /// # Errors
    /// The storage's error.
    fn refresh(&self) -> Result<u64> {
        self.len()
    }

    /// Makes every write to the storage durable, other processes' included (a writer
    /// taking over from another process's commits without a sync). (Default:
    /// [`sync`](Self::sync).)
    ///
    /// # Errors
    /// As [`sync`](Self::sync).
    fn sync_all(&self) -> Result<()> {
        self.sync()
    }

    /// The storage's bytes in place, if it keeps them mapped: snapshots then borrow
    /// `&T` from them instead of copying. (Default: `None`; reads then copy the commit's
    /// allocated area once per snapshot.)
    fn mapped(&self) -> Option<Mapped> {
        None
    }
}

/// A heap file through mmf: reads come from a read-only mapping of the whole file, writes
/// are the file's own (`pwrite` / `WriteFile` through a write-through view), a sync is
/// `fdatasync` of the range written since the last sync (`msync(MS_SYNC)` /
/// `FlushViewOfFile` + `FlushFileBuffers`).
///
/// A full disk is [`Error::StorageFull`] from the write, never a `SIGBUS`: nothing stores
/// through the mapping.
pub struct FileBackend {
    file: File,
    writable: bool,
    /// Whether [`Backend::mapped`] lends the mapping (only with `Heap::open`'s promise).
    in_place: bool,
    map: RwLock<Map>,
    /// The byte range written since the last successful sync, as (start, end).
    unsynced: Mutex<Option<(u64, u64)>>,
}

/// The current mapping of the file and its view. A growth maps the file anew; the old
/// view lives on while a snapshot reads in place through it.
struct Map {
    len: u64,
    view: Option<Arc<FileView>>,
}

enum FileView {
    Read(View),
    WriteThrough(ViewMut),
}

impl FileView {
    fn view(&self) -> &View {
        match self {
            FileView::Read(v) => v,
            FileView::WriteThrough(v) => v,
        }
    }
}

impl FileBackend {
    /// A backend over `file`, open for reading (and writing, if `writable`).
    ///
    /// # Errors
    /// What mapping the file returns.
    pub fn new(file: File, writable: bool) -> Result<Self> {
        let len = file.metadata().map_err(|e| Error::io("stat", e))?.len();
        let map = Self::map(&file, writable, len)?;
        // The first sync covers the whole file: what a heap finds at open may be in the
        // page cache only.
        let unsynced = Mutex::new((writable && len > 0).then_some((0, len)));
        Ok(FileBackend { file, writable, in_place: false, map: RwLock::new(map), unsynced })
    }

    /// Lends the mapping to snapshots ([`Backend::mapped`]).
    ///
    /// # Safety
    /// As [`Heap::open`](crate::Heap::open): nothing but the heap writes, truncates or
    /// maps the file for writing while it is open.
    pub(crate) unsafe fn in_place(mut self) -> Self {
        self.in_place = true;
        self
    }

    /// The file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    fn map(file: &File, writable: bool, len: u64) -> Result<Map> {
        if len == 0 {
            return Ok(Map { len, view: None });
        }
        let view = if writable {
            let mapping =
                Mapping::from_file(file, Access::ReadWrite).map_err(|e| Error::map("map", e))?;
            let view = ViewOptions::new()
                .write_through(true)
                .map_mut(&mapping)
                .map_err(|e| Error::map("map", e))?;
            Arc::new(FileView::WriteThrough(view))
        } else {
            let mapping =
                Mapping::from_file(file, Access::ReadOnly).map_err(|e| Error::map("map", e))?;
            Arc::new(FileView::Read(mapping.view(..).map_err(|e| Error::map("map", e))?))
        };
        Ok(Map { len: view.view().len() as u64, view: Some(view) })
    }

    fn range(map: &Map, offset: u64, len: usize) -> Result<usize> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= map.len => Ok(offset as usize),
            _ => Err(Error::io(
                "read",
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "past the end of the heap file",
                ),
            )),
        }
    }
}

impl Backend for FileBackend {
    fn len(&self) -> Result<u64> {
        Ok(self.map.read().unwrap_or_else(|e| e.into_inner()).len)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let at = Self::range(&map, offset, buf.len())?;
        match &map.view {
            Some(view) => view.view().read_at(at, buf).map_err(|e| Error::map("read", e)),
            None => Ok(()), // only an empty read gets here
        }
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let at = Self::range(&map, offset, data.len())?;
        let Some(FileView::WriteThrough(view)) = map.view.as_deref() else {
            return Err(Error::ReadOnly);
        };
        view.write_at(at, data).map_err(|e| Error::map("write", e))?;
        let end = offset + data.len() as u64;
        let mut unsynced = self.unsynced.lock().unwrap_or_else(|e| e.into_inner());
        *unsynced = Some(match *unsynced {
            Some((s, e)) => (s.min(offset), e.max(end)),
            None => (offset, end),
        });
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let mut unsynced = self.unsynced.lock().unwrap_or_else(|e| e.into_inner());
        let Some((start, end)) = *unsynced else { return Ok(()) };
        if let Some(view) = &map.view {
            let end = end.min(map.len);
            let flushed = view
                .view()
                .flush_range(start as usize, (end - start) as usize)
                .map_err(|e| Error::map("sync", e))?;
            // Durable, or a file with no device behind it (tmpfs). Anything else would
            // be a sync that did not happen: refuse rather than acknowledge a commit.
            if !matches!(flushed, mmf::Flushed::Durable | mmf::Flushed::InMemory) {
                let why = format!("the flush reported {flushed:?}, not a durable write");
                return Err(Error::io("sync", std::io::Error::other(why)));
            }
        }
        *unsynced = None;
        Ok(())
    }

    /// Linux: `sync_file_range(SYNC_FILE_RANGE_WRITE)` of the range (through mmf's
    /// [`flush_async_range`](mmf::View::flush_async_range)). Elsewhere nothing: on Windows
    /// the writes go through a write-through handle and are on the device already.
    fn start_sync(&self, offset: u64, len: u64) {
        #[cfg(target_os = "linux")]
        {
            let map = self.map.read().unwrap_or_else(|e| e.into_inner());
            let Ok(len) = usize::try_from(len) else { return };
            if let (Some(view), Ok(at)) = (map.view.as_deref(), Self::range(&map, offset, len)) {
                // A hint: `sync` reports any error of the write-back this starts.
                let _ = view.view().flush_async_range(at, len);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (offset, len);
    }

    fn grow(&self, len: u64) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if len > map.len {
            // A new mapping for the new length. The old view goes unless snapshots read
            // in place through it (Windows refuses to change a mapped file's length only
            // when shrinking).
            map.view = None;
            let grown = self.file.set_len(len);
            let now = self.file.metadata().map_or(map.len, |m| m.len());
            *map = Self::map(&self.file, true, now)?;
            grown.map_err(|e| Error::io("grow", e))?;
        }
        // Always: an earlier growth whose sync failed is made durable now.
        self.file.sync_all().map_err(|e| Error::io("grow", e))?;
        *self.unsynced.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    fn refresh(&self) -> Result<u64> {
        let now = self.file.metadata().map_err(|e| Error::io("stat", e))?.len();
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if now > map.len {
            // Another process grew the file: a mapping of the new length (the old one
            // stays until it is made).
            *map = Self::map(&self.file, self.writable, now)?;
        }
        Ok(map.len)
    }

    fn sync_all(&self) -> Result<()> {
        let _map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let mut unsynced = self.unsynced.lock().unwrap_or_else(|e| e.into_inner());
        // fdatasync / FlushFileBuffers of the file: every process's writes to it.
        self.file.sync_data().map_err(|e| Error::io("sync", e))?;
        *unsynced = None;
        Ok(())
    }

    fn mapped(&self) -> Option<Mapped> {
        if !self.in_place {
            return None;
        }
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let view = map.view.as_ref()?;
        let owner: Arc<dyn std::any::Any + Send + Sync> = view.clone();
        // SAFETY: the view stays mapped while `owner` (an Arc of it) lives: a growth or a
        // refresh replaces the Map's Arc, never unmaps a view another Arc holds; the view
        // shows the file from byte 0 (`ViewOptions` / `view(..)` without an offset); and
        // `in_place` is set only under `Heap::open`'s promise that nothing but the heap
        // writes or truncates the file, which writes only blocks no pinned commit reaches.
        Some(unsafe { Mapped::new(view.view().as_ptr(), view.view().len(), owner) })
    }
}

/// A heap in memory, for tests and for trying the API: no file, syncs do nothing.
///
/// ```
/// use mmf_heap::{Heap, MemoryBackend};
///
/// let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
/// let mut tx = heap.write()?;
/// tx.set_root("answer", &42u64)?;
/// tx.commit()?;
/// assert_eq!(heap.read()?.root::<u64>("answer")?, Some(42));
/// # Ok::<(), mmf_heap::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryBackend {
    bytes: RwLock<Vec<u8>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend holding `bytes` (an image of a heap file).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        MemoryBackend { bytes: RwLock::new(bytes) }
    }

    /// A copy of the bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn past_end() -> Error {
    Error::io("read", std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "past the end"))
}

impl Backend for MemoryBackend {
    fn len(&self) -> Result<u64> {
        Ok(self.bytes.read().unwrap_or_else(|e| e.into_inner()).len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let bytes = self.bytes.read().unwrap_or_else(|e| e.into_inner());
        let start = usize::try_from(offset).map_err(|_| past_end())?;
        let src = bytes.get(start..start.saturating_add(buf.len())).ok_or_else(past_end)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        let mut bytes = self.bytes.write().unwrap_or_else(|e| e.into_inner());
        let start = usize::try_from(offset).map_err(|_| past_end())?;
        let dst = bytes.get_mut(start..start.saturating_add(data.len())).ok_or_else(past_end)?;
        dst.copy_from_slice(data);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn grow(&self, len: u64) -> Result<()> {
        let mut bytes = self.bytes.write().unwrap_or_else(|e| e.into_inner());
        let len = usize::try_from(len).map_err(|_| Error::StorageFull)?;
        if len > bytes.len() {
            bytes.resize(len, 0);
        }
        Ok(())
    }
}
