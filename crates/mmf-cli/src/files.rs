//! `mmf create` and `mmf write`: files grown and written through mappings, flushed durably.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use mmf::{Access, Mapping, MappingOptions, ViewOptions};

use crate::input::Input;
use crate::open::{self, Opened};

/// `mmf create PATH --size SIZE`: creates the file or grows it to SIZE (never shrinks it).
/// A file this command created is removed again if it cannot be given its size.
pub fn create(path: &Path, size: u64) -> Result<(), String> {
    let (opened, created) = match open::create_new(path)? {
        Some(opened) => (opened, true),
        None => (open::read_write(path, false)?, false),
    };
    let result = grow(path, &opened, size);
    if result.is_err() && created {
        drop(opened);
        // Leave nothing behind: the file did not exist before this command.
        let _ = std::fs::remove_file(path);
    }
    result?;
    if created {
        // The name too: without this a crash may lose the new file's directory entry. (A
        // failure here leaves the complete file in place and says so.)
        mmf::file::sync_parent(path).map_err(|e| {
            format!("{} was created, but its directory could not be flushed: {e}", path.display())
        })?;
    }
    Ok(())
}

fn grow(path: &Path, opened: &Opened, size: u64) -> Result<(), String> {
    let shown = path.display();
    open::require_mappable(path, opened.kind, "create")?;
    let before = mmf::file::len(&opened.file, opened.kind)
        .map_err(|e| format!("cannot stat {shown}: {e}"))?;
    if before >= size {
        outln!("{shown}: {before} bytes (already at least {size}; not shrunk)");
        return Ok(());
    }
    // CreateFileMapping with a size past the end grows the file, as on Windows.
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(size)
        .map_file(&opened.file)
        .map_err(|e| format!("cannot grow {shown} to {size} bytes: {e}"))?;
    // A durable flush of the last page makes the new size durable too.
    mapping
        .view(size - 1..)
        .and_then(|view| view.flush())
        .map_err(|e| format!("cannot flush {shown}: {e}"))?;

    outln!("{shown}: {size} bytes (was {before})");
    Ok(())
}

/// Bytes per write of `mmf write --from`: one system call per piece costs nothing, and the
/// write-back of one piece (started at once) overlaps the copy of the next.
const PIECE: usize = 8 << 20;

/// What `mmf write` puts in: bytes in memory, or a mappable file copied from its pages.
enum Source {
    Bytes(Vec<u8>),
    File { path: PathBuf, file: File, len: u64 },
}

/// `mmf write PATH [--offset N] INPUT`: writes with a write-through view (the file's own
/// writes, growing the file if the bytes end past it) and flushes durably. A mappable
/// `--from` file is copied straight from views of it, a window at a time, so its size
/// does not matter; anything else (a FIFO, `/proc/...`) is read to its end first.
pub fn write(path: &Path, offset: u64, input: &Input) -> Result<(), String> {
    let source = match input.file() {
        Some(from) => open_source(from, path)?,
        None => Source::Bytes(input.bytes()?),
    };
    let len = match &source {
        Source::Bytes(bytes) => bytes.len() as u64,
        Source::File { len, .. } => *len,
    };
    if len == 0 {
        return Err("nothing to write: the input is empty".into());
    }
    let shown = path.display();
    let Opened { file, kind } = open::read_write(path, false)?;
    open::require_mappable(path, kind, "write")?;
    let file_len = mmf::file::len(&file, kind).map_err(|e| format!("cannot stat {shown}: {e}"))?;
    let end = offset
        .checked_add(len)
        .ok_or_else(|| format!("offset {offset} + {len} bytes overflows"))?;
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(file_len.max(end))
        .map_file(&file)
        .map_err(|e| format!("cannot map {shown}: {e}"))?;
    match &source {
        Source::Bytes(bytes) => {
            write_view(&mapping, offset, bytes)
                .map_err(|e| format!("cannot write {shown}: {e}"))?;
        }
        Source::File { path: from, file: input, len } => {
            copy_file(input, *len, &mapping, offset).map_err(|e| match e {
                e @ mmf::Error::Truncated { .. } => open::read_error(from, input, &e),
                e => format!("cannot write {shown}: {e}"),
            })?;
        }
    }
    outln!("wrote {len} bytes at offset {offset} of {shown}");
    Ok(())
}

/// The `--from` file: mapped later if it can be, otherwise read to its end now — also when
/// it is the file being written (`target`), whose ranges may overlap.
fn open_source(from: &Path, target: &Path) -> Result<Source, String> {
    let Opened { file, kind } = open::read(from)?;
    let shown = from.display();
    let len = mmf::file::len(&file, kind).map_err(|e| format!("cannot stat {shown}: {e}"))?;
    // A regular file of size 0 may still be a pseudo-file with content: read it.
    if kind.is_mappable() && len > 0 && !crate::cp::same_file(from, &file, target) {
        return Ok(Source::File { path: from.to_owned(), file, len });
    }
    let mut bytes = Vec::new();
    (&file).read_to_end(&mut bytes).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.is_empty() && kind == mmf::FileKind::Fifo {
        // The open never waits (as for `mmf cp`): a FIFO with no writer reads as empty.
        return Err(format!(
            "{shown} is a FIFO and nothing came through it (no writer had it open, or its \
             writers wrote nothing): start the writer first, then run mmf write again"
        ));
    }
    Ok(Source::Bytes(bytes))
}

/// Copies `len` bytes of `input` to `offset` of the mapping's file: one `pwrite` /
/// `WriteFile` per piece straight from a view of the input, write-back started after each
/// piece, one durable flush at the end.
fn copy_file(input: &File, len: u64, to: &Mapping, offset: u64) -> mmf::Result<()> {
    let from = Mapping::from_file(input, Access::ReadOnly)?;
    let target = ViewOptions::new().range(offset..offset + len).write_through(true).map_mut(to)?;
    for window in open::windows(0..len, open::WINDOW) {
        let source = from.view(window.clone())?;
        let _ = source.advise(mmf::Advice::Sequential);
        for at in (0..source.len()).step_by(PIECE) {
            let n = PIECE.min(source.len() - at);
            // The target view holds `len` bytes, so every offset into it fits a usize.
            let start = usize::try_from(window.start)
                .map_err(|_| mmf::Error::TooLarge { size: window.start })?;
            let into = start + at;
            target.copy_from(into, &source, at, n)?;
            target.flush_async_range(into, n)?;
        }
    }
    target.flush().map(drop)
}

/// Writes `data` at `offset` and flushes it durably: through a write-through view where
/// the mapping has a file (the write dirties only its blocks), else through the memory.
pub fn write_view(mapping: &Mapping, offset: u64, data: &[u8]) -> mmf::Result<()> {
    let range = offset..offset + data.len() as u64;
    let view = match ViewOptions::new().range(range.clone()).write_through(true).map_mut(mapping) {
        Err(mmf::Error::WriteThrough { .. }) => mapping.view_mut(range)?,
        view => view?,
    };
    view.write_at(0, data)?;
    view.flush().map(drop)
}
