//! `kv_insert_1M` and `kv_get_1M`: 1M u64 keys (random, distinct) → 64-byte values.
//! Inserts are one transaction per iteration into an empty store, committed with the
//! store's default durability (std `HashMap`: in RAM, nothing to commit); gets are 100k
//! random existing keys per iteration, in one read transaction.
//!
//! mmf-heap's contestants are its `PMap` and `PHashMap` (`heap_collections` compares them
//! with std's `HashMap` alone).

use std::collections::HashMap;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group};
use heed::types::{Bytes, U64};
use heed::{CommitOrAbort, Database, EnvOpenOptions, byteorder::BigEndian};

use crate::linux::{REDB_TABLE, fresh_dir, value, wanted};

/// Keys in the stores (10k in quick mode) and gets per iteration (1k).
fn n() -> usize {
    if mmf_bench::quick() { 10_000 } else { 1_000_000 }
}
fn gets() -> usize {
    n() / 10
}

pub(crate) use mmf_bench::random_keys;

fn heed_env(path: &Path) -> heed::Env {
    // SAFETY: the benchmark's own fresh directory; nothing else opens it.
    unsafe { EnvOpenOptions::new().map_size(1 << 30).open(path) }.unwrap()
}

pub(crate) fn heed_db(env: &heed::Env) -> Database<'_, U64<BigEndian>, Bytes> {
    let wtxn = env.write_txn().unwrap();
    env.create_databases_and_commit(wtxn, |opener, wtxn| {
        opener.create_database(wtxn, None).map(CommitOrAbort::<_, ()>::Commit)
    })
    .unwrap()
    .unwrap_commit()
}

fn insert(c: &mut Criterion) {
    if !wanted("kv") {
        return;
    }
    let keys = random_keys(n(), 0x1234_5678);
    let mut g = c.benchmark_group("kv_insert_1M");
    g.sample_size(10).measurement_time(mmf_bench::secs(20));
    g.bench_function("std_hashmap", |b| {
        b.iter(|| {
            let mut map = HashMap::new();
            for &k in &keys {
                map.insert(k, value(k));
            }
            map.len()
        })
    });
    g.bench_function("heed", |b| {
        b.iter_batched(
            || heed_env(&fresh_dir("mmf-bench-heap-insert-heed")),
            |env| {
                let db = heed_db(&env);
                let mut wtxn = env.write_txn().unwrap();
                for &k in &keys {
                    db.put(&mut wtxn, &k, &value(k)).unwrap();
                }
                wtxn.commit().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("redb", |b| {
        b.iter_batched(
            || redb::Database::create(fresh_dir("mmf-bench-heap-insert-redb").join("db")).unwrap(),
            |db| {
                let w = db.begin_write().unwrap();
                {
                    let mut t = w.open_table(REDB_TABLE).unwrap();
                    for &k in &keys {
                        t.insert(k, &value(k)[..]).unwrap();
                    }
                }
                w.commit().unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    collections::insert(&mut g, &keys);
    g.finish();
}

fn get(c: &mut Criterion) {
    if !wanted("kv") {
        return;
    }
    let keys = random_keys(n(), 0x1234_5678);
    let lookups: Vec<u64> =
        random_keys(gets(), 0x9abc_def0).iter().map(|&r| keys[(r % n() as u64) as usize]).collect();
    let lookups = &lookups[..];
    let mut g = c.benchmark_group("kv_get_1M");
    g.sample_size(20).measurement_time(mmf_bench::secs(8));

    let map: HashMap<u64, [u8; 64]> = keys.iter().map(|&k| (k, value(k))).collect();
    g.bench_function("std_hashmap", |b| {
        b.iter(|| lookups.iter().map(|k| map.get(k).map_or(0, |v| v[0] as u64)).sum::<u64>())
    });
    drop(map);

    let env = heed_env(&fresh_dir("mmf-bench-heap-get-heed"));
    let db = heed_db(&env);
    let mut wtxn = env.write_txn().unwrap();
    for &k in &keys {
        db.put(&mut wtxn, &k, &value(k)).unwrap();
    }
    wtxn.commit().unwrap();
    g.bench_function("heed", |b| {
        b.iter(|| {
            let rtxn = env.read_txn().unwrap();
            lookups
                .iter()
                .map(|k| db.get(&rtxn, k).unwrap().map_or(0, |v| v[0] as u64))
                .sum::<u64>()
        })
    });

    let redb = redb::Database::create(fresh_dir("mmf-bench-heap-get-redb").join("db")).unwrap();
    let w = redb.begin_write().unwrap();
    {
        let mut t = w.open_table(REDB_TABLE).unwrap();
        for &k in &keys {
            t.insert(k, &value(k)[..]).unwrap();
        }
    }
    w.commit().unwrap();
    g.bench_function("redb", |b| {
        b.iter(|| {
            let r = redb.begin_read().unwrap();
            let t = r.open_table(REDB_TABLE).unwrap();
            lookups
                .iter()
                .map(|&k| t.get(k).unwrap().map_or(0, |v| v.value()[0] as u64))
                .sum::<u64>()
        })
    });
    collections::get(&mut g, &keys, lookups);
    g.finish();
}

/// mmf-heap's maps (issue #16).
mod collections {
    use criterion::measurement::WallTime;
    use criterion::{BatchSize, BenchmarkGroup};
    use mmf_heap::{Heap, HeapOptions, PHashMap, PMap};

    use crate::linux::{fresh_dir, value};

    fn new_heap(name: &str) -> Heap {
        // SAFETY: the benchmark's own new file; only mmf-heap writes it.
        unsafe { Heap::open(fresh_dir(name).join("h"), HeapOptions::new().create(true)) }.unwrap()
    }

    /// A heap holding `keys` in a `PMap` (root "pmap") and a `PHashMap` (root "phashmap").
    fn filled(name: &str, keys: &[u64]) -> Heap {
        let heap = new_heap(name);
        let mut tx = heap.write().unwrap();
        let mut map: PMap<u64, [u8; 64]> = PMap::new();
        let mut hash: PHashMap<u64, [u8; 64]> = PHashMap::new();
        for &k in keys {
            map.insert(&mut tx, &k, &value(k)).unwrap();
            hash.insert(&mut tx, &k, &value(k)).unwrap();
        }
        tx.set_root("pmap", &map).unwrap();
        tx.set_root("phashmap", &hash).unwrap();
        tx.commit().unwrap();
        heap
    }

    pub fn insert(g: &mut BenchmarkGroup<'_, WallTime>, keys: &[u64]) {
        g.bench_function("mmf_heap_pmap", |b| {
            b.iter_batched(
                || new_heap("mmf-bench-heap-insert-pmap"),
                |heap| {
                    let mut tx = heap.write().unwrap();
                    let mut map: PMap<u64, [u8; 64]> = PMap::new();
                    for &k in keys {
                        map.insert(&mut tx, &k, &value(k)).unwrap();
                    }
                    tx.set_root("map", &map).unwrap();
                    tx.commit().unwrap();
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function("mmf_heap_phashmap", |b| {
            b.iter_batched(
                || new_heap("mmf-bench-heap-insert-phashmap"),
                |heap| {
                    let mut tx = heap.write().unwrap();
                    let mut map: PHashMap<u64, [u8; 64]> = PHashMap::new();
                    for &k in keys {
                        map.insert(&mut tx, &k, &value(k)).unwrap();
                    }
                    tx.set_root("map", &map).unwrap();
                    tx.commit().unwrap();
                },
                BatchSize::PerIteration,
            )
        });
    }

    pub fn get(g: &mut BenchmarkGroup<'_, WallTime>, keys: &[u64], lookups: &[u64]) {
        let heap = filled("mmf-bench-heap-get-maps", keys);
        g.bench_function("mmf_heap_pmap", |b| {
            b.iter(|| {
                let snap = heap.read().unwrap();
                let map: PMap<u64, [u8; 64]> = snap.root("pmap").unwrap().unwrap();
                lookups
                    .iter()
                    .map(|k| map.get(&snap, k).unwrap().map_or(0, |v| v[0] as u64))
                    .sum::<u64>()
            })
        });
        g.bench_function("mmf_heap_phashmap", |b| {
            b.iter(|| {
                let snap = heap.read().unwrap();
                let map: PHashMap<u64, [u8; 64]> = snap.root("phashmap").unwrap().unwrap();
                lookups
                    .iter()
                    .map(|k| map.get(&snap, k).unwrap().map_or(0, |v| v[0] as u64))
                    .sum::<u64>()
            })
        });
    }
}

criterion_group!(kv, insert, get);
