//! `mmf create` and `mmf write`: files grown and written through mappings, flushed durably.

use std::path::Path;

use mmf::{Access, MappingOptions};

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
    result
}

fn grow(path: &Path, opened: &Opened, size: u64) -> Result<(), String> {
    let shown = path.display();
    open::require_mappable(path, opened.kind, "create")?;
    let before = mmf::file::len(&opened.file, opened.kind)
        .map_err(|e| format!("cannot stat {shown}: {e}"))?;
    if before >= size {
        println!("{shown}: {before} bytes (already at least {size}; not shrunk)");
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
    let Opened { file, kind } = open::read_write(path, false)?;
    open::require_mappable(path, kind, "write")?;
    let len = mmf::file::len(&file, kind).map_err(|e| format!("cannot stat {shown}: {e}"))?;
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
