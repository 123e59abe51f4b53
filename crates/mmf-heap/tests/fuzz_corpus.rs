//! The fuzz corpus, replayed on stable by `cargo test`: every seed (valid heaps a few KiB
//! long) and every minimized crasher the fuzzer found (`fuzz/regressions/`, each fixed)
//! goes through both fuzz targets' entry points, as `cargo fuzz run` would feed them.
//!
//! The seeds are made by `cargo test -p mmf-heap --test fuzz_corpus -- --ignored
//! write_seeds`; the long fuzzing run is `scripts/fuzz-heap.sh`.

use std::path::{Path, PathBuf};

use mmf_heap::fuzzing::{self, RESEAL};
use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::{Durability, Heap, HeapOptions, MemoryBackend, Off, PBytes, PStr, Persist};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(name)
}

fn files(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir(name))
        .unwrap_or_else(|e| panic!("{}: {e}", dir(name).display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_seed_and_regression_goes_through_both_targets() {
    let seeds = files("seeds");
    let regressions = files("regressions");
    assert!(seeds.len() >= 8, "the seed corpus is missing: write_seeds makes it");
    for (path, input) in seeds.iter().chain(&regressions) {
        eprintln!("{}", path.display());
        fuzzing::open_and_walk(input);
        fuzzing::open_and_commit(input);
    }
}

/// Seeds are valid heaps (else the fuzzer starts from nothing), with and without the
/// reseal knob.
#[test]
fn the_seeds_are_valid_heaps() {
    for (path, input) in files("seeds") {
        let heap = Heap::open_with(MemoryBackend::from_bytes(fuzzing::image(&input)), &read_only())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        heap.read().unwrap().verify().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// Resealing a valid heap changes nothing; resealing a damaged one makes its checksums
/// hold again (so that the fuzzer gets past them).
#[test]
fn resealing_recomputes_exactly_the_checksums() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    commit_sample(&heap, 3);
    let image = heap.backend().to_bytes();
    let mut resealed = image.clone();
    fuzzing::reseal(&mut resealed);
    assert!(image == resealed, "resealing a valid heap changed it");

    // A byte of a block the last commit wrote changed: opening falls back to the other
    // slot (the commit before) — unless resealed.
    let snap = heap.read().unwrap();
    let newest = snap.txn_id();
    let name = snap.root::<PStr>("name").unwrap().unwrap();
    let at = name.as_bytes();
    let mut damaged = image.clone();
    let off = usize::try_from(at_offset(&heap, at)).unwrap();
    damaged[off] ^= 0x20;
    let open = |bytes: Vec<u8>| Heap::open_with(MemoryBackend::from_bytes(bytes), &read_only());
    assert!(open(damaged.clone()).unwrap().read().unwrap().txn_id() < newest);
    fuzzing::reseal(&mut damaged);
    let reopened = open(damaged).unwrap();
    let snap = reopened.read().unwrap();
    assert_eq!(snap.txn_id(), newest);
    snap.verify().unwrap();
}

/// The byte offset of a byte string's first byte (PBytes keeps it private).
fn at_offset(heap: &Heap<MemoryBackend>, bytes: PBytes) -> u64 {
    let image = heap.backend().to_bytes();
    let text = heap.read().unwrap().bytes(bytes).unwrap();
    image.windows(text.len()).position(|w| w == text.as_slice()).unwrap() as u64
}

fn read_only() -> HeapOptions {
    HeapOptions::new().read_only(true).clone()
}

#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
struct Entry {
    key: u64,
    name: PStr,
    next: Off<Entry>,
}

/// `commits` transactions of a small application: a linked list of entries with names,
/// a blob, a counter, roots added and removed, entries freed.
fn commit_sample<B: mmf_heap::Backend>(heap: &Heap<B>, commits: u64) {
    for i in 0..commits {
        let mut tx = heap.write().unwrap();
        let head = tx.root::<Off<Entry>>("list").unwrap().unwrap_or(Off::NULL);
        let name = tx.str(&format!("entry {i}")).unwrap();
        let entry = tx.alloc(&Entry { key: i, name, next: head }).unwrap();
        tx.set_root("list", &entry).unwrap();
        tx.set_root("count", &(i + 1)).unwrap();
        let label = tx.str(&format!("fuzz seed, commit {i}.")).unwrap();
        tx.set_root("name", &label).unwrap();
        if i % 2 == 1 {
            let blob: Vec<u8> = (0..200 + i * 50).map(|b| (b * 7 + i) as u8).collect();
            let blob = tx.bytes(&blob).unwrap();
            if let Some(old) = tx.root::<PBytes>("blob").unwrap() {
                tx.free_bytes(old).unwrap();
            }
            tx.set_root("blob", &blob).unwrap();
        }
        if i % 3 == 2 && !head.is_null() {
            let old = tx.get(head).unwrap();
            tx.free_str(old.name).unwrap();
            tx.free(head).unwrap();
            let kept = tx.alloc(&Entry { next: old.next, ..tx.get(entry).unwrap() }).unwrap();
            tx.free(entry).unwrap();
            tx.set_root("list", &kept).unwrap();
        }
        if i == 4 {
            tx.remove_root("count");
        }
        let durability = match i % 4 {
            1 => Durability::None,
            3 => Durability::TwoPhase,
            _ => Durability::Immediate,
        };
        tx.commit_with(durability).unwrap();
    }
}

/// An input: the knob byte, then the image without its trailing zeros.
fn input(knob: u8, image: &[u8]) -> Vec<u8> {
    let end = image.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut out = vec![knob];
    out.extend_from_slice(&image[..end]);
    out
}

/// Writes the seed corpus (`fuzz/seeds/`): heaps after 0 to 9 commits of the sample
/// application, each with the knobs that choose the durability and the changes of the
/// commit target, and one whose newest slot is torn (the open falls back).
#[test]
#[ignore = "writes the seed corpus: run by hand after a format change"]
fn write_seeds() {
    let seeds = dir("seeds");
    std::fs::create_dir_all(&seeds).unwrap();
    for (path, _) in files("seeds") {
        std::fs::remove_file(path).unwrap();
    }
    let write = |name: &str, knob: u8, image: &[u8]| {
        let input = input(knob, image);
        assert!(input.len() < 48 * 1024, "{name}: a seed stays small ({} bytes)", input.len());
        std::fs::write(seeds.join(name), input).unwrap();
    };
    for (commits, knob) in [(0, 0), (1, 0x04), (2, 0x08), (3, 0x0e), (5, 0x01), (9, 0x07)] {
        let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
        commit_sample(&heap, commits);
        let image = heap.backend().to_bytes();
        write(&format!("commits-{commits}"), knob, &image);
        write(&format!("commits-{commits}-reseal"), knob | RESEAL, &image);
    }
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    commit_sample(&heap, 4);
    let mut image = heap.backend().to_bytes();
    let newest = heap.read().unwrap().txn_id();
    let txn_at = |slot: usize| u64::from_le_bytes(image[slot + 8..slot + 16].try_into().unwrap());
    let slot = if txn_at(512) == newest { 512 } else { 1024 };
    image[slot + 40] ^= 1;
    write("torn-newest-slot", 0x02, &image);
    // Collections, so that mutations start from real nodes (the walk follows them by
    // their stored shapes).
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    commit_collections(&heap);
    let image = heap.backend().to_bytes();
    let snap = heap.read().unwrap();
    let reached = snap.verify_reachable().unwrap();
    assert_eq!((reached.collections, reached.strings), (3, 0), "{reached:?}");
    drop(snap);
    write("collections", 0x00, &image);
    write("collections-reseal", 0x04 | RESEAL, &image);
    // An ordered map of two levels, which the walk looks up by both paths (hot and
    // checked) as the type the fuzz entry points know, `PMap<u64, u8>`.
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut map: mmf_heap::PMap<u64, u8> = mmf_heap::PMap::new();
    for k in 0..1200u64 {
        map.insert(&mut tx, &k, &(k as u8)).unwrap();
    }
    tx.set_root("ordered", &map).unwrap();
    tx.commit().unwrap();
    let image = heap.backend().to_bytes();
    write("ordered", 0x00, &image);
    write("ordered-reseal", 0x04 | RESEAL, &image);
}

/// A hash map with a directory over two buckets and an ordered map of a vector, then a
/// commit that changes one key of the hash map (copied nodes, freed old ones).
fn commit_collections<B: mmf_heap::Backend>(heap: &Heap<B>) {
    use mmf_heap::{PHashMap, PMap, PVec};
    let mut tx = heap.write().unwrap();
    let mut hash: PHashMap<u64, u8> = PHashMap::new();
    for k in 0..240u64 {
        hash.insert(&mut tx, &k, &(k as u8)).unwrap();
    }
    let mut list = PVec::new();
    for i in 0..5u16 {
        list.push(&mut tx, &(i * 10)).unwrap();
    }
    let mut map: PMap<PStr, PVec<u16>> = PMap::new();
    map.insert(&mut tx, "list", &list).unwrap();
    tx.set_root("hash", &hash).unwrap();
    tx.set_root("map", &map).unwrap();
    tx.commit().unwrap();
    let mut tx = heap.write().unwrap();
    hash.insert(&mut tx, &7, &70).unwrap();
    tx.set_root("hash", &hash).unwrap();
    tx.commit().unwrap();
}
