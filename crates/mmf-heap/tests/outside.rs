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

/// A commit the writer never made, pinned by an outside reader: its slot written and its
/// blocks whole, but the writer went on as if it did not exist (a sync that failed after
/// the slot was written: the number and the space come again; simulated by a second
/// handle of the file that commits without the lock area). The writer must number after
/// it and leave its space alone while the reader holds it (review 46: a `&u64` of such a
/// snapshot changed from 66666 to 10000), also when its transaction began before the
/// reader pinned (review 47), and without growing the file past what it needs.
#[test]
fn a_commit_the_writer_disowned_keeps_its_outside_readers_bytes() {
    const TEST: &str = "a_commit_the_writer_disowned_keeps_its_outside_readers_bytes";
    if let Some((_, arg)) = role() {
        return reader(&arg);
    }
    let Some((_dir, path)) = shared_heap() else { return };
    let heap = create(&path);
    // The ghost: a commit past the writer's, made outside the lock area.
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let rogue =
        Heap::open_with(mmf_heap::FileBackend::new(file, true).unwrap(), &HeapOptions::new())
            .unwrap();
    set(&rogue, 66666);
    let ghost = rogue.txn_id();
    drop(rogue);
    // The writer's transaction begins before the reader pins (review 47: a look at the
    // pins when it began missed this one).
    let mut tx = heap.write().unwrap();
    let mut peer = Peer::spawn_under(&NOBODY, TEST, "read", path.to_str().unwrap(), |_| {});
    assert_eq!(peer.expect(""), format!("pinned {ghost} 66666"));
    let first = tx.alloc(&9999u64).unwrap();
    tx.set_root("v", &first).unwrap();
    tx.commit().unwrap();
    for i in 0..50 {
        set(&heap, 10000 + i);
    }
    peer.say("look");
    assert_eq!(peer.expect(""), "sees 66666", "the writer reused the disowned commit's space");
    peer.say("go");
    peer.wait_success();
    let snap = heap.read().unwrap();
    assert!(snap.txn_id() > ghost + 50, "numbered after the disowned commit: {}", snap.txn_id());
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len <= 1 << 20, "the file grew to {len} bytes for 52 values of 8 bytes");
    let v: Off<u64> = snap.root("v").unwrap().unwrap();
    assert_eq!(snap.get(v).unwrap(), 10049);
}

/// A newest commit that does not check out (a crash during its sync left a block bad):
/// an outside reader reads the commit before it, as opening does and as the next
/// writer will build on (review 46: it read the bad commit's bytes).
#[test]
fn an_outside_reader_passes_over_a_commit_that_does_not_check_out() {
    const TEST: &str = "an_outside_reader_passes_over_a_commit_that_does_not_check_out";
    if let Some((_, arg)) = role() {
        return reader(&arg);
    }
    let Some((_dir, path)) = shared_heap() else { return };
    let heap = create(&path);
    set(&heap, 2000);
    let at = {
        let snap = heap.read().unwrap();
        snap.root::<Off<u64>>("v").unwrap().unwrap().raw()
    };
    drop(heap);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at as usize] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let mut peer = Peer::spawn_under(&NOBODY, TEST, "read", path.to_str().unwrap(), |_| {});
    let said = peer.expect("");
    assert!(said.ends_with(" 1000"), "the outside reader read the bad commit: {said:?}");
    peer.say("go");
    peer.wait_success();
}

/// Another user writing a heap the owner lets them write (mode 0o666 here, a group's in
/// practice) makes the lock area, as theirs: the owner's read-only open then reads as an
/// outside reader, whose snapshot that writer respects (review 46: the owner's `mmf
/// heap stat` was refused while the other user wrote).
#[test]
fn the_owner_reads_while_another_user_writes() {
    const TEST: &str = "the_owner_reads_while_another_user_writes";
    if let Some((role, arg)) = role() {
        assert_eq!(role, "write");
        // SAFETY: as in `reader`.
        let heap = unsafe { Heap::open(&arg, &HeapOptions::new()) }.unwrap();
        set(&heap, 1);
        tell("holding");
        while hear().as_deref() == Some("write") {
            for i in 0..50 {
                set(&heap, 100 + i);
            }
            tell("wrote");
        }
        return;
    }
    let Some((_dir, path)) = shared_heap() else { return };
    drop(create(&path));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut writer = Peer::spawn_under(&NOBODY, TEST, "write", path.to_str().unwrap(), |_| {});
    assert_eq!(writer.expect(""), "holding");
    // SAFETY: as in `reader`.
    let heap = unsafe { Heap::open(&path, HeapOptions::new().read_only(true)) }.unwrap();
    let snap = heap.read().unwrap();
    let v: Off<u64> = snap.root("v").unwrap().unwrap();
    let value: &u64 = snap.get_ref(v).unwrap();
    assert_eq!(*value, 1);
    writer.say("write");
    assert_eq!(writer.expect(""), "wrote");
    assert_eq!(*value, 1, "the other user's writer reused the owner's snapshot's space");
    drop(snap);
    let snap = heap.read().unwrap();
    let v: Off<u64> = snap.root("v").unwrap().unwrap();
    assert_eq!(snap.get(v).unwrap(), 149);
    writer.say("go");
    writer.wait_success();
}
