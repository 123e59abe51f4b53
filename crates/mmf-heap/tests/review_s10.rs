//! The hostile review of 2026-12-01, round 10 (a snapshot's hot path, `mmf_heap::fast`):
//! on a file, where a snapshot's look-ups read the mapping in place, with its directories
//! checked once and kept while writers reuse the space its commit holds free.

use mmf_heap::{Error, Heap, HeapOptions, PHashMap};

type Map = PHashMap<u64, u64>;

/// A snapshot that holds live maps and sees stale handles of removed ones (whose
/// directories and buckets, of a page or less and of several pages, its commit holds
/// free; one a lone bucket of several pages at its root), while writers fill that free space commit after commit: each look-up of the
/// live maps answers its value; each through the stale handles is refused, before and
/// after the live look-ups filled the snapshot's cache of checked directories.
#[test]
fn a_snapshot_on_a_file_refuses_stale_handles_while_writers_reuse_their_space() {
    type Big = PHashMap<u64, [u8; 1000]>;
    let big = |k: u64| [k as u8; 1000];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r10.heap");
    // SAFETY: only this test, through mmf-heap, writes the file.
    let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap();
    let mut tx = heap.write().unwrap();
    let (mut live, mut old) = (Map::new(), Map::new());
    let (mut live_big, mut old_big, mut tiny) = (Big::new(), Big::new(), Big::new());
    for k in 0..40_000u64 {
        live.insert(&mut tx, &k, &(k * 5 + 2)).unwrap();
    }
    for k in 0..5000u64 {
        old.insert(&mut tx, &k, &(k + 1)).unwrap();
    }
    for k in 0..300u64 {
        live_big.insert(&mut tx, &k, &big(k)).unwrap();
        old_big.insert(&mut tx, &k, &big(k + 1)).unwrap();
    }
    // A map of one bucket (of several pages) at its root.
    for k in 0..5u64 {
        tiny.insert(&mut tx, &k, &big(k + 2)).unwrap();
    }
    tx.set_root("live", &live).unwrap();
    tx.set_root("live_big", &live_big).unwrap();
    tx.commit().unwrap();
    let (stale, stale_big, stale_tiny) = (old, old_big, tiny);
    // Frees every node of the two other maps.
    let mut tx = heap.write().unwrap();
    for k in 0..5000u64 {
        old.remove(&mut tx, &k).unwrap();
    }
    for k in 0..300u64 {
        old_big.remove(&mut tx, &k).unwrap();
    }
    for k in 0..5u64 {
        tiny.remove(&mut tx, &k).unwrap();
    }
    tx.commit().unwrap();

    let snap = heap.read().unwrap();
    let refused = |what: &str| {
        for k in (0..5000u64).step_by(7) {
            let got = stale.get(&snap, &k);
            assert!(matches!(got, Err(Error::InvalidArgument { .. })), "{what}: {k}: {got:?}");
        }
        for k in (0..300u64).step_by(3) {
            let got = stale_big.get(&snap, &k).map(|v| v.map(|v| v[0]));
            assert!(matches!(got, Err(Error::InvalidArgument { .. })), "{what}: {k}: {got:?}");
            let got = stale_tiny.get(&snap, &(k % 7)).map(|v| v.map(|v| v[0]));
            assert!(matches!(got, Err(Error::InvalidArgument { .. })), "{what}: {k}: {got:?}");
        }
    };
    refused("cold");
    for round in 0..4u64 {
        for k in 0..40_000u64 {
            assert_eq!(live.get(&snap, &k).unwrap(), Some(&(k * 5 + 2)), "round {round}");
        }
        for k in 0..300u64 {
            assert_eq!(live_big.get(&snap, &k).unwrap(), Some(&big(k)), "round {round}");
        }
        refused(&format!("round {round}"));
        // A writer fills free space (the snapshot's commit holds the stale nodes free).
        let mut tx = heap.write().unwrap();
        let mut fill: Map = tx.root("fill").unwrap().unwrap_or_default();
        for k in round * 3000..(round + 1) * 3000 {
            fill.insert(&mut tx, &k, &u64::MAX).unwrap();
        }
        tx.set_root("fill", &fill).unwrap();
        let b = tx.bytes(&vec![0xAB; 20_000]).unwrap();
        tx.set_root(&format!("bytes{round}"), &b).unwrap();
        tx.commit().unwrap();
    }
}
