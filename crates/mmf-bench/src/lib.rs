//! Benchmarks live in `benches/`. This library holds what they share: the quick mode of
//! the benchmark report (`MMF_BENCH_QUICK=1`, which `.ci/run` uses so that the harness
//! cannot rot), in which sizes and measurement times shrink and the figures mean nothing.
//! It also holds the heap benches' keys and values, which `examples/heap_kv_loop.rs`
//! uses too.

use std::time::Duration;

/// Whether the benches run in the report's quick mode (`MMF_BENCH_QUICK` set, not `0`).
pub fn quick() -> bool {
    std::env::var_os("MMF_BENCH_QUICK").is_some_and(|v| v != "0")
}

/// A data size in bytes: `full`, or `full / 256` (at least 64 KiB) in quick mode.
pub fn size(full: u64) -> u64 {
    if quick() { (full >> 8).max(64 << 10) } else { full }
}

/// A group's measurement time: `secs` seconds, or 50 ms in quick mode.
pub fn secs(secs: u64) -> Duration {
    if quick() { Duration::from_millis(50) } else { Duration::from_secs(secs) }
}

/// The name of a data file the benches keep between runs: `name`, or `quick-name` in
/// quick mode, so that a quick run never replaces the full-size file.
pub fn file_name(name: &str) -> String {
    if quick() { format!("quick-{name}") } else { name.to_string() }
}

/// Writes latency percentiles for the report: `<criterion>/percentiles/<stem>.json`
/// (criterion's directory is `$CRITERION_HOME` if set, else `default_criterion`), with
/// p50, p99 and p99.9 of each contestant's timed operations (ns, any order), and prints
/// them as a table.
///
/// # Errors
/// The file cannot be written.
pub fn write_percentiles(
    default_criterion: &std::path::Path,
    stem: &str,
    title: &str,
    contestants: &mut [(String, Vec<u64>)],
) -> std::io::Result<()> {
    let dir = std::env::var_os("CRITERION_HOME")
        .map_or_else(|| default_criterion.to_path_buf(), Into::into)
        .join("percentiles");
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    println!("\n{title}\n| contestant | p50 | p99 | p99.9 |\n|---|---|---|---|");
    for (name, times) in contestants.iter_mut() {
        if times.is_empty() {
            continue;
        }
        times.sort_unstable();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let (p50, p99, p999) = (at(0.5), at(0.99), at(0.999));
        println!("| {name} | {p50} ns | {p99} ns | {p999} ns |");
        rows.push(serde_json::json!({
            "name": name, "p50_ns": p50, "p99_ns": p99, "p999_ns": p999, "count": times.len(),
        }));
    }
    let doc = serde_json::json!({ "title": title, "rows": rows });
    std::fs::write(dir.join(format!("{stem}.json")), serde_json::to_string_pretty(&doc)?)
}

/// The size of the benches' shared data file: 1 GiB (less in quick mode, see [`size`]).
pub fn gib() -> u64 {
    size(1 << 30)
}

/// The benches' shared data file in `dir` (the core and large benches): [`gib`] bytes,
/// none zero (no holes), made once, then read once so that it sits in the page cache.
pub fn data_file(dir: &std::path::Path) -> std::fs::File {
    use std::io::{Read, Write};
    const MIB: usize = 1 << 20;
    let path = dir.join(file_name("mmf-bench-1GiB.bin"));
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(gib()) {
        let chunk: Vec<u8> = (0..MIB).map(|i| (i * 131 % 251) as u8 + 1).collect();
        let file = std::fs::File::create(&path).expect("create data file");
        let mut out = std::io::BufWriter::new(file);
        for _ in 0..gib() as usize / MIB {
            out.write_all(&chunk).expect("write data file");
        }
    }
    let mut file = std::fs::File::open(&path).expect("open data file");
    let mut buf = vec![0; MIB];
    while file.read(&mut buf).expect("warm the page cache") > 0 {}
    file
}

/// `n` distinct pseudo-random u64 keys (xorshift64*, distinct w.h.p.; deduplicated), in
/// random order: the heap benches' keys (and `heap_kv_loop`'s).
pub fn random_keys(n: usize, seed: u64) -> Vec<u64> {
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
    // Back to a random order (sorted keys would favour the B-trees).
    let mut y = seed.rotate_left(17) | 1;
    for i in (1..out.len()).rev() {
        y ^= y >> 12;
        y ^= y << 25;
        y ^= y >> 27;
        out.swap(i, (y % (i as u64 + 1)) as usize);
    }
    out
}

/// A 64-byte value that differs with `i`: the heap benches' values (and `heap_kv_loop`'s).
pub fn value64(i: u64) -> [u8; 64] {
    let mut v = [0u8; 64];
    for (j, chunk) in v.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ j as u64).to_le_bytes());
    }
    v
}
