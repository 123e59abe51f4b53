//! Hostile review, round 13 (9c2ae2c: a finished transaction's arena regions are kept in a
//! process-wide pool, advised MADV_FREE; `trim_memory`; `Backend::start_sync`): heaps
//! checked against models while the kernel takes kept pages back, forks while the pool is
//! in use, large durable commits on disk and on tmpfs. (The pool's limit, its lock and the
//! advice's range are tested in `src/spare/tests.rs`.)
//!
//! `MMF_REVIEW13_ROUNDS` (default 8) sets the transactions per heap of the first test,
//! `MMF_REVIEW13_FORKS` (default 40) the children of the second.

#![cfg(target_os = "linux")]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::sim::Rng;
use mmf_heap::{Durability, FileBackend, Heap, HeapOptions, PHashMap, PVec};
use mmf_testkit::forked::{in_forked_child, tally};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A count from the environment variable `name`, else `default`.
fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn open(path: &Path) -> Heap<FileBackend> {
    // SAFETY: only this test, through mmf-heap, writes the file.
    unsafe { Heap::open(path, HeapOptions::new().create(true)) }.unwrap()
}

fn value(k: u64, round: u64) -> [u8; 64] {
    let mut v = [0u8; 64];
    let mut x = (k ^ round.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for c in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes());
    }
    v
}

/// What memory pressure does to MADV_FREE'd pages, now: `MADV_PAGEOUT` of every private
/// anonymous mapping (without swap, dirty anonymous pages stay; clean lazy-free ones go).
fn reclaim_lazy_free() {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let range = f.next().unwrap();
        let perms = f.next().unwrap();
        let path = f.nth(3).unwrap_or("");
        if !perms.starts_with("rw")
            || !perms.ends_with('p')
            || !(path.is_empty() || path == "[heap]")
        {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (usize::from_str_radix(a, 16).unwrap(), usize::from_str_radix(b, 16).unwrap());
        // SAFETY: advice only; MADV_PAGEOUT never changes the contents of a dirty page.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_PAGEOUT) };
    }
}

fn lazy_free_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
    let line = s.lines().find(|l| l.starts_with("LazyFree:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// One worker: rounds of transactions of very different sizes on its own heap, each
/// committed one checked in full against a model (and `verify`), some dropped.
fn worker(dir: &Path, id: u64, rounds: u64, stop: &AtomicBool, txns: &AtomicU64) {
    let heap = open(&dir.join(format!("w{id}.heap")));
    let mut rng = Rng(0x5eed_0013 ^ (id << 40) | 1);
    let mut model: HashMap<u64, [u8; 64]> = HashMap::new();
    let mut vmodel: Vec<[u64; 4]> = Vec::new();
    let sizes = [1u64, 50, 3_000, 40_000, 120_000];
    for round in 0..rounds {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = sizes[rng.below(sizes.len() as u64) as usize];
        let abort = rng.below(5) == 0;
        let mut tx = heap.write().unwrap();
        let mut h: PHashMap<u64, [u8; 64]> = tx.root("h").unwrap().unwrap_or_default();
        let mut v: PVec<[u64; 4]> = tx.root("v").unwrap().unwrap_or_default();
        let mut added = Vec::new();
        let mut vadded = Vec::new();
        for _ in 0..n {
            let k = rng.below(300_000);
            let val = value(k, round);
            h.insert(&mut tx, &k, &val).unwrap();
            added.push((k, val));
            if rng.below(8) == 0 {
                let e = [k, round, id, !k];
                v.push(&mut tx, &e).unwrap();
                vadded.push(e);
            }
        }
        // Read back inside the transaction (arena bytes written this transaction).
        for (k, val) in added.iter().rev().take(500) {
            let got = h.get(&tx, k).unwrap().copied();
            // The last write of k wins; find it.
            let last = added.iter().rev().find(|(kk, _)| kk == k).unwrap().1;
            assert_eq!(got, Some(last), "worker {id} round {round}: key {k} in the txn");
            let _ = val;
        }
        tx.set_root("h", &h).unwrap();
        tx.set_root("v", &v).unwrap();
        if abort {
            drop(tx);
        } else {
            let d = if rng.below(2) == 0 { Durability::Immediate } else { Durability::None };
            tx.commit_with(d).unwrap();
            for (k, val) in added {
                model.insert(k, val);
            }
            vmodel.extend(vadded);
        }
        txns.fetch_add(1, Ordering::Relaxed);
        let snap = heap.read().unwrap();
        snap.verify().unwrap();
        let h: PHashMap<u64, [u8; 64]> = snap.root("h").unwrap().unwrap_or_default();
        assert_eq!(h.len(), model.len() as u64, "worker {id} round {round}");
        for (k, val) in &model {
            assert_eq!(h.get(&snap, k).unwrap(), Some(val), "worker {id} round {round}: key {k}");
        }
        let v: PVec<[u64; 4]> = snap.root("v").unwrap().unwrap_or_default();
        assert_eq!(v.len(), vmodel.len() as u64);
        for (i, e) in vmodel.iter().enumerate() {
            assert_eq!(v.get(&snap, i as u64).unwrap(), Some(e), "worker {id} vec {i}");
        }
    }
}

/// Several heaps commit in parallel threads (arenas end and start at once: the pool is
/// shared and contended) while another thread trims the pool and makes the kernel discard
/// every lazy-free page, again and again; every commit is checked against a model.
#[test]
fn parallel_heaps_against_models_while_the_pool_is_trimmed_and_reclaimed() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let txns = Arc::new(AtomicU64::new(0));
    let chaos = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut trims, mut trimmed, mut reclaimed_kb) = (0u64, 0usize, 0u64);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(3));
                let lf = lazy_free_kb();
                reclaim_lazy_free();
                reclaimed_kb += lf.saturating_sub(lazy_free_kb());
                if trims % 7 == 0 {
                    trimmed += mmf_heap::trim_memory();
                }
                trims += 1;
            }
            (trims, trimmed, reclaimed_kb)
        })
    };
    let workers: Vec<_> = (0..3)
        .map(|id| {
            let (dir, stop, txns) = (dir.path().to_owned(), stop.clone(), txns.clone());
            std::thread::spawn(move || {
                worker(&dir, id, knob("MMF_REVIEW13_ROUNDS", 8), &stop, &txns)
            })
        })
        .collect();
    let mut failed = None;
    for w in workers {
        if let Err(e) = w.join() {
            stop.store(true, Ordering::Relaxed);
            failed = Some(e);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (trims, trimmed, reclaimed_kb) = chaos.join().unwrap();
    eprintln!(
        "{} transactions; {trims} reclaim passes, {} MiB lazy-free reclaimed, {} MiB trimmed",
        txns.load(Ordering::Relaxed),
        reclaimed_kb >> 10,
        trimmed >> 20
    );
    if let Some(e) = failed {
        std::panic::resume_unwind(e);
    }
}

/// A child forked while another thread ends transactions (and so holds the pool's lock
/// for a moment) commits on a heap of its own and calls `trim_memory`.
#[test]
fn a_child_forked_while_transactions_end_commits_and_trims() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let bg = {
        let (path, stop) = (dir.path().join("bg.heap"), stop.clone());
        std::thread::spawn(move || {
            let heap = open(&path);
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut tx = heap.write().unwrap();
                let mut h: PHashMap<u64, u64> = tx.root("h").unwrap().unwrap_or_default();
                for _ in 0..300 {
                    h.insert(&mut tx, &k, &k).unwrap();
                    k += 1;
                }
                tx.set_root("h", &h).unwrap();
                tx.commit_with(Durability::None).unwrap();
                let _ = mmf_heap::trim_memory();
            }
        })
    };
    let (ok, hung, other) = tally((0..knob("MMF_REVIEW13_FORKS", 40)).map(|i| {
        let path = dir.path().join(format!("child{i}.heap"));
        in_forked_child(10, || {
            let heap = open(&path);
            let mut tx = heap.write().unwrap();
            let mut h: PHashMap<u64, u64> = tx.root("h").unwrap().unwrap_or_default();
            for k in 0..5_000u64 {
                h.insert(&mut tx, &k, &(k + 1)).unwrap();
            }
            tx.set_root("h", &h).unwrap();
            tx.commit().unwrap();
            let _ = mmf_heap::trim_memory();
        })
    }));
    stop.store(true, Ordering::Relaxed);
    bg.join().unwrap();
    eprintln!("children: {ok} fine, {hung} hung (SIGALRM), {other} failed otherwise");
    assert_eq!((hung, other), (0, 0));
}

/// A large durable commit on a real file: for strace (`sync_file_range` calls expected),
/// on tmpfs (/dev/shm) too; all checked.
#[test]
fn large_durable_commits_on_disk_and_on_tmpfs() {
    let _s = serial();
    // The system's temporary directory: on a disk here (`sync_file_range` then runs: strace
    // showed two calls for this commit), on tmpfs on some systems (then both are tmpfs).
    let disk = tempfile::tempdir().unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    for dir in [disk.path(), shm.path()] {
        let path = dir.join("big.heap");
        {
            let heap = open(&path);
            let mut tx = heap.write().unwrap();
            let mut h: PHashMap<u64, [u8; 64]> = tx.root("h").unwrap().unwrap_or_default();
            for k in 0..150_000u64 {
                h.insert(&mut tx, &k, &value(k, 1)).unwrap();
            }
            tx.set_root("h", &h).unwrap();
            tx.commit_with(Durability::Immediate).unwrap();
        }
        // Read-only reopen: reads fine, a write transaction fails cleanly.
        // SAFETY: as in `open`.
        let heap: Heap<FileBackend> =
            unsafe { Heap::open(&path, HeapOptions::new().read_only(true)) }.unwrap();
        let snap = heap.read().unwrap();
        snap.verify().unwrap();
        let h: PHashMap<u64, [u8; 64]> = snap.root("h").unwrap().unwrap();
        for k in (0..150_000u64).step_by(97) {
            assert_eq!(h.get(&snap, &k).unwrap(), Some(&value(k, 1)));
        }
        assert!(heap.write().is_err());
    }
}
