//! Views that grow in place: [`GrowView`] and [`GrowViewMut`], made by
//! [`Mapping::view_growable`] / [`Mapping::view_growable_mut`]. The view's address space
//! is reserved up to a maximum when it is made; growing the file (or named object) maps
//! the new part right after the old one, so the view keeps its address and every pointer
//! into it stays valid. Other holders of the object learn the new size with
//! [`refresh`](GrowView::refresh).

use std::fs::File;
use std::ops::Deref;
use std::sync::Arc;

use super::{Mapping, View, ViewMut};
use crate::MAX_SIZE;
use crate::error::{Error, Result};
use crate::sys;
use crate::sys::map::reserve::{self, Reserved};
use crate::sys::map::{Access, Section, ViewKind};

/// A read-only view that follows an object other holders grow: [`refresh`](Self::refresh)
/// maps what was added, at the same address. Everything a [`View`] does, through `Deref`.
///
/// ```
/// use mmf::{Access, MappingOptions};
///
/// let file = tempfile::tempfile()?;
/// let mapping = MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file)?;
/// let mut writer = mapping.view_growable_mut(0, 1 << 30)?;
/// let mut reader = mapping.view_growable(0, 1 << 30)?;
/// writer.grow(100_000)?;
/// writer.write_at(99_000, b"appended")?;
/// assert_eq!(reader.len(), 4096);
/// assert_eq!(reader.refresh()?, 100_000); // learns the new size
/// let mut buf = [0; 8];
/// reader.read_at(99_000, &mut buf)?;
/// assert_eq!(&buf, b"appended");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct GrowView {
    inner: Growing<View>,
}

/// A read-write view that grows in place, with its file or object: [`grow`](Self::grow)
/// extends both and keeps the view's address. Everything a [`ViewMut`] does, through
/// `Deref`.
///
/// ```
/// use mmf::{Access, MappingOptions};
///
/// let file = tempfile::tempfile()?;
/// let mapping = MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file)?;
/// let mut log = mapping.view_growable_mut(0, 64 << 30)?; // up to 64 GiB, address space only
/// let base = log.as_ptr();
/// for record in 0..100u64 {
///     let at = log.len();
///     log.grow(at as u64 + 8)?;
///     log.write_le(at, record)?;
/// }
/// assert_eq!(log.as_ptr(), base, "the view never moved");
/// assert_eq!(file.metadata()?.len(), 4096 + 800);
/// assert!(matches!(log.grow(65 << 30), Err(mmf::Error::GrowPastReserve { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct GrowViewMut {
    inner: Growing<ViewMut>,
}

/// What both kinds share. `view` is declared first so that it is dropped before the
/// reservation its pages live in.
#[derive(Debug)]
struct Growing<V> {
    view: V,
    reserved: Reserved,
    section: Section,
    file: Option<Arc<File>>,
    access: Access,
    /// `offset % granularity`: where the view starts in the reservation.
    delta: usize,
    /// The most the view may grow to, in bytes from its start.
    reserve: u64,
}

trait Inner {
    fn inner(&self) -> &View;
    fn inner_mut(&mut self) -> &mut View;
}
impl Inner for View {
    fn inner(&self) -> &View {
        self
    }
    fn inner_mut(&mut self) -> &mut View {
        self
    }
}
impl Inner for ViewMut {
    fn inner(&self) -> &View {
        self
    }
    fn inner_mut(&mut self) -> &mut View {
        ViewMut::inner_mut(self)
    }
}

impl<V: Inner> Growing<V> {
    /// The object's size now (one `fstat` / `GetFileSizeEx`): the section's object on
    /// Linux, the file on Windows.
    fn object_len(&self) -> Result<u64> {
        let backing = self.view.inner().backing.as_deref().or(self.file.as_deref());
        backing.and_then(|file| file.metadata().ok()).map(|m| m.len()).ok_or(Error::Unsupported {
            what: "a growable view of a pagefile-backed section on Windows: a section's size \
                   is fixed when it is created; create it at its largest size instead",
        })
    }

    /// Maps `len` bytes from the view's start with `section` (`None`: the current one).
    fn map_to(&mut self, section: Option<Section>, len: u64) -> Result<()> {
        let target = section.as_ref().unwrap_or(&self.section);
        let to = self.delta + len as usize;
        let mapped = self.reserved.extend(&self.section, target, to);
        if self.reserved.mapped() < to {
            // Nothing or less than before is mapped (Windows could not put the old view
            // back): admit only what is.
            let still = self.reserved.mapped().saturating_sub(self.delta);
            let keep = self.view.inner().len().min(still);
            self.view.inner_mut().set_len(keep);
        }
        mapped?;
        if let Some(section) = section {
            self.section = section;
        }
        self.view.inner_mut().set_len(len as usize);
        Ok(())
    }

    fn grow(&mut self, len: u64) -> Result<()> {
        if len > self.reserve {
            return Err(Error::GrowPastReserve { len, reserve: self.reserve });
        }
        let offset = self.view.inner().offset();
        let current = self.view.inner().len() as u64;
        let need = offset + len;
        let mut have = self.object_len()?;
        let section = if have < need {
            let file = self.file.as_ref();
            // A write-through view's writes report a full disk themselves: no need to
            // allocate ahead.
            let allocate = self.view.inner().through.is_none();
            let grown =
                reserve::grow_object(&self.section, file, self.access, (have, need), allocate)?;
            have = need;
            grown
        } else if len > current {
            let file = self.file.as_ref();
            reserve::current_section(&self.section, file, self.access, need)?
        } else {
            None
        };
        // The view covers `len` bytes, and no more than the object holds: after another
        // process truncated it (and this growth gave it `len` bytes again), a longer view
        // would promise bytes that are not there.
        let target = len.max(current.min(have - offset));
        if target < current {
            self.view.inner_mut().set_len(target as usize);
            return Ok(());
        }
        if target == current && section.is_none() {
            return Ok(());
        }
        // If the map fails the object keeps its new size: another holder may already be
        // using it, and giving the old size back could cut off a growth another process
        // made meanwhile.
        self.map_to(section, target)
    }

    fn refresh(&mut self) -> Result<u64> {
        let now = self.object_len()?;
        let len = now.saturating_sub(self.view.inner().offset()).min(self.reserve);
        let current = self.view.inner().len() as u64;
        if len > current {
            let file = self.file.as_ref();
            let end = self.view.inner().offset() + len;
            let section = reserve::current_section(&self.section, file, self.access, end)?;
            self.map_to(section, len)?;
        } else if len < current {
            // Another process truncated the object: admit only what it holds (the pages
            // past its end stay mapped, and come back when it grows again).
            self.view.inner_mut().set_len(len as usize);
        }
        Ok(self.view.inner().len() as u64)
    }
}

impl Mapping {
    /// A read-only view from the mapping's byte `offset` to its end that can follow the
    /// object as it grows, up to `reserve` bytes, without moving: see [`GrowView`].
    ///
    /// `reserve` bytes of address space are set aside now (no memory: 64 GiB is fine on a
    /// 64-bit system), and nothing else is ever placed there.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] (offset past the end), [`Error::GrowPastReserve`] (the
    /// mapping is already larger than `offset + reserve`), [`Error::TooLarge`] (the
    /// address space has no room), or the OS's refusal.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `mmap(PROT_NONE, MAP_NORESERVE)` reserves the range; the object's pages are
    /// mapped over it with `MAP_FIXED`, only ever inside that reservation.
    /// Windows: `VirtualAlloc(MEM_RESERVE)` reserves the range; the view is one
    /// `MapViewOfFileEx` at its start, and growing maps a new section of the larger file at
    /// the same address. Placeholders (`VirtualAlloc2(MEM_RESERVE_PLACEHOLDER)` +
    /// `MapViewOfFile3`), which would keep the range reserved throughout, are not used:
    /// Wine rejects them. A pagefile-backed section (anonymous or named) cannot grow on
    /// Windows ([`Error::Unsupported`] from `grow` and `refresh`).
    ///
    /// # References
    /// [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html),
    /// [`VirtualAlloc`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-virtualalloc),
    /// [`MapViewOfFileEx`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-mapviewoffileex)
    #[doc(alias = "mremap")]
    #[doc(alias = "resize")]
    pub fn view_growable(&self, offset: u64, reserve: u64) -> Result<GrowView> {
        Ok(GrowView { inner: self.growing(offset, reserve, ViewKind::Read, |v| v)? })
    }

    /// A read-write view from the mapping's byte `offset` to its end that grows in place
    /// with its file or object, up to `reserve` bytes: see [`GrowViewMut`].
    ///
    /// # Errors
    /// As [`view_growable`](Self::view_growable), and [`Error::AccessDenied`] for a
    /// mapping that is not read-write.
    pub fn view_growable_mut(&self, offset: u64, reserve: u64) -> Result<GrowViewMut> {
        let inner = self.growing(offset, reserve, ViewKind::Write, ViewMut::new)?;
        Ok(GrowViewMut { inner })
    }

    /// [`view_growable_mut`](Self::view_growable_mut) whose writes are the file's own
    /// (`pwrite` / `WriteFile` at the view's offset), as
    /// [`ViewOptions::write_through`](crate::ViewOptions::write_through): the view is mapped
    /// read-only, a write dirties only its blocks, and filling new pages costs no page fault
    /// per page — appending through it runs at `write()`'s speed, where stores into freshly
    /// grown pages of a shared file mapping take a fault each (see the README's figures).
    ///
    /// ```
    /// use mmf::{Access, MappingOptions};
    ///
    /// let file = tempfile::tempfile()?;
    /// let mapping = MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file)?;
    /// let mut log = mapping.view_growable_write_through(0, 1 << 30)?;
    /// log.grow(8192 + 5)?;
    /// log.write_at(8192, b"entry")?; // pwrite at offset 8192
    /// let mut back = [0; 5];
    /// log.read_at(8192, &mut back)?; // a load from the mapping
    /// assert_eq!(&back, b"entry");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`view_growable_mut`](Self::view_growable_mut), and [`Error::WriteThrough`] where a
    /// write-through view cannot be had (no file handle in this process, or a handle that
    /// cannot write at an offset synchronously: Linux `O_APPEND` or `O_DIRECT`, a Windows
    /// handle opened for overlapped I/O).
    #[doc(alias = "pwrite")]
    pub fn view_growable_write_through(&self, offset: u64, reserve: u64) -> Result<GrowViewMut> {
        let file = self.file().cloned().ok_or(Error::WriteThrough {
            reason: "this mapping has no file handle in this process to write with (anonymous \
                     memory, a named pagefile-backed object, or on Windows a file's section \
                     opened by name): use view_growable_mut",
        })?;
        if let Some(reason) = sys::map::write_through_refusal(&file) {
            return Err(Error::WriteThrough { reason });
        }
        if !self.access().allows(ViewKind::Write) {
            let view = ViewKind::Write.name();
            return Err(Error::AccessDenied { view, mapping: self.access() });
        }
        let inner = self.growing(offset, reserve, ViewKind::Read, |mut view| {
            view.through = Some(file);
            ViewMut::new(view)
        })?;
        Ok(GrowViewMut { inner })
    }

    fn growing<V>(
        &self,
        offset: u64,
        reserve: u64,
        kind: ViewKind,
        wrap: impl FnOnce(View) -> V,
    ) -> Result<Growing<V>> {
        if !self.access().allows(kind) {
            return Err(Error::AccessDenied { view: kind.name(), mapping: self.access() });
        }
        let len = super::span::check(offset, None, self.size())?;
        if len > reserve {
            return Err(Error::GrowPastReserve { len, reserve });
        }
        let granularity = sys::map::allocation_granularity() as u64;
        let delta = offset % granularity;
        // A reserve of 0 is an empty view that cannot grow; it still reserves a page, as
        // the OS maps nothing of length 0.
        let capacity = reserve
            .checked_add(delta)
            .map(|n| n.max(1))
            .filter(|&n| n <= MAX_SIZE)
            .ok_or(Error::TooLarge { size: reserve })?;
        let section = self.section().try_clone()?;
        let reserved = Reserved::new(
            &section,
            kind,
            offset - delta,
            capacity as usize,
            (delta + len) as usize,
        )?;
        // SAFETY: delta < capacity, so the pointer stays inside the reservation.
        let data = unsafe { reserved.base().add(delta as usize) };
        let mut view = View::unowned(data, offset, kind, self);
        view.set_len(len as usize);
        Ok(Growing {
            view: wrap(view),
            reserved,
            section,
            file: self.file().cloned(),
            access: self.access(),
            delta: delta as usize,
            reserve,
        })
    }
}

impl GrowView {
    /// Maps what other holders added to the object since (up to the reserve), at the same
    /// address, and returns the view's length now (`OpenFileMapping` holders on Windows
    /// learn a new size the same way: the file's size). If another process truncated the
    /// object, the view shrinks to what it holds (Linux; Windows cannot truncate a mapped
    /// file).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a pagefile-backed section on Windows, or the OS's
    /// refusal; the view keeps what it had.
    pub fn refresh(&mut self) -> Result<u64> {
        self.inner.refresh()
    }

    /// The most the view can grow to, in bytes.
    pub fn reserve(&self) -> u64 {
        self.inner.reserve
    }
}

impl GrowViewMut {
    /// Grows the file or object to hold `len` bytes from the view's start, and the view
    /// with it, at the same address. A `len` at or below the view's length changes nothing
    /// — unless another process truncated the object: then it is given `len` bytes again
    /// (zeros where it was cut) and the view shrinks to what the object holds, so that
    /// `Ok` always means the view's bytes are there.
    /// Other holders see the new size at once and map it with
    /// [`GrowView::refresh`] (or a new view). The [`Mapping`] the view came from keeps the
    /// size it had: its new views stop at the old end.
    ///
    /// # Errors
    /// [`Error::GrowPastReserve`] past the reserve; [`Error::GrowNoSpace`] when the file
    /// system has no room (Linux allocates the blocks now, so a full disk is this error,
    /// never a `SIGBUS` at a later write; a write-through view's writes say
    /// [`Error::StorageFull`] themselves instead); [`Error::Unsupported`] for a pagefile-backed
    /// section on Windows; or the OS's refusal. On any error the view is as it was. The
    /// file's size is as it was after a full disk; after a failure to map the new part
    /// (address space or map count exhausted) the file stays longer, with zeros: it is
    /// never shrunk back, because another process may have grown it meanwhile and its
    /// growth — and data — would be cut off.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux: `fallocate(FALLOC_FL_KEEP_SIZE)` reserves the new part's blocks (skipped for
    /// a [write-through](Mapping::view_growable_write_through) view, whose writes report a
    /// full disk themselves), then `fallocate` of the last byte extends the file, then
    /// `mmap(MAP_FIXED)` maps the new pages inside the reservation (64 MiB at a time).
    /// `fallocate` only ever extends a file, so processes growing one file at once never
    /// cut each other's growth back; where the file system has no `fallocate`,
    /// `ftruncate`, which can (grow from one process there). Windows:
    /// `CreateFileMappingW` of the larger size (which extends the file), then the view is
    /// unmapped and mapped again whole at the same address (`MapViewOfFileEx`): Windows
    /// cannot extend a view. Taking `&mut self` makes sure no reference into the view
    /// lives across that moment.
    ///
    /// # References
    /// [`fallocate(2)`](https://man7.org/linux/man-pages/man2/fallocate.2.html),
    /// [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html),
    /// [`CreateFileMappingW`](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-createfilemappingw)
    pub fn grow(&mut self, len: u64) -> Result<()> {
        self.inner.grow(len)
    }

    /// As [`GrowView::refresh`].
    ///
    /// # Errors
    /// As [`GrowView::refresh`].
    pub fn refresh(&mut self) -> Result<u64> {
        self.inner.refresh()
    }

    /// The most the view can grow to, in bytes.
    pub fn reserve(&self) -> u64 {
        self.inner.reserve
    }
}

impl Deref for GrowView {
    type Target = View;
    fn deref(&self) -> &View {
        &self.inner.view
    }
}

impl Deref for GrowViewMut {
    type Target = ViewMut;
    fn deref(&self) -> &ViewMut {
        &self.inner.view
    }
}
