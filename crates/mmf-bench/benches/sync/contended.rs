//! `sync_contended`: two processes lock and unlock one mutex as fast as they can (a short
//! critical section), so that locks often find the mutex held and sleep: what a sleep on
//! an mmf mutex costs (its `membarrier` included, on Linux) against glibc's robust
//! process-shared mutex in the same harness. The time is the parent's per lock + unlock
//! while the echo process runs the same loop.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use mmf::ViewMut;
use mmf::sync::{SyncArea, SyncAreaOptions};

use crate::linux::{bench_file, futex_wait, futex_wake, map, pthread_mutex, spawn_echo};

/// Control words, after the other benchmarks' words.
const GO: usize = 12288;
const DONE: usize = 12288 + 64;
const ITERS: usize = 12288 + 128;
const STOP: usize = 12288 + 192;
const COUNTER: usize = 12288 + 256;
/// The glibc mutex of this group (apart from the uncontended group's).
const GLIBC: usize = 4096 + 1024;

/// How one side locks and unlocks `n` times.
fn run(mode: &str, area: &SyncArea<'_>, view: &ViewMut, n: u64) {
    let counter: &AtomicU64 = view.get(COUNTER).unwrap();
    let bump = || counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    if mode.starts_with("contend-mmf") {
        let mutex = area.mutex(3).unwrap();
        for _ in 0..n {
            let _g = mutex.lock().unwrap();
            bump();
        }
    } else {
        // SAFETY: inside the view, aligned, initialised by the parent.
        let m = unsafe { view.as_ptr().add(GLIBC) as *mut libc::pthread_mutex_t };
        for _ in 0..n {
            // SAFETY: an initialised mutex in a live mapping.
            unsafe { libc::pthread_mutex_lock(m) };
            bump();
            // SAFETY: as above; this thread holds it.
            unsafe { libc::pthread_mutex_unlock(m) };
        }
    }
}

fn spins(mode: &str) -> u32 {
    if mode == "contend-mmf-sleep" { 0 } else { 100 }
}

/// The echo side: runs the loop each time the parent says go, until told to stop.
pub fn echo(mode: &str, view: &ViewMut) {
    let area = SyncArea::open(view, 0).unwrap();
    area.set_spins(spins(mode));
    let (go, done): (&AtomicU32, &AtomicU32) = (view.get(GO).unwrap(), view.get(DONE).unwrap());
    let mut round = 0;
    loop {
        while go.load(Ordering::Acquire) == round {
            futex_wait(go, round);
        }
        round = go.load(Ordering::Acquire);
        if view.get::<AtomicU32>(STOP).unwrap().load(Ordering::Acquire) != 0 {
            return;
        }
        run(mode, &area, view, view.get::<AtomicU64>(ITERS).unwrap().load(Ordering::Acquire));
        done.store(round, Ordering::Release);
        futex_wake(done);
    }
}

pub fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync_contended");
    g.measurement_time(Duration::from_secs(5)).sample_size(20);
    for (name, mode) in [
        ("mmf_mutex", "contend-mmf"),
        ("mmf_mutex_sleep_at_once", "contend-mmf-sleep"),
        ("glibc_robust_pshared", "contend-glibc"),
    ] {
        let path = bench_file();
        let view = map(&path);
        let area = SyncArea::init(&view, 0, &SyncAreaOptions::new()).unwrap();
        area.set_spins(spins(mode));
        // SAFETY: inside the view, aligned, used only by this group.
        pthread_mutex(unsafe { view.as_ptr().add(GLIBC) as *mut libc::pthread_mutex_t }, true);
        let mut child = spawn_echo(mode, &path);
        let (go, done): (&AtomicU32, &AtomicU32) = (view.get(GO).unwrap(), view.get(DONE).unwrap());
        let mut round = 0;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                round += 1;
                view.get::<AtomicU64>(ITERS).unwrap().store(iters, Ordering::Release);
                go.store(round, Ordering::Release);
                futex_wake(go);
                let start = Instant::now();
                run(mode, &area, &view, iters);
                let elapsed = start.elapsed();
                while done.load(Ordering::Acquire) != round {
                    futex_wait(done, done.load(Ordering::Acquire));
                }
                elapsed
            })
        });
        view.get::<AtomicU32>(STOP).unwrap().store(1, Ordering::Release);
        go.store(round + 1, Ordering::Release);
        futex_wake(go);
        child.wait().unwrap();
        drop(area);
        let _ = std::fs::remove_file(&path);
    }
    g.finish();
}
