//! Windows only: a plain Win32 client (raw `OpenFileMappingW` + `MapViewOfFile`, not mmf's
//! API) reads what mmf wrote by name, and Windows refuses to truncate a mapped file, which
//! is why the Linux fault guard has nothing to catch there.
#![cfg(windows)]

use mmf::{Access, Mapping};
use mmf_testkit::{Peer, create_named, role, tell, unique_name};
use windows_sys::Win32::Foundation::CloseHandle;
use windows_sys::Win32::System::Memory::{
    FILE_MAP_READ, MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFile, OpenFileMappingW, UnmapViewOfFile,
};

/// The raw client: what any Win32 program does with `OpenFileMapping`.
fn raw_read(name: &str, len: usize) -> Vec<u8> {
    let wide: Vec<u16> = format!("Local\\{name}").encode_utf16().chain([0]).collect();
    // SAFETY: a NUL-terminated UTF-16 name; the handle is closed below.
    let handle = unsafe { OpenFileMappingW(FILE_MAP_READ, 0, wide.as_ptr()) };
    assert!(!handle.is_null(), "OpenFileMappingW: {}", std::io::Error::last_os_error());
    // SAFETY: a read view of the whole section, unmapped below.
    let view = unsafe { MapViewOfFile(handle, FILE_MAP_READ, 0, 0, 0) };
    assert!(!view.Value.is_null(), "MapViewOfFile: {}", std::io::Error::last_os_error());
    // SAFETY: the view is at least `len` bytes (the test creates it larger) and nobody
    // writes it while we copy.
    let bytes = unsafe { std::slice::from_raw_parts(view.Value.cast::<u8>(), len) }.to_vec();
    // SAFETY: the view and handle from above, unused afterwards.
    unsafe {
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: view.Value });
        CloseHandle(handle);
    }
    bytes
}

#[test]
fn a_plain_win32_client_reads_what_mmf_wrote_by_name() {
    if let Some((_, name)) = role() {
        let bytes = raw_read(&name, 26);
        tell(&format!(
            "read {}",
            String::from_utf16_lossy(
                &bytes.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect::<Vec<_>>()
            )
        ));
        return;
    }
    let name = unique_name("win32");
    let mapping = create_named(&name, 0x1000).unwrap();
    let text: Vec<u8> = "HELLO, WORLD!".encode_utf16().flat_map(u16::to_le_bytes).collect();
    mapping.view_mut(..).unwrap().write_at(0, &text).unwrap();
    let mut client =
        Peer::spawn("a_plain_win32_client_reads_what_mmf_wrote_by_name", "client", &name);
    assert_eq!(client.expect("read"), "HELLO, WORLD!");
    client.wait_success();
}

#[test]
fn windows_refuses_to_truncate_a_mapped_file() {
    let (_dir, _path, file) = mmf_testkit::file_with(65_536, |_| 1);
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let view = mapping.view(..).unwrap();
    let err = file.set_len(100).unwrap_err();
    // ERROR_USER_MAPPED_FILE (1224)
    assert_eq!(err.raw_os_error(), Some(1224), "{err}");
    let mut buf = vec![0; 65_536];
    view.read_at(0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 1));
}
