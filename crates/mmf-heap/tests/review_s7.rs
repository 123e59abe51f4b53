//! The hostile review of issue #16, round 7 (2026-12-01): a stale collection handle read
//! through a newer snapshot; a lock area planted in `/dev/shm`.

use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::{Error, Heap, HeapOptions, PMap};

/// A `PMap` handle kept from before a transaction that replaced its nodes (copy-on-write
/// frees them), read through a snapshot of the newer commit: its nodes lie in space that
/// commit holds free, which the next writer may reuse while the snapshot lives. A `&V`
/// into them must be refused (as `get_ref` refuses a freed block), or its bytes change.
#[test]
fn a_stale_map_handle_gives_no_reference_into_freed_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.heap");
    // SAFETY: only this test, through mmf-heap, writes the file.
    let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap();
    let mut tx = heap.write().unwrap();
    let mut map: PMap<u64, u64> = PMap::default();
    for k in 0..8 {
        map.insert(&mut tx, &k, &0x1111).unwrap();
    }
    tx.set_root("m", &map).unwrap();
    tx.commit().unwrap();
    let stale = map;
    // Replaces the map's nodes: the old ones are free in the new commit.
    let mut tx = heap.write().unwrap();
    let mut map: PMap<u64, u64> = tx.root("m").unwrap().unwrap();
    map.insert(&mut tx, &0, &0x2222).unwrap();
    tx.set_root("m", &map).unwrap();
    tx.commit().unwrap();

    let snap = heap.read().unwrap();
    let got = match stale.get(&snap, &3) {
        // Refused: the reference never exists.
        Err(Error::InvalidArgument { .. }) => return,
        Err(e) => panic!("expected the use-after-free refusal, got {e:?}"),
        Ok(v) => v.expect("key 3"),
    };
    assert_eq!(*got, 0x1111);
    // Writers fill the free space (which the snapshot's commit holds free).
    for round in 0..4 {
        let mut tx = heap.write().unwrap();
        for n in [16usize, 64, 256, 1024, 4096] {
            let b = tx.bytes(&vec![0xAB; n]).unwrap();
            tx.set_root(&format!("fill{round}-{n}"), &b).unwrap();
        }
        tx.commit().unwrap();
    }
    assert_eq!(
        *got, 0x1111,
        "the &u64 a snapshot handed out (from a stale handle's freed node) changed under it"
    );
    panic!("a snapshot handed out a reference into a node its commit holds free");
}

/// Something else where a heap's lock area goes (another user who can read the heap file
/// can work out its name and plant one): opening the heap fails, and the error names the
/// object and says how to get rid of it, not advice no option can follow.
#[cfg(target_os = "linux")]
#[test]
fn a_planted_lock_area_is_named_with_what_to_do() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("planted.heap");
    let meta_name = |path: &std::path::Path| {
        let meta = std::fs::metadata(path).unwrap();
        format!("mmf-heap-{:x}-{:x}-", meta.dev(), meta.ino())
    };
    // SAFETY: only this test, through mmf-heap, writes the file.
    let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap();
    let prefix = meta_name(&path);
    let name = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.starts_with(&prefix))
        .expect("the open heap's lock area is in /dev/shm");
    drop(heap);
    let planted = format!("/dev/shm/{name}");
    std::fs::write(&planted, [0xa5u8; 100]).unwrap();
    // SAFETY: as above.
    let err = unsafe { Heap::open(&path, &HeapOptions::new()) }.err().map(|e| e.to_string());
    let _ = std::fs::remove_file(&planted);
    let err = err.expect("a garbage lock area is refused");
    assert!(
        err.contains(&planted) && err.contains(&format!("mmf shm rm {name}")),
        "the error names the object and how to remove it: {err}"
    );
    // Removed, the heap opens again.
    // SAFETY: as above.
    unsafe { Heap::open(&path, &HeapOptions::new()) }.unwrap();
}

/// Damage to a collection nested deep in a root, written by an older commit: the last
/// commit's check (`verify`) does not read it, `dump` shows only the first entries, but
/// `verify_reachable` (what `mmf heap check` runs too) walks everything the roots reach.
#[test]
fn damage_deep_in_a_nested_collection_is_found_by_the_reachable_check() {
    use mmf_heap::PVec;
    use mmf_heap::zerocopy::IntoBytes;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.heap");
    let open = || {
        // SAFETY: only this test, through mmf-heap, writes the file (flips happen while
        // it is closed).
        unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap()
    };
    let heap = open();
    let mut tx = heap.write().unwrap();
    let mut outer: PMap<u64, PVec<u64>> = PMap::default();
    for k in 0..50u64 {
        let mut v = PVec::default();
        for i in 0..600 {
            v.push(&mut tx, &(k * 1000 + i)).unwrap();
        }
        outer.insert(&mut tx, &k, &v).unwrap();
    }
    tx.set_root("outer", &outer).unwrap();
    tx.commit().unwrap();
    // A later commit that writes something else: the nested vectors are old blocks.
    let mut tx = heap.write().unwrap();
    tx.set_root("other", &7u64).unwrap();
    tx.commit().unwrap();
    let snap = heap.read().unwrap();
    let outer: PMap<u64, PVec<u64>> = snap.root("outer").unwrap().unwrap();
    let deep = *outer.get(&snap, &45).unwrap().unwrap();
    let reached = snap.verify_reachable().unwrap();
    assert_eq!((reached.roots, reached.collections, reached.opaque_roots), (2, 51, 0));
    let node = u64::from_le_bytes(deep.as_bytes()[..8].try_into().unwrap());
    drop(snap);
    drop(heap);

    // One byte of the 46th vector's root node, past its header.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[node as usize + 64] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let heap = open();
    let snap = heap.read().unwrap();
    snap.verify().expect("the last commit's own blocks are sound");
    let err = snap.verify_reachable().expect_err("the damaged node is reached");
    assert!(
        matches!(err, Error::Corrupted { offset, .. } if offset == node),
        "named at the node's offset {node}: {err:?}"
    );
}

mod reach {
    use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    use mmf_heap::{Heap, MemoryBackend, PStr, PVec, Persist};

    /// A tree whose children are a vector of itself (a type recursive through a
    /// collection, as a trie is).
    #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
    #[zerocopy(crate = "mmf_heap::zerocopy")]
    #[repr(C)]
    struct Node {
        depth: u64,
        pad: u64,
        kids: PVec<Node>,
    }

    /// A chain 300 nodes deep through collections checks out (each level was two levels
    /// of recursion: a sound heap failed past about 128).
    #[test]
    fn a_tree_deep_through_collections_checks_out() {
        let heap = Heap::create_with(MemoryBackend::new(), &Default::default()).unwrap();
        let mut tx = heap.write().unwrap();
        let mut below = PVec::<Node>::new();
        for depth in (0..300u64).rev() {
            let mut level = PVec::new();
            level.push(&mut tx, &Node { depth, pad: 0, kids: below }).unwrap();
            below = level;
        }
        tx.set_root("tree", &below).unwrap();
        tx.commit().unwrap();
        let reached = heap.read().unwrap().verify_reachable().unwrap();
        assert_eq!((reached.roots, reached.collections), (1, 301));
    }

    /// One string shared by 10,000 elements is checked once (each copy cost a full UTF-8
    /// check of its 1 MiB before: 10 GB of work for a 1 MiB heap).
    #[test]
    fn a_shared_string_is_checked_once() {
        let heap = Heap::create_with(MemoryBackend::new(), &Default::default()).unwrap();
        let mut tx = heap.write().unwrap();
        let s: PStr = tx.str(&"x".repeat(1 << 20)).unwrap();
        let mut v = PVec::<PStr>::new();
        for _ in 0..10_000 {
            v.push(&mut tx, &s).unwrap();
        }
        tx.set_root("v", &v).unwrap();
        tx.commit().unwrap();
        let reached = heap.read().unwrap().verify_reachable().unwrap();
        assert_eq!((reached.collections, reached.strings), (1, 1));
        let _ = Node::TYPE_HASH;
    }

    /// A pointer to a `u64` four bytes off its alignment: the program's typed read
    /// refuses it, so the check must not call the heap sound (it did: the walk read the
    /// target with any alignment). `dump` names it too.
    #[test]
    fn a_misaligned_pointer_is_damage() {
        use mmf_heap::Off;
        let heap = Heap::create_with(MemoryBackend::new(), &Default::default()).unwrap();
        let mut tx = heap.write().unwrap();
        let pair = tx.alloc(&[7u64, 9u64]).unwrap();
        let good: Off<u64> = Off::from_raw(pair.raw() + 8);
        tx.set_root("good", &good).unwrap();
        tx.set_root("pair", &pair).unwrap();
        tx.commit().unwrap();
        let reached = heap.read().unwrap().verify_reachable().unwrap();
        assert_eq!(reached.pointers, 2);

        let mut tx = heap.write().unwrap();
        let bad: Off<u64> = Off::from_raw(pair.raw() + 4);
        tx.set_root("bad", &bad).unwrap();
        tx.commit().unwrap();
        let snap = heap.read().unwrap();
        assert!(snap.get(bad).is_err(), "the typed read refuses it");
        let err = snap.verify_reachable().expect_err("a misaligned pointer is damage");
        assert!(err.to_string().contains("object pointer"), "{err}");
        let dumped = snap.dump("bad", mmf_heap::dump::Limits::default());
        assert!(dumped.is_err(), "dump: {dumped:?}");
    }
}

/// A struct whose pointers `verify_reachable` and `dump` follow.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
struct Holder {
    id: u64,
    p: mmf_heap::Off<u64>,
    s: mmf_heap::PStr,
}
mmf_heap::persist!(Holder { id: u64, p: mmf_heap::Off<u64>, s: mmf_heap::PStr });

/// The three ways a holder's pointer goes bad, and what the error names.
const BAD_POINTERS: [(&str, u64); 3] = [
    ("object pointer into freed space", 8),
    ("pointer to a string in freed space", 16),
    ("object pointer", 8),
];

/// Commits a holder, then damage `case` of [`BAD_POINTERS`]; checks that
/// `verify_reachable` and `dump` name the field where the bad pointer is stored.
fn bad_pointer<B: mmf_heap::Backend>(heap: &Heap<B>, case: usize, backend: &str) {
    use mmf_heap::Off;
    let mut tx = heap.write().unwrap();
    let target: Off<u64> = tx.alloc(&5).unwrap();
    let s = tx.str("text").unwrap();
    let mut holder = tx.alloc(&Holder { id: 1, p: target, s }).unwrap();
    tx.set_root("h", &holder).unwrap();
    tx.commit().unwrap();
    heap.read().unwrap().verify_reachable().unwrap();
    let mut tx = heap.write().unwrap();
    match case {
        0 => tx.free(target).unwrap(),
        1 => tx.free_str(s).unwrap(),
        _ => {
            // A pointer past the end of the file (a peer's bytes; safe code can make one).
            let wild = Off::<u64>::read_from_bytes(&(1u64 << 40).to_le_bytes()).unwrap();
            holder = tx.alloc(&Holder { id: 2, p: wild, s }).unwrap();
            tx.set_root("h", &holder).unwrap();
        }
    }
    tx.commit().unwrap();
    let (named, field) = BAD_POINTERS[case];
    let snap = heap.read().unwrap();
    let errors = [
        ("verify_reachable", snap.verify_reachable().map(|_| ()).unwrap_err()),
        ("dump", snap.dump("h", mmf_heap::dump::Limits::default()).map(|_| ()).unwrap_err()),
    ];
    for (how, err) in errors {
        match err {
            Error::Corrupted { what, offset } => {
                assert_eq!((what, offset), (named, holder.raw() + field), "{backend}, {how}");
            }
            other => panic!("{backend}, {how}, {named}: {other:?}"),
        }
    }
}

/// Review 55: a pointer stored in the heap whose target was freed (or that points out of
/// bounds) was reported by `check` and `dump` as "invalid argument" with no offset, or
/// with the offset it points at. It is damage where the pointer is stored: `Corrupted`
/// naming the holder's field, on a mapped file and on a backend read by copy.
#[test]
fn a_bad_pointer_is_damage_where_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    for case in 0..BAD_POINTERS.len() {
        let memory =
            Heap::create_with(mmf_heap::MemoryBackend::new(), &HeapOptions::new()).unwrap();
        bad_pointer(&memory, case, "memory");
        let path = dir.path().join(format!("bad-{case}.heap"));
        // SAFETY: only this test, through mmf-heap, writes the new file.
        let file = unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap();
        bad_pointer(&file, case, "file");
    }
}

/// A struct holding a collection.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
struct MapHolder {
    id: u64,
    m: PMap<u64, u64>,
}
mmf_heap::persist!(MapHolder { id: u64, m: PMap<u64, u64> });

/// Review 55, as above for a collection: a stored handle whose nodes a later commit
/// freed (a stale handle written back) is damage where the handle is stored, not
/// "invalid argument" (what a program passing a stale handle gets).
#[test]
fn a_stored_handle_into_freed_nodes_is_damage_where_it_is_stored() {
    let heap = Heap::create_with(mmf_heap::MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut m: PMap<u64, u64> = PMap::default();
    m.insert(&mut tx, &1, &1).unwrap();
    let holder = tx.alloc(&MapHolder { id: 1, m }).unwrap();
    tx.set_root("h", &holder).unwrap();
    tx.commit().unwrap();
    let mut tx = heap.write().unwrap();
    let stale = m;
    m.insert(&mut tx, &2, &2).unwrap();
    // The new map kept under another root; the holder rewritten with the stale handle.
    tx.set_root("m", &m).unwrap();
    let holder = tx.alloc(&MapHolder { id: 2, m: stale }).unwrap();
    tx.set_root("h", &holder).unwrap();
    tx.commit().unwrap();
    let snap = heap.read().unwrap();
    // A program reading through the stale handle: its argument is wrong.
    assert!(matches!(stale.get(&snap, &1), Err(Error::InvalidArgument { .. })));
    let errors = [
        snap.verify_reachable().map(|_| ()).unwrap_err(),
        snap.dump("h", mmf_heap::dump::Limits::default()).map(|_| ()).unwrap_err(),
    ];
    for err in errors {
        match err {
            Error::Corrupted { what, offset } => assert_eq!(
                (what, offset),
                ("collection handle reaching freed space", holder.raw() + 8)
            ),
            other => panic!("{other:?}"),
        }
    }
}

/// Review 57: a stale handle held by a root itself (roots are copies of the root
/// directory's bytes) still gave "invalid argument" with no offset: it is damage in the
/// root directory block, named by its offset.
#[test]
fn a_root_holding_a_handle_into_freed_nodes_names_the_root_directory() {
    use mmf_heap::format::{SLOT_OFFSETS, Slot};
    let heap = Heap::create_with(mmf_heap::MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut m: PMap<u64, u64> = PMap::default();
    m.insert(&mut tx, &1, &1).unwrap();
    tx.set_root("m", &m).unwrap();
    tx.commit().unwrap();
    let stale = m;
    let mut tx = heap.write().unwrap();
    m.insert(&mut tx, &2, &2).unwrap();
    tx.set_root("m", &stale).unwrap();
    tx.set_root("new", &m).unwrap();
    tx.commit().unwrap();
    let image = heap.backend().to_bytes();
    let slot = SLOT_OFFSETS
        .iter()
        .filter_map(|&at| Slot::parse(&image[at as usize..], at).ok())
        .max_by_key(|s| s.txn_id)
        .unwrap();
    let snap = heap.read().unwrap();
    let errors = [
        snap.verify_reachable().map(|_| ()).unwrap_err(),
        snap.dump("m", mmf_heap::dump::Limits::default()).map(|_| ()).unwrap_err(),
    ];
    for err in errors {
        match err {
            Error::Corrupted { what, offset } => assert_eq!(
                (what, offset),
                ("collection handle reaching freed space", slot.roots.off)
            ),
            other => panic!("{other:?}"),
        }
    }
}
