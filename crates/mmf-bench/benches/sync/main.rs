//! mmf::sync side by side with the alternatives in one run (issue #14):
//!
//! - `sync_uncontended`: lock+unlock of an mmf `Mutex`, of a glibc robust process-shared
//!   `pthread_mutex_t`, of a plain process-shared one, and a bare CAS + store, all in the
//!   same shared page;
//! - `sync_handoff_spin`: a round trip between two processes through two auto-reset events
//!   whose waiters spin (20,000 polls) before sleeping, vs two atomics on a shared page that
//!   both sides spin on;
//! - `sync_handoff_sleep`: the same round trip with waiters that sleep at once (every wait
//!   parks: the event set wakes a sleeping process), vs a raw futex wait/wake on every
//!   message.
//! - `sync_contended`: two processes locking one mutex in a loop (locks often sleep): an
//!   mmf `Mutex` (spinning first, or sleeping at once) vs glibc's robust process-shared
//!   mutex.
//!
//! `cargo bench -p mmf-bench --bench sync`, then `scripts/bench-ratios.py`. The echo side
//! of the handoffs is this binary run again with `MMF_BENCH_ECHO` set.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

#[cfg(target_os = "linux")]
mod contended;
#[cfg(target_os = "linux")]
mod linux;

#[cfg(target_os = "linux")]
fn main() {
    if linux::echo_role() {
        return;
    }
    linux::benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the sync benchmarks compare mmf with glibc and futexes: run them on Linux");
}
