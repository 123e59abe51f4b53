//! Snapshots across processes at their edges: a reader killed while it pins a commit
//! holds no space back once it is dead, and a writer killed after commits without a sync
//! that then do not survive leaves the snapshots of those commits readable.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use mmf_heap::{Durability, Heap, HeapOptions, PBytes};
use mmf_testkit::{Peer, role, tell};

const BIG: usize = 64 * 1024;

fn open(path: &Path, options: &HeapOptions) -> Heap {
    // SAFETY: only these test processes write the heap file, through mmf-heap (and the
    // test's own deliberate tear of a slot, with every writer dead).
    unsafe { Heap::open(path, options) }.unwrap()
}

/// Replaces the root "big" with `len` bytes of `byte`, freeing the old ones.
fn replace_big(heap: &Heap, byte: u8, len: usize, durability: Durability) -> u64 {
    let mut tx = heap.write().unwrap();
    if let Some(old) = tx.root::<PBytes>("big").unwrap() {
        tx.free_bytes(old).unwrap();
    }
    let fresh = tx.bytes(&vec![byte; len]).unwrap();
    tx.set_root("big", &fresh).unwrap();
    tx.commit_with(durability).unwrap()
}

fn allocated_end(heap: &Heap) -> u64 {
    heap.read().unwrap().stats().allocated_end
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

const DEAD_READER: &str = "a_dead_readers_pin_holds_nothing_back";

#[test]
fn a_dead_readers_pin_holds_nothing_back() {
    if let Some((_, arg)) = role() {
        let heap = open(Path::new(&arg), HeapOptions::new().read_only(true));
        let _snap = heap.read().unwrap();
        tell("pinned");
        sleep_forever();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pins.heap");
    let heap = open(&path, HeapOptions::new().create(true));
    replace_big(&heap, 1, BIG, Durability::Immediate);
    let mut child = Peer::spawn(DEAD_READER, "pin", path.to_str().unwrap());
    child.expect("pinned");

    // While the reader lives, nothing freed after its commit is reused: the heap grows.
    let start = allocated_end(&heap);
    for i in 0..20 {
        replace_big(&heap, i, BIG, Durability::Immediate);
    }
    let pinned = allocated_end(&heap);
    assert!(
        pinned >= start + 19 * BIG as u64,
        "a live reader's pin held space: {start} → {pinned}"
    );

    // Once it is dead, its row is ignored: space is reused, the heap stops growing.
    child.kill();
    for i in 0..40 {
        replace_big(&heap, i, BIG, Durability::Immediate);
    }
    let after = allocated_end(&heap);
    assert!(
        after <= pinned + 3 * BIG as u64,
        "a dead reader still holds space: {pinned} → {after}"
    );
}

const LOST: &str = "commits_lost_with_a_dead_writer_stay_readable_in_snapshots";

/// Flips a byte of the commit slot that holds `txn` (a torn write of it).
fn tear_slot(path: &Path, txn: u64) {
    let bytes = std::fs::read(path).unwrap();
    let at = [512usize, 1024]
        .into_iter()
        .find(|&at| u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) == txn)
        .expect("a slot holds the commit");
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(at as u64 + 40)).unwrap();
    file.write_all(&[bytes[at + 40] ^ 0xff]).unwrap();
}

#[test]
fn commits_lost_with_a_dead_writer_stay_readable_in_snapshots() {
    if let Some((_, arg)) = role() {
        let heap = open(Path::new(&arg), &HeapOptions::new());
        // A commit without a sync, published to the other processes...
        replace_big(&heap, 0xab, 4096, Durability::None);
        // ...then killed holding the lock.
        let _tx = heap.write().unwrap();
        tell("holding");
        sleep_forever();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lost.heap");
    let heap = open(&path, HeapOptions::new().create(true));
    let durable = replace_big(&heap, 0x11, 4096, Durability::Immediate);
    let mut child = Peer::spawn(LOST, "lose", path.to_str().unwrap());
    child.expect("holding");

    // This process reads the child's commit...
    let snap = heap.read().unwrap();
    assert_eq!(snap.txn_id(), durable + 1);
    let big: PBytes = snap.root("big").unwrap().unwrap();
    assert_eq!(snap.bytes(big).unwrap(), vec![0xab; 4096]);

    // ...which then does not survive: the child dies, its slot is found torn.
    child.kill();
    tear_slot(&path, durable + 1);

    // The next writer goes on from the durable commit, without reusing anything the lost
    // commit's snapshot reads, and numbering its commits after it.
    for i in 0..10u8 {
        let txn = replace_big(&heap, i, 4096, Durability::Immediate);
        assert!(txn > durable + 1, "commit ids never go back: {txn}");
        assert_eq!(snap.bytes(big).unwrap(), vec![0xab; 4096], "after commit {txn}");
    }
    let now = heap.read().unwrap();
    let big_now: PBytes = now.root("big").unwrap().unwrap();
    assert_eq!(now.bytes(big_now).unwrap(), vec![9; 4096]);
    drop((now, snap));

    // Space is reused again once the snapshot is gone, and the file opens afresh.
    let end = allocated_end(&heap);
    for i in 0..10 {
        replace_big(&heap, i, 4096, Durability::Immediate);
    }
    assert!(allocated_end(&heap) <= end + 3 * 4096, "reuse resumed after the snapshot");
    drop(heap);
    let heap = open(&path, &HeapOptions::new());
    common::seen(&heap).unwrap();
    assert_eq!(heap.read().unwrap().txn_id(), durable + 1 + 20);
}
