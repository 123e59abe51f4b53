//! Damaged collection nodes: a bad header field is `Error::Corrupted` naming the node's
//! offset; a damaged value is caught by `verify` (the node checksum); and damage to any
//! byte of a node makes every operation return a value or an error — never a panic, a
//! hang or an out-of-bounds read.

use mmf_heap::{Error, Heap, HeapOptions, MemoryBackend, PHashMap, PMap, PStr, PVec};

type Map = PMap<PStr, u64>;
type Vector = PVec<u64>;
type Hash = PHashMap<u64, [u8; 24]>;

/// A heap image holding a map, a vector and a hash map (several nodes each), committed
/// one transaction before the last, so that opening does not check their bytes against
/// the manifest.
fn image() -> Vec<u8> {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut map = Map::new();
    for i in 0..400u64 {
        map.insert(&mut tx, &format!("name-{i:05}-with-a-longer-tail"), &i).unwrap();
    }
    let mut vec = Vector::new();
    for i in 0..2000u64 {
        vec.push(&mut tx, &i).unwrap();
    }
    let mut hash = Hash::new();
    for i in 0..1500u64 {
        hash.insert(&mut tx, &i, &[i as u8; 24]).unwrap();
    }
    tx.set_root("map", &map).unwrap();
    tx.set_root("vec", &vec).unwrap();
    tx.set_root("hash", &hash).unwrap();
    tx.commit().unwrap();
    let mut tx = heap.write().unwrap();
    tx.set_root("unrelated", &1u64).unwrap();
    tx.commit().unwrap();
    heap.backend().to_bytes()
}

fn open(image: Vec<u8>) -> Heap<MemoryBackend> {
    Heap::open_with(MemoryBackend::from_bytes(image), &HeapOptions::new()).unwrap()
}

/// The offset of a collection's root node: the first 8 bytes of its handle.
fn root_of(heap: &Heap<MemoryBackend>, name: &str) -> u64 {
    let handle: [u64; 2] = match name {
        "map" => zerocopy_words(heap.read().unwrap().root::<Map>(name).unwrap().unwrap()),
        "vec" => zerocopy_words(heap.read().unwrap().root::<Vector>(name).unwrap().unwrap()),
        _ => zerocopy_words(heap.read().unwrap().root::<Hash>(name).unwrap().unwrap()),
    };
    handle[0] & !15
}

fn zerocopy_words<T: mmf_heap::zerocopy::IntoBytes + mmf_heap::zerocopy::Immutable>(
    v: T,
) -> [u64; 2] {
    let b = v.as_bytes();
    [
        u64::from_le_bytes(b[..8].try_into().unwrap()),
        u64::from_le_bytes(b[8..16].try_into().unwrap()),
    ]
}

/// Every read and write of all three collections; panics only if the heap does.
fn exercise(heap: &Heap<MemoryBackend>) -> Vec<Result<(), Error>> {
    let mut results = Vec::new();
    let snap = heap.read().unwrap();
    let map: Map = snap.root("map").unwrap().unwrap();
    let vec: Vector = snap.root("vec").unwrap().unwrap();
    let hash: Hash = snap.root("hash").unwrap().unwrap();
    results.push(map.get(&snap, "name-00123-with-a-longer-tail").map(drop));
    results.push(map.iter(&snap).try_for_each(|e| e.map(drop)));
    results.push(
        map.range(&snap, (std::ops::Bound::Excluded("name-002"), std::ops::Bound::Unbounded))
            .try_for_each(|e| e.map(drop)),
    );
    results.push(map.verify(&snap));
    results.push(vec.get(&snap, 1234).map(drop));
    results.push(vec.iter(&snap).try_for_each(|e| e.map(drop)));
    results.push(vec.verify(&snap));
    results.push(hash.get(&snap, &777).map(drop));
    results.push(hash.iter(&snap).try_for_each(|e| e.map(drop)));
    results.push(hash.verify(&snap));
    drop(snap);
    let mut tx = heap.write().unwrap();
    let (mut map2, mut vec2, mut hash2) = (map, vec, hash);
    results.push(map2.insert(&mut tx, "a new key", &1).map(drop));
    results.push(map2.remove(&mut tx, "name-00200-with-a-longer-tail").map(drop));
    results.push(vec2.push(&mut tx, &5));
    results.push(vec2.set(&mut tx, 10, &5).map(drop));
    results.push(vec2.pop(&mut tx).map(drop));
    results.push(hash2.insert(&mut tx, &5000, &[1; 24]).map(drop));
    results.push(hash2.remove(&mut tx, &3).map(drop));
    drop(tx);
    let mut tx = heap.write().unwrap();
    let (mut m, mut v, mut h) = (map, vec, hash);
    results.push(m.clear(&mut tx));
    results.push(v.clear(&mut tx));
    results.push(h.clear(&mut tx));
    drop(tx);
    results
}

#[test]
fn bad_header_fields_are_corrupted_at_the_nodes_offset() {
    let image = image();
    let heap = open(image.clone());
    let results = exercise(&heap);
    assert!(results.iter().all(Result::is_ok), "the undamaged heap works: {results:?}");
    for name in ["map", "vec", "hash"] {
        let root = root_of(&heap, name) as usize;
        // magic, kind, level, size, count, heap start, width, writer txn
        for (field, at, value) in [
            ("magic", 0, &[0u8][..]),
            ("kind", 4, &[9]),
            ("level", 5, &[7]),
            ("size", 9, &[0x7f]),
            ("count", 14, &[0x7f]),
            ("heap", 16, &[8, 0, 0, 0]),
            ("width", 21, &[1]),
            ("txn", 31, &[0x10]),
        ] {
            let mut bad = image.clone();
            bad[root + at..root + at + value.len()].copy_from_slice(value);
            let heap = open(bad);
            let snap = heap.read().unwrap();
            let err = match name {
                "map" => snap.root::<Map>(name).unwrap().unwrap().get(&snap, "x").map(drop),
                "vec" => snap.root::<Vector>(name).unwrap().unwrap().get(&snap, 0).map(drop),
                _ => snap.root::<Hash>(name).unwrap().unwrap().get(&snap, &1).map(drop),
            };
            match err {
                Err(Error::Corrupted { what, offset }) => {
                    assert!(what.starts_with("collection node"), "{name} {field}: {what}");
                    // A wrong level may show at the child whose level no longer fits.
                    if field != "level" {
                        assert_eq!(offset, root as u64, "{name} {field}");
                    }
                }
                other => panic!("{name} {field}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_damaged_value_fails_the_checksum() {
    let image = image();
    let heap = open(image.clone());
    let root = root_of(&heap, "vec") as usize;
    let snap = heap.read().unwrap();
    let vec: Vector = snap.root("vec").unwrap().unwrap();
    // The first leaf: child 0 of the root branch.
    let leaf = u64::from_le_bytes(image[root + 48..root + 56].try_into().unwrap()) as usize;
    drop(snap);
    let mut bad = image.clone();
    bad[leaf + 48 + 8 * 5] ^= 0x01; // element 5
    let heap = open(bad);
    let snap = heap.read().unwrap();
    assert_eq!(vec.get(&snap, 5).unwrap(), Some(&4), "a read sees the wrong value...");
    assert!(
        matches!(vec.verify(&snap), Err(Error::Corrupted { offset, .. }) if offset == leaf as u64),
        "...and the full check names the node"
    );
}

#[test]
fn any_damaged_byte_of_a_node_is_an_error_or_a_value_never_a_panic() {
    let image = image();
    let heap = open(image.clone());
    let mut nodes: Vec<usize> =
        ["map", "vec", "hash"].iter().map(|n| root_of(&heap, n) as usize).collect();
    // And a leaf of each: the first child of the map's and the vector's roots, and the
    // hash map's first bucket.
    for &root in &nodes.clone()[..2] {
        nodes.push(
            u64::from_le_bytes(image[root + 48..root + 56].try_into().unwrap()) as usize & !15,
        );
    }
    let hash_root = nodes[2];
    nodes.push(
        u64::from_le_bytes(image[hash_root + 48..hash_root + 56].try_into().unwrap()) as usize
            & !15,
    );
    let mut errors = 0;
    for &node in &nodes {
        for at in (0..4096).step_by(11) {
            let mut bad = image.clone();
            if node + at >= bad.len() {
                break;
            }
            bad[node + at] ^= 0xff;
            let heap = open(bad);
            errors += exercise(&heap).iter().filter(|r| r.is_err()).count();
        }
    }
    assert!(errors > 1000, "damage was noticed: {errors} errors");
}
