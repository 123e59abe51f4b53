//! The fast look-up (`get_fast`) against the checked one (`get_checked`): with any byte of
//! a directory's or a bucket's header damaged, the fast path answers exactly where the
//! checked one answers, with the same value, and leaves every error to it.

use super::*;
use crate::read::private::Source;
use crate::{Heap, HeapOptions, MemoryBackend, PStr};

/// A heap with a `PHashMap<u64, u64>` ("h", keys in the `aux` word) and a
/// `PHashMap<PStr, u64>` ("s", keys in the key heap), each a directory over buckets,
/// committed one transaction before the last.
pub(super) fn image() -> Vec<u8> {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut h: PHashMap<u64, u64> = PHashMap::new();
    let mut s: PHashMap<PStr, u64> = PHashMap::new();
    for k in 0..3000u64 {
        h.insert(&mut tx, &k, &(k * 7 + 1)).unwrap();
    }
    for k in 0..1500u64 {
        s.insert(&mut tx, &format!("key {k}"), &(k * 7 + 1)).unwrap();
    }
    tx.set_root("h", &h).unwrap();
    tx.set_root("s", &s).unwrap();
    tx.commit().unwrap();
    let mut tx = heap.write().unwrap();
    tx.set_root("unrelated", &1u64).unwrap();
    tx.commit().unwrap();
    heap.backend().to_bytes()
}

/// The root directory of a map's handle and the first two distinct buckets under it.
pub(super) fn nodes(image: &[u8], root: u64) -> Vec<usize> {
    assert_ne!(root & DIR_TAG, 0, "a directory at the root");
    let dir = (root & !DIR_TAG) as usize;
    let mut out = vec![dir];
    for i in 0..SLOTS {
        let child = u64::from_le_bytes(image[dir + HDR + 8 * i..][..8].try_into().unwrap());
        assert_eq!(child & DIR_TAG, 0, "buckets under the root");
        if !out.contains(&(child as usize)) && out.len() < 3 {
            out.push(child as usize);
        }
    }
    out
}

/// The root pointers of the two maps of [`image`]'s heap, by root name.
pub(super) fn roots(heap: &Heap<MemoryBackend>) -> [(&'static str, u64); 2] {
    let snap = heap.read().unwrap();
    [
        ("h", snap.root::<PHashMap<u64, u64>>("h").unwrap().unwrap().h.root),
        ("s", snap.root::<PHashMap<PStr, u64>>("s").unwrap().unwrap().h.root),
    ]
}

/// Both look-ups of `keys` in the map rooted at `root` of `heap`: the number of keys the
/// fast path left to the checked one (which erred on each).
pub(super) fn compare<K: Key, V: Persist + PartialEq + std::fmt::Debug>(
    heap: &Heap<MemoryBackend>,
    name: &str,
    keys: impl Iterator<Item = Box<K::Query>>,
) -> usize {
    let snap = heap.read().unwrap();
    let Ok(Some(map)) = snap.root::<PHashMap<K, V>>(name) else { panic!("root {name}") };
    let mut left = 0;
    for q in keys {
        let mut buf = [0u8; 8];
        let key = K::encode(&q, &mut buf);
        let h = hash(&snap, key);
        let fast = PHashMap::<K, V>::get_fast(&snap, map.h, key, h);
        // The snapshot's own hot path (its checked directories kept from key to key)
        // answers as the generic one.
        let lean = snap.fast().expect("a snapshot has its fast reads");
        assert_eq!(
            PHashMap::<K, V>::get_fast(lean, map.h, key, h),
            fast,
            "{name}: the paths differ"
        );
        let checked = PHashMap::<K, V>::get_checked(&snap, map.h, key, h);
        left += usize::from(crate::fuzzing::paths_agree(name, fast, checked));
    }
    left
}

#[test]
fn the_fast_get_answers_exactly_where_the_checked_one_does() {
    let image = image();
    let heap =
        Heap::open_with(MemoryBackend::from_bytes(image.clone()), &HeapOptions::new()).unwrap();
    let roots = roots(&heap);
    let ints = || (0..400u64).map(Box::new);
    let strs = || (0..200u64).map(|k| Box::<str>::from(format!("key {k}")));
    // Undamaged: the fast path answers every key.
    assert_eq!(compare::<u64, u64>(&heap, "h", ints()), 0);
    assert_eq!(compare::<PStr, u64>(&heap, "s", strs()), 0);
    let mut left = 0;
    for (map, root) in roots {
        for node in nodes(&image, root) {
            for byte in 0..HDR {
                for flip in [0x01u8, 0x80] {
                    let mut bad = image.clone();
                    bad[node + byte] ^= flip;
                    let heap = Heap::open_with(MemoryBackend::from_bytes(bad), &HeapOptions::new())
                        .expect("opening reads no collection node");
                    left += match map {
                        "h" => compare::<u64, u64>(&heap, map, ints()),
                        _ => compare::<PStr, u64>(&heap, map, strs()),
                    };
                }
            }
        }
    }
    // Each header field the checks cover was damaged: many look-ups fell back.
    assert!(left > 10_000, "{left} look-ups left to the checked path");
}

/// A handle kept from before a commit that rewrote the map: its nodes are free space in
/// the newer commit, which both look-ups refuse (a use after free), the fast one by
/// leaving it to the checked one.
#[test]
fn the_fast_get_refuses_a_stale_handles_freed_nodes() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    set_3000(&heap, PHashMap::new(), 0);
    let stale = heap.read().unwrap().root::<PHashMap<u64, u64>>("h").unwrap().unwrap();
    set_3000(&heap, stale, 1);
    let snap = heap.read().unwrap();
    let mut buf = [0u8; 8];
    let key = <u64 as Key>::encode(&7, &mut buf);
    let h = hash(&snap, key);
    assert!(PHashMap::<u64, u64>::get_fast(&snap, stale.h, key, h).is_none());
    // The snapshot's hot path, before and after its directories were checked by a get
    // through the live map.
    let lean = snap.fast().unwrap();
    assert!(PHashMap::<u64, u64>::get_fast(lean, stale.h, key, h).is_none());
    assert_eq!(PHashMap::<u64, u64>::get_fast(lean, h_live(&snap), key, h), Some(Some(&8)));
    assert!(PHashMap::<u64, u64>::get_fast(lean, stale.h, key, h).is_none());
    assert!(matches!(
        PHashMap::<u64, u64>::get_checked(&snap, stale.h, key, h),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(stale.get(&snap, &7), Err(Error::InvalidArgument { .. })));
}

/// Sets keys 0..3000 of `h` to `k + plus` and commits it as root "h" of `heap`.
fn set_3000(heap: &Heap<MemoryBackend>, mut h: PHashMap<u64, u64>, plus: u64) {
    let mut tx = heap.write().unwrap();
    for k in 0..3000u64 {
        h.insert(&mut tx, &k, &(k + plus)).unwrap();
    }
    tx.set_root("h", &h).unwrap();
    tx.commit().unwrap();
}

/// The live map's handle in `snap`.
fn h_live(snap: &crate::Snapshot<'_, MemoryBackend>) -> crate::pmap::Handle {
    snap.root::<PHashMap<u64, u64>>("h").unwrap().unwrap().h
}

/// A directory checked at one level is not taken for one at another, nor for a node 2,
/// 4 or 8 bytes past it (whose entry would otherwise read as another level's).
#[test]
fn a_checked_directory_is_known_only_at_its_offset_and_level() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    set_3000(&heap, PHashMap::new(), 1);
    let snap = heap.read().unwrap();
    let live = h_live(&snap);
    assert_eq!(live.root & DIR_TAG, DIR_TAG, "3000 keys take a directory");
    let root = live.root & !DIR_TAG;
    let lean = snap.fast().unwrap();
    assert!(lean.known_dir(root, 0, DIR_SIZE).is_none(), "nothing checked yet");
    let mut buf = [0u8; 8];
    let key = <u64 as Key>::encode(&7, &mut buf);
    let hh = hash(&snap, key);
    assert_eq!(PHashMap::<u64, u64>::get_fast(lean, live, key, hh), Some(Some(&8)));
    assert!(lean.known_dir(root, 0, DIR_SIZE).is_some(), "the get checked the root");
    for level in 1..LEVELS {
        assert!(lean.known_dir(root, level, DIR_SIZE).is_none(), "level {level}");
    }
    lean.remember_dir(root, 1);
    for (off, level) in [(root + 2, 0), (root + 4, 0), (root + 6, 0), (root + 8, 0)] {
        assert!(lean.known_dir(off, level, DIR_SIZE).is_none(), "{off:#x} at level {level}");
    }
}
