//! The `mmf` tool against the classic tools, side by side in one run (issue #5), on a 2 GiB
//! file:
//!
//! - `cp_2GiB`: `mmf cp` vs `cp`, source in the page cache, the copy removed (and the
//!   system synced) before every run, outside the timing;
//! - `touch_2GiB`: `mmf touch` vs `vmtouch -t` from a cold cache (the file evicted before
//!   every run, outside the timing);
//! - `durable_copy_256MiB` (issue #11): a new file filled with 256 MiB from a cached file
//!   and made durable — `dd conv=fsync` vs `mmf cp --sync`, `mmf write --from` and `mmf
//!   create` + `mmf write --from`;
//! - `dump_16MiB`: `mmf dump` vs `hexdump -C` of a cached 16 MiB file of random bytes,
//!   output to `/dev/null`.
//!
//! `scripts/bench-cli.sh` builds the release `mmf`, installs `vmtouch` if missing, runs
//! this and prints the ratios. `MMF_BIN` names the binary to measure.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

#[cfg(target_os = "linux")]
mod linux;

#[cfg(target_os = "linux")]
criterion::criterion_main!(linux::cli);

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the CLI benchmarks compare with Linux tools (cp, vmtouch): run them on Linux");
}
