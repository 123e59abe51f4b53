//! The hostile review of 2026-12-01, round 8 (heap format 2: hash buckets side by side,
//! run-copying splits and merges): hash maps and ordered maps with the value sizes the
//! other model tests do not use (0, 1, 3, 16 aligned to 16, 1000 bytes), with integer
//! and string keys, through splits, many removals (merges) and commits, against a model.

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;

use common::sim::Rng;
use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::{Heap, HeapOptions, MemoryBackend, PHashMap, PMap, PStr, Persist};

/// A value aligned to 16 (as a `u128` would be): a misplaced value array would make the
/// typed read refuse it.
#[derive(Clone, Copy, Debug, PartialEq, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C, align(16))]
struct A16 {
    lo: u64,
    hi: u64,
}

/// Inserts (many repeats), then removes nearly all (bucket and node merges), then
/// inserts again, in `PHashMap<u64, V>`, `PHashMap<PStr, V>` and `PMap<u64, V>`,
/// committing and checking everything against a model after each round.
fn run<V: Persist + PartialEq + Debug>(value: impl Fn(u64) -> V) {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut rng = Rng(0x5eed ^ size_of::<V>() as u64);
    let mut model: BTreeMap<u64, u64> = BTreeMap::new();
    let name = |k: u64| format!("key-{k:06}-{}", "x".repeat((k % 37) as usize));
    for round in 0..8u64 {
        let mut tx = heap.write().unwrap();
        let mut a: PHashMap<u64, V> = tx.root("a").unwrap().unwrap_or_default();
        let mut b: PHashMap<PStr, V> = tx.root("b").unwrap().unwrap_or_default();
        let mut c: PMap<u64, V> = tx.root("c").unwrap().unwrap_or_default();
        // Rounds 2 and 5 remove nearly everything.
        let removing = round == 2 || round == 5;
        for i in 0..2500u64 {
            let k = rng.below(3000);
            if removing || rng.below(4) == 0 {
                let want = model.remove(&k).map(&value);
                assert_eq!(a.remove(&mut tx, &k).unwrap(), want, "round {round} op {i}");
                assert_eq!(b.remove(&mut tx, &name(k)).unwrap(), want, "round {round} op {i}");
                assert_eq!(c.remove(&mut tx, &k).unwrap(), want, "round {round} op {i}");
            } else {
                let v = round * 10_000 + i;
                let want = model.insert(k, v).map(&value);
                assert_eq!(a.insert(&mut tx, &k, &value(v)).unwrap(), want, "round {round}");
                assert_eq!(b.insert(&mut tx, &name(k), &value(v)).unwrap(), want);
                assert_eq!(c.insert(&mut tx, &k, &value(v)).unwrap(), want);
            }
        }
        tx.set_root("a", &a).unwrap();
        tx.set_root("b", &b).unwrap();
        tx.set_root("c", &c).unwrap();
        tx.commit().unwrap();
        let snap = heap.read().unwrap();
        snap.verify().unwrap();
        a.verify(&snap).unwrap();
        b.verify(&snap).unwrap();
        c.verify(&snap).unwrap();
        let n = model.len() as u64;
        assert_eq!((a.len(), b.len(), c.len()), (n, n, n), "round {round}");
        for k in 0..3000u64 {
            let want = model.get(&k).map(|v| value(*v));
            assert_eq!(a.get(&snap, &k).unwrap().copied(), want, "round {round} key {k}");
            assert_eq!(b.get(&snap, &name(k)).unwrap().copied(), want, "round {round} key {k}");
            assert_eq!(c.get(&snap, &k).unwrap().copied(), want, "round {round} key {k}");
        }
        let mut got: Vec<(u64, V)> =
            a.iter(&snap).map(|e| e.map(|(k, v)| (k, *v)).unwrap()).collect();
        got.sort_by_key(|e| e.0);
        let want: Vec<(u64, V)> = model.iter().map(|(k, v)| (*k, value(*v))).collect();
        assert_eq!(got, want, "PHashMap<u64, _> round {round}");
        assert_eq!(b.iter(&snap).count() as u64, n);
        let got: Vec<(u64, V)> = c.iter(&snap).map(|e| e.map(|(k, v)| (k, *v)).unwrap()).collect();
        assert_eq!(got, want, "PMap round {round}");
    }
}

#[test]
fn maps_of_zero_size_values_match_a_model() {
    run(|_| [0u8; 0]);
}

#[test]
fn maps_of_one_byte_values_match_a_model() {
    run(|v| (v % 251) as u8);
}

#[test]
fn maps_of_three_byte_values_match_a_model() {
    run(|v| [(v % 251) as u8, (v >> 8) as u8, (v >> 16) as u8]);
}

#[test]
fn maps_of_values_aligned_to_16_match_a_model() {
    run(|v| A16 { lo: v, hi: !v });
}

#[test]
fn maps_of_1000_byte_values_match_a_model() {
    run(|v| {
        let mut a = [0u8; 1000];
        a[..8].copy_from_slice(&v.to_le_bytes());
        a[992..].copy_from_slice(&(!v).to_le_bytes());
        a
    });
}
