//! Streams, checksums and growth over large files (issue #17), side by side in one run:
//!
//! - `stream_read_1GiB`: a cached 1 GiB file read in 64 KiB pieces through mmf's
//!   [`Stream`](mmf::Stream), through `BufReader<File>`, and with `read()` (each piece
//!   summed, the same work for all); `stream_read_1GiB_4KiB_folios`: the same with the file
//!   cached in 4 KiB folios (see `folios.rs`: what a view costs depends on the folio size);
//! - `sum_1GiB`: XXH3-64 of the cached file as `mmf sum` computes it (a stream, 256 KiB
//!   pieces) and with `read()` in 256 KiB and 1 MiB pieces into the same hasher;
//!   `sum_1GiB_4KiB_folios`: the same with the file cached in 4 KiB folios;
//!   `sum_1GiB_cold`: the same from a cold cache (the file evicted before each run);
//! - `append_1GiB`: 1 GiB appended in 1 MiB steps through a growing view
//!   ([`GrowViewMut`](mmf::GrowViewMut): `grow` + `write_at`), through a write-through
//!   growing view (`grow` + `pwrite`), and with `write()`.
//!
//! `cargo bench -p mmf-bench --bench large`, then `scripts/bench-ratios.py`.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

#[cfg(target_os = "linux")]
mod folios;
#[cfg(target_os = "linux")]
mod linux;

#[cfg(target_os = "linux")]
criterion::criterion_main!(linux::large);

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the large-file benchmarks compare mmf with Linux system calls: run them on Linux");
}
