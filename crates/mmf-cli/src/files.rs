//! `mmf create` and `mmf write`: files grown and written through mappings, flushed durably.

use std::fs::{File, OpenOptions};
use std::path::Path;

use mmf::{Access, MappingOptions};

fn open_rw(path: &Path, create: bool) -> Result<File, String> {
    let shown = path.display();
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(format!("{shown} is a directory: give a file"));
    }
    OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path).map_err(
        |e| {
            if e.kind() == std::io::ErrorKind::NotFound && !create {
                format!(
                    "cannot open {shown}: {e}; create it first with `mmf create {shown} --size N`"
                )
            } else {
                format!("cannot open {shown} for writing: {e}")
            }
        },
    )
}

/// `mmf create PATH --size SIZE`: creates the file or grows it to SIZE (never shrinks it).
pub fn create(path: &Path, size: u64) -> Result<(), String> {
    let shown = path.display();
    let file = open_rw(path, true)?;
    let before = file.metadata().map_err(|e| format!("cannot stat {shown}: {e}"))?.len();
    if before >= size {
        println!("{shown}: {before} bytes (already at least {size}; not shrunk)");
        return Ok(());
    }
    // CreateFileMapping with a size past the end grows the file, as on Windows.
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(size)
        .map_file(&file)
        .map_err(|e| format!("cannot grow {shown} to {size} bytes: {e}"))?;
    // A durable flush of the last page makes the new size durable too.
    mapping
        .view(size - 1..)
        .and_then(|view| view.flush())
        .map_err(|e| format!("cannot flush {shown}: {e}"))?;
    println!("{shown}: {size} bytes (was {before})");
    Ok(())
}

/// `mmf write PATH [--offset N] INPUT`: writes through a view (growing the file if the
/// bytes end past it) and flushes durably.
pub fn write(path: &Path, offset: u64, data: &[u8]) -> Result<(), String> {
    let shown = path.display();
    if data.is_empty() {
        return Err("nothing to write: the input is empty".into());
    }
    let file = open_rw(path, false)?;
    let len = file.metadata().map_err(|e| format!("cannot stat {shown}: {e}"))?.len();
    let end = offset
        .checked_add(data.len() as u64)
        .ok_or_else(|| format!("offset {offset} + {} bytes overflows", data.len()))?;
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(len.max(end))
        .map_file(&file)
        .map_err(|e| format!("cannot map {shown}: {e}"))?;
    write_view(&mapping, offset, data).map_err(|e| format!("cannot write {shown}: {e}"))?;
    println!("wrote {} bytes at offset {offset} of {shown}", data.len());
    Ok(())
}

/// Writes through a view of exactly the written range and flushes it durably.
pub fn write_view(mapping: &mmf::Mapping, offset: u64, data: &[u8]) -> mmf::Result<()> {
    let view = mapping.view_mut(offset..offset + data.len() as u64)?;
    view.write_at(0, data)?;
    view.flush()
}
