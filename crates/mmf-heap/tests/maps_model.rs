//! Collections against a model (the hostile review of issue #16, 2026-11-30): random
//! inserts and removes in `PMap`, `PHashMap` and `PVec` with string, integer and large
//! fixed-width keys, checked against std's maps, and the `PMap` merge defect the review
//! found (long string keys made a valid map report `Corrupted` and leave a half-merged
//! node to commit; fixed).

mod common;

use common::sim::Rng;
use mmf_heap::{Heap, HeapOptions, MemoryBackend, PStr};

/// A key of 0..=511 bytes, with long shared prefixes (so that nodes hold long keys).
fn string_key(rng: &mut Rng, universe: u64) -> String {
    let k = rng.below(universe);
    let len = match k % 5 {
        0 => 0,
        1 => 511,
        2 => 300,
        _ => (k % 40) as usize,
    };
    let mut s = format!("{k:08}");
    while s.len() < len {
        s.push('x');
    }
    s.truncate(len.max(if len == 0 { 0 } else { 8 }).min(511));
    if len == 0 { String::new() } else { s }
}

/// Random inserts and removes (many repeats, remove-all, reinsert) in a `PMap<PStr, u64>`
/// and a `PHashMap<PStr, u64>`, against a `BTreeMap`, with commits and `verify` between.
#[test]
fn string_maps_match_a_model_under_random_inserts_and_removes() {
    use mmf_heap::{PHashMap, PMap};
    use std::collections::BTreeMap;
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut model: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..30u64 {
        let mut tx = heap.write().unwrap();
        let mut map: PMap<PStr, u64> = tx.root("map").unwrap().unwrap_or_default();
        let mut hash: PHashMap<PStr, u64> = tx.root("hash").unwrap().unwrap_or_default();
        let universe = if round % 10 == 9 { 3 } else { 400 };
        for i in 0..300u64 {
            let key = string_key(&mut rng, universe);
            if round % 10 == 5 || rng.below(3) == 0 {
                let a = map.remove(&mut tx, &key).unwrap_or_else(|e| {
                    panic!(
                        "PMap::remove of a key of {} bytes, round {round}, op {i}, {} keys: {e:?}",
                        key.len(),
                        model.len()
                    )
                });
                let b = hash.remove(&mut tx, &key).unwrap();
                let m = model.remove(&key);
                assert_eq!((a, b), (m, m), "remove {key:?} round {round}");
            } else {
                let v = round * 1000 + i;
                let a = map.insert(&mut tx, &key, &v).unwrap();
                let b = hash.insert(&mut tx, &key, &v).unwrap();
                let m = model.insert(key.clone(), v);
                assert_eq!((a, b), (m, m), "insert {key:?} round {round}");
            }
        }
        if round % 10 == 5 {
            for k in model.keys().cloned().collect::<Vec<_>>() {
                map.remove(&mut tx, &k).unwrap();
                hash.remove(&mut tx, &k).unwrap();
                model.remove(&k);
            }
        }
        tx.set_root("map", &map).unwrap();
        tx.set_root("hash", &hash).unwrap();
        tx.commit().unwrap();
        let snap = heap.read().unwrap();
        snap.verify().unwrap();
        let map: PMap<PStr, u64> = snap.root("map").unwrap().unwrap();
        let hash: PHashMap<PStr, u64> = snap.root("hash").unwrap().unwrap();
        map.verify(&snap).unwrap();
        hash.verify(&snap).unwrap();
        assert_eq!(map.len(), model.len() as u64);
        assert_eq!(hash.len(), model.len() as u64);
        let got: Vec<(String, u64)> =
            map.iter(&snap).map(|e| e.map(|(k, v)| (k.to_owned(), *v)).unwrap()).collect();
        let want: Vec<(String, u64)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
        assert_eq!(got, want, "PMap round {round}");
        let mut got: Vec<(String, u64)> =
            hash.iter(&snap).map(|e| e.map(|(k, v)| (k.to_owned(), *v)).unwrap()).collect();
        got.sort();
        assert_eq!(got, want, "PHashMap round {round}");
        for (k, v) in &model {
            assert_eq!(map.get(&snap, k).unwrap(), Some(v));
            assert_eq!(hash.get(&snap, k).unwrap(), Some(v));
        }
    }
}

/// The same with integer keys (`PMap<i64, [u8; 40]>`, `PHashMap<u16, u64>`) and a `PVec`
/// pushed, popped and set at random.
#[test]
fn integer_maps_and_vectors_match_a_model() {
    use mmf_heap::{PHashMap, PMap, PVec};
    use std::collections::BTreeMap;
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut rng = Rng(12345);
    let mut m1: BTreeMap<i64, [u8; 40]> = BTreeMap::new();
    let mut m2: BTreeMap<u16, u64> = BTreeMap::new();
    let mut mv: Vec<u64> = Vec::new();
    for round in 0..25u64 {
        let mut tx = heap.write().unwrap();
        let mut a: PMap<i64, [u8; 40]> = tx.root("a").unwrap().unwrap_or_default();
        let mut b: PHashMap<u16, u64> = tx.root("b").unwrap().unwrap_or_default();
        let mut v: PVec<u64> = tx.root("v").unwrap().unwrap_or_default();
        for i in 0..2000u64 {
            let k =
                (rng.below(3000) as i64 - 1500) * if round % 2 == 0 { 1 } else { i64::MAX / 1500 };
            let k2 = rng.below(if round % 7 == 6 { 65536 } else { 2000 }) as u16;
            match rng.below(4) {
                0 => {
                    assert_eq!(a.remove(&mut tx, &k).unwrap(), m1.remove(&k));
                    assert_eq!(b.remove(&mut tx, &k2).unwrap(), m2.remove(&k2));
                    assert_eq!(v.pop(&mut tx).unwrap(), mv.pop());
                }
                1 if !mv.is_empty() => {
                    let at = rng.below(mv.len() as u64);
                    let old = v.set(&mut tx, at, &i).unwrap();
                    assert_eq!(old, std::mem::replace(&mut mv[at as usize], i));
                }
                _ => {
                    let val = [(i % 251) as u8; 40];
                    assert_eq!(a.insert(&mut tx, &k, &val).unwrap(), m1.insert(k, val));
                    assert_eq!(b.insert(&mut tx, &k2, &i).unwrap(), m2.insert(k2, i));
                    v.push(&mut tx, &i).unwrap();
                    mv.push(i);
                }
            }
        }
        if round == 12 {
            a.clear(&mut tx).unwrap();
            b.clear(&mut tx).unwrap();
            v.clear(&mut tx).unwrap();
            m1.clear();
            m2.clear();
            mv.clear();
        }
        tx.set_root("a", &a).unwrap();
        tx.set_root("b", &b).unwrap();
        tx.set_root("v", &v).unwrap();
        tx.commit().unwrap();
        let snap = heap.read().unwrap();
        snap.verify().unwrap();
        a.verify(&snap).unwrap();
        b.verify(&snap).unwrap();
        v.verify(&snap).unwrap();
        let got: Vec<(i64, [u8; 40])> =
            a.iter(&snap).map(|e| e.map(|(k, v)| (k, *v)).unwrap()).collect();
        assert_eq!(got, m1.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), "round {round}");
        let mut got: Vec<(u16, u64)> =
            b.iter(&snap).map(|e| e.map(|(k, v)| (k, *v)).unwrap()).collect();
        got.sort();
        assert_eq!(got, m2.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), "round {round}");
        let got: Vec<u64> = v.iter(&snap).map(|e| *e.unwrap()).collect();
        assert_eq!(got, mv, "round {round}");
        let lo = -700i64 * if round % 2 == 0 { 1 } else { i64::MAX / 1500 };
        let got: Vec<i64> = a.range(&snap, lo..=0).map(|e| e.unwrap().0).collect();
        assert_eq!(
            got,
            m1.range(lo..=0).map(|(k, _)| *k).collect::<Vec<_>>(),
            "range round {round}"
        );
    }
}

/// Ten string keys, five of 300 bytes, three of 511, two short: shrunk from what
/// `string_maps_match_a_model_under_random_inserts_and_removes` found.
fn long_keys() -> [String; 10] {
    let key = |k: u32, len: usize| {
        let mut s = format!("{k:08}");
        while s.len() < len {
            s.push('x');
        }
        s
    };
    [
        key(347, 300),
        key(327, 300),
        key(312, 300),
        key(292, 300),
        key(322, 300),
        key(76, 511),
        key(246, 511),
        key(261, 511),
        key(379, 19),
        key(374, 14),
    ]
}

/// The [`long_keys`] inserted into a fresh `PMap<PStr, u64>` in one transaction, then a key
/// that is there removed: the merge that follows failed with `Corrupted { what:
/// "collection node" }` before its fix — a valid map, used through the safe API, reported
/// damaged.
#[test]
fn pmap_remove_after_long_string_keys_is_not_corrupted() {
    use mmf_heap::PMap;
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut map: PMap<PStr, u64> = PMap::new();
    let keys = long_keys();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(map.insert(&mut tx, k, &(i as u64)).unwrap(), None);
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(map.get(&tx, k).unwrap(), Some(&(i as u64)), "get {i}");
    }
    assert_eq!(map.remove(&mut tx, &keys[8]).unwrap(), Some(8));
    for (i, k) in keys.iter().enumerate().filter(|&(i, _)| i != 8) {
        assert_eq!(map.remove(&mut tx, k).unwrap(), Some(i as u64), "remove {i}");
    }
    assert!(map.is_empty());
}

/// Large fixed-width keys (`[u8; 300]`) and large values (`[u8; 5000]`): random inserts
/// and removes against a model in one transaction, then verified after the commit.
#[test]
fn maps_with_large_fixed_keys_and_values_match_a_model() {
    use mmf_heap::{PHashMap, PMap, PVec};
    use std::collections::BTreeMap;
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut rng = Rng(777);
    let mut tx = heap.write().unwrap();
    let mut a: PMap<[u8; 300], u64> = PMap::new();
    let mut b: PMap<u64, [u8; 5000]> = PMap::new();
    let mut c: PHashMap<[u8; 300], [u8; 5000]> = PHashMap::new();
    let mut v: PVec<[u8; 5000]> = PVec::new();
    let mut ma: BTreeMap<[u8; 300], u64> = BTreeMap::new();
    let mut mb: BTreeMap<u64, [u8; 5000]> = BTreeMap::new();
    let mut n = 0u64;
    let mut failure = None;
    for i in 0..1500u64 {
        let k = rng.below(300);
        let mut key = [b'z'; 300];
        key[..8].copy_from_slice(&k.to_be_bytes());
        let val = [(i % 251) as u8; 5000];
        let r: mmf_heap::Result<()> = (|| {
            if rng.below(3) == 0 {
                assert_eq!(a.remove(&mut tx, &key)?, ma.remove(&key), "a remove");
                assert_eq!(b.remove(&mut tx, &k)?, mb.remove(&k), "b remove");
                c.remove(&mut tx, &key)?;
                if v.pop(&mut tx)?.is_some() {
                    n -= 1;
                }
            } else {
                assert_eq!(a.insert(&mut tx, &key, &i)?, ma.insert(key, i), "a insert");
                assert_eq!(b.insert(&mut tx, &k, &val)?, mb.insert(k, val), "b insert");
                c.insert(&mut tx, &key, &val)?;
                v.push(&mut tx, &val)?;
                n += 1;
            }
            Ok(())
        })();
        if let Err(e) = r {
            failure = Some(format!("op {i}: {e:?}"));
            break;
        }
    }
    assert_eq!(failure, None);
    for (name, h) in [("a", a.len()), ("b", b.len()), ("c", c.len()), ("v", v.len())] {
        assert!(h <= 300 || name == "v", "{name}");
    }
    assert_eq!(
        (a.len(), b.len(), c.len(), v.len()),
        (ma.len() as u64, mb.len() as u64, ma.len() as u64, n)
    );
    tx.set_root("a", &a).unwrap();
    tx.set_root("b", &b).unwrap();
    tx.set_root("c", &c).unwrap();
    tx.set_root("v", &v).unwrap();
    tx.commit().unwrap();
    let snap = heap.read().unwrap();
    a.verify(&snap).unwrap();
    b.verify(&snap).unwrap();
    c.verify(&snap).unwrap();
    v.verify(&snap).unwrap();
    let got: Vec<u64> = a.iter(&snap).map(|e| *e.unwrap().1).collect();
    assert_eq!(got, ma.values().copied().collect::<Vec<_>>());
}

/// After the `remove` above failed, the transaction's copy of the map was half merged
/// (`merge` appended some of the right node's entries into the left one before it gave
/// up), and it committed: the committed map then failed `verify`. The merge now builds
/// into a copy; this checks the remove and the commit that follows.
#[test]
fn a_failed_pmap_remove_does_not_leave_a_damaged_map_to_commit() {
    use mmf_heap::PMap;
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut map: PMap<PStr, u64> = PMap::new();
    let keys = long_keys();
    for (i, k) in keys.iter().enumerate() {
        map.insert(&mut tx, k, &(i as u64)).unwrap();
    }
    let removed = map.remove(&mut tx, &keys[8]);
    tx.set_root("m", &map).unwrap();
    let committed = tx.commit();
    let snap = heap.read().unwrap();
    let map: PMap<PStr, u64> = snap.root("m").unwrap().unwrap();
    let verified = map.verify(&snap);
    let entries: Vec<String> = map
        .iter(&snap)
        .map(|e| e.map(|(k, _)| k[..8].to_owned()).unwrap_or_else(|e| format!("{e:?}")))
        .collect();
    assert!(
        verified.is_ok(),
        "remove: {removed:?}; commit: {committed:?}; verify: {verified:?}; len {} entries {entries:?}",
        map.len()
    );
}
