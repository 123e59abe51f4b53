//! Another user reading a heap its owner writes (Linux, as root: the reader runs as
//! `nobody` through `setpriv`). Such a reader uses no lock area: it could not join the
//! owner's (`0600`), and one it made would lock the owner out (review 42: a `mmf heap
//! check` by `nobody` blocked the owner's writes, and the other way round). It pins its
//! snapshot with a lock on the heap file, which the owner's writer respects.

#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mmf_heap::{Heap, HeapOptions, Off};
use mmf_testkit::{Peer, hear, role, tell};

const NOBODY: [&str; 5] = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];

/// The child, as `nobody`: opens the heap read-only, pins a snapshot, says the value it
/// sees, and after `look` says it again from the same snapshot.
fn reader(path: &str) {
    // SAFETY: only the test's owner process writes the file, through mmf-heap.
    let heap = match unsafe { Heap::open(path, HeapOptions::new().read_only(true)) } {
        Ok(heap) => heap,
        Err(e) => return tell(&format!("refused: {e}")),
    };
    let snap = heap.read().unwrap();
    let v: Off<u64> = snap.root("v").unwrap().unwrap();
    let value: &u64 = snap.get_ref(v).unwrap();
    tell(&format!("pinned {} {value}", snap.txn_id()));
    while hear().as_deref() == Some("look") {
        tell(&format!("sees {value}"));
    }
}

fn set(heap: &Heap, value: u64) {
    let mut tx = heap.write().unwrap();
    let old: Option<Off<u64>> = tx.root("v").unwrap();
    let new = tx.alloc(&value).unwrap();
    if let Some(old) = old {
        tx.free(old).unwrap();
    }
    tx.set_root("v", &new).unwrap();
    tx.commit().unwrap();
}

/// A directory others may enter and the path of a heap in it, if this run is root.
fn shared_heap() -> Option<(tempfile::TempDir, PathBuf)> {
    if !mmf_testkit::root_for("a reader running as another user") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("shared.heap");
    Some((dir, path))
}

fn create(path: &Path) -> Heap {
    // SAFETY: a new file of this test.
    let heap = unsafe { Heap::open(path, HeapOptions::new().create(true).mode(0o644)) }.unwrap();
    set(&heap, 1000);
    heap
}

#[test]
fn another_user_reads_while_the_owner_writes_and_its_snapshot_holds() {
    const TEST: &str = "another_user_reads_while_the_owner_writes_and_its_snapshot_holds";
    if let Some((_, arg)) = role() {
        return reader(&arg);
    }
    let Some((_dir, path)) = shared_heap() else { return };
    let heap = create(&path);
    let mut peer = Peer::spawn_under(&NOBODY, TEST, "read", path.to_str().unwrap(), |_| {});
    let said = peer.expect("");
    let (txn, value) = said
        .strip_prefix("pinned ")
        .and_then(|s| s.split_once(' '))
        .unwrap_or_else(|| panic!("the other user's reader said {said:?}"));
    let txn: u64 = txn.parse().unwrap();
    assert_eq!(value, "1000");
    assert_eq!(heap.oldest_reader().unwrap(), Some(txn), "the writer sees the outside pin");
    // Many commits, each freeing the value the reader holds a reference to (reused at
    // once if the pin were not respected: the same size every time).
    for i in 0..200 {
        set(&heap, 2000 + i);
    }
    peer.say("look");
    assert_eq!(peer.expect(""), "sees 1000", "the outside reader's snapshot changed");
    // Killed, its pin goes with it.
    peer.kill();
    set(&heap, 5000);
    assert_eq!(heap.oldest_reader().unwrap(), None);
}

#[test]
fn the_owner_writes_after_another_user_opened_first() {
    const TEST: &str = "the_owner_writes_after_another_user_opened_first";
    if let Some((_, arg)) = role() {
        return reader(&arg);
    }
    let Some((_dir, path)) = shared_heap() else { return };
    drop(create(&path));
    let mut peer = Peer::spawn_under(&NOBODY, TEST, "read", path.to_str().unwrap(), |_| {});
    assert!(peer.expect("").starts_with("pinned"), "the other user could not read");
    // SAFETY: as in `reader`.
    let heap = unsafe { Heap::open(&path, &HeapOptions::new()) }.unwrap();
    set(&heap, 3000);
    peer.say("look");
    assert_eq!(peer.expect(""), "sees 1000");
    peer.say("go");
    peer.wait_success();
    let snap = heap.read().unwrap();
    let v: Off<u64> = snap.root("v").unwrap().unwrap();
    assert_eq!(snap.get(v).unwrap(), 3000);
}
