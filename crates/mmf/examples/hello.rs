//! The classic CreateFileMapping example with the library alone:
//! `cargo run -p mmf --example hello [PATH]`.
//!
//! Creates `mm.file` (or PATH) of 20 MiB, maps it, writes `HELLO, WORLD!` as UTF-16LE
//! (Windows' `wchar_t`) at offset 0, flushes, unmaps and closes. The file then holds the
//! string and zeros.

use std::fs::OpenOptions;

use mmf::{Access, MappingOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "mm.file".into());
    // CreateFileW(..., GENERIC_WRITE | GENERIC_READ, ..., CREATE_ALWAYS, ...)
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
    // CreateFileMappingW(file, NULL, PAGE_READWRITE, 0, 0x01400000, ...): 20 MiB
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(0x0140_0000).map_file(&file)?;
    // MapViewOfFile(mapping, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0): map all
    let view = mapping.view_mut(..)?;
    let text: Vec<u8> = "HELLO, WORLD!".encode_utf16().flat_map(u16::to_le_bytes).collect();
    view.write_at(0, &text)?;
    view.flush()?; // FlushViewOfFile(view, 0)
    view.unmap()?; // UnmapViewOfFile(view)
    drop(mapping); // CloseHandle(mapping)
    drop(file); // CloseHandle(file)
    println!("{path}: {} bytes", std::fs::metadata(&path)?.len());
    Ok(())
}
