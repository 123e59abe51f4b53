//! [`Stream`]: a `std::io` cursor over a mapping (.NET's `CreateViewStream`), reading and
//! writing through a bounded window that slides over the mapping, so that a file of any
//! size streams in a fixed amount of memory and address space.

use std::borrow::Borrow;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use super::{Mapping, View, ViewMut, ViewOptions};
use crate::error::{Error, Result};
use crate::sys::map::Access;
use crate::{Advice, allocation_granularity};

/// The default window: 16 MiB.
const DEFAULT_WINDOW: u64 = 16 << 20;
/// What [`BufRead::fill_buf`] copies at a time.
const BUF_LEN: usize = 64 << 10;
/// How much of a read window is faulted in at once, just ahead of the reader.
const POPULATE_STEP: u64 = 2 << 20;

/// A [`Read`] + [`Write`] + [`Seek`] + [`BufRead`] cursor over a [`Mapping`], as .NET's
/// `MemoryMappedFile.CreateViewStream`: mmf plugs into everything that takes a reader or a
/// writer (`io::copy`, hashers, decompressors, line readers).
///
/// The stream maps one window of the mapping at a time ([`with_window`](Self::with_window),
/// 16 MiB by default) and moves it as the position moves, so it streams a file larger
/// than RAM or the address space in bounded memory: the pages of windows it left are no
/// longer mapped by the process. Reads and writes are guarded copies
/// ([`View::read_at`], [`ViewMut::write_at`]): a file truncated under the stream gives an
/// error, not a `SIGBUS`.
///
/// The stream's length is the mapping's size. Like [`std::io::Cursor`] over a slice it
/// does not grow: seeking past the end is allowed, reading there gives 0 bytes (end of
/// file), and a write there writes nothing (`Ok(0)`, which `write_all` turns into
/// [`io::ErrorKind::WriteZero`]); a write that reaches the end writes what fits.
/// [`Write::flush`] does nothing, as for a [`std::fs::File`]: the bytes are in the shared
/// pages when `write` returns; make them durable with [`View::flush`] or the file's
/// `sync_data`.
///
/// ```
/// use std::io::{BufRead, Read, Seek, SeekFrom, Write};
///
/// use mmf::{Access, MappingOptions, Stream};
///
/// let file = tempfile::tempfile()?;
/// let mapping = MappingOptions::new().access(Access::ReadWrite).size(1 << 20).map_file(&file)?;
/// let mut out = Stream::new_mut(&mapping)?;
/// writeln!(out, "first line")?;
/// writeln!(out, "second line")?;
///
/// let mut input = Stream::new(&mapping).with_window(64 * 1024);
/// let mut line = String::new();
/// input.read_line(&mut line)?;
/// assert_eq!(line, "first line\n");
/// input.seek(SeekFrom::End(-4))?;
/// let mut tail = Vec::new();
/// input.read_to_end(&mut tail)?;
/// assert_eq!(tail, [0; 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `M` is the mapping or a reference to it: `Stream::new(mapping)` owns it,
/// `Stream::new(&mapping)` borrows it.
///
/// # References
/// [`MemoryMappedFile.CreateViewStream`](https://learn.microsoft.com/en-us/dotnet/api/system.io.memorymappedfiles.memorymappedfile.createviewstream)
#[doc(alias = "CreateViewStream")]
#[derive(Debug)]
pub struct Stream<M: Borrow<Mapping> = Mapping> {
    mapping: M,
    pos: u64,
    window: u64,
    writable: bool,
    /// The mapped window and its offset in the mapping.
    current: Option<(u64, Window)>,
    /// A read window's pages are faulted in up to this offset of the mapping.
    ready: u64,
    /// `BufRead`'s buffer: a copy of the bytes from `buf_at`.
    buf: Vec<u8>,
    buf_at: u64,
}

#[derive(Debug)]
enum Window {
    Read(View),
    Write(ViewMut),
}

impl Window {
    fn view(&self) -> &View {
        match self {
            Window::Read(view) => view,
            Window::Write(view) => view,
        }
    }
}

impl<M: Borrow<Mapping>> Stream<M> {
    /// A read-only stream from the start of the mapping (`CreateViewStream` with
    /// `MemoryMappedFileAccess.Read`). Its [`Write`] methods fail.
    pub fn new(mapping: M) -> Self {
        Stream {
            mapping,
            pos: 0,
            window: DEFAULT_WINDOW,
            writable: false,
            current: None,
            ready: 0,
            buf: Vec::new(),
            buf_at: 0,
        }
    }

    /// A stream that reads and writes, from the start of the mapping.
    ///
    /// # Errors
    /// [`Error::AccessDenied`] if the mapping is not [`Access::ReadWrite`].
    pub fn new_mut(mapping: M) -> Result<Self> {
        let access = mapping.borrow().access();
        if access != Access::ReadWrite {
            return Err(Error::AccessDenied { view: "read-write", mapping: access });
        }
        Ok(Stream { writable: true, ..Stream::new(mapping) })
    }

    /// The window's size in bytes, rounded up to the allocation granularity (the page
    /// size on Linux, 64 KiB on Windows): the most of the mapping this stream maps at
    /// once. Larger windows map less often (a map costs a few microseconds); smaller ones
    /// hold less address space. Default 16 MiB.
    pub fn with_window(mut self, bytes: u64) -> Self {
        let granularity = allocation_granularity() as u64;
        self.window = bytes.max(1).div_ceil(granularity).saturating_mul(granularity);
        self.current = None;
        self
    }

    /// The current position in bytes from the start of the mapping.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The stream's length: the mapping's size in bytes.
    pub fn len(&self) -> u64 {
        self.mapping.borrow().size()
    }

    /// Whether the mapping is empty (never: mappings have at least one byte).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mapping back (the window is unmapped).
    pub fn into_inner(self) -> M {
        self.mapping
    }

    /// Maps the window holding the mapping's byte `pos` (< the size) if it is not mapped
    /// yet; returns the window's offset (the window is `self.current`).
    fn window_at(&mut self, pos: u64) -> Result<u64> {
        let start = pos - pos % self.window;
        if self.current.as_ref().is_none_or(|(at, _)| *at != start) {
            self.current = None; // unmap the old window first: bounded address space
            let mapping = self.mapping.borrow();
            let len = self.window.min(mapping.size() - start);
            let mut options = ViewOptions::new();
            options.offset(start).len(len);
            let window = if self.writable {
                Window::Write(options.map_mut(mapping)?)
            } else {
                let view = options.map(mapping)?;
                // Only a hint to read ahead and drop behind: its failure changes nothing.
                let _ = view.advise(Advice::Sequential);
                Window::Read(view)
            };
            self.current = Some((start, window));
            self.ready = start;
        }
        Ok(self.current.as_ref().expect("mapped above").0)
    }

    /// Copies mapping bytes from `pos` into `buf` (all of it, or up to the end).
    fn read_from(&mut self, mut pos: u64, buf: &mut [u8]) -> Result<usize> {
        let size = self.len();
        let mut done = 0;
        while done < buf.len() && pos < size {
            let at = self.window_at(pos)?;
            let view = self.current.as_ref().expect("mapped").1.view();
            let inner = (pos - at) as usize;
            let n = (view.len() - inner).min(buf.len() - done);
            self.ready = populate_ahead(view, at, self.ready.max(pos), pos + n as u64);
            match view.read_at(inner, &mut buf[done..done + n]) {
                // Bytes already copied are returned first; the error comes next call.
                Err(_) if done > 0 => break,
                other => other?,
            }
            done += n;
            pos += n as u64;
        }
        Ok(done)
    }
}

/// Faults the read window `view` (at mapping offset `at`) in from `ready` in steps of
/// [`POPULATE_STEP`] until `need` is covered, and returns how far it is now: one
/// `MADV_POPULATE_READ` per 2 MiB instead of a page fault per folio or fault-around block,
/// yet never far ahead of the reader (from a cold cache the kernel's read-ahead keeps the
/// disk busy meanwhile). A failure is left to the copy, which reports it properly.
fn populate_ahead(view: &View, at: u64, mut ready: u64, need: u64) -> u64 {
    let end = at + view.len() as u64;
    while ready < need {
        let to = (ready - ready % POPULATE_STEP + POPULATE_STEP).min(end);
        if view.populate((ready - at) as usize, (to - ready) as usize).is_err() {
            return need;
        }
        ready = to;
    }
    ready
}

impl<M: Borrow<Mapping>> Read for Stream<M> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // What BufRead already copied is served from there, so mixing both reads is
        // consistent.
        let n = if let Some(buffered) = self.buffered() {
            let n = buffered.len().min(buf.len());
            buf[..n].copy_from_slice(&buffered[..n]);
            n
        } else {
            self.read_from(self.pos, buf)?
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl<M: Borrow<Mapping>> Stream<M> {
    /// The rest of `BufRead`'s buffer from the position, if the position lies inside it.
    fn buffered(&self) -> Option<&[u8]> {
        let from = usize::try_from(self.pos.checked_sub(self.buf_at)?).ok()?;
        self.buf.get(from..).filter(|rest| !rest.is_empty())
    }
}

impl<M: Borrow<Mapping>> BufRead for Stream<M> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.buffered().is_none() {
            let mut buf = std::mem::take(&mut self.buf);
            let want = usize::try_from(self.len().saturating_sub(self.pos)).unwrap_or(BUF_LEN);
            buf.resize(want.min(BUF_LEN), 0);
            let n = self.read_from(self.pos, &mut buf);
            buf.truncate(*n.as_ref().unwrap_or(&0));
            (self.buf, self.buf_at) = (buf, self.pos);
            n?;
        }
        Ok(self.buffered().unwrap_or_default())
    }

    fn consume(&mut self, amount: usize) {
        self.pos += amount as u64;
    }
}

impl<M: Borrow<Mapping>> Write for Stream<M> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.writable {
            let access = self.mapping.borrow().access();
            return Err(Error::AccessDenied { view: "read-write stream", mapping: access }.into());
        }
        self.buf.clear(); // what BufRead copied may be stale now
        let size = self.len();
        let mut done = 0;
        while done < data.len() && self.pos < size {
            let pos = self.pos;
            let at = self.window_at(pos)?;
            let Some((_, Window::Write(view))) = &self.current else {
                unreachable!("writable streams map to write")
            };
            let inner = (pos - at) as usize;
            let n = (view.len() - inner).min(data.len() - done);
            match view.write_at(inner, &data[done..done + n]) {
                // Bytes already written are reported first; the error comes next call.
                Err(_) if done > 0 => break,
                other => other?,
            }
            done += n;
            self.pos += n as u64;
        }
        Ok(done)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<M: Borrow<Mapping>> Seek for Stream<M> {
    /// Moves the position; past the end is allowed (reads there give 0 bytes), before the
    /// start is [`io::ErrorKind::InvalidInput`], as for a file.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(n) => (n, 0),
            SeekFrom::End(d) => (self.len(), d),
            SeekFrom::Current(d) => (self.pos, d),
        };
        self.pos = base.checked_add_signed(delta).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid seek to a negative or overflowing position",
            )
        })?;
        Ok(self.pos)
    }
}
