//! `mmf hello`: the classic CreateFileMapping example, step by step as it does it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use mmf::{Access, MappingOptions};

/// `max_size_low_bits = 0x01400000`: 20 MiB.
pub const SIZE: u64 = 0x0140_0000;
pub const TEXT: &str = "HELLO, WORLD!";

pub fn run(path: &Path) -> Result<(), String> {
    let shown = path.display();
    // CreateFileW(..., GENERIC_READ | GENERIC_WRITE, ..., CREATE_ALWAYS, ...)
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| format!("cannot create {shown}: {e}"))?;
    // CreateFileMappingW(file, NULL, PAGE_READWRITE, 0, 0x01400000, ...)
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(SIZE)
        .map_file(&file)
        .map_err(|e| format!("cannot map {shown}: {e}"))?;
    // MapViewOfFile(mapping, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0): map all.
    let view = mapping.view_mut(..).map_err(|e| format!("cannot map a view of {shown}: {e}"))?;
    // The wchar_t string, without its terminator: UTF-16LE.
    let text: Vec<u8> = TEXT.encode_utf16().flat_map(u16::to_le_bytes).collect();
    view.write_at(0, &text).map_err(|e| format!("cannot write {shown}: {e}"))?;
    // FlushViewOfFile(view, 0), UnmapViewOfFile(view), CloseHandle(mapping), CloseHandle(file)
    view.flush().map_err(|e| format!("cannot flush {shown}: {e}"))?;
    view.unmap().map_err(|e| format!("cannot unmap {shown}: {e}"))?;
    drop(mapping);
    drop(file);
    // The file is new: make its name durable too (CREATE_ALWAYS + FlushFileBuffers does it
    // on NTFS; Linux needs an fsync of the directory).
    mmf::file::sync_parent(path)
        .map_err(|e| format!("cannot flush the directory of {shown}: {e}"))?;

    let len = std::fs::metadata(path).map_err(|e| format!("cannot stat {shown}: {e}"))?.len();
    let report = format!(
        "wrote \"{TEXT}\" as UTF-16LE through a {} MiB read-write view, flushed, unmapped, closed\n\
         {shown}: {len} bytes\n",
        SIZE >> 20,
    );
    crate::stdout_result(std::io::stdout().lock().write_all(report.as_bytes()))?;
    // The whole file as `hexdump -C` shows it: the string, then zeros folded into `*`.
    crate::dump::run(path, 0, None)
}
