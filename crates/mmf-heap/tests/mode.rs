//! `HeapOptions::mode`: the permission bits of a new heap file (Unix). Its own test binary:
//! it sets the process's umask, which would race with files other tests create.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mmf_heap::{Heap, HeapOptions};

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn create(path: &Path, options: &mut HeapOptions) {
    // SAFETY: only this test opens the file.
    let heap = unsafe { Heap::open(path, options.create(true)) }.unwrap();
    let mut tx = heap.write().unwrap();
    tx.set_root("n", &7u64).unwrap();
    tx.commit().unwrap();
}

#[test]
fn a_new_heap_file_has_the_mode_asked_for_and_an_existing_one_keeps_its_own() {
    // SAFETY: umask only sets this process's file-creation mask. The other test of this
    // binary sets the permissions it checks itself, so it does not depend on the mask.
    let old = unsafe { libc::umask(0o022) };
    let dir = tempfile::tempdir().unwrap();

    let default = dir.path().join("default.heap");
    create(&default, &mut HeapOptions::new());
    assert_eq!(mode_of(&default), 0o644, "0o666 under the umask 022");

    let private = dir.path().join("private.heap");
    create(&private, HeapOptions::new().mode(0o600));
    assert_eq!(mode_of(&private), 0o600);

    // The umask still takes its bits: 0o666 asked is 0o644.
    let shared = dir.path().join("shared.heap");
    create(&shared, HeapOptions::new().mode(0o666));
    assert_eq!(mode_of(&shared), 0o644);

    // An existing heap keeps its mode whatever is asked, and opens as before.
    create(&private, HeapOptions::new().mode(0o644));
    assert_eq!(mode_of(&private), 0o600);
    // SAFETY: as in `create`.
    let heap = unsafe { Heap::open(&private, &HeapOptions::new()) }.unwrap();
    assert_eq!(heap.read().unwrap().root::<u64>("n").unwrap(), Some(7));

    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
}

#[test]
fn a_temporary_name_already_taken_is_passed_over_not_reused_nor_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.heap");
    // What a crashed process with this PID could have left, or a process with the same PID
    // in another namespace is writing: temporary names taken by files of other permissions
    // and other bytes. (Creations count from 0 in the process, and the other test, running
    // beside this one, makes 3: the first 8 names are planted.)
    let planted = |n: usize| dir.path().join(format!("h.heap.tmp-{}-{n}", std::process::id()));
    for n in 0..8 {
        std::fs::write(planted(n), b"not a heap").unwrap();
        std::fs::set_permissions(planted(n), std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    create(&path, HeapOptions::new().mode(0o600));
    assert_eq!(mode_of(&path), 0o600);
    // The planted files are left as they were (another process may be writing one).
    for n in 0..8 {
        assert_eq!(std::fs::read(planted(n)).unwrap(), b"not a heap");
    }
    // SAFETY: as in `create`.
    let heap = unsafe { Heap::open(&path, &HeapOptions::new()) }.unwrap();
    assert_eq!(heap.read().unwrap().root::<u64>("n").unwrap(), Some(7));
}
