//! The insert loop of `kv_insert_1M` without criterion, to profile (`perf record`) and to
//! compare two builds in turns: 1M random u64 keys → 64-byte values inserted into a new
//! `PHashMap` in one transaction, then committed; prints the loop's and the commit's time
//! for each round.
//!
//! `cargo run --release -p mmf-bench --example heap_insert_loop -- [ROUNDS] [DIR]` (3
//! rounds; the heap in a new temporary directory under DIR, default the system's).
use std::time::Instant;

use mmf_heap::{Heap, HeapOptions, PHashMap};

/// `n` distinct keys in random order, as the bench's `random_keys`.
fn keys(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    let mut out: Vec<u64> = (0..n + n / 100)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out.truncate(n);
    let mut y = seed.rotate_left(17) | 1;
    for i in (1..out.len()).rev() {
        y ^= y >> 12;
        y ^= y << 25;
        y ^= y >> 27;
        out.swap(i, (y % (i as u64 + 1)) as usize);
    }
    out
}

/// The bench's value for key `i`.
fn value(i: u64) -> [u8; 64] {
    let mut v = [0u8; 64];
    for (j, chunk) in v.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ j as u64).to_le_bytes());
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).map_or(3, |s| s.parse().unwrap());
    let parent = args.get(2).map_or_else(std::env::temp_dir, Into::into);
    let ks = keys(1_000_000, 0x1234_5678);
    for _ in 0..rounds {
        let dir = tempfile::tempdir_in(&parent).unwrap();
        // SAFETY: our own new file in our own new directory; nothing else opens it.
        let heap =
            unsafe { Heap::open(dir.path().join("h"), HeapOptions::new().create(true)) }.unwrap();
        let mut tx = heap.write().unwrap();
        let mut map: PHashMap<u64, [u8; 64]> = PHashMap::new();
        let t = Instant::now();
        for &k in &ks {
            map.insert(&mut tx, &k, &value(k)).unwrap();
        }
        let l = t.elapsed();
        tx.set_root("map", &map).unwrap();
        let t = Instant::now();
        tx.commit().unwrap();
        let c = t.elapsed();
        println!("loop {:.0} ms commit {:.0} ms", l.as_secs_f64() * 1e3, c.as_secs_f64() * 1e3);
    }
}
