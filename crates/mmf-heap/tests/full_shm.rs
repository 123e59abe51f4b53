//! A full `/dev/shm` (a private 64 KiB tmpfs mounted over it and filled, in a user and
//! mount namespace, `unshare -Urm`), or a read-only one: the heap's lock area cannot be made there. A
//! read-only open still reads the heap, pinning its snapshots with byte-range locks on the
//! file as another user's reader does (review 55: `mmf heap check` failed there, telling
//! the owner to remove an area that did not exist); a writable open fails with
//! `StorageFull` saying where the room is missing.
#![cfg(target_os = "linux")]

use mmf_heap::{Error, Heap, HeapOptions, Off};
use mmf_testkit::{Peer, role, tell};

const TEST: &str = "a_full_dev_shm_leaves_the_heap_readable_and_refuses_writers";

/// Mounts a small tmpfs over `/dev/shm` (private to this namespace) and fills it; or,
/// for `ro`, a read-only one (review 57).
fn spoil_dev_shm(how: &str) {
    let options = if how == "ro" { "size=64k,ro" } else { "size=64k" };
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs", "/dev/shm"])
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a small tmpfs on /dev/shm");
    if how == "full" {
        // Written until the file system says it is full.
        let filler = vec![0u8; 4096];
        let mut file = std::fs::File::create("/dev/shm/filler").unwrap();
        while std::io::Write::write_all(&mut file, &filler).is_ok() {}
    }
}

fn child(arg: &str) {
    let (path, how) = arg.split_once('|').unwrap();
    spoil_dev_shm(how);
    // SAFETY: only these test processes write the file, through mmf-heap.
    let reader = unsafe { Heap::open(path, HeapOptions::new().read_only(true)) };
    match reader {
        Ok(heap) => {
            let snap = heap.read().unwrap();
            let v = snap.root::<Off<u64>>("v").unwrap().unwrap();
            tell(&format!("read {} {}", snap.get(v).unwrap(), heap.sees_every_reader()));
        }
        Err(e) => tell(&format!("read failed: {e}")),
    }
    // SAFETY: as above.
    match unsafe { Heap::open(path, &HeapOptions::new()) } {
        Ok(_) => tell("write opened"),
        Err(Error::Io { op, source }) => {
            tell(&format!("write refused {op} {:?} {source}", source.kind()));
        }
        Err(e) => tell(&format!("write refused otherwise: {e}")),
    }
}

#[test]
fn a_full_dev_shm_leaves_the_heap_readable_and_refuses_writers() {
    if let Some((_, arg)) = role() {
        return child(&arg);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm-full.heap");
    {
        // SAFETY: a new file of this test.
        let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap();
        let mut tx = heap.write().unwrap();
        let v: Off<u64> = tx.alloc(&7).unwrap();
        tx.set_root("v", &v).unwrap();
        tx.commit().unwrap();
    }
    for (how, kind, said) in [
        ("full", "StorageFull", "no space in /dev/shm"),
        ("ro", "ReadOnlyFilesystem", "Read-only file system"),
    ] {
        let arg = format!("{}|{how}", path.display());
        let mut peer =
            Peer::spawn_under(&["unshare", "-Urm", "--"], TEST, "spoilt-shm", &arg, |_| {});
        assert_eq!(peer.expect("read"), "7 false", "{how}: a read-only open, without the area");
        let refused = peer.expect("write refused");
        assert!(
            refused.starts_with(&format!("open the lock area {kind}"))
                && refused.contains(said)
                && refused.contains("could not be made")
                && !refused.contains("mmf shm rm"),
            "{how}: a writable open: {refused}"
        );
        peer.wait_success();
    }
}
