//! `mmf::sync::inspect` (and so `mmf shm info`) on an object a peer truncated after it was
//! mapped: an error, never a SIGBUS. (Found in review: `inspect` read with plain atomic
//! loads, and this test died of SIGBUS; it now reads through the view's guarded copies.)
#![cfg(target_os = "linux")]

use mmf::sync::{SyncArea, SyncAreaOptions, inspect};
use mmf::{Access, Mapping};
use mmf_testkit::file_with;

#[test]
fn inspect_of_an_area_truncated_under_its_view_is_an_error_not_sigbus() {
    let (_dir, _path, file) = file_with(1 << 20, |_| 0);
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let view = mapping.view_mut(..).unwrap();
    // 1024 participant slots: the table runs far past the first page.
    let area =
        SyncArea::init(&view, 0, SyncAreaOptions::new().participants(1024).objects(16)).unwrap();
    drop(area.mutex(0).unwrap().lock().unwrap());
    drop(area);
    let ro = mapping.view(..).unwrap();
    // A peer with write access shrinks the object (ftruncate), as `mmf shm` or any
    // process holding the name may.
    file.set_len(4096).unwrap();
    let result = inspect(&ro, 0);
    assert!(result.is_err(), "inspect read a truncated area without an error: {result:?}");
}
