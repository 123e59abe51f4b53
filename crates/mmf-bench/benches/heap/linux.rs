//! `heap_commit_1key` and `heap_open`.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group};
use heed::types::{Bytes, U64};
use heed::{CommitOrAbort, Database, EnvOpenOptions, byteorder::BigEndian};
use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::{Heap, HeapOptions, Off, PBytes, Persist};
use redb::TableDefinition;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// A fresh directory `name` under [`dir`] (what was there removed).
pub fn fresh_dir(name: &str) -> PathBuf {
    let path = dir().join(name);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

/// Whether to run the benchmark groups of `part` ("commit", "open", "kv"):
/// `MMF_HEAP_BENCH=commit,open` runs only those (criterion's filter skips the timing, but
/// not the setup — which for `open` writes 1.1 GiB and for `kv` fills three stores).
pub fn wanted(part: &str) -> bool {
    std::env::var("MMF_HEAP_BENCH").map_or(true, |parts| parts.split(',').any(|p| p == part))
}

pub use mmf_bench::value64 as value;

/// Opens (creates) an LMDB environment in `path` with one database, u64 keys, bytes.
pub fn heed_open(
    path: &Path,
    map_size: usize,
) -> (&'static heed::Env, Database<'static, U64<BigEndian>, Bytes>) {
    // SAFETY: the benchmark's own fresh directory; nothing else opens it.
    let env = unsafe { EnvOpenOptions::new().map_size(map_size).open(path) }.unwrap();
    // Leaked: the database handle borrows the environment for the whole run.
    let env: &'static heed::Env = Box::leak(Box::new(env));
    let wtxn = env.write_txn().unwrap();
    let db = env
        .create_databases_and_commit(wtxn, |opener, wtxn| {
            opener.create_database(wtxn, None).map(CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit();
    (env, db)
}

/// The 64-byte record of the heap's 1-key commit: derived through mmf-heap alone (this
/// crate has no zerocopy dependency of its own).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
struct Record {
    key: u64,
    bytes: [u8; 56],
}

pub const REDB_TABLE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("kv");

/// The four 1-key commits, each a closure that makes one durable commit.
type Committer = Box<dyn FnMut()>;

fn committers() -> Vec<(&'static str, Committer)> {
    const KEYS: u64 = 1000;
    // mmf-heap: a record allocated, the previous one freed, the root moved.
    let heap_dir = fresh_dir("mmf-bench-heap-commit");
    // SAFETY: the benchmark's own new file; only mmf-heap writes it.
    let heap = unsafe { Heap::open(heap_dir.join("h"), HeapOptions::new().create(true)) }.unwrap();
    let mut i = 0u64;
    let mmf_heap = move || {
        i += 1;
        let mut tx = heap.write().unwrap();
        let bytes = value(i)[..56].try_into().unwrap();
        let off = tx.alloc(&Record { key: i, bytes }).unwrap();
        if let Some(old) = tx.root::<Off<Record>>("latest").unwrap() {
            tx.free(old).unwrap();
        }
        tx.set_root("latest", &off).unwrap();
        tx.commit().unwrap();
    };

    let (env, db) = heed_open(&fresh_dir("mmf-bench-heap-commit-heed"), 64 * MIB);
    let mut wtxn = env.write_txn().unwrap();
    for k in 0..KEYS {
        db.put(&mut wtxn, &k, &value(k)).unwrap();
    }
    wtxn.commit().unwrap();
    let mut i = 0u64;
    let heed = move || {
        i += 1;
        let mut wtxn = env.write_txn().unwrap();
        db.put(&mut wtxn, &(i % KEYS), &value(i)).unwrap();
        wtxn.commit().unwrap();
    };

    let redb = redb::Database::create(fresh_dir("mmf-bench-heap-commit-redb").join("db")).unwrap();
    let w = redb.begin_write().unwrap();
    {
        let mut t = w.open_table(REDB_TABLE).unwrap();
        for k in 0..KEYS {
            t.insert(k, &value(k)[..]).unwrap();
        }
    }
    w.commit().unwrap();
    let mut i = 0u64;
    let redb = move || {
        i += 1;
        let w = redb.begin_write().unwrap();
        w.open_table(REDB_TABLE).unwrap().insert(i % KEYS, &value(i)[..]).unwrap();
        w.commit().unwrap();
    };

    // The anchor: 4 KiB written where no earlier iteration wrote (1 MiB + 4 KiB apart in
    // a cached 64 MiB file), then fdatasync.
    let path = fresh_dir("mmf-bench-heap-commit-anchor").join("f");
    std::fs::write(&path, vec![0x5a; 64 * MIB]).unwrap();
    let file = File::options().read(true).write(true).open(&path).unwrap();
    file.sync_all().unwrap();
    let block = value(7).repeat(64);
    let mut n = 0usize;
    let anchor = move || {
        n += 1;
        let at = (n * (MIB + 4 * KIB)) % (64 * MIB - 4 * KIB);
        file.write_all_at(&block, at as u64).unwrap();
        file.sync_data().unwrap();
    };
    vec![
        ("mmf_heap", Box::new(mmf_heap)),
        ("heed", Box::new(heed)),
        ("redb", Box::new(redb)),
        ("pwrite_4KiB_fdatasync", Box::new(anchor)),
    ]
}

fn commit_1key(c: &mut Criterion) {
    if std::env::var("MMF_HEAP_BENCH").is_ok_and(|v| v.split(',').any(|p| p == "interleaved")) {
        commit_interleaved();
    }
    if !wanted("commit") {
        return;
    }
    let mut g = c.benchmark_group("heap_commit_1key");
    g.sample_size(50).measurement_time(mmf_bench::secs(8));
    for (name, mut commit) in committers() {
        g.bench_function(name, |b| b.iter(&mut commit));
    }
    g.finish();
}

/// The same commits taken in turns, one of each per round (the first rotating), so that
/// every store sees the same moments of a shared, noisy disk: prints each one's median
/// and 10th/90th percentiles, and its median over the anchor's
/// (`MMF_HEAP_BENCH=interleaved`, `MMF_HEAP_ROUNDS`, default 2000).
fn commit_interleaved() {
    let rounds: usize =
        std::env::var("MMF_HEAP_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(2000);
    let mut stores = committers();
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); stores.len()];
    for round in 0..rounds {
        for k in 0..stores.len() {
            let j = (round + k) % stores.len();
            let start = std::time::Instant::now();
            (stores[j].1)();
            times[j].push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p) as usize]
    };
    let anchor = pct(&mut times[3].clone(), 0.5);
    println!(
        "heap_commit_1key interleaved, {rounds} rounds (µs): median [p10 p90], median / anchor"
    );
    for ((name, _), t) in stores.iter().zip(&mut times) {
        let (p10, p50, p90) = (pct(t, 0.1), pct(t, 0.5), pct(t, 0.9));
        println!("  {name:<24} {p50:8.1} [{p10:8.1} {p90:8.1}]  {:.3}x", p50 / anchor);
    }
}

/// A link of the list that keeps the open benchmark's blobs reachable.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout, Persist)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
struct Link {
    blob: PBytes,
    next: Off<Link>,
}

/// A heap file of `len` bytes: a list of 1 MiB blobs under one root, committed 64 MiB per
/// transaction, then a last, small transaction (a counter) — so that opening checks only
/// what that one wrote. (One root, whatever the size: the root directory is read whole
/// at open.)
fn make_heap(path: &Path, len: usize, last_writes_all: bool) {
    let _ = std::fs::remove_file(path);
    // SAFETY: the benchmark's own new file; only mmf-heap writes it.
    let heap = unsafe { Heap::open(path, HeapOptions::new().create(true)) }.unwrap();
    let blob: Vec<u8> = (0..MIB).map(|i| (i * 31 % 251) as u8).collect();
    let per_txn = if last_writes_all { len / MIB } else { 64 };
    let mut written = 0;
    while written < len {
        let mut tx = heap.write().unwrap();
        let mut head = tx.root::<Off<Link>>("list").unwrap().unwrap_or(Off::NULL);
        for _ in 0..per_txn.min((len - written) / MIB).max(1) {
            let blob = tx.bytes(&blob).unwrap();
            head = tx.alloc(&Link { blob, next: head }).unwrap();
            written += MIB;
        }
        tx.set_root("list", &head).unwrap();
        tx.commit().unwrap();
    }
    if !last_writes_all {
        let mut tx = heap.write().unwrap();
        tx.set_root("n", &1u64).unwrap();
        tx.commit().unwrap();
    }
}

/// Opens a heap and reads the first link of its list: what an application does before
/// its first read.
fn open_heap(path: &Path, read_only: bool) -> u64 {
    // SAFETY: nothing but mmf-heap writes the benchmark's heap files.
    let heap = unsafe { Heap::open(path, HeapOptions::new().read_only(read_only)) }.unwrap();
    let snap = heap.read().unwrap();
    let head = snap.root::<Off<Link>>("list").unwrap().unwrap();
    snap.get(head).unwrap().blob.len()
}

/// A map of `len` serialized bytes: u64 keys, 64-byte values (two [u8; 32]: serde
/// derives arrays up to 32).
type Map = HashMap<u64, ([u8; 32], [u8; 32])>;

fn serialized_map(len: usize) -> Vec<u8> {
    let entries = len / (8 + 64);
    let map: Map = (0..entries as u64)
        .map(|k| {
            let v = value(k);
            let (a, b) = v.split_at(32);
            (k, (a.try_into().unwrap(), b.try_into().unwrap()))
        })
        .collect();
    bincode::serialize(&map).unwrap()
}

fn open(c: &mut Criterion) {
    if !wanted("open") {
        return;
    }
    let heaps = fresh_dir("mmf-bench-heap-open");
    // Quick mode (the report's harness check): the same names, 1/256 of the bytes.
    let q = |len: usize| mmf_bench::size(len as u64) as usize;
    let sizes = [("1MiB", q(MIB)), ("64MiB", q(64 * MIB)), ("1GiB", q(1024 * MIB))];
    for (name, len) in sizes {
        make_heap(&heaps.join(name), len, false);
    }
    make_heap(&heaps.join("one_txn_64MiB"), q(64 * MIB), true);

    let mut g = c.benchmark_group("heap_open");
    g.sample_size(30).measurement_time(mmf_bench::secs(4));
    for (name, _) in sizes {
        let path = heaps.join(name);
        g.bench_function(format!("mmf_heap_{name}"), |b| b.iter(|| open_heap(&path, false)));
        g.bench_function(format!("mmf_heap_readonly_{name}"), |b| {
            b.iter(|| open_heap(&path, true))
        });
    }
    let path = heaps.join("one_txn_64MiB");
    g.bench_function("mmf_heap_one_txn_64MiB", |b| b.iter(|| open_heap(&path, false)));

    // bincode at 1 GiB would need ~5 GiB of RAM while others build on this machine:
    // measured up to 256 MiB; its time grows at least linearly with the size.
    g.sample_size(10).measurement_time(mmf_bench::secs(10));
    for (name, len) in [("1MiB", q(MIB)), ("64MiB", q(64 * MIB)), ("256MiB", q(256 * MIB))] {
        let bytes = serialized_map(len);
        g.bench_function(format!("bincode_{name}"), |b| {
            b.iter(|| bincode::deserialize::<Map>(&bytes).unwrap().len())
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&heaps);
}

criterion_group!(heap, commit_1key, open);
