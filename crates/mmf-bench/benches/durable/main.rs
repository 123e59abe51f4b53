//! Durable writes, side by side with the plain system calls in one run (issue #11):
//!
//! - `durable_commit_page`: one dirty page of a cached 64 MiB file made durable — mmf's
//!   write-through view (`write_at` 8 B + `flush_range`), an ordinary view (a store + the
//!   same flush), memmap2 (a store + `flush_range`), and `pwrite` 4 KiB + `fdatasync`;
//! - `durable_new_256MiB`: a new file created and filled with 256 MiB from memory, made
//!   durable — mmf's write-through view (1 MiB writes, write-back started every 8 MiB, one
//!   flush), the same without starting write-back early, an ordinary view (stores, one
//!   flush), memmap2 + `msync`, and `write()` 1 MiB + `fsync`;
//! - `flush_clean_1GiB`: `flush()` of a 1 GiB view with nothing dirty, and `fdatasync` of
//!   the same clean file.
//!
//! `cargo bench -p mmf-bench --bench durable`, then `scripts/bench-ratios.py`. The files
//! live under Cargo's target temp dir (the disk file system of `target/`).

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

#[cfg(target_os = "linux")]
mod linux;

#[cfg(target_os = "linux")]
criterion::criterion_main!(linux::durable);

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!(
        "the durable-write benchmarks compare mmf with Linux system calls: run them on Linux"
    );
}
