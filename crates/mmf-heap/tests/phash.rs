//! `PHashMap`: extendible hashing against `std::collections::HashMap` over random
//! inserts and removes across transactions (bucket splits, new directory levels, buddy
//! merges), string and integer keys, in a file and in memory.

mod common;

use std::collections::HashMap;

use common::sim::Rng;
use mmf_heap::{Backend, Heap, HeapOptions, MemoryBackend, PHashMap, PStr};

fn check<B: Backend>(heap: &Heap<B>, model: &HashMap<String, u64>) {
    let snap = heap.read().unwrap();
    let map: PHashMap<PStr, u64> = snap.root("h").unwrap().unwrap_or_default();
    map.verify(&snap).unwrap();
    assert_eq!(map.len(), model.len() as u64);
    let mut got: Vec<(String, u64)> = map
        .iter(&snap)
        .map(|e| e.map(|(k, v)| (k.to_owned(), *v)))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got.len(), model.len(), "iteration yields each entry once");
    got.sort();
    let mut want: Vec<(String, u64)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
    want.sort();
    assert!(got == want, "the entries differ");
    for (k, v) in model.iter().take(300) {
        assert_eq!(map.get(&snap, k).unwrap(), Some(v), "{k}");
    }
    assert_eq!(map.get(&snap, "no such key").unwrap(), None);
}

fn random_ops<B: Backend>(heap: &Heap<B>, seed: u64, txns: usize) {
    let mut rng = Rng(seed);
    let mut model = HashMap::new();
    for t in 0..txns {
        let mut tx = heap.write().unwrap();
        let mut map: PHashMap<PStr, u64> = tx.root("h").unwrap().unwrap_or_default();
        for _ in 0..rng.below(800) {
            let k = format!("{}{}", "key/".repeat(rng.below(6) as usize), rng.below(6000));
            let remove = match t * 3 / txns {
                0 => rng.below(6) == 0,
                1 => rng.below(2) == 0,
                _ => rng.below(6) != 0,
            };
            if remove {
                assert_eq!(map.remove(&mut tx, &k).unwrap(), model.remove(&k), "remove {k}");
            } else {
                let v = rng.next();
                assert_eq!(map.insert(&mut tx, &k, &v).unwrap(), model.insert(k, v));
            }
        }
        assert_eq!(map.len(), model.len() as u64);
        tx.set_root("h", &map).unwrap();
        tx.commit().unwrap();
        if t % 8 == 0 || t == txns - 1 {
            check(heap, &model);
        }
    }
}

#[test]
fn string_keys_follow_a_hashmap_in_memory() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    random_ops(&heap, 0xabcdef, 90);
}

#[test]
fn string_keys_follow_a_hashmap_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: only this test writes the new file.
    let heap =
        unsafe { Heap::open(dir.path().join("h.heap"), HeapOptions::new().create(true)) }.unwrap();
    random_ops(&heap, 0x5151, 90);
}

#[test]
fn many_integer_keys_grow_a_second_directory_level_and_shrink_back() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let n = 200_000u64;
    let mut tx = heap.write().unwrap();
    let mut map: PHashMap<u64, [u8; 64]> = PHashMap::new();
    for k in 0..n {
        map.insert(&mut tx, &k, &[k as u8; 64]).unwrap();
    }
    tx.set_root("ints", &map).unwrap();
    tx.commit().unwrap();
    let snap = heap.read().unwrap();
    for k in (0..n).step_by(101) {
        assert_eq!(map.get(&snap, &k).unwrap(), Some(&[k as u8; 64]));
    }
    assert_eq!(map.get(&snap, &n).unwrap(), None);
    let mut seen: Vec<u64> = map.iter(&snap).map(|e| e.unwrap().0).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
    let full = snap.stats().allocated_end;
    drop(snap);

    let mut tx = heap.write().unwrap();
    for k in 0..n - 100 {
        assert_eq!(map.remove(&mut tx, &k).unwrap(), Some([k as u8; 64]));
    }
    tx.set_root("ints", &map).unwrap();
    tx.commit().unwrap();
    let snap = heap.read().unwrap();
    assert_eq!(map.len(), 100);
    let mut left: Vec<u64> = map.iter(&snap).map(|e| e.unwrap().0).collect();
    left.sort_unstable();
    assert_eq!(left, (n - 100..n).collect::<Vec<_>>());
    // Light buckets merged back: most of the space is free.
    let stats = snap.stats();
    assert!(stats.free_bytes > full / 2, "{stats:?} of {full}");
}
