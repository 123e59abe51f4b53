//! The heap's collections side by side with std's in one run (issue #16), 1M u64 keys →
//! 64-byte values (the LMDB/redb anchors are for the same shape; heed and redb are
//! measured in `benches/heap.rs`):
//!
//! - `heap_insert_1M`: 1M inserts in random key order into an empty `PHashMap` / `PMap`
//!   in one write transaction, the commit included (one `fdatasync` of ~100 MB), and the
//!   same without the commit (`_no_commit`: the inserts alone, in memory), vs std
//!   `HashMap` inserts in memory; one iteration is the whole million;
//! - `heap_get_1M`: random gets of present keys from a snapshot (a reference into the
//!   mapping) vs std `HashMap::get`.
//!
//! `cargo bench -p mmf-bench --bench heap_collections`, then `scripts/bench-ratios.py`.
//! The heap files live under Cargo's target temp dir (the disk file system of `target/`).

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mmf_heap::{Heap, HeapOptions, PHashMap, PMap};

/// The keys: 1M (10k in the report's quick mode).
fn n() -> u64 {
    if mmf_bench::quick() { 10_000 } else { 1_000_000 }
}
type Value = [u8; 64];

/// The keys 0..n() in a random order (xorshift Fisher-Yates, fixed seed).
fn keys() -> Vec<u64> {
    let mut keys: Vec<u64> = (0..n()).collect();
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..keys.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        keys.swap(i, (s % (i as u64 + 1)) as usize);
    }
    keys
}

fn value(k: u64) -> Value {
    [k as u8; 64]
}

fn heap_in(dir: &Path, name: &str) -> Heap {
    let _ = std::fs::remove_file(dir.join(name));
    // SAFETY: only this benchmark writes its own new file.
    unsafe { Heap::open(dir.join(name), HeapOptions::new().create(true)) }.unwrap()
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn insert(c: &mut Criterion) {
    let keys = keys();
    let dir = tmpdir();
    let mut g = c.benchmark_group("heap_insert_1M");
    g.sample_size(10).measurement_time(mmf_bench::secs(20));
    for commit in [true, false] {
        let suffix = if commit { "" } else { "_no_commit" };
        g.bench_function(format!("phashmap{suffix}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let heap = heap_in(dir.path(), "h.heap");
                    let start = Instant::now();
                    let mut tx = heap.write().unwrap();
                    let mut map: PHashMap<u64, Value> = PHashMap::new();
                    for &k in &keys {
                        map.insert(&mut tx, &k, &value(k)).unwrap();
                    }
                    tx.set_root("m", &map).unwrap();
                    if commit {
                        tx.commit().unwrap();
                    }
                    total += start.elapsed();
                }
                total
            })
        });
        g.bench_function(format!("pmap{suffix}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let heap = heap_in(dir.path(), "m.heap");
                    let start = Instant::now();
                    let mut tx = heap.write().unwrap();
                    let mut map: PMap<u64, Value> = PMap::new();
                    for &k in &keys {
                        map.insert(&mut tx, &k, &value(k)).unwrap();
                    }
                    tx.set_root("m", &map).unwrap();
                    if commit {
                        tx.commit().unwrap();
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.bench_function("std_hashmap", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut map: HashMap<u64, Value> = HashMap::new();
                for &k in &keys {
                    map.insert(k, value(k));
                }
                total += start.elapsed();
                drop(black_box(map));
            }
            total
        })
    });
    g.finish();
}

fn get(c: &mut Criterion) {
    let keys = keys();
    let dir = tmpdir();
    let heap = heap_in(dir.path(), "get.heap");
    let mut tx = heap.write().unwrap();
    let mut hash: PHashMap<u64, Value> = PHashMap::new();
    let mut tree: PMap<u64, Value> = PMap::new();
    for &k in &keys {
        hash.insert(&mut tx, &k, &value(k)).unwrap();
        tree.insert(&mut tx, &k, &value(k)).unwrap();
    }
    tx.set_root("hash", &hash).unwrap();
    tx.set_root("tree", &tree).unwrap();
    tx.commit().unwrap();
    let snap = heap.read().unwrap();
    let std_map: HashMap<u64, Value> = keys.iter().map(|&k| (k, value(k))).collect();
    // Look-ups in another random order than the inserts.
    let order: Vec<u64> = keys.iter().rev().copied().collect();

    let mut g = c.benchmark_group("heap_get_1M");
    let mut i = 0;
    g.bench_function("phashmap", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            black_box(hash.get(&snap, &order[i]).unwrap().unwrap()[0])
        })
    });
    g.bench_function("pmap", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            black_box(tree.get(&snap, &order[i]).unwrap().unwrap()[0])
        })
    });
    g.bench_function("std_hashmap", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            black_box(std_map.get(&order[i]).unwrap()[0])
        })
    });
    g.finish();
}

criterion_group!(heap_collections, get, insert);
criterion_main!(heap_collections);
