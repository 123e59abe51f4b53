//! `PVec`: the radix tree against `Vec` over random pushes, pops and sets across
//! transactions, through the heights (a leaf, one branch level, two), with old snapshots
//! keeping their version.

mod common;

use common::sim::Rng;
use mmf_heap::{Error, Heap, HeapOptions, MemoryBackend, PVec};

fn check(heap: &Heap<impl mmf_heap::Backend>, model: &[u64]) {
    let snap = heap.read().unwrap();
    let v: PVec<u64> = snap.root("v").unwrap().unwrap_or_default();
    v.verify(&snap).unwrap();
    assert_eq!(v.len(), model.len() as u64);
    let got: Vec<u64> = v.iter(&snap).map(|x| x.copied()).collect::<Result<_, _>>().unwrap();
    if let Some(i) = (0..got.len().max(model.len())).find(|&i| got.get(i) != model.get(i)) {
        panic!(
            "element {i} of {}/{}: {:?} != {:?}",
            got.len(),
            model.len(),
            got.get(i),
            model.get(i)
        );
    }
    for i in (0..model.len()).step_by(97) {
        assert_eq!(v.get(&snap, i as u64).unwrap(), Some(&model[i]));
    }
    assert_eq!(v.get(&snap, model.len() as u64).unwrap(), None);
    assert_eq!(v.last(&snap).unwrap(), model.last());
}

#[test]
fn random_pushes_pops_and_sets_follow_a_vec() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut rng = Rng(0xfeed);
    let mut model: Vec<u64> = Vec::new();
    for t in 0..60 {
        let mut tx = heap.write().unwrap();
        let mut v: PVec<u64> = tx.root("v").unwrap().unwrap_or_default();
        let ops = rng.below(3000);
        for _ in 0..ops {
            match (t / 20, rng.below(10)) {
                (0 | 1, 0..=6) | (2, 0..=2) => {
                    let x = rng.next();
                    v.push(&mut tx, &x).unwrap();
                    model.push(x);
                }
                (_, 7 | 8) if !model.is_empty() => {
                    let i = rng.below(model.len() as u64);
                    let x = rng.next();
                    assert_eq!(v.set(&mut tx, i, &x).unwrap(), model[i as usize]);
                    model[i as usize] = x;
                }
                _ => assert_eq!(v.pop(&mut tx).unwrap(), model.pop()),
            }
        }
        assert_eq!(v.len(), model.len() as u64);
        tx.set_root("v", &v).unwrap();
        tx.commit().unwrap();
        check(&heap, &model);
    }
}

#[test]
fn three_levels_then_back_to_empty_and_old_snapshots_stay() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: only this test writes the new file.
    let heap =
        unsafe { Heap::open(dir.path().join("v.heap"), HeapOptions::new().create(true)) }.unwrap();
    // 506 u64 per leaf, 506 children per branch: 300,000 elements need two branch levels.
    let n = 300_000u64;
    let mut tx = heap.write().unwrap();
    let mut v: PVec<u64> = PVec::new();
    for i in 0..n {
        v.push(&mut tx, &i).unwrap();
    }
    tx.set_root("v", &v).unwrap();
    tx.commit().unwrap();
    let model: Vec<u64> = (0..n).collect();
    check(&heap, &model);
    let full = heap.read().unwrap();

    let mut tx = heap.write().unwrap();
    assert!(matches!(v.set(&mut tx, n, &0), Err(Error::InvalidArgument { .. })));
    while v.len() > 10 {
        v.pop(&mut tx).unwrap();
    }
    tx.set_root("v", &v).unwrap();
    tx.commit().unwrap();
    check(&heap, &model[..10]);
    let old: PVec<u64> = full.root("v").unwrap().unwrap();
    assert_eq!(old.get(&full, n - 1).unwrap(), Some(&(n - 1)));
    assert_eq!(old.iter(&full).count() as u64, n);
    drop(full);

    let mut tx = heap.write().unwrap();
    v.clear(&mut tx).unwrap();
    tx.set_root("v", &v).unwrap();
    tx.commit().unwrap();
    check(&heap, &[]);
    // Everything the vector held is free again (and reusable once no snapshot holds it).
    let stats = heap.read().unwrap().stats();
    assert!(stats.free_bytes >= 593 * 4096, "{stats:?}"); // 593 leaves
}

#[test]
fn large_elements_get_larger_nodes() {
    let heap = Heap::create_with(MemoryBackend::new(), &HeapOptions::new()).unwrap();
    let mut tx = heap.write().unwrap();
    let mut v: PVec<[u64; 300]> = PVec::new();
    for i in 0..50u64 {
        v.push(&mut tx, &[i; 300]).unwrap();
    }
    assert_eq!(v.get(&tx, 33).unwrap().map(|x| x[299]), Some(33));
    assert_eq!(v.iter(&tx).count(), 50);
}
