//! The persistent heap (issue #16), side by side with its peers in one run:
//!
//! - `heap_commit_1key`: one small durable transaction — mmf-heap (a 64-byte value
//!   allocated, the previous one freed, a root moved to it; `Durability::Immediate`),
//!   LMDB through heed and redb (one 64-byte value put under a u64 key, their default
//!   durability), and the anchor: a bare 4 KiB `pwrite` + `fdatasync`. On a disk other
//!   processes use, one function's samples and the next one's see different moments:
//!   `MMF_HEAP_BENCH=interleaved` takes the four in turns instead (one of each per round,
//!   `MMF_HEAP_ROUNDS` rounds) and prints their medians and percentiles;
//! - `heap_open`: opening a heap file of 1 MiB, 64 MiB and 1 GiB (read-write: what an
//!   application does; and read-only) up to its first root read, against deserializing a
//!   map of the same size with bincode (`HashMap<u64, [u8; 64]>`, from memory; measured
//!   at 1, 64 and 256 MiB: see below), and a heap whose last transaction wrote all of
//!   its 64 MiB (opening checks every byte the last commit wrote);
//! - `kv_insert_1M` / `kv_get_1M`: 1M u64 → 64 B inserts in one transaction (committed,
//!   durable) and 100k random gets, heed and redb against std `HashMap` in RAM; mmf-heap's
//!   with mmf-heap's `PMap` and `PHashMap` (`kv.rs`);
//! - `heap_open_vs_keys`, `heap_get_vs_keys`, `heap_insert_vs_keys`: open, get and insert
//!   against the number of keys, 1k to 10M (`scaling.rs`).
//!
//! `cargo bench -p mmf-bench --bench heap`, then `scripts/bench-ratios.py`
//! (`MMF_HEAP_BENCH=commit` — or `open`, `kv`, `scaling`, comma-separated — runs only those groups,
//! setup included). Files live
//! under Cargo's target temp dir (the disk file system of `target/`); the 1 GiB heap is
//! made once per run and removed at the end.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

#[cfg(target_os = "linux")]
mod kv;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod scaling;

#[cfg(target_os = "linux")]
criterion::criterion_main!(linux::heap, kv::kv, scaling::heap_scaling);

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the heap benchmarks compare with Linux system calls and LMDB: run them on Linux");
}
