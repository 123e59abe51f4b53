//! The loops of `kv_insert_1M` and `kv_get_1M` without criterion, to profile (`perf
//! record`) and to compare two builds in turns.
//!
//! - `insert`: 1M random u64 keys → 64-byte values inserted into a new `PHashMap` in one
//!   transaction, then committed; prints the loop's and the commit's time for each round.
//! - `get`: the same heap, then 100k random gets of existing keys through a snapshot, 20
//!   passes a round, against std's `HashMap` of the same keys; prints the median pass of
//!   each in ns a get.
//!
//! - `pmap-insert`, `pmap-get`: the same with the ordered map, `PMap`.
//!
//! `cargo run --release -p mmf-bench --example heap_kv_loop -- MODE [ROUNDS] [DIR]`
//! (3 rounds; the heap in a new temporary directory under DIR, default the system's).
//! `MMF_KV_KEYS=N` inserts N keys instead of 1M (the gets look up 100k of them).

use std::collections::HashMap;
use std::time::Instant;

use mmf_bench::{random_keys as keys, value64 as value};
use mmf_heap::{Heap, HeapOptions, PHashMap, PMap};

/// The rounds of `main` with the map type `$map`.
macro_rules! run {
    ($map:ident, $get:expr, $args:expr) => {{
        let (get, args) = ($get, &$args);
        let rounds: usize = args.get(2).map_or(3, |s| s.parse().unwrap());
        let parent = args.get(3).map_or_else(std::env::temp_dir, Into::into);
        let n = std::env::var("MMF_KV_KEYS").map_or(1_000_000, |s| s.parse().unwrap());
        let ks = keys(n, 0x1234_5678);
        let lookups: Vec<u64> = keys(100_000, 0x9abc_def0)
            .iter()
            .map(|&r| ks[(r % ks.len() as u64) as usize])
            .collect();
        let std_map: HashMap<u64, [u8; 64]> =
            if get { ks.iter().map(|&k| (k, value(k))).collect() } else { HashMap::new() };
        for _ in 0..rounds {
            let dir = tempfile::tempdir_in(&parent).unwrap();
            // SAFETY: our own new file in our own new directory; nothing else opens it.
            let heap = unsafe { Heap::open(dir.path().join("h"), HeapOptions::new().create(true)) }
                .unwrap();
            let mut tx = heap.write().unwrap();
            let mut map: $map<u64, [u8; 64]> = $map::new();
            let t = Instant::now();
            for &k in &ks {
                map.insert(&mut tx, &k, &value(k)).unwrap();
            }
            let l = t.elapsed();
            tx.set_root("map", &map).unwrap();
            let t = Instant::now();
            tx.commit().unwrap();
            let c = t.elapsed();
            if !get {
                println!("loop {:.0} ms commit {:.0} ms", ms(l), ms(c));
                continue;
            }
            let snap = heap.read().unwrap();
            let map: $map<u64, [u8; 64]> = snap.root("map").unwrap().unwrap();
            let mut ours = Vec::new();
            let mut theirs = Vec::new();
            for _ in 0..20 {
                let t = Instant::now();
                let sum: u64 = lookups
                    .iter()
                    .map(|k| map.get(&snap, k).unwrap().map_or(0, |v| v[0] as u64))
                    .sum();
                ours.push(t.elapsed());
                let t = Instant::now();
                let other: u64 =
                    lookups.iter().map(|k| std_map.get(k).map_or(0, |v| v[0] as u64)).sum();
                theirs.push(t.elapsed());
                assert_eq!(sum, other);
            }
            let per = |v: &mut Vec<std::time::Duration>| {
                v.sort();
                v[v.len() / 2].as_nanos() as f64 / lookups.len() as f64
            };
            println!("get {:.0} ns std {:.0} ns", per(&mut ours), per(&mut theirs));
        }
    }};
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (get, ordered) = match args.get(1).map(String::as_str) {
        Some("insert") => (false, false),
        Some("get") => (true, false),
        Some("pmap-insert") => (false, true),
        Some("pmap-get") => (true, true),
        _ => panic!("usage: heap_kv_loop insert|get|pmap-insert|pmap-get [ROUNDS] [DIR]"),
    };
    if ordered {
        run!(PMap, get, args);
    } else {
        run!(PHashMap, get, args);
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
