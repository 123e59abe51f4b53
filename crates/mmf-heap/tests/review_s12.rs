//! The hostile review of round 12 (578ac03: a write transaction's blocks in an arena whose
//! freed ranges are reused by length; since its finding, nodes only): blocks freed and made again in one transaction keep
//! their own bytes (no two live blocks share memory, a reused range is zeroed again),
//! blocks of every size class (one chunk, one byte over, larger than the arena's largest
//! region), collections churned in one transaction against std's maps, a dropped
//! transaction, reads from several threads, and the memory a transaction's churn holds.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use mmf_heap::zerocopy::{FromBytes, IntoBytes};
use mmf_heap::{FileBackend, Heap, HeapOptions, PBytes, PHashMap, PMap, PVec, WriteTxn};

/// The tests take turns: the memory tests measure the process's resident set.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn open(path: &Path) -> Heap<FileBackend> {
    // SAFETY: only this test, through mmf-heap, writes the file.
    unsafe { Heap::open(path, HeapOptions::new().create(true)) }.unwrap()
}

/// Block `seed`'s bytes: no two seeds give the same string of a length over 8.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes()[..(len - out.len()).min(8)]);
    }
    out
}

/// `b` widened to its block's padded length (a multiple of 16): the padding must read as
/// zeros, whatever the range held before.
fn padded(b: PBytes) -> PBytes {
    let [off, len] = <[u64; 2]>::read_from_bytes(b.as_bytes()).unwrap();
    <PBytes>::read_from_bytes([off, len.next_multiple_of(16)].as_bytes()).unwrap()
}

fn check_block<B: mmf_heap::Backend>(tx: &WriteTxn<'_, B>, b: PBytes, seed: u64, len: usize) {
    let got = tx.read_bytes(b).unwrap();
    assert!(got == pattern(seed, len), "block {seed} ({len} bytes) changed");
    let wide = tx.read_bytes(padded(b)).unwrap();
    assert!(wide[len..].iter().all(|&x| x == 0), "block {seed}: padding not zero: {wide:?}");
}

/// In one transaction, byte strings of a few lengths (so that freed ranges are reused
/// again and again) are made and freed at random; every live one keeps its bytes and
/// zero padding while others are freed and made, and after the commit in the file.
#[test]
fn blocks_freed_and_made_again_in_one_transaction_keep_their_own_bytes() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s12-churn.heap");
    let lens = [1usize, 8, 15, 16, 17, 31, 100, 4095, 4096, 4097, 70_000];
    let mut rng = Rng(0x5eed_0012);
    let mut live: Vec<(PBytes, u64, usize)> = Vec::new();
    {
        let heap = open(&path);
        let mut tx = heap.write().unwrap();
        for op in 0..12_000u64 {
            if live.is_empty() || rng.below(100) < 55 {
                let len = lens[rng.below(lens.len() as u64) as usize];
                let b = tx.bytes(&pattern(op, len)).unwrap();
                live.push((b, op, len));
            } else {
                let (b, seed, len) = live.swap_remove(rng.below(live.len() as u64) as usize);
                check_block(&tx, b, seed, len);
                tx.free_bytes(b).unwrap();
            }
            if op % 1000 == 999 {
                for &(b, seed, len) in &live {
                    check_block(&tx, b, seed, len);
                }
            }
        }
        for &(b, seed, len) in &live {
            check_block(&tx, b, seed, len);
        }
        let mut list: PVec<[u64; 2]> = PVec::default();
        for &(b, _, _) in &live {
            list.push(&mut tx, &<[u64; 2]>::read_from_bytes(b.as_bytes()).unwrap()).unwrap();
        }
        tx.set_root("list", &list).unwrap();
        tx.commit().unwrap();
    }
    let heap = open(&path);
    let snap = heap.read().unwrap();
    snap.verify().unwrap();
    let list: PVec<[u64; 2]> = snap.root("list").unwrap().unwrap();
    assert_eq!(list.len(), live.len() as u64);
    for (i, &(_, seed, len)) in live.iter().enumerate() {
        let raw = *list.get(&snap, i as u64).unwrap().unwrap();
        let b = <PBytes>::read_from_bytes(raw.as_bytes()).unwrap();
        assert!(snap.bytes(b).unwrap() == pattern(seed, len), "block {seed} after reopen");
        let wide = snap.bytes(padded(b)).unwrap();
        assert!(wide[len..].iter().all(|&x| x == 0), "block {seed}: padding after reopen");
    }
}

/// Blocks of one chunk, one byte over, and larger than the arena's largest region (32
/// MiB) mixed with small ones in one transaction: each keeps its bytes, in the
/// transaction and in the file.
#[test]
fn blocks_of_every_size_class_keep_their_bytes_in_the_transaction_and_the_file() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s12-sizes.heap");
    let lens = [16usize, 1, 17, (32 << 20) + 16, 48, (2 << 20) - 16, 2 << 20, (33 << 20) + 1, 32];
    let mut made = Vec::new();
    {
        let heap = open(&path);
        let mut tx = heap.write().unwrap();
        assert_eq!(tx.bytes(&[]).unwrap(), PBytes::EMPTY);
        for (i, &len) in lens.iter().enumerate() {
            let b = tx.bytes(&pattern(i as u64 + 100, len)).unwrap();
            made.push(b);
            // Every block made so far is intact.
            for (j, &b) in made.iter().enumerate() {
                check_block(&tx, b, j as u64 + 100, lens[j]);
            }
        }
        // Free the first large one and make one of its length again: it gets that range.
        tx.free_bytes(made[3]).unwrap();
        made[3] = tx.bytes(&pattern(103, lens[3])).unwrap();
        for (j, &b) in made.iter().enumerate() {
            check_block(&tx, b, j as u64 + 100, lens[j]);
        }
        let list: Vec<[u64; 2]> =
            made.iter().map(|b| <[u64; 2]>::read_from_bytes(b.as_bytes()).unwrap()).collect();
        let mut v: PVec<[u64; 2]> = PVec::default();
        for x in &list {
            v.push(&mut tx, x).unwrap();
        }
        tx.set_root("sizes", &v).unwrap();
        tx.commit().unwrap();
    }
    let heap = open(&path);
    let snap = heap.read().unwrap();
    snap.verify().unwrap();
    let v: PVec<[u64; 2]> = snap.root("sizes").unwrap().unwrap();
    for (j, &len) in lens.iter().enumerate() {
        let raw = *v.get(&snap, j as u64).unwrap().unwrap();
        let b = <PBytes>::read_from_bytes(raw.as_bytes()).unwrap();
        assert!(snap.bytes(b).unwrap() == pattern(j as u64 + 100, len), "size {len} reopened");
    }
}

type Val = [u8; 200];

fn val(k: u64, v: u64) -> Val {
    let mut out = [0u8; 200];
    out.copy_from_slice(&pattern(k ^ (v << 20), 200));
    out
}

/// One transaction of many inserts and removes in a `PHashMap`, a `PMap` and a `PVec`
/// (splits and merges free nodes whose ranges the next nodes of that size take), against
/// std's maps, in the transaction and after the commit and a reopen; then a second such
/// transaction dropped without a commit changes nothing.
#[test]
fn collections_churned_in_one_transaction_match_std_and_a_dropped_one_changes_nothing() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s12-maps.heap");
    let mut rng = Rng(0xc0ff_ee12);
    let mut model: HashMap<u64, Val> = HashMap::new();
    let mut vec_model: Vec<u64> = Vec::new();
    let churn = |tx: &mut WriteTxn<'_, FileBackend>,
                 hash: &mut PHashMap<u64, Val>,
                 map: &mut PMap<u64, Val>,
                 vec: &mut PVec<u64>,
                 model: &mut HashMap<u64, Val>,
                 vec_model: &mut Vec<u64>,
                 rng: &mut Rng,
                 round: u64| {
        for i in 0..6000u64 {
            let k = rng.below(3000);
            if rng.below(100) < 40 {
                let a = hash.remove(tx, &k).unwrap();
                let b = map.remove(tx, &k).unwrap();
                let m = model.remove(&k);
                assert_eq!((a, b), (m, m), "remove {k}");
            } else {
                let v = val(k, round * 10_000 + i);
                let a = hash.insert(tx, &k, &v).unwrap();
                let b = map.insert(tx, &k, &v).unwrap();
                let m = model.insert(k, v);
                assert_eq!((a, b), (m, m), "insert {k}");
            }
            if rng.below(100) < 45 {
                assert_eq!(vec.pop(tx).unwrap(), vec_model.pop());
            } else {
                vec.push(tx, &i).unwrap();
                vec_model.push(i);
            }
        }
        for (k, v) in model.iter() {
            assert_eq!(hash.get(tx, k).unwrap(), Some(v), "hash {k} in the transaction");
            assert_eq!(map.get(tx, k).unwrap(), Some(v), "map {k} in the transaction");
        }
        for (i, x) in vec_model.iter().enumerate() {
            assert_eq!(vec.get(tx, i as u64).unwrap(), Some(x));
        }
        assert_eq!((hash.len(), map.len()), (model.len() as u64, model.len() as u64));
    };
    {
        let heap = open(&path);
        let mut tx = heap.write().unwrap();
        let (mut hash, mut map, mut vec) = (PHashMap::new(), PMap::new(), PVec::default());
        churn(&mut tx, &mut hash, &mut map, &mut vec, &mut model, &mut vec_model, &mut rng, 0);
        tx.set_root("hash", &hash).unwrap();
        tx.set_root("map", &map).unwrap();
        tx.set_root("vec", &vec).unwrap();
        tx.commit().unwrap();
    }
    let check = |heap: &Heap<FileBackend>| {
        let snap = heap.read().unwrap();
        snap.verify().unwrap();
        let hash: PHashMap<u64, Val> = snap.root("hash").unwrap().unwrap();
        let map: PMap<u64, Val> = snap.root("map").unwrap().unwrap();
        let vec: PVec<u64> = snap.root("vec").unwrap().unwrap();
        hash.verify(&snap).unwrap();
        map.verify(&snap).unwrap();
        vec.verify(&snap).unwrap();
        let sorted: BTreeMap<u64, Val> = model.iter().map(|(k, v)| (*k, *v)).collect();
        let got: Vec<(u64, Val)> =
            map.iter(&snap).map(|e| e.map(|(k, v)| (k, *v))).collect::<Result<_, _>>().unwrap();
        assert!(got == sorted.into_iter().collect::<Vec<_>>(), "map after reopen");
        for (k, v) in &model {
            assert_eq!(hash.get(&snap, k).unwrap(), Some(v), "hash {k} after reopen");
        }
        assert_eq!(hash.len(), model.len() as u64);
        let got: Vec<u64> = vec.iter(&snap).map(|e| e.copied()).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, vec_model);
    };
    {
        let heap = open(&path);
        check(&heap);
        // A second churn, dropped: the heap stays as the first commit left it.
        let mut tx = heap.write().unwrap();
        let mut hash: PHashMap<u64, Val> = tx.root("hash").unwrap().unwrap();
        let mut map: PMap<u64, Val> = tx.root("map").unwrap().unwrap();
        let mut vec: PVec<u64> = tx.root("vec").unwrap().unwrap();
        let (mut m2, mut v2) = (model.clone(), vec_model.clone());
        churn(&mut tx, &mut hash, &mut map, &mut vec, &mut m2, &mut v2, &mut rng, 1);
        tx.set_root("hash", &hash).unwrap();
        drop(tx);
        check(&heap);
    }
    check(&open(&path));
}

/// A transaction's blocks read from several threads at once through `&WriteTxn` (the
/// arena's `Sync`): each thread sees every block's bytes.
#[test]
fn a_transactions_blocks_read_from_several_threads() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let heap = open(&dir.path().join("s12-threads.heap"));
    let mut tx = heap.write().unwrap();
    let blocks: Vec<(PBytes, usize)> = (0..2000u64)
        .map(|i| {
            let len = 1 + (i as usize * 37) % 5000;
            (tx.bytes(&pattern(i, len)).unwrap(), len)
        })
        .collect();
    let tx = &tx;
    std::thread::scope(|s| {
        for t in 0..4 {
            let blocks = &blocks;
            s.spawn(move || {
                for (i, &(b, len)) in blocks.iter().enumerate().skip(t) {
                    assert!(tx.bytes_ref(b).unwrap() == pattern(i as u64, len));
                }
            });
        }
    });
}

/// The process's resident set, in bytes (Linux).
#[cfg(target_os = "linux")]
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// A block of 1 MiB made and freed 300 times in one transaction takes the same range each
/// time: the transaction's memory does not grow by 300 MiB (it would if the arena kept
/// freed ranges and never gave them out again).
#[cfg(target_os = "linux")]
#[test]
fn a_block_made_and_freed_again_and_again_reuses_its_memory() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let heap = open(&dir.path().join("s12-same.heap"));
    let mut tx = heap.write().unwrap();
    let data = pattern(7, 1 << 20);
    let b = tx.bytes(&data).unwrap();
    tx.free_bytes(b).unwrap();
    let before = resident();
    for _ in 0..300 {
        let b = tx.bytes(&data).unwrap();
        tx.free_bytes(b).unwrap();
    }
    let grown = resident().saturating_sub(before);
    assert!(grown < 64 << 20, "300 frees and makes of 1 MiB grew the process by {grown} bytes");
    tx.commit().unwrap();
}

/// Review 12's finding (failed at 578ac03, passes at ad083fa and since the fix): a byte
/// string rewritten ever longer in one transaction (free the old, make the new: a growing
/// log or blob) holds only the live one, ~1.2 MB at the end. 578ac03's arena gave a freed
/// range only to a block of exactly its length, so each of the 300 freed lengths stayed
/// held until the transaction ended: 4 KiB * 300 * 301 / 2 = ~185 MB, quadratic in the
/// number of rewrites. Now only nodes (a few lengths per program) are pooled.
#[cfg(target_os = "linux")]
#[test]
fn a_blob_rewritten_ever_longer_in_one_transaction_does_not_hold_every_old_length() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let heap = open(&dir.path().join("s12-grow.heap"));
    let mut tx = heap.write().unwrap();
    let data = pattern(9, 300 * 4096);
    let before = resident();
    let mut blob = tx.bytes(&data[..4096]).unwrap();
    for i in 2..=300usize {
        let next = tx.bytes(&data[..i * 4096]).unwrap();
        tx.free_bytes(blob).unwrap();
        blob = next;
    }
    let grown = resident().saturating_sub(before);
    assert!(tx.read_bytes(blob).unwrap() == data);
    assert!(
        grown < 64 << 20,
        "a 1.2 MB blob rewritten 300 times in one transaction grew the process by {grown} bytes"
    );
    tx.commit().unwrap();
}
