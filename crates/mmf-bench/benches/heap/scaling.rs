//! How mmf-heap's cost grows with the number of keys (u64 → 64 B, 1k to 10M keys; 1k and
//! 10k in quick mode), for the report's scaling charts:
//!
//! - `heap_open_vs_keys`: `Heap::open` of a heap holding one map, up to its first get (the
//!   heap filled in ten commits, then a small one, so the last commit, which opening
//!   checks, is small), `PHashMap` and `PMap`;
//! - `heap_get_vs_keys`: 1,000 random existing keys per iteration in one snapshot: mmf's
//!   two maps, LMDB through heed (one read transaction) and std `HashMap` in RAM;
//! - `heap_insert_vs_keys`: 1,000 new keys into the map in one write transaction, then
//!   dropped without a commit (the commit's `fdatasync` would hide the growth): mmf's two
//!   maps and heed (its write transaction aborted).
//!
//! Throughput is in operations per second (criterion's elements), the x axis the number of
//! keys already in the map. `MMF_HEAP_BENCH=scaling` runs only these groups.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group};
use mmf_heap::{Heap, HeapOptions, PHashMap, PMap};

use heed::EnvOpenOptions;

use crate::kv::{heed_db, random_keys};
use crate::linux::{fresh_dir, value, wanted};

/// Operations per iteration of the get and insert groups.
const OPS: usize = 1_000;
/// Keys per commit while filling, at least.
const BATCH: usize = 100_000;

fn sizes() -> &'static [usize] {
    if mmf_bench::quick() {
        &[1_000, 10_000]
    } else {
        &[1_000, 10_000, 100_000, 1_000_000, 10_000_000]
    }
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).warm_up_time(Duration::from_millis(500));
    g.measurement_time(mmf_bench::secs(2));
    g
}

fn open(path: &Path) -> Heap {
    // SAFETY: the benchmark's own file; only mmf-heap writes it.
    unsafe { Heap::open(path, HeapOptions::new().create(true)) }.unwrap()
}

/// A heap file at `path` holding `keys` in a map under root "map": filled in ten durable
/// commits (of at least [`BATCH`] keys), then one small commit, so that opening checks a
/// small last commit, as after an application's usual transaction.
macro_rules! fill {
    ($path:expr, $keys:expr, $map:ty) => {{
        let heap = open($path);
        let mut map = <$map>::new();
        for chunk in $keys.chunks(($keys.len() / 10).max(BATCH)) {
            let mut tx = heap.write().unwrap();
            for &k in chunk {
                map.insert(&mut tx, &k, &value(k)).unwrap();
            }
            tx.set_root("map", &map).unwrap();
            tx.commit().unwrap();
        }
        let mut tx = heap.write().unwrap();
        tx.set_root("filled", &($keys.len() as u64)).unwrap();
        tx.commit().unwrap();
        heap
    }};
}

/// Gets of `lookups` in the map of `heap` (one snapshot), the first value bytes summed.
macro_rules! gets {
    ($heap:expr, $lookups:expr, $map:ty) => {{
        let snap = $heap.read().unwrap();
        let map: $map = snap.root("map").unwrap().unwrap();
        $lookups.iter().map(|k| map.get(&snap, k).unwrap().map_or(0, |v| v[0] as u64)).sum::<u64>()
    }};
}

/// Inserts of `fresh` into the map of `heap`, in a write transaction dropped uncommitted.
macro_rules! inserts {
    ($heap:expr, $fresh:expr, $map:ty) => {{
        let mut tx = $heap.write().unwrap();
        let mut map: $map = tx.root("map").unwrap().unwrap();
        for &k in $fresh {
            map.insert(&mut tx, &k, &value(k)).unwrap();
        }
        drop(tx);
    }};
}

fn scaling(c: &mut Criterion) {
    if !wanted("scaling") {
        return;
    }
    for &n in sizes() {
        // n keys in the maps, OPS of them looked up, OPS keys not in them inserted.
        let all = random_keys(n + OPS, 0x5ca1_ab1e ^ n as u64);
        let (keys, fresh) = all.split_at(n);
        let lookups: Vec<u64> =
            random_keys(OPS, 0x0dd_ba11).iter().map(|&r| keys[(r % n as u64) as usize]).collect();
        let dir = fresh_dir("mmf-bench-heap-scaling");
        let (hash_path, tree_path) = (dir.join("phashmap.heap"), dir.join("pmap.heap"));
        drop(fill!(&hash_path, keys, PHashMap<u64, [u8; 64]>));
        drop(fill!(&tree_path, keys, PMap<u64, [u8; 64]>));
        let heed_dir = dir.join("heed");
        std::fs::create_dir(&heed_dir).unwrap();
        // SAFETY: the benchmark's own fresh directory; nothing else opens it.
        let env = unsafe { EnvOpenOptions::new().map_size(16 << 30).open(&heed_dir) }.unwrap();
        let db = heed_db(&env);
        for chunk in keys.chunks((n / 10).max(BATCH)) {
            let mut wtxn = env.write_txn().unwrap();
            for &k in chunk {
                db.put(&mut wtxn, &k, &value(k)).unwrap();
            }
            wtxn.commit().unwrap();
        }
        let std_map: HashMap<u64, [u8; 64]> = keys.iter().map(|&k| (k, value(k))).collect();

        let mut g = group(c, "heap_open_vs_keys");
        g.bench_function(BenchmarkId::new("mmf_heap_phashmap", n), |b| {
            b.iter(|| {
                let heap = open(&hash_path);
                gets!(heap, &lookups[..1], PHashMap<u64, [u8; 64]>)
            })
        });
        g.bench_function(BenchmarkId::new("mmf_heap_pmap", n), |b| {
            b.iter(|| {
                let heap = open(&tree_path);
                gets!(heap, &lookups[..1], PMap<u64, [u8; 64]>)
            })
        });
        g.finish();

        let (hash, tree) = (open(&hash_path), open(&tree_path));
        let mut g = group(c, "heap_get_vs_keys");
        g.throughput(Throughput::Elements(OPS as u64));
        g.bench_function(BenchmarkId::new("mmf_heap_phashmap", n), |b| {
            b.iter(|| gets!(hash, lookups, PHashMap<u64, [u8; 64]>))
        });
        g.bench_function(BenchmarkId::new("mmf_heap_pmap", n), |b| {
            b.iter(|| gets!(tree, lookups, PMap<u64, [u8; 64]>))
        });
        g.bench_function(BenchmarkId::new("heed", n), |b| {
            b.iter(|| {
                let rtxn = env.read_txn().unwrap();
                lookups
                    .iter()
                    .map(|k| db.get(&rtxn, k).unwrap().map_or(0, |v| v[0] as u64))
                    .sum::<u64>()
            })
        });
        g.bench_function(BenchmarkId::new("std_hashmap", n), |b| {
            b.iter(|| {
                lookups.iter().map(|k| std_map.get(k).map_or(0, |v| v[0] as u64)).sum::<u64>()
            })
        });
        g.finish();
        drop(std_map);

        let mut g = group(c, "heap_insert_vs_keys");
        g.throughput(Throughput::Elements(OPS as u64));
        g.bench_function(BenchmarkId::new("mmf_heap_phashmap", n), |b| {
            b.iter(|| inserts!(hash, fresh, PHashMap<u64, [u8; 64]>))
        });
        g.bench_function(BenchmarkId::new("mmf_heap_pmap", n), |b| {
            b.iter(|| inserts!(tree, fresh, PMap<u64, [u8; 64]>))
        });
        g.bench_function(BenchmarkId::new("heed", n), |b| {
            b.iter(|| {
                let mut wtxn = env.write_txn().unwrap();
                for &k in fresh {
                    db.put(&mut wtxn, &k, &value(k)).unwrap();
                }
                wtxn.abort();
            })
        });
        g.finish();
        drop((hash, tree, env));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

criterion_group!(heap_scaling, scaling);
