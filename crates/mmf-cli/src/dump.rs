//! `mmf dump`: a range of a file as `hexdump -C` shows it. Files that can be mapped are
//! read through views, one window at a time; the rest (a FIFO, a character device, a
//! `/proc` or `/sys` file) are read as a stream, as `hexdump` reads them.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

use mmf::{Access, FileKind, Mapping};

use crate::hexdump::HexDump;
use crate::open::{self, Opened, WINDOW, read_some, take};

/// Bytes copied out of a view, or read from a stream, at a time.
const CHUNK: usize = 1 << 20;

pub fn run(path: &Path, offset: u64, len: Option<u64>) -> Result<(), String> {
    let shown = path.display();
    let Opened { file, kind } = open::read(path)?;
    let stat_len = file.metadata().map_err(|e| format!("cannot stat {shown}: {e}"))?.len();
    // A regular file of size 0 may still be a pseudo-file mmf does not know: read it.
    if !kind.is_mappable() || (kind == FileKind::Regular && stat_len == 0) {
        return stream(path, &file, kind, offset, len);
    }
    let mapping = match Mapping::from_file(&file, Access::ReadOnly) {
        Err(mmf::Error::EmptyFile) => return past_end(path, offset, len, 0), // a 0-byte device
        other => other.map_err(|e| format!("cannot map {shown}: {e}"))?,
    };
    let size = mapping.size();
    if len == Some(0) || offset >= size {
        return past_end(path, offset, len, size);
    }
    let end = len.map_or(size, |len| offset.saturating_add(len).min(size));
    match mapped_to_stdout(&mapping, offset..end) {
        Ok(()) => Ok(()),
        Err(DumpError::Read(e)) => Err(open::read_error(path, &file, &e)),
        Err(DumpError::Write(e)) => crate::stdout_result(Err(e)),
    }
}

/// Nothing to show at `offset` of a file of `size` bytes: fine for an empty range at the
/// start (hexdump shows nothing either), an error past the end.
fn past_end(path: &Path, offset: u64, len: Option<u64>, size: u64) -> Result<(), String> {
    let shown = path.display();
    match (offset, size) {
        _ if len == Some(0) || offset == 0 && size == 0 => Ok(()),
        (_, 0) => Err(format!(
            "{shown} is empty: there is no byte at offset {offset}; dump it without --offset"
        )),
        _ => Err(format!(
            "offset {offset} is past the end of {shown} ({size} bytes): give an offset below {size}"
        )),
    }
}

/// Why a dump stopped: the bytes could not be read, or the dump could not be written.
pub enum DumpError {
    Read(mmf::Error),
    Write(io::Error),
}

/// Writes `hexdump -C` lines for `range` of `mapping` to stdout, through one view of at
/// most [`WINDOW`] bytes at a time (so at most that much of it is ever resident here).
pub fn mapped_to_stdout(mapping: &Mapping, range: Range<u64>) -> Result<(), DumpError> {
    let mut dump = HexDump::new(BufWriter::new(io::stdout().lock()), range.start);
    let mut buf = vec![0; take(range.end - range.start, CHUNK)];
    for window in open::windows(range, WINDOW) {
        let view = mapping.view(window).map_err(DumpError::Read)?;
        for at in (0..view.len()).step_by(CHUNK) {
            let n = CHUNK.min(view.len() - at);
            view.read_at(at, &mut buf[..n]).map_err(DumpError::Read)?;
            dump.write(&buf[..n]).map_err(DumpError::Write)?;
        }
    }
    dump.finish().and_then(|mut out| out.flush()).map_err(DumpError::Write)
}

/// Dumps what cannot be mapped by reading it: skips `offset` bytes, then shows up to `len`
/// (all, to the end of the stream, by default). A FIFO through which nothing came is an
/// error, not an empty success: there was no writer.
fn stream(
    path: &Path,
    file: &File,
    kind: FileKind,
    offset: u64,
    len: Option<u64>,
) -> Result<(), String> {
    let shown = path.display();
    if len == Some(0) {
        return Ok(());
    }
    let fail = |e: io::Error| format!("cannot read {shown}: {e}");
    let no_writer = || {
        format!(
            "{shown} is a FIFO and nothing came through it (no writer had it open, or its \
             writers wrote nothing): start the writer first, then run mmf dump again"
        )
    };
    let mut buf = vec![0u8; CHUNK];
    let mut skipped = 0;
    // What can seek (a device, a /proc file) is not read up to the offset: `lseek` first,
    // as `dd skip=` does (`/dev/zero` at 1 TiB is at once); read through only what cannot
    // (a FIFO, a terminal) and a regular file that is here because it is empty (reading
    // finds that at once, and says so).
    let sought = offset > 0
        && !matches!(kind, FileKind::Fifo | FileKind::Socket | FileKind::Regular)
        && (&mut &*file).seek(SeekFrom::Start(offset)).is_ok();
    if sought {
        skipped = offset;
    }
    while skipped < offset {
        match read_some(file, &mut buf[..take(offset - skipped, CHUNK)]).map_err(fail)? {
            0 if kind == FileKind::Fifo && skipped == 0 => return Err(no_writer()),
            0 => return past_end(path, offset, len, skipped),
            n => skipped += n as u64,
        }
    }
    let mut dump = HexDump::new(BufWriter::new(io::stdout().lock()), offset);
    let (mut left, mut read) = (len.unwrap_or(u64::MAX), 0u64);
    while left > 0 {
        let n = read_some(file, &mut buf[..take(left, CHUNK)]).map_err(fail)?;
        if n == 0 {
            break;
        }
        if let Err(e) = dump.write(&buf[..n]) {
            return crate::stdout_result(Err(e));
        }
        left -= n as u64;
        read += n as u64;
    }
    if read == 0 && offset == 0 && kind == FileKind::Fifo {
        return Err(no_writer());
    }
    if read == 0 && sought {
        return Err(format!(
            "offset {offset} is past the end of {shown} (it gives no bytes there): give a \
             smaller offset, or dump it without --offset"
        ));
    }
    crate::stdout_result(dump.finish().and_then(|mut out| out.flush()))
}
