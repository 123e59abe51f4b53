//! The hostile review of 2026-12-01, round 9 (heap format 3: hash buckets keep their
//! entries in slots with gaps near their homes): `PHashMap` with integer and string keys
//! and values of 0, 1, 3, 8, 64 and 1000 bytes and aligned to 16, through long runs of
//! inserts, updates and removals (splits and merges: entries refilled with `slots::fill`,
//! gaps closed by `slots::remove`), commits and reopenings from the bytes, against a model.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use common::sim::Rng;
use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::{Heap, HeapOptions, MemoryBackend, PHashMap, PStr, Persist};

/// A value aligned to 16 (as a `u128` would be).
#[derive(Clone, Copy, Debug, PartialEq, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C, align(16))]
struct A16 {
    lo: u64,
    hi: u64,
}

/// Rounds of random inserts, updates and removals over `keys` keys (a round in three
/// removes nearly everything: merges down to the root bucket and the map emptied), each
/// committed, the heap reopened from its bytes, then every key looked up, the maps
/// checked and iterated against the model (each key once).
fn run<V: Persist + PartialEq + Debug>(keys: u64, value: impl Fn(u64) -> V) {
    let mut image =
        Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap().backend().to_bytes();
    let mut rng = Rng(0x5eed_0009 ^ size_of::<V>() as u64);
    let mut model: BTreeMap<u64, u64> = BTreeMap::new();
    let name = |k: u64| format!("k{k}-{}", "y".repeat((k % 23) as usize));
    for round in 0..9u64 {
        let heap = Heap::open_with(MemoryBackend::from_bytes(image), &HeapOptions::new()).unwrap();
        let mut tx = heap.write().unwrap();
        let mut a: PHashMap<u64, V> = tx.root("a").unwrap().unwrap_or_default();
        let mut b: PHashMap<PStr, V> = tx.root("b").unwrap().unwrap_or_default();
        let removing = round % 3 == 2;
        for i in 0..keys * 2 {
            let k = rng.below(keys);
            let v = round * 1_000_000 + i;
            if removing || rng.below(4) == 0 {
                let want = model.remove(&k).map(&value);
                assert_eq!(a.remove(&mut tx, &k).unwrap(), want, "round {round} op {i}");
                assert_eq!(b.remove(&mut tx, &name(k)).unwrap(), want, "round {round} op {i}");
            } else {
                let want = model.insert(k, v).map(&value);
                assert_eq!(a.insert(&mut tx, &k, &value(v)).unwrap(), want, "round {round}");
                assert_eq!(b.insert(&mut tx, &name(k), &value(v)).unwrap(), want);
            }
            // Within the transaction too, now and then.
            if i % 997 == 0 {
                let q = rng.below(keys);
                let want = model.get(&q).map(|v| value(*v));
                assert_eq!(a.get(&tx, &q).unwrap().copied(), want);
                assert_eq!(b.get(&tx, &name(q)).unwrap().copied(), want);
            }
        }
        tx.set_root("a", &a).unwrap();
        tx.set_root("b", &b).unwrap();
        tx.commit().unwrap();
        image = heap.backend().to_bytes();
        drop(heap);
        let heap =
            Heap::open_with(MemoryBackend::from_bytes(image.clone()), &HeapOptions::new()).unwrap();
        let snap = heap.read().unwrap();
        snap.verify().unwrap();
        let a: PHashMap<u64, V> = snap.root("a").unwrap().unwrap_or_default();
        let b: PHashMap<PStr, V> = snap.root("b").unwrap().unwrap_or_default();
        a.verify(&snap).unwrap();
        b.verify(&snap).unwrap();
        let n = model.len() as u64;
        assert_eq!((a.len(), b.len()), (n, n), "round {round}");
        for k in 0..keys + 10 {
            let want = model.get(&k).map(|v| value(*v));
            assert_eq!(a.get(&snap, &k).unwrap().copied(), want, "round {round} key {k}");
            assert_eq!(b.get(&snap, &name(k)).unwrap().copied(), want, "round {round} key {k}");
        }
        let want: Vec<(u64, V)> = model.iter().map(|(k, v)| (*k, value(*v))).collect();
        let mut got: Vec<(u64, V)> =
            a.iter(&snap).map(|e| e.map(|(k, v)| (k, *v)).unwrap()).collect();
        got.sort_by_key(|e| e.0);
        assert_eq!(got, want, "PHashMap<u64, _> round {round}");
        let names: BTreeMap<String, u64> = model.keys().map(|&k| (name(k), k)).collect();
        let mut seen = BTreeSet::new();
        for e in b.iter(&snap) {
            let (k, v) = e.unwrap();
            let id = names[k];
            assert!(seen.insert(id), "key {k} twice");
            assert_eq!(*v, value(model[&id]));
        }
        assert_eq!(seen.len(), model.len(), "round {round}");
    }
}

#[test]
fn zero_size_values_match_a_model() {
    run(3000, |_| [0u8; 0]);
}

#[test]
fn one_byte_values_match_a_model() {
    run(3000, |v| v as u8);
}

#[test]
fn three_byte_values_match_a_model() {
    run(3000, |v| [v as u8, (v >> 8) as u8, (v >> 16) as u8]);
}

#[test]
fn eight_byte_values_match_a_model() {
    run(6000, |v| v);
}

/// A value of `N` bytes (at least 16) carrying `v` in its first 8 and `!v` in its last 8:
/// a value moved by a slot, or cut short, shows at either end.
fn ends<const N: usize>(v: u64) -> [u8; N] {
    let mut a = [0u8; N];
    a[..8].copy_from_slice(&v.to_le_bytes());
    a[N - 8..].copy_from_slice(&(!v).to_le_bytes());
    a
}

#[test]
fn sixty_four_byte_values_match_a_model() {
    run(2000, ends::<64>);
}

#[test]
fn values_aligned_to_16_match_a_model() {
    run(3000, |v| A16 { lo: v, hi: !v });
}

#[test]
fn thousand_byte_values_match_a_model() {
    run(600, ends::<1000>);
}

/// Keys of `PHashMap<u64, _>` and `PHashMap<PStr, _>` chosen by their hashes (the file's
/// seed) so that the byte after each bucket's first one is all ones or all zeros: within
/// every bucket the entries crowd at the ends of its quarters and eighths, the last
/// against the bucket's end and the first against its start (entries far below or above
/// their homes, runs that reach slot 0 and the last slot). Long runs of inserts, updates
/// and removals, committed, checked against the model, iterated in hash order.
#[test]
fn keys_crowded_at_bucket_ends_match_a_model_in_hash_order() {
    use xxhash_rust::xxh3::xxh3_64_with_seed;
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let seed = heap.hash_seed();
    let crowded = |h: u64| matches!((h >> 48) & 0xff, 0 | 0xff);
    let name = |k: u64| format!("c{k}");
    let ints: Vec<u64> = (0u64..)
        .filter(|k| crowded(xxh3_64_with_seed(&k.to_be_bytes(), seed)))
        .take(4000)
        .collect();
    let strs: Vec<u64> = (0u64..)
        .filter(|&k| crowded(xxh3_64_with_seed(name(k).as_bytes(), seed)))
        .take(2500)
        .collect();
    let mut rng = Rng(0x000c_20dd);
    let (mut mi, mut ms) = (BTreeMap::new(), BTreeMap::new());
    for round in 0..6u64 {
        let mut tx = heap.write().unwrap();
        let mut a: PHashMap<u64, u64> = tx.root("a").unwrap().unwrap_or_default();
        let mut b: PHashMap<PStr, [u8; 3]> = tx.root("b").unwrap().unwrap_or_default();
        let removing = round % 3 == 2;
        for i in 0..6000u64 {
            let v = round * 100_000 + i;
            let k = ints[rng.below(ints.len() as u64) as usize];
            if removing || rng.below(4) == 0 {
                assert_eq!(a.remove(&mut tx, &k).unwrap(), mi.remove(&k), "round {round} {i}");
            } else {
                assert_eq!(a.insert(&mut tx, &k, &v).unwrap(), mi.insert(k, v), "round {round}");
            }
            let k = strs[rng.below(strs.len() as u64) as usize];
            let w = [v as u8, (v >> 8) as u8, 7];
            if removing || rng.below(4) == 0 {
                assert_eq!(b.remove(&mut tx, &name(k)).unwrap(), ms.remove(&k), "round {round}");
            } else {
                assert_eq!(b.insert(&mut tx, &name(k), &w).unwrap(), ms.insert(k, w));
            }
        }
        tx.set_root("a", &a).unwrap();
        tx.set_root("b", &b).unwrap();
        tx.commit().unwrap();
        let snap = heap.read().unwrap();
        a.verify(&snap).unwrap();
        b.verify(&snap).unwrap();
        for k in &ints {
            assert_eq!(a.get(&snap, k).unwrap(), mi.get(k), "round {round} key {k}");
        }
        for k in &strs {
            assert_eq!(b.get(&snap, &name(*k)).unwrap(), ms.get(k), "round {round} key {k}");
        }
        let got: Vec<(u64, u64)> =
            a.iter(&snap).map(|e| e.map(|(k, v)| (k, *v)).unwrap()).collect();
        let ords: Vec<u64> =
            got.iter().map(|(k, _)| xxh3_64_with_seed(&k.to_be_bytes(), seed) | 1).collect();
        assert!(ords.windows(2).all(|w| w[0] <= w[1]), "hash order, round {round}");
        let mut got = got;
        got.sort();
        assert_eq!(got, mi.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), "round {round}");
        let got: Vec<(String, [u8; 3])> =
            b.iter(&snap).map(|e| e.map(|(k, v)| (k.to_string(), *v)).unwrap()).collect();
        let ords: Vec<u64> =
            got.iter().map(|(k, _)| xxh3_64_with_seed(k.as_bytes(), seed) | 1).collect();
        assert!(ords.windows(2).all(|w| w[0] <= w[1]), "hash order, round {round}");
        let got: BTreeMap<String, [u8; 3]> = got.into_iter().collect();
        let want: BTreeMap<String, [u8; 3]> = ms.iter().map(|(k, v)| (name(*k), *v)).collect();
        assert_eq!(got, want, "round {round}");
    }
}

/// Keys narrower than the `aux` word (`u32`, 4 bytes zero-padded) and signed keys (their
/// sign bit flipped): splits, merges down to the root bucket, and commits, against a model.
#[test]
fn narrow_and_signed_keys_match_a_model() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut rng = Rng(0x0009_0032);
    let mut model: BTreeMap<i64, u16> = BTreeMap::new();
    for round in 0..6u64 {
        let mut tx = heap.write().unwrap();
        let mut a: PHashMap<u32, u16> = tx.root("a").unwrap().unwrap_or_default();
        let mut b: PHashMap<i64, u16> = tx.root("b").unwrap().unwrap_or_default();
        for i in 0..5000u64 {
            let k = rng.below(4000) as i64 - 2000;
            let v = (round * 5000 + i) as u16;
            if round % 3 == 2 || rng.below(4) == 0 {
                let want = model.remove(&k);
                assert_eq!(a.remove(&mut tx, &(k as u32)).unwrap(), want, "round {round}");
                assert_eq!(b.remove(&mut tx, &k).unwrap(), want, "round {round}");
            } else {
                let want = model.insert(k, v);
                assert_eq!(a.insert(&mut tx, &(k as u32), &v).unwrap(), want, "round {round}");
                assert_eq!(b.insert(&mut tx, &k, &v).unwrap(), want, "round {round}");
            }
        }
        tx.set_root("a", &a).unwrap();
        tx.set_root("b", &b).unwrap();
        tx.commit().unwrap();
        let snap = heap.read().unwrap();
        a.verify(&snap).unwrap();
        b.verify(&snap).unwrap();
        for k in -2010..2010i64 {
            assert_eq!(a.get(&snap, &(k as u32)).unwrap(), model.get(&k), "round {round} {k}");
            assert_eq!(b.get(&snap, &k).unwrap(), model.get(&k), "round {round} {k}");
        }
        let mut got: Vec<(i64, u16)> =
            b.iter(&snap).map(|e| e.map(|(k, v)| (k, *v)).unwrap()).collect();
        got.sort();
        assert_eq!(got, model.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
        assert_eq!(a.iter(&snap).count(), model.len());
    }
}
