//! The benchmarks themselves (Linux: the alternatives are glibc and futex calls).

use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use mmf::sync::{ResetMode, SyncArea, SyncAreaOptions};
use mmf::{Access, Mapping, ViewMut};

const ECHO: &str = "MMF_BENCH_ECHO";

/// Layout of the bench file: the sync area at 0, raw words at 8192.
const RAW_PING: usize = 8192;
const RAW_PONG: usize = 8192 + 64;
const SIZE: u64 = 16384;

pub(crate) fn bench_file() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mmf-sync-bench-{}", std::process::id()))
}

pub(crate) fn map(path: &std::path::Path) -> ViewMut {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    file.set_len(SIZE).unwrap();
    Mapping::from_file(&file, Access::ReadWrite).unwrap().view_mut(..).unwrap()
}

pub(crate) fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT reads the word in our shared mapping; no timeout.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, 0usize);
    }
}

/// `membarrier(cmd)` (the sleepers' barrier of mmf's asymmetric unlock, raw).
fn membarrier(cmd: libc::c_int) {
    // SAFETY: membarrier takes no pointers.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) };
    assert!(r >= 0, "membarrier({cmd}) failed");
}

/// Sleeps as a raw futex waiter does, after the barrier an mmf mutex sleeper issues in an
/// asymmetric area (`mb`).
fn futex_sleep(word: &AtomicU32, expected: u32, mb: bool) {
    if mb {
        membarrier(libc::MEMBARRIER_CMD_GLOBAL_EXPEDITED);
        if word.load(Ordering::Acquire) != expected {
            return;
        }
    }
    futex_wait(word, expected);
}

pub(crate) fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only looks the word's address up.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
    }
}

/// The echo process: `MMF_BENCH_ECHO=mode:path`; answers pings until the ping is u32::MAX.
pub fn echo_role() -> bool {
    let Ok(value) = std::env::var(ECHO) else { return false };
    let (mode, path) = value.split_once(':').unwrap();
    let view = map(std::path::Path::new(path));
    match mode {
        "events-spin" | "events-sleep" => {
            let area = SyncArea::open(&view, 0).unwrap();
            area.set_spins(if mode == "events-spin" { 20_000 } else { 0 });
            let ping = area.event(0, ResetMode::Auto, false).unwrap();
            let pong = area.event(1, ResetMode::Auto, false).unwrap();
            let stop: &AtomicU32 = view.get(RAW_PING + 128).unwrap();
            loop {
                ping.wait().unwrap();
                if stop.load(Ordering::Acquire) != 0 {
                    return true;
                }
                pong.set().unwrap();
            }
        }
        "raw-spin" | "raw-futex" | "raw-futex-membarrier" => {
            let mb = mode == "raw-futex-membarrier";
            if mb {
                membarrier(libc::MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
            }
            let ping: &AtomicU32 = view.get(RAW_PING).unwrap();
            let pong: &AtomicU32 = view.get(RAW_PONG).unwrap();
            let mut seen = 0;
            loop {
                let mut v = ping.load(Ordering::Acquire);
                while v == seen {
                    if mode != "raw-spin" {
                        futex_sleep(ping, seen, mb);
                    } else {
                        std::hint::spin_loop();
                    }
                    v = ping.load(Ordering::Acquire);
                }
                if v == u32::MAX {
                    return true;
                }
                seen = v;
                pong.store(v, Ordering::Release);
                if mode != "raw-spin" {
                    futex_wake(pong);
                }
            }
        }
        mode if mode.starts_with("contend-") => {
            crate::contended::echo(mode, &view);
            true
        }
        other => panic!("unknown echo mode {other}"),
    }
}

pub(crate) fn spawn_echo(mode: &str, path: &std::path::Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(ECHO, format!("{mode}:{}", path.display()))
        .spawn()
        .unwrap()
}

/// A glibc mutex in `memory`, process-shared, robust if asked.
pub(crate) fn pthread_mutex(memory: *mut libc::pthread_mutex_t, robust: bool) {
    // SAFETY: attr is initialised before use and destroyed after; `memory` points to a
    // suitably aligned pthread_mutex_t inside our mapping.
    unsafe {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        libc::pthread_mutexattr_init(&mut attr);
        libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
        if robust {
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
        }
        assert_eq!(libc::pthread_mutex_init(memory, &attr), 0);
        libc::pthread_mutexattr_destroy(&mut attr);
    }
}

fn uncontended(c: &mut Criterion) {
    let path = bench_file();
    let view = map(&path);
    let area = SyncArea::init(&view, 0, &SyncAreaOptions::new()).unwrap();
    let mutex = area.mutex(0).unwrap();
    drop(mutex.lock().unwrap()); // joined
    let mut g = c.benchmark_group("sync_uncontended");
    g.measurement_time(Duration::from_secs(4));
    // Like the glibc contestants: the mutex goes through black_box, the lock and unlock run.
    g.bench_function("mmf_mutex", |b| b.iter(|| drop(black_box(&mutex).lock().unwrap())));
    for (name, robust, at) in
        [("glibc_robust_pshared", true, 4096), ("glibc_pshared", false, 4096 + 256)]
    {
        // SAFETY: inside the view, aligned (4096 + k·256), used only by this benchmark.
        let m = unsafe { view.as_ptr().add(at) as *mut libc::pthread_mutex_t };
        pthread_mutex(m, robust);
        g.bench_function(name, |b| {
            b.iter(|| {
                // SAFETY: an initialised mutex in a live mapping.
                unsafe {
                    libc::pthread_mutex_lock(black_box(m));
                    libc::pthread_mutex_unlock(m);
                }
            })
        });
    }
    let word: &AtomicU32 = view.get(RAW_PING + 256).unwrap();
    g.bench_function("cas_store", |b| {
        b.iter(|| {
            let _ = black_box(word).compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed);
            word.store(0, Ordering::Release);
        })
    });
    g.finish();
    drop(area);
    let _ = std::fs::remove_file(&path);
}

/// Round trips between this process and an echo, `iters` of them.
fn handoff(c: &mut Criterion, group: &str, contestants: &[(&str, &str)]) {
    let mut g = c.benchmark_group(group);
    g.measurement_time(Duration::from_secs(5)).sample_size(20);
    for &(name, mode) in contestants {
        let path = bench_file();
        let view = map(&path);
        let area = SyncArea::init(&view, 0, &SyncAreaOptions::new()).unwrap();
        area.set_spins(if mode == "events-spin" { 20_000 } else { 0 });
        let ping = area.event(0, ResetMode::Auto, false).unwrap();
        let pong = area.event(1, ResetMode::Auto, false).unwrap();
        let (raw_ping, raw_pong): (&AtomicU32, &AtomicU32) =
            (view.get(RAW_PING).unwrap(), view.get(RAW_PONG).unwrap());
        let mut child = spawn_echo(mode, &path);
        let mut seq = 0u32;
        let (futex, mb) = (mode.starts_with("raw-futex"), mode == "raw-futex-membarrier");
        if mb {
            membarrier(libc::MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
        }
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    if mode.starts_with("events") {
                        ping.set().unwrap();
                        pong.wait().unwrap();
                    } else {
                        seq += 1;
                        raw_ping.store(seq, Ordering::Release);
                        if futex {
                            futex_wake(raw_ping);
                        }
                        while raw_pong.load(Ordering::Acquire) != seq {
                            if futex {
                                futex_sleep(raw_pong, seq - 1, mb);
                            } else {
                                std::hint::spin_loop();
                            }
                        }
                    }
                }
                start.elapsed()
            })
        });
        // Stop the echo.
        view.get::<AtomicU32>(RAW_PING + 128).unwrap().store(1, Ordering::Release);
        ping.set().unwrap();
        raw_ping.store(u32::MAX, Ordering::Release);
        futex_wake(raw_ping);
        child.wait().unwrap();
        drop(area);
        let _ = std::fs::remove_file(&path);
    }
    g.finish();
}

pub fn benches() {
    let mut c = Criterion::default().configure_from_args();
    uncontended(&mut c);
    handoff(
        &mut c,
        "sync_handoff_spin",
        &[("mmf_events", "events-spin"), ("raw_spin", "raw-spin")],
    );
    // raw_futex_membarrier: the raw round trip with the barrier that each sleep on an mmf
    // mutex adds in an asymmetric area (events do not pay it): what that barrier costs.
    handoff(
        &mut c,
        "sync_handoff_sleep",
        &[
            ("mmf_events", "events-sleep"),
            ("raw_futex", "raw-futex"),
            ("raw_futex_membarrier", "raw-futex-membarrier"),
        ],
    );
    crate::contended::contended(&mut c);
}
