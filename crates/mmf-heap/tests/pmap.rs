//! `PMap`: the B+tree against `std::collections::BTreeMap` over random inserts, removes
//! and ranges across many transactions (splits, merges, root changes), string and
//! integer keys, in a file and in memory; old snapshots keep their version.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::sim::Rng;
use mmf_heap::{Backend, Heap, HeapOptions, MemoryBackend, PMap, PStr};

fn file_heap(dir: &tempfile::TempDir) -> Heap {
    // SAFETY: only this test writes the new file.
    unsafe { Heap::open(dir.path().join("m.heap"), HeapOptions::new().create(true)) }.unwrap()
}

fn key(rng: &mut Rng) -> String {
    // Shared prefixes longer than 8 bytes, and lengths from 1 to ~100 bytes.
    let n = rng.below(400);
    match rng.below(3) {
        0 => format!("k{n}"),
        1 => format!("common-prefix/{n:05}"),
        _ => format!("{}{n}", "x".repeat(rng.below(100) as usize)),
    }
}

fn check_same<B: Backend>(heap: &Heap<B>, model: &BTreeMap<String, u64>) {
    let snap = heap.read().unwrap();
    let map: PMap<PStr, u64> = snap.root("m").unwrap().unwrap_or_default();
    map.verify(&snap).unwrap();
    assert_eq!(map.len(), model.len() as u64);
    let got: Vec<(String, u64)> = map
        .iter(&snap)
        .map(|e| e.map(|(k, v)| (k.to_owned(), *v)))
        .collect::<Result<_, _>>()
        .unwrap();
    let want: Vec<(String, u64)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!("entry {i} of {}/{}: {:?} != {:?}", got.len(), want.len(), got.get(i), want.get(i));
    }
    for (k, v) in model.iter().step_by(7) {
        assert_eq!(map.get(&snap, k).unwrap(), Some(v), "{k}");
    }
    assert_eq!(map.get(&snap, "absent").unwrap(), None);
    // Ranges, both bound kinds.
    let keys: Vec<&String> = model.keys().collect();
    if keys.len() > 4 {
        let (a, b) = (keys[keys.len() / 4].as_str(), keys[keys.len() / 2].as_str());
        let half_open = (Bound::Included(a), Bound::Excluded(b));
        let got: Vec<String> =
            map.range(&snap, half_open).map(|e| e.unwrap().0.to_owned()).collect();
        let want: Vec<String> = model.range::<str, _>(half_open).map(|(k, _)| k.clone()).collect();
        assert_eq!(got, want);
        let got: Vec<String> = map
            .range(&snap, (Bound::Excluded(a), Bound::Included(b)))
            .map(|e| e.unwrap().0.to_owned())
            .collect();
        let want: Vec<String> = model
            .range::<str, _>((Bound::Excluded(a), Bound::Included(b)))
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(got, want);
    }
}

fn random_ops<B: Backend>(heap: &Heap<B>, seed: u64, txns: usize) {
    let mut rng = Rng(seed);
    let mut model = BTreeMap::new();
    for t in 0..txns {
        let mut tx = heap.write().unwrap();
        let mut map: PMap<PStr, u64> = tx.root("m").unwrap().unwrap_or_default();
        // Phases: grow, churn, shrink.
        let ops = 1 + rng.below(200);
        for _ in 0..ops {
            let k = key(&mut rng);
            let remove = match t * 3 / txns {
                0 => rng.below(5) == 0,
                1 => rng.below(2) == 0,
                _ => rng.below(5) != 0,
            };
            if remove {
                assert_eq!(map.remove(&mut tx, &k).unwrap(), model.remove(&k), "remove {k}");
            } else {
                let v = rng.next();
                assert_eq!(map.insert(&mut tx, &k, &v).unwrap(), model.insert(k.clone(), v));
            }
        }
        // Reads inside the transaction see its changes.
        assert_eq!(map.len(), model.len() as u64);
        if let Some((k, v)) = model.iter().next() {
            assert_eq!(map.get(&tx, k).unwrap(), Some(v));
        }
        tx.set_root("m", &map).unwrap();
        tx.commit().unwrap();
        if t % 10 == 0 || t == txns - 1 {
            check_same(heap, &model);
        }
    }
}

#[test]
fn string_keys_follow_a_btreemap_in_memory() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    random_ops(&heap, 0x9e37_79b9, 120);
}

#[test]
fn string_keys_follow_a_btreemap_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let heap = file_heap(&dir);
    random_ops(&heap, 0x1234_5678, 120);
}

#[test]
fn integer_keys_in_one_big_transaction_then_removed() {
    let dir = tempfile::tempdir().unwrap();
    let heap = file_heap(&dir);
    let mut tx = heap.write().unwrap();
    let mut map: PMap<i64, [u8; 64]> = PMap::new();
    let n = 20_000i64;
    for i in 0..n {
        let k = (i * 7919) % n - n / 2; // every key once, negatives too, shuffled
        assert_eq!(map.insert(&mut tx, &k, &[k as u8; 64]).unwrap(), None);
    }
    tx.set_root("ints", &map).unwrap();
    tx.commit().unwrap();
    let snap = heap.read().unwrap();
    let keys: Vec<i64> = map.iter(&snap).map(|e| e.unwrap().0).collect();
    assert_eq!(keys, (-n / 2..n / 2).collect::<Vec<_>>());
    assert_eq!(map.get(&snap, &-3).unwrap(), Some(&[-3i64 as u8; 64]));
    let some: Vec<i64> = map.range(&snap, -2..=2).map(|e| e.unwrap().0).collect();
    assert_eq!(some, [-2, -1, 0, 1, 2]);

    // Remove all but a few, across transactions: the tree shrinks back to a leaf.
    for chunk in (-n / 2..n / 2).collect::<Vec<_>>().chunks(3000) {
        let mut tx = heap.write().unwrap();
        for &k in chunk {
            if k % 1000 != 0 {
                assert_eq!(map.remove(&mut tx, &k).unwrap(), Some([k as u8; 64]));
            }
        }
        tx.set_root("ints", &map).unwrap();
        tx.commit().unwrap();
    }
    // The old snapshot still sees all of it.
    assert_eq!(map.len(), 20);
    assert_eq!(snap.root::<PMap<i64, [u8; 64]>>("ints").unwrap().unwrap().len(), n as u64);
    let old: PMap<i64, [u8; 64]> = snap.root("ints").unwrap().unwrap();
    assert_eq!(old.iter(&snap).count(), n as usize);
    drop(snap);
    let snap = heap.read().unwrap();
    let left: Vec<i64> = map.iter(&snap).map(|e| e.unwrap().0).collect();
    assert_eq!(left, (-10..10).map(|i| i * 1000).collect::<Vec<_>>());
    let stats = snap.stats();
    assert!(stats.free_bytes > 1 << 20, "the removed nodes were freed: {stats:?}");

    let mut tx = heap.write().unwrap();
    map.clear(&mut tx).unwrap();
    assert!(map.is_empty());
    tx.set_root("ints", &map).unwrap();
    tx.commit().unwrap();
}

#[test]
fn keys_longer_than_the_limit_are_refused() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut map: PMap<PStr, u8> = PMap::new();
    map.insert(&mut tx, &"a".repeat(mmf_heap::MAX_KEY), &1).unwrap();
    let err = map.insert(&mut tx, &"a".repeat(mmf_heap::MAX_KEY + 1), &1).unwrap_err();
    assert!(matches!(err, mmf_heap::Error::InvalidArgument { .. }), "{err}");
    // Many keys of the longest length still split fine.
    for i in 0..200 {
        let k = format!("{i:03}{}", "z".repeat(mmf_heap::MAX_KEY - 3));
        map.insert(&mut tx, &k, &(i as u8)).unwrap();
    }
    assert_eq!(map.len(), 201);
    assert_eq!(
        map.get(&tx, &format!("150{}", "z".repeat(mmf_heap::MAX_KEY - 3))).unwrap(),
        Some(&150)
    );
}

#[test]
fn many_integer_keys_in_random_order_keep_their_branch_keys_in_order() {
    // Keys below a branch's first key go to its first child, whose splits then insert
    // separators after that first key (once, they broke the branch's order).
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let n = 100_000u64;
    let mut keys: Vec<u64> = (0..n).collect();
    let mut rng = Rng(77);
    for i in (1..keys.len()).rev() {
        keys.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut tx = heap.write().unwrap();
    let mut map: PMap<u64, [u8; 64]> = PMap::new();
    for &k in &keys {
        map.insert(&mut tx, &k, &[k as u8; 64]).unwrap();
    }
    for &k in keys.iter().rev() {
        assert_eq!(map.get(&tx, &k).unwrap().map(|v| v[0]), Some(k as u8), "key {k}");
    }
    map.verify(&tx).unwrap();
}
