//! A full disk (a 1 MiB tmpfs in a private user and mount namespace, `unshare -Urm`):
//! commits that need space the file system cannot give fail with `StorageFull` — while
//! the file grows and while writing into space it already has — and every acknowledged
//! commit is still there, in this process and after reopening.
#![cfg(target_os = "linux")]

use mmf_heap::{Error, Heap, HeapOptions, PBytes};
use mmf_testkit::{Peer, role, tell};

const TEST: &str = "a_full_disk_is_storage_full_and_loses_nothing";

fn fill(dir: &std::path::Path) {
    let path = dir.join("full.heap");
    // SAFETY: only this process writes the file.
    let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap();
    let blob = |i: u64| vec![i as u8; 64 * 1024];
    let mut kept: Vec<u64> = Vec::new();
    let err = loop {
        let i = kept.len() as u64;
        let mut tx = heap.write().unwrap();
        let b = match tx.bytes(&blob(i)) {
            Ok(b) => b,
            Err(e) => break e,
        };
        tx.set_root(&format!("b{i}"), &b).unwrap();
        match tx.commit() {
            Ok(_) => kept.push(i),
            Err(e) => break e,
        }
    };
    tell(&format!("first {}", matches!(err, Error::StorageFull)));
    assert!(kept.len() >= 4, "{} commits before the disk was full", kept.len());
    // Free half of what is kept and commit: space inside the file is reused, then a
    // commit larger than what is free fails again without growing.
    let mut tx = heap.write().unwrap();
    for i in kept.iter().step_by(2) {
        let b: PBytes = tx.root(&format!("b{i}")).unwrap().unwrap();
        tx.free_bytes(b).unwrap();
        tx.remove_root(&format!("b{i}"));
    }
    tx.commit().unwrap();
    let freed: Vec<u64> = kept.iter().copied().step_by(2).collect();
    let mut tx = heap.write().unwrap();
    let b = tx.bytes(&vec![0xee; 64 * 1024]).unwrap();
    tx.set_root("reused", &b).unwrap();
    tell(&format!("reused {}", tx.commit().is_ok()));
    let mut tx = heap.write().unwrap();
    let second = tx.bytes(&vec![1; 4 << 20]).and_then(|b| {
        tx.set_root("huge", &b)?;
        tx.commit()
    });
    tell(&format!("second {}", matches!(second, Err(Error::StorageFull))));
    drop(heap);
    // SAFETY: as above.
    let heap = unsafe { Heap::open(&path, &HeapOptions::new()) }.unwrap();
    let snap = heap.read().unwrap();
    let mut intact = true;
    for &i in &kept {
        let b: Option<PBytes> = snap.root(&format!("b{i}")).unwrap();
        intact &= match b {
            Some(b) => !freed.contains(&i) && snap.bytes(b).unwrap() == blob(i),
            None => freed.contains(&i),
        };
    }
    let reused: PBytes = snap.root("reused").unwrap().unwrap();
    intact &= snap.bytes(reused).unwrap() == vec![0xee; 64 * 1024];
    intact &= snap.root::<PBytes>("huge").unwrap().is_none();
    tell(&format!("intact {intact} {}", kept.len()));
}

#[test]
fn a_full_disk_is_storage_full_and_loses_nothing() {
    if let Some((role, _)) = role() {
        assert_eq!(role, "small-fs");
        let dir = mmf_testkit::small_tmpfs();
        fill(dir.path());
        return;
    }
    let mut child = Peer::spawn_under(&["unshare", "-Urm", "--"], TEST, "small-fs", "", |_| {});
    assert_eq!(child.expect("first"), "true", "the commit that filled the disk");
    assert_eq!(child.expect("reused"), "true", "a commit into freed space");
    assert_eq!(child.expect("second"), "true", "a commit larger than the free space");
    assert!(child.expect("intact").starts_with("true"));
    child.wait_success();
}
