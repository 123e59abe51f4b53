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
//!   socket;
//! - `channel_oneway_vs_size`: the same three, throughput against the message size (16 B to
//!   64 KiB), for the report's scaling chart.
//!
//! Then latency percentiles (p50, p99, p99.9) of 100,000 timed round trips per
//! round-trip contestant, printed and written to `target/criterion/percentiles/channel.json`
//! (`$CRITERION_HOME/percentiles/` under `scripts/bench-report.sh`).
//!
//! With `--features iceoryx2` (not built by default nor in CI: its build runs bindgen,
//! which needs libclang, `apt-get install libclang-dev` on Debian), iceoryx2 0.10 runs in
//! the same groups: `iceoryx2_busy` (publish-subscribe ping and pong, polled) in
//! `channel_rtt_spin`, `iceoryx2_blocking` (the same with an event service each, the
//! listener blocking) in `channel_rtt_parked` and in `channel_rtt_hybrid` (issue #15 sets
//! the spin-then-park round trip a goal against it: measured in the same group and turns).
//!
//! `channel_rtt_spin` also has `raw_ring`: the floor of any ring that copies a 64-byte
//! message and commits it by a header word (two cache lines a message), without mmf's
//! checks, to tell the cost of the format from the cost of the code.
//!
//! `MMF_BENCH_CHANNEL_GROUPS=spin,hybrid,parked,oneway,size` picks groups (to re-run one alone),
//! `MMF_BENCH_ONLY=mmf,raw` contestants by name prefix (profiling one: `strace -c -f`,
//! `perf`), `MMF_BENCH_RTT_SAMPLES` the timed round trips per contestant (default 100,000;
//! a criterion filter that matches nothing, `--bench nomatch`, leaves only those). The
//! timed round trips are taken in 10 turns of every contestant (the parked group's pairs
//! all alive at once, their peers sleeping when idle; a spinning group's pairs made anew
//! each turn), so that the host's changing placement and load fall on all of them alike;
//! each group then prints its first contestant's (mmf's) median round trip over each
//! other's in the same turn, median and range over the turns: on a host whose placement
//! of the two processes changes (a nested guest here: 4x between minutes), the ratio to
//! trust over criterion's, whose contestants run one after the other.
//!
//! `cargo bench -p mmf-bench --bench channel [--features iceoryx2]`, then
//! `scripts/bench-ratios.py`.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

#[cfg(all(target_os = "linux", feature = "iceoryx2"))]
mod ice;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod nudge;
#[cfg(target_os = "linux")]
mod turns;

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
