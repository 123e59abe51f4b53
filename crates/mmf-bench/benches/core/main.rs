//! The core's speed, side by side with the alternatives in one run (issue #2):
//!
//! - `seq_read_1GiB`: sum a 1 GiB cached file through a fresh mmf view, a fresh memmap2
//!   map, mmf's safe `read_at` in 1 MiB copies, and `read()` with a 1 MiB buffer;
//! - `random_read_8B`: one million 8-byte reads at random offsets of the same file through
//!   a view's `read_at`, vs a raw load from a memmap2 slice and `pread`; and an atomic load;
//! - `copy_out_1MiB`, `copy_in_1MiB`, `copy_from_1MiB`: 256 MiB in 1 MiB copies through
//!   `read_at` / `write_at` / `copy_from`, vs `pread` / `pwrite` with the same buffer and
//!   `memcpy` on the mapped slices;
//! - `map_unmap_64KiB`: map and unmap a 64 KiB view of a mapping, vs raw `mmap`/`munmap`
//!   and memmap2.
//!
//! `cargo bench -p mmf-bench --bench core`, then `scripts/bench-ratios.py` prints the
//! ratios of the medians. The data file is made once under Cargo's target temp dir.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

#[cfg(unix)]
mod linux;

#[cfg(unix)]
criterion::criterion_main!(linux::core);

#[cfg(not(unix))]
fn main() {
    eprintln!("the core benchmarks compare mmf with Linux system calls: run them on Linux");
}
