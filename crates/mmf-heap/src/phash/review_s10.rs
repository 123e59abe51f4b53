//! The hostile review of 2026-12-01, round 10: a snapshot's hot path (`crate::fast`).
//! Its directories checked once per commit (`CheckedDirs`), its buckets' lines
//! prefetched before their checks, its one-bit free-space test for nodes of a page or
//! less. Within one snapshot, with the cache warm (and, past 1024 directories, evicting),
//! the lean path answers exactly as the generic path, and answers only where the checked
//! one answers, with the same value: for stale handles whose nodes were freed and reused,
//! for roots and directory slots pointing anywhere (the root from a deeper level, a
//! directory of another level, a bucket, free space, a few bytes off), and for buckets
//! of several pages.

use std::collections::BTreeMap;
use std::fmt::Debug;

use super::*;
use crate::alloc::{Allocator, FreePages};
use crate::format::DATA_START;
use crate::read::private::Source;
use crate::{Heap, HeapOptions, MemoryBackend, Snapshot};

type Map = PHashMap<u64, u64>;

/// The nodes under `ptr` in `image`: offset -> (level, is a directory).
fn walk(image: &[u8], ptr: u64, level: u8, out: &mut BTreeMap<u64, (u8, bool)>) {
    if ptr == 0 {
        return;
    }
    if ptr & DIR_TAG == 0 {
        out.insert(ptr, (level, false));
        return;
    }
    let d = ptr & !DIR_TAG;
    if out.insert(d, (level, true)).is_some() {
        return;
    }
    for i in 0..SLOTS {
        let child = child_of(image, d, i);
        walk(image, child, level + (child & DIR_TAG) as u8, out);
    }
}

fn child_of(image: &[u8], dir: u64, i: usize) -> u64 {
    dir_child(&image[dir as usize..][..DIR_SIZE], i)
}

/// The lean look-up (`snap`'s own `Fast`, its checked directories kept from call to
/// call), the generic one and the checked one of `keys` in the map `handle` of `snap`:
/// lean and generic give the same answer; where they answer, the checked one answers
/// the same; where they do not, it errs. Returns how many keys were answered and found.
fn agree<V: Persist + PartialEq + Debug, B: Backend>(
    snap: &Snapshot<'_, B>,
    handle: Handle,
    keys: impl IntoIterator<Item = u64>,
    what: &str,
) -> (usize, usize) {
    let lean = snap.fast().expect("a snapshot has its fast reads");
    let (mut answered, mut found) = (0, 0);
    for k in keys {
        let mut buf = [0u8; 8];
        let key = <u64 as Key>::encode(&k, &mut buf);
        let h = hash(snap, key);
        let l = PHashMap::<u64, V>::get_fast(lean, handle, key, h);
        let g = PHashMap::<u64, V>::get_fast(snap, handle, key, h);
        assert_eq!(l, g, "{what}: key {k}: the lean and the generic path differ");
        match (l, PHashMap::<u64, V>::get_checked(snap, handle, key, h)) {
            (Some(f), Ok(c)) => {
                assert_eq!(f, c, "{what}: key {k}: both answered, differently");
                answered += 1;
                found += f.is_some() as usize;
            }
            (None, Err(_)) => {}
            (f, c) => panic!("{what}: key {k}: fast {f:?}, checked {c:?}"),
        }
    }
    (answered, found)
}

/// The slot of the root directory that key `k` goes through.
fn slot0<B: Backend>(snap: &Snapshot<'_, B>, k: u64) -> usize {
    let mut buf = [0u8; 8];
    slot(hash(snap, <u64 as Key>::encode(&k, &mut buf)), 0)
}

/// Keys of the big map: enough for directories at level 1 under the root.
const BIG: u64 = 60_000;

/// A heap with map "h" (`BIG` keys, two levels of directories) and "new" (built in
/// space a removed map "old" freed); the image after the first commit, and `old`'s
/// handle there (stale in the last commit: its nodes freed, some reused by "new").
fn heap_with_stale() -> (Heap<MemoryBackend>, Vec<u8>, Handle) {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let (mut h, mut old) = (Map::new(), Map::new());
    for k in 0..BIG {
        h.insert(&mut tx, &k, &(k * 3 + 1)).unwrap();
    }
    for k in 0..4000u64 {
        old.insert(&mut tx, &k, &(k + 5)).unwrap();
    }
    tx.set_root("h", &h).unwrap();
    tx.set_root("old", &old).unwrap();
    tx.commit().unwrap();
    let first = heap.backend().to_bytes();
    let stale = old.h;
    let mut tx = heap.write().unwrap();
    for k in 0..4000u64 {
        old.remove(&mut tx, &k).unwrap();
    }
    tx.set_root("old", &old).unwrap();
    tx.commit().unwrap();
    for round in 0..3u64 {
        let mut tx = heap.write().unwrap();
        let mut new: Map = tx.root("new").unwrap().unwrap_or_default();
        for k in round * 2000..(round + 1) * 2000 {
            new.insert(&mut tx, &k, &(k + 9)).unwrap();
        }
        tx.set_root("new", &new).unwrap();
        tx.commit().unwrap();
    }
    (heap, first, stale)
}

/// Pointers near `off`: tagged and not, and a few bytes past it.
fn around(off: u64) -> [u64; 7] {
    [
        off | DIR_TAG,
        off,
        (off + 2) | DIR_TAG,
        off + 4,
        (off + 8) | DIR_TAG,
        off + 16,
        (off + 32) | 1,
    ]
}

#[test]
fn stale_and_hostile_roots_answer_as_the_checked_path_with_the_cache_warm() {
    let (heap, first, stale) = heap_with_stale();
    let image = heap.backend().to_bytes();
    let snap = heap.read().unwrap();
    let h = snap.root::<Map>("h").unwrap().unwrap();
    let new = snap.root::<Map>("new").unwrap().unwrap();
    let mut live = BTreeMap::new();
    walk(&image, h.h.root, 0, &mut live);
    walk(&image, new.h.root, 0, &mut live);
    let mut old = BTreeMap::new();
    walk(&first, stale.root, 0, &mut old);
    assert!(live.values().any(|&(l, d)| d && l == 1), "directories at level 1");
    // Some of the stale map's nodes now hold the new map's (else this test shows less).
    let reused = old.keys().filter(|o| live.contains_key(o)).count();
    let freed = old.keys().filter(|&&o| snap.commit.alloc.overlaps_free(o, 16)).count();
    assert!(reused > 0 && freed > 0, "stale nodes: {reused} reused, {freed} free");

    // Warm: every key of the live maps through `get` (the lean path), twice.
    for _ in 0..2 {
        for k in 0..BIG {
            assert_eq!(h.get(&snap, &k).unwrap(), Some(&(k * 3 + 1)));
        }
        for k in 0..6000 {
            assert_eq!(new.get(&snap, &k).unwrap(), Some(&(k + 9)));
        }
    }
    let known = known_only_where_checked(&snap, &live, live.keys().chain(old.keys()));
    assert!(known > 1, "{known} directories known");

    let keys = |step: u64| (0..BIG).step_by(step as usize);
    // The stale handle: answers (from what now lies at its root) or errs, as checked.
    let (answered, _) = agree::<u64, _>(&snap, stale, keys(1), "stale");
    println!("stale root: {answered} of {BIG} answered");
    // Roots anywhere near a node of either map, or in free space, or at the edges.
    let mut roots: Vec<u64> = Vec::new();
    for (i, &off) in live.keys().chain(old.keys()).enumerate() {
        if live.get(&off).is_some_and(|&(_, d)| d) || i % 5 == 0 {
            roots.extend(around(off));
        }
    }
    for (start, len) in snap.commit.alloc.free_ranges().take(200) {
        roots.extend(around(start));
        roots.extend(around(start + len - 16));
    }
    let end = snap.commit.slot.alloc_end;
    for off in [0, 16, DATA_START - 16, DATA_START, end - DIR_SIZE as u64, end - 16, end] {
        roots.extend(around(off));
    }
    roots.extend([u64::MAX, u64::MAX - 15, 1 << 63 | 1, (end + 4096) | 1]);
    let mut answered = 0;
    for &root in &roots {
        let handle = Handle { root, len: 1 };
        answered += agree::<u64, _>(&snap, handle, keys(997), &format!("root {root:#x}")).0;
    }
    assert!(answered > 0, "some hostile roots lead somewhere");
    // None of them left an entry for anything but a directory at its level.
    let offs: Vec<u64> = roots.iter().map(|r| r & !DIR_TAG).collect();
    known_only_where_checked(&snap, &live, live.keys().chain(old.keys()).chain(&offs));
    // And the live maps still answer through the cache, after all that.
    assert_eq!(agree::<u64, _>(&snap, h.h, keys(7), "h after").1, (BIG as usize).div_ceil(7));
}

/// Asserts that `snap`'s cache knows a directory near each of `offs` only at a directory
/// of `live` and at its level (and with its bytes); returns how many it knows.
fn known_only_where_checked<'a, B: Backend>(
    snap: &Snapshot<'_, B>,
    live: &BTreeMap<u64, (u8, bool)>,
    offs: impl Iterator<Item = &'a u64>,
) -> usize {
    let lean = snap.fast().unwrap();
    let mut known = 0;
    for &off in offs {
        for p in [0, 2, 4, 8, 16].map(|d| off.wrapping_add(d)) {
            for l in 0..LEVELS {
                if let Some(b) = lean.known_dir(p, l, DIR_SIZE) {
                    let at = live.get(&p);
                    assert_eq!(at, Some(&(l, true)), "{p:#x} known at level {l}");
                    assert_eq!(b.as_ptr(), image_at(snap, p), "{p:#x}: other bytes");
                    assert_eq!(b.len(), DIR_SIZE);
                    known += (p == off) as usize;
                }
            }
        }
    }
    known
}

/// The address of byte `off` of `snap`'s commit, as the generic path sees it.
fn image_at<B: Backend>(snap: &Snapshot<'_, B>, off: u64) -> *const u8 {
    snap.window.slice(snap.heap.backend(), off, 1, 1, "test").unwrap().as_ptr()
}

/// `image` with child `i` of the directory at `dir` set to `ptr`, resealed.
fn with_child(image: &[u8], dir: u64, i: usize, ptr: u64) -> Vec<u8> {
    let mut bad = image.to_vec();
    let d = &mut bad[dir as usize..][..DIR_SIZE];
    set_dir_child(d, i, ptr);
    node::seal(d);
    bad
}

/// Directory slots pointing where they should not, looked up with the targets' entries
/// already in the cache (through the slots that lead there rightly) and without.
#[test]
fn hostile_directory_slots_answer_as_the_checked_path_warm_or_cold() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut h = Map::new();
    // Enough keys for both buckets and directories under the root.
    const KEYS: u64 = 48_000;
    for k in 0..KEYS {
        h.insert(&mut tx, &k, &(k * 3 + 1)).unwrap();
    }
    tx.set_root("h", &h).unwrap();
    tx.commit().unwrap();
    let mut tx = heap.write().unwrap();
    tx.set_root("unrelated", &1u64).unwrap();
    tx.commit().unwrap();
    let image = heap.backend().to_bytes();
    let snap = heap.read().unwrap();
    let root = h.h.root & !DIR_TAG;
    let mut by_slot: Vec<Vec<u64>> = vec![Vec::new(); SLOTS];
    for k in 0..KEYS {
        by_slot[slot0(&snap, k)].push(k);
    }
    let end = snap.commit.slot.alloc_end;
    drop(snap);
    let mut nodes = BTreeMap::new();
    walk(&image, h.h.root, 0, &mut nodes);
    let children: Vec<u64> = (0..SLOTS).map(|i| child_of(&image, root, i)).collect();
    let dirs: Vec<usize> = (0..SLOTS).filter(|&i| children[i] & DIR_TAG != 0).collect();
    let buckets: Vec<usize> = (0..SLOTS).filter(|&i| children[i] & DIR_TAG == 0).collect();
    assert!(dirs.len() >= 2 && buckets.len() >= 2, "{} directories under the root", dirs.len());
    let (s, u, t) = (dirs[0], dirs[1], buckets[0]);
    let (ds, du, bt) = (children[s] & !DIR_TAG, children[u] & !DIR_TAG, children[t]);
    // A level-1 directory's own children, and one of its slots.
    let below = child_of(&image, ds, 0);
    let x = 0;
    let past = end + 4096;
    let damages: Vec<(&str, u64, usize, u64)> = vec![
        ("the root from level 1", root, s, root | DIR_TAG),
        ("another level-1 directory", root, s, du | DIR_TAG),
        ("a bucket's slot to a level-1 directory", root, t, du | DIR_TAG),
        ("a directory slot to a bucket", root, s, bt),
        ("a bucket as a directory", root, s, bt | DIR_TAG),
        ("a directory as a bucket", root, s, du),
        ("the root as a bucket", root, s, root),
        ("a directory 2 bytes off", root, s, (du + 2) | DIR_TAG),
        ("a directory 8 bytes off", root, s, (du + 8) | DIR_TAG),
        ("a directory 16 bytes off", root, s, (du + 16) | DIR_TAG),
        ("a directory 48 bytes on", root, s, (du + 48) | DIR_TAG),
        ("past the end", root, s, past | DIR_TAG),
        ("zero", root, s, DIR_TAG),
        ("the root from level 2", ds, x, root | DIR_TAG),
        ("itself from level 2", ds, x, ds | DIR_TAG),
        ("a level-1 directory at level 2", ds, x, du | DIR_TAG),
        ("a level-1 bucket at level 0", root, t, below),
        ("a level-1 directory to itself", du, x, du | DIR_TAG),
    ];
    for (what, dir, i, ptr) in damages {
        let bad = with_child(&image, dir, i, ptr);
        // The keys of slot `u` (which lead rightly to `du`) first, then the damaged
        // ones: warm. Then in a new snapshot, the other way round: cold.
        let heap = Heap::open_with(MemoryBackend::from_bytes(bad), &HeapOptions::new()).unwrap();
        let keys = |first: usize, then: usize| {
            let mut k = by_slot[first].clone();
            k.extend(&by_slot[then]);
            k.extend(&by_slot[t]);
            k.extend(&by_slot[s]);
            k
        };
        let snap = heap.read().unwrap();
        let h: Map = snap.root("h").unwrap().unwrap();
        let warm = agree::<u64, _>(&snap, h.h, keys(u, s), &format!("{what}, warm"));
        let warm2 = agree::<u64, _>(&snap, h.h, keys(s, u), &format!("{what}, warm again"));
        // What the cache learnt: only directories at their own levels.
        let targets = [root, ds, du, bt, below, ptr & !DIR_TAG];
        known_only_where_checked(&snap, &nodes, nodes.keys().chain(&targets));
        drop(snap);
        let snap = heap.read().unwrap();
        let cold = agree::<u64, _>(&snap, h.h, keys(s, u), &format!("{what}, cold"));
        assert_eq!((warm, warm2), (cold, cold), "{what}: warm and cold answer alike");
        known_only_where_checked(&snap, &nodes, nodes.keys().chain(&targets));
    }
}

/// More directories than the cache has entries (1024, direct-mapped): entries evict
/// each other, and every look-up of every map in the one snapshot still answers right.
#[test]
fn more_directories_than_the_cache_holds() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut maps = Vec::new();
    const MAPS: u64 = 1100;
    const KEYS: u64 = 260;
    for batch in 0..MAPS / 100 {
        let mut tx = heap.write().unwrap();
        for m in batch * 100..(batch + 1) * 100 {
            let mut map = Map::new();
            for k in 0..KEYS {
                map.insert(&mut tx, &k, &(m << 32 | k)).unwrap();
            }
            maps.push(map);
        }
        tx.commit().unwrap();
    }
    let image = heap.backend().to_bytes();
    let mut nodes = BTreeMap::new();
    for map in &maps {
        walk(&image, map.h.root, 0, &mut nodes);
    }
    let mut dirs = nodes.clone();
    dirs.retain(|_, &mut (_, d)| d);
    assert!(dirs.len() > 1024, "{} directories", dirs.len());
    let snap = heap.read().unwrap();
    for pass in 0..2 {
        for (m, map) in maps.iter().enumerate() {
            for k in 0..KEYS {
                let want = (m as u64) << 32 | k;
                assert_eq!(map.get(&snap, &k).unwrap(), Some(&want), "pass {pass} map {m}");
            }
            // A key of another map's range of values: none.
            assert_eq!(map.get(&snap, &(KEYS + m as u64)).unwrap(), None);
        }
    }
    // The cache holds some of them, each only at its own offset and level, and no
    // bucket; the others were evicted by colliding ones.
    let known = known_only_where_checked(&snap, &nodes, nodes.keys());
    assert!(known > 100 && known <= 1024, "{known} of {} directories known", dirs.len());
    // Each directory as a bucket (refused) and as a root (each the root of one of the
    // maps: every key found), with the cache full of colliding entries.
    for &off in dirs.keys().step_by(7) {
        let as_bucket = agree::<u64, _>(&snap, Handle { root: off, len: 1 }, 0..20, "bucket");
        assert_eq!(as_bucket, (0, 0), "{off:#x}: a directory is no bucket");
        let root = Handle { root: off | DIR_TAG, len: 1 };
        assert_eq!(agree::<u64, _>(&snap, root, 0..20, "a root"), (20, 20), "{off:#x}");
    }
}

/// A map of 1000-byte values: buckets of several pages, whose free-space test is the
/// page bits (`may_overlap`), not the one-bit node test. A stale handle's freed buckets
/// are refused by the lean path as by the checked one, with other gets between.
#[test]
fn buckets_of_several_pages_stale_and_live() {
    type Big = PHashMap<u64, [u8; 1000]>;
    let v = |k: u64| {
        let mut a = [0u8; 1000];
        a[..8].copy_from_slice(&k.to_le_bytes());
        a[992..].copy_from_slice(&(!k).to_le_bytes());
        a
    };
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let (mut live, mut old) = (Big::new(), Big::new());
    for k in 0..400u64 {
        live.insert(&mut tx, &k, &v(k)).unwrap();
        old.insert(&mut tx, &k, &v(k + 1)).unwrap();
    }
    tx.set_root("live", &live).unwrap();
    tx.commit().unwrap();
    const { assert!(Big::S.leaf.size > 4096, "buckets of several pages") };
    let stale = old.h;
    let mut tx = heap.write().unwrap();
    for k in 0..400u64 {
        old.remove(&mut tx, &k).unwrap();
    }
    tx.commit().unwrap();
    let snap = heap.read().unwrap();
    let image = heap.backend().to_bytes();
    let mut nodes = BTreeMap::new();
    walk(&image, stale.root, 0, &mut nodes);
    let freed = nodes.keys().filter(|&&o| snap.commit.alloc.overlaps_free(o, 16)).count();
    assert!(freed > 1, "the stale map's nodes are free");
    for k in 0..400u64 {
        assert_eq!(live.get(&snap, &k).unwrap(), Some(&v(k)));
        assert!(old.get(&snap, &k).unwrap().is_none(), "the emptied map");
    }
    let (answered, _) = agree::<[u8; 1000], _>(&snap, stale, 0..400, "stale");
    assert_eq!(answered, 0, "every stale look-up reaches freed space");
    agree::<[u8; 1000], _>(&snap, live.h, 0..400, "live");
    for &off in nodes.keys() {
        for root in around(off) {
            agree::<[u8; 1000], _>(&snap, Handle { root, len: 1 }, 0..40, "near a stale node");
        }
    }
}

/// The one-bit node test against the free ranges' index, at every 16-byte offset around
/// holes at page boundaries, for node sizes up to a page: 4 KiB pages and, past 32 GiB,
/// 512 KiB ones.
#[test]
fn the_node_test_never_misses_a_free_byte_at_page_edges() {
    for big in [false, true] {
        let page: u64 = if big { 1 << 19 } else { 4096 };
        for (gap, len) in [(0, 16), (16, 16), (page - 16, 16), (page - 16, 32), (0, page)] {
            let mut a = Allocator::new();
            // The hole starts `gap` bytes into a page, a few pages in.
            let lead = 4 * page - DATA_START + gap;
            a.alloc(lead, 0).unwrap();
            let hole = a.alloc(len, 0).unwrap();
            assert_eq!(hole, 4 * page + gap);
            // Past 32 GiB (2^41 bytes): pages of 2^19 bytes.
            let rest = if big { (1 << 41) - a.end() } else { 16 * page };
            a.alloc(rest, 0).unwrap();
            a.free(hole, len, 1).unwrap();
            let pages = FreePages::of(&a);
            let mut seen = 0;
            for off in (2 * page..7 * page).step_by(16) {
                for size in [16, 48, 2096, 4080, 4096] {
                    if a.overlaps_free(off, size) {
                        seen += 1;
                        assert!(
                            pages.may_overlap_node(off, size),
                            "page {page}: hole {hole}+{len}: node {off}+{size}"
                        );
                    }
                }
            }
            assert!(seen > 0);
        }
    }
}
