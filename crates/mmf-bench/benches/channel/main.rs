//! mmf::channel side by side with the alternatives in one run (issue #15), two real
//! processes each:
//!
//! - `channel_rtt_spin`: a 64-byte round trip, both sides polling without ever sleeping:
//!   two SPSC channels (ping, pong) vs two atomics on a shared page;
//! - `channel_rtt_hybrid`: the same with spin-then-park (20,000 polls, then sleep, wake
//!   only a sleeper), the peer answering within the spin window: mmf's defaults vs a raw
//!   shared page with sleep flags and futexes;
//! - `channel_rtt_parked`: both sides sleep at once (every message wakes a sleeping
//!   process): mmf with 0 spins vs a raw futex wait/wake on every message;
//! - `channel_oneway_64B` / `channel_oneway_4KiB`: one-way throughput (time per message of
//!   a batch, the consumer acknowledging the last): mmf SPSC vs a pipe vs a unix stream
//!   socket.
//!
//! Then latency percentiles (p50, p99, p99.9) of 100,000 timed round trips per
//! round-trip contestant, printed and written to `target/criterion/channel-percentiles.md`.
//!
//! iceoryx2 is not available on this machine (no network to fetch it); compare with the
//! raw anchors here and with `../shared/PERF-NOTES.md`'s iceoryx2 figures, which were
//! measured against the same raw anchors.
//!
//! `cargo bench -p mmf-bench --bench channel`, then `scripts/bench-ratios.py`.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

#[cfg(target_os = "linux")]
mod linux;

#[cfg(target_os = "linux")]
fn main() {
    if linux::peer_role() {
        return;
    }
    linux::benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!(
        "the channel benchmarks compare mmf with futexes, pipes and sockets: run them on Linux"
    );
}
