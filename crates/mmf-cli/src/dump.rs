//! `mmf dump`: a range of a file as `hexdump -C` shows it, read through a view.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use mmf::{Access, Mapping};

use crate::hexdump::HexDump;

/// Bytes copied out of the view at a time.
const CHUNK: usize = 1 << 20;

pub fn run(path: &Path, offset: u64, len: Option<u64>) -> Result<(), String> {
    let shown = path.display();
    // Asked before opening: Windows refuses to open a directory as a file at all.
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(format!("{shown} is a directory: give a file"));
    }
    let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let size = file.metadata().map_err(|e| format!("cannot stat {shown}: {e}"))?.len();
    if len == Some(0) || (size == 0 && offset == 0) {
        return Ok(()); // nothing to show, as hexdump shows nothing
    }
    if offset >= size {
        return Err(format!(
            "offset {offset} is past the end of {shown} ({size} bytes): give an offset below {size}"
        ));
    }
    let end = len.map_or(size, |len| offset.saturating_add(len).min(size));
    let mapping = Mapping::from_file(&file, Access::ReadOnly)
        .map_err(|e| format!("cannot map {shown}: {e}"))?;
    let view = mapping.view(offset..end).map_err(|e| format!("cannot map {shown}: {e}"))?;

    view_to_stdout(&view, offset).map_err(|e| format!("cannot read {shown}: {e}"))
}

/// Writes `hexdump -C` lines for the whole view, whose first byte is at `start`, to stdout.
/// A closed pipe (`mmf dump big | head`) ends the output quietly.
pub fn view_to_stdout(view: &mmf::View, start: u64) -> Result<(), mmf::Error> {
    let mut dump = HexDump::new(BufWriter::new(std::io::stdout().lock()), start);
    let mut buf = vec![0; CHUNK.min(view.len())];
    let result = (|| {
        for at in (0..view.len()).step_by(CHUNK) {
            let n = CHUNK.min(view.len() - at);
            view.read_at(at, &mut buf[..n]).map_err(std::io::Error::from)?;
            dump.write(&buf[..n])?;
        }
        dump.finish()?.flush()
    })();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(mmf::Error::Os { op: "writing the dump", source: e }),
        Ok(()) => Ok(()),
    }
}
