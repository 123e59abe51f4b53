//! The hot look-up (`MapSpec::get_fast`) against the checked one (`get_checked`): with
//! any bit of a branch's or a leaf's header damaged, the hot path answers exactly where
//! the checked one answers, with the same value, and leaves every error to it.

use super::*;
use crate::node::HDR;
use crate::read::private::Source;
use crate::{Heap, HeapOptions, MemoryBackend, PStr};

/// A heap with a `PMap<u64, [u64; 25]>` ("n", keys in the `ord` words, three levels) and
/// a `PMap<PStr, u64>` ("s", keys in the key heap, runs of equal prefixes), committed one
/// transaction before the last.
fn image() -> Vec<u8> {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut n: PMap<u64, [u64; 25]> = PMap::new();
    let mut s: PMap<PStr, u64> = PMap::new();
    for k in 0..6000u64 {
        // Scattered, so that splits leave nodes part full, as random inserts do.
        let k = k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20;
        n.insert(&mut tx, &k, &[k; 25]).unwrap();
    }
    for k in 0..1500u64 {
        s.insert(&mut tx, &format!("key {k}"), &(k * 7 + 1)).unwrap();
    }
    assert_eq!(MapSpec::node(&PMap::<u64, [u64; 25]>::S, &tx, n.h.root).unwrap().2, 2);
    tx.set_root("n", &n).unwrap();
    tx.set_root("s", &s).unwrap();
    tx.commit().unwrap();
    let mut tx = heap.write().unwrap();
    tx.set_root("unrelated", &1u64).unwrap();
    tx.commit().unwrap();
    heap.backend().to_bytes()
}

/// The keys looked up: every 9th of the inserted ones and as many absent ones.
fn ints() -> impl Iterator<Item = u64> {
    (0..6000u64)
        .step_by(9)
        .map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20)
        .flat_map(|k| [k, k + 1])
}

fn strs() -> impl Iterator<Item = String> {
    (0..1600u64).step_by(3).map(|k| format!("key {k}"))
}

/// A map's root, its first child and the first leaf under them (the nodes a look-up of
/// the smallest key reads).
fn path<K: Key, V: Persist>(heap: &Heap<MemoryBackend>, name: &str) -> Vec<usize> {
    let snap = heap.read().unwrap();
    let map: PMap<K, V> = snap.root(name).unwrap().unwrap();
    let mut off = map.h.root;
    let mut out = vec![off as usize];
    loop {
        let (b, k, _) = PMap::<K, V>::S.node(&snap, off).unwrap();
        if k == kind::MAP_LEAF {
            return out;
        }
        off = PMap::<K, V>::S.entries(b, k, off).unwrap().child(0);
        out.push(off as usize);
    }
}

/// Both look-ups of `keys` in the map `name` of `heap`: the number of keys the hot path
/// left to the checked one (which erred on each).
fn compare<K: Key, V: Persist + PartialEq + std::fmt::Debug, Q: AsRef<K::Query>>(
    heap: &Heap<MemoryBackend>,
    name: &str,
    keys: impl Iterator<Item = Q>,
) -> usize {
    let snap = heap.read().unwrap();
    let Ok(Some(map)) = snap.root::<PMap<K, V>>(name) else { panic!("root {name}") };
    let mut left = 0;
    for q in keys {
        let mut buf = [0u8; 8];
        let key = K::encode(q.as_ref(), &mut buf);
        let p = prefix(key);
        let generic = PMap::<K, V>::S.get_fast(&snap, map.h.root, key, p);
        // The snapshot's own reads (prefetching, one bit test for free space) answer as
        // the generic ones.
        let lean = snap.fast().expect("a snapshot has its fast reads");
        assert_eq!(PMap::<K, V>::S.get_fast(lean, map.h.root, key, p), generic, "{name}");
        let (hot, checked) = map.get_both(&snap, q.as_ref());
        assert_eq!(hot.is_some(), generic.is_some());
        left += usize::from(crate::fuzzing::paths_agree(name, hot, checked));
    }
    left
}

#[test]
fn the_hot_get_answers_exactly_where_the_checked_one_does() {
    let image = image();
    let heap =
        Heap::open_with(MemoryBackend::from_bytes(image.clone()), &HeapOptions::new()).unwrap();
    // Undamaged: the hot path answers every key, and finds the ones inserted.
    assert_eq!(compare::<u64, [u64; 25], _>(&heap, "n", ints().map(Box::new)), 0);
    assert_eq!(compare::<PStr, u64, _>(&heap, "s", strs()), 0);
    let snap = heap.read().unwrap();
    let n: PMap<u64, [u64; 25]> = snap.root("n").unwrap().unwrap();
    let found = ints().filter(|k| n.get(&snap, k).unwrap() == Some(&[*k; 25])).count();
    assert_eq!(found, ints().count() / 2);
    let s: PMap<PStr, u64> = snap.root("s").unwrap().unwrap();
    assert_eq!(s.get(&snap, "key 1234").unwrap(), Some(&(1234 * 7 + 1)));
    assert_eq!(s.get(&snap, "key 12345").unwrap(), None);
    drop(snap);
    let nodes = [("n", path::<u64, [u64; 25]>(&heap, "n")), ("s", path::<PStr, u64>(&heap, "s"))];
    assert_eq!(nodes[0].1.len(), 3, "root, branch, leaf");
    let mut left = 0;
    for (map, path) in nodes {
        for node in path {
            for byte in 0..HDR {
                for flip in [0x01u8, 0x80] {
                    let mut bad = image.clone();
                    bad[node + byte] ^= flip;
                    let heap = Heap::open_with(MemoryBackend::from_bytes(bad), &HeapOptions::new())
                        .expect("opening reads no collection node");
                    left += match map {
                        "n" => compare::<u64, [u64; 25], _>(&heap, map, ints().map(Box::new)),
                        _ => compare::<PStr, u64, _>(&heap, map, strs()),
                    };
                }
            }
        }
    }
    // Each header field the checks cover was damaged: many look-ups fell back.
    assert!(left > 10_000, "{left} look-ups left to the checked path");
}

/// A handle kept from before a commit that rewrote the map: its nodes are free space in
/// the newer commit, which both look-ups refuse (a use after free), the hot one by
/// leaving it to the checked one.
#[test]
fn the_hot_get_refuses_a_stale_handles_freed_nodes() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut map: PMap<u64, u64> = PMap::new();
    for k in 0..3000u64 {
        map.insert(&mut tx, &k, &k).unwrap();
    }
    tx.set_root("m", &map).unwrap();
    tx.commit().unwrap();
    let stale = map;
    let mut tx = heap.write().unwrap();
    let mut map = stale;
    map.insert(&mut tx, &7, &8).unwrap();
    tx.set_root("m", &map).unwrap();
    tx.commit().unwrap();
    let snap = heap.read().unwrap();
    let (hot, checked) = stale.get_both(&snap, &7);
    assert!(hot.is_none(), "{hot:?}");
    assert!(matches!(checked, Err(Error::InvalidArgument { .. })), "{checked:?}");
    assert_eq!(map.get(&snap, &7).unwrap(), Some(&8));
}

/// Header fields set to the values at the edges of what the checks allow, in the root, a
/// branch and a leaf: where a value is refused, the hot path leaves the keys whose path
/// crosses the node to the checked path (which errs); where it is allowed, both answer
/// alike (and where a field lets garbage through, both refuse it alike). (Single-bit flips do not reach these values: an empty branch, a key heap one
/// byte into the values, a writer one transaction too new.)
#[test]
fn header_fields_at_their_limits_are_checked_by_the_hot_get() {
    type N = PMap<u64, [u64; 25]>;
    let image = image();
    let heap =
        Heap::open_with(MemoryBackend::from_bytes(image.clone()), &HeapOptions::new()).unwrap();
    let newest = heap.read().unwrap().txn_id();
    let nodes = path::<u64, [u64; 25]>(&heap, "n");
    // Key 0 goes to each node's first child: through every node of the path.
    let keys = || ints().chain([0]).map(Box::new);
    let set = |node: usize, at: usize, value: &[u8]| {
        let mut bad = image.clone();
        bad[node + at..node + at + value.len()].copy_from_slice(value);
        Heap::open_with(MemoryBackend::from_bytes(bad), &HeapOptions::new()).unwrap()
    };
    for (depth, &node) in nodes.iter().enumerate() {
        let l = if depth == 2 { N::S.leaf } else { N::S.branch };
        let u32s = |v: usize| (v as u32).to_le_bytes().to_vec();
        let mut cases = vec![
            ("size - 16", 8, u32s(l.size - 16), Some(true)),
            ("count cap + 1", 12, u32s(l.cap + 1), Some(true)),
            // Entries past the real ones: zeros, children at offset 0 (refused by both paths).
            ("count cap", 12, u32s(l.cap), None),
            ("heap below heap_min", 16, u32s(l.heap_min() - 1), Some(true)),
            ("heap past size", 16, u32s(l.size + 16), Some(true)),
            ("heap at heap_min", 16, u32s(l.heap_min()), Some(false)),
            ("width + 1", 20, u32s(l.vsize + 1), Some(true)),
            ("txn 0", 24, 0u64.to_le_bytes().to_vec(), Some(true)),
            ("txn newest + 1", 24, (newest + 1).to_le_bytes().to_vec(), Some(true)),
            ("txn newest", 24, newest.to_le_bytes().to_vec(), Some(false)),
        ];
        // An empty branch routes nothing (an empty leaf is a map with no keys there).
        cases.push(("count 0", 12, u32s(0), Some(depth < 2)));
        for (field, at, value, refused) in cases {
            let heap = set(node, at, &value);
            let left = compare::<u64, [u64; 25], _>(&heap, "n", keys());
            if let Some(refused) = refused {
                assert_eq!(
                    left > 0,
                    refused,
                    "node {depth} {field}: {left} left to the checked path"
                );
            }
        }
    }
}

/// Damage in a branch's body, not its header: `ord` words out of order, and child pointers
/// to nothing, to the branch itself, to the root, to a leaf a level too low or to a
/// misaligned offset. Both paths search with the same function and follow the same child,
/// so they must agree on every key: the same answer, or the hot one leaves the error to the
/// checked one. (A child pointing at its own branch is what the level check ends: without
/// it the hot path loops for ever here, as tried.)
#[test]
fn damage_in_a_branchs_entries_leaves_both_paths_agreeing() {
    type N = PMap<u64, [u64; 25]>;
    let image = image();
    let heap =
        Heap::open_with(MemoryBackend::from_bytes(image.clone()), &HeapOptions::new()).unwrap();
    let nodes = path::<u64, [u64; 25]>(&heap, "n");
    let (root, branch, leaf) = (nodes[0], nodes[1], nodes[2]);
    let keys = || ints().take(300).chain([0]).map(Box::new);
    let l = N::S.branch;
    let mut left = 0;
    for node in [root, branch] {
        for i in 0..6 {
            let ords = [0, u64::MAX, 1 << 63].map(|w| (l.ord_pos(i), w.to_be_bytes()));
            let children = [0, node, root, leaf, branch + 8, 1 << 40]
                .map(|c| (l.val_pos(i), (c as u64).to_le_bytes()));
            for (at, word) in ords.into_iter().chain(children) {
                let mut bad = image.clone();
                bad[node + at..node + at + 8].copy_from_slice(&word);
                let heap = Heap::open_with(MemoryBackend::from_bytes(bad), &HeapOptions::new())
                    .expect("opening reads no collection node");
                left += compare::<u64, [u64; 25], _>(&heap, "n", keys());
            }
        }
    }
    // Children that lead nowhere sound were followed and refused.
    assert!(left > 1_000, "{left} look-ups left to the checked path");
}
