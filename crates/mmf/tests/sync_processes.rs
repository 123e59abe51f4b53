//! The sync layer across real processes: owners killed with SIGKILL / `TerminateProcess`
//! while holding (in the fast path, while parked, at random points including between
//! joining and locking), a waiter's detection latency and CPU, a waiter in another PID
//! namespace, a `fork` child of a dead owner, and two processes handing off a lock and
//! events many times.
//!
//! Knobs: `MMF_SYNC_KILLS` (trials per kill test, default 10; the long run is
//! 1000), `MMF_SYNC_HANDOFFS` (default 20,000; the long run is 1,000,000).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mmf::sync::{LockError, ResetMode, SyncArea, SyncAreaOptions};
use mmf::{Access, Mapping, ViewMut};
use mmf_testkit::{Peer, file_with, hear, open_rw, role, tell};

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A file holding a fresh area with 4 participant slots (so that the kill tests also
/// prove that dead processes' slots are taken back) and 4 objects.
fn area_file() -> (tempfile::TempDir, String, ViewMut) {
    let (dir, path, file) = file_with(4096, |_| 0);
    let view = Mapping::from_file(&file, Access::ReadWrite).unwrap().view_mut(..).unwrap();
    drop(SyncArea::init(&view, 0, SyncAreaOptions::new().participants(4).objects(4)).unwrap());
    (dir, path.to_str().unwrap().to_owned(), view)
}

fn open_view(path: &str) -> ViewMut {
    let file = open_rw(Path::new(path));
    Mapping::from_file(&file, Access::ReadWrite).unwrap().view_mut(..).unwrap()
}

/// Where the peers keep a counter that only the mutex protects.
const COUNTER: usize = 2048;

/// The roles the peers play.
fn play(role: &str, path: &str) {
    let view = open_view(path);
    let area = SyncArea::open(&view, 0).unwrap();
    let mutex = area.mutex(0).unwrap();
    match role {
        // Locks and waits to be killed.
        "hold" => {
            let _guard = mutex.lock().unwrap();
            tell("locked");
            hear();
        }
        // Locks, then sleeps in the kernel on an event nobody sets.
        "hold-parked" => {
            let _guard = mutex.lock().unwrap();
            let never = area.event(1, ResetMode::Manual, false).unwrap();
            tell("locked");
            never.wait().unwrap();
        }
        // Joins, locks, counts, unlocks and leaves, over and over, until killed.
        "churn" => {
            drop(area);
            tell("started");
            loop {
                // Joins and leaves every 100 locks: kills land in joining, locking,
                // holding, unlocking and leaving.
                let area = SyncArea::open(&view, 0).unwrap();
                let mutex = area.mutex(0).unwrap();
                for _ in 0..100 {
                    let guard = match mutex.lock() {
                        Ok(g) => g,
                        Err(LockError::OwnerDied(g)) => {
                            g.mark_consistent();
                            g
                        }
                        Err(e) => panic!("{e}"),
                    };
                    let counter: &AtomicU64 = view.get(COUNTER).unwrap();
                    for _ in 0..10 {
                        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    }
                    drop(guard);
                }
            }
        }
        // Locks, forks a child that sleeps, and waits to be killed.
        #[cfg(target_os = "linux")]
        "fork-hold" => {
            let _guard = mutex.lock().unwrap();
            // SAFETY: the child calls only async-signal-safe functions (pause, _exit).
            let child = unsafe { libc::fork() };
            if child == 0 {
                // SAFETY: pause and _exit are async-signal-safe.
                unsafe {
                    libc::pause();
                    libc::_exit(0);
                }
            }
            tell(&format!("forked {child}"));
            hear();
        }
        // Reports whether it could take the lock at once.
        "try-lock" => {
            let what = match mutex.try_lock() {
                Ok(_) => "locked".to_owned(),
                Err(LockError::WouldBlock) => "busy".to_owned(),
                Err(LockError::OwnerDied(_)) => "owner-died".to_owned(),
                Err(e) => format!("{e}"),
            };
            tell(&format!("try {what}"));
        }
        // Sets event 1 and releases semaphore 2 (in a table that has no slot left for it).
        "set-and-release" => {
            let set = area.event(1, ResetMode::Manual, false).unwrap().set();
            tell(&format!("set {set:?}"));
            let released = area.semaphore(2, 0, 5).unwrap().release(1);
            tell(&format!("released {released:?}"));
        }
        // In another PID namespace: must not take a live owner's lock, then takes it
        // once it is free.
        "steal-attempt" => {
            tell(&format!("pid {}", std::process::id()));
            let first = match mutex.lock_timeout(Duration::from_millis(300)) {
                Err(LockError::Timeout) => "timeout".to_owned(),
                Ok(_) => "locked".to_owned(),
                Err(e) => format!("{e}"),
            };
            tell(&format!("first {first}"));
            hear();
            let second = match mutex.lock_timeout(Duration::from_secs(10)) {
                Ok(_) => "locked".to_owned(),
                Err(e) => format!("{e}"),
            };
            tell(&format!("second {second}"));
        }
        // Sleeps on event 1 and on the mutex (held by the parent) until killed.
        "sleep-on-both" => {
            let event = area.event(1, ResetMode::Auto, false).unwrap();
            tell("sleeping");
            let waiter = std::thread::spawn(move || {
                let view = open_view(&std::env::var("MMF_SYNC_AREA").unwrap());
                let area = SyncArea::open(&view, 0).unwrap();
                let _ = area.mutex(0).unwrap().lock();
            });
            event.wait().unwrap();
            waiter.join().unwrap();
        }
        // The other side of the handoff test.
        "handoff" => {
            let n: u64 = hear().unwrap().parse().unwrap();
            let spins: u32 = hear().unwrap().parse().unwrap();
            area.set_spins(spins);
            handoff_side(&area, &view, n, false);
            tell("done");
        }
        other => panic!("unknown role {other}"),
    }
}

fn lock_after_kill<'a>(mutex: &mmf::sync::Mutex<'a>) -> Result<mmf::sync::MutexGuard<'a>, String> {
    match mutex.lock_timeout(Duration::from_secs(10)) {
        Err(LockError::OwnerDied(g)) => {
            g.mark_consistent();
            Err("owner died".into())
        }
        Ok(g) => Ok(g),
        Err(e) => panic!("lock after the kill: {e} (a hang would be a bug)"),
    }
}

fn kill_while_holding(test: &str, role: &str) {
    let (_dir, path, view) = area_file();
    let area = SyncArea::open(&view, 0).unwrap();
    let mutex = area.mutex(0).unwrap();
    drop(mutex.lock().unwrap()); // joined first: the peer's slot is not this process's to take
    let trials = knob("MMF_SYNC_KILLS", 10);
    for trial in 0..trials {
        let mut peer = Peer::spawn(test, role, &path);
        peer.expect("locked");
        if role == "hold-parked" {
            std::thread::sleep(Duration::from_millis(20)); // into the futex
        }
        peer.kill();
        match lock_after_kill(&mutex) {
            Err(_) => {}
            Ok(_) => panic!("trial {trial}: the lock of a killed owner was not OwnerDied"),
        }
    }
}

#[test]
fn owner_killed_while_holding_gives_owner_died_every_time() {
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    kill_while_holding("owner_killed_while_holding_gives_owner_died_every_time", "hold");
}

#[test]
fn owner_killed_while_parked_gives_owner_died() {
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    kill_while_holding("owner_killed_while_parked_gives_owner_died", "hold-parked");
}

#[test]
fn kills_at_random_points_never_hang_and_free_their_slots() {
    const TEST: &str = "kills_at_random_points_never_hang_and_free_their_slots";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    let (_dir, path, view) = area_file();
    let area = SyncArea::open(&view, 0).unwrap();
    let mutex = area.mutex(0).unwrap();
    let trials = knob("MMF_SYNC_KILLS", 10) * 2;
    let (mut died, mut free) = (0, 0);
    for trial in 0..trials {
        let mut peer = Peer::spawn(TEST, "churn", &path);
        peer.expect("started");
        // A different moment each time (0 to 5 ms into the loop).
        std::thread::sleep(Duration::from_micros((trial * 2_654_435_761) % 5_000));
        peer.kill();
        let held = mutex.owner_slot().is_some();
        match lock_after_kill(&mutex) {
            Err(_) => {
                assert!(held, "trial {trial}: OwnerDied for a lock nobody held");
                died += 1;
            }
            Ok(_) => {
                assert!(!held, "trial {trial}: a dead owner's lock was handed out clean");
                free += 1;
            }
        }
    }
    eprintln!("{trials} kills: {died} while holding, {free} while not");
    assert!(view.get::<AtomicU64>(COUNTER).unwrap().load(Ordering::Relaxed) > 0);
}

#[test]
fn a_waiter_learns_of_the_owners_death_quickly_without_spinning() {
    const TEST: &str = "a_waiter_learns_of_the_owners_death_quickly_without_spinning";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    let (_dir, path, view) = area_file();
    let area = SyncArea::open(&view, 0).unwrap();
    let mutex = area.mutex(0).unwrap();
    drop(mutex.lock().unwrap()); // joined first: the peer's slot is not this process's to take
    let mut peer = Peer::spawn(TEST, "hold", &path);
    peer.expect("locked");
    let killed_at = std::sync::OnceLock::new();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let cpu = thread_cpu();
            let died = matches!(mutex.lock(), Err(LockError::OwnerDied(_)));
            (died, Instant::now(), thread_cpu() - cpu)
        });
        std::thread::sleep(Duration::from_millis(1000));
        killed_at.set(Instant::now()).unwrap();
        peer.kill();
        let (died, at, cpu) = waiter.join().unwrap();
        assert!(died, "the waiter did not get OwnerDied");
        let latency = at - *killed_at.get().unwrap();
        eprintln!("learned of the death after {latency:?}; waiter CPU {cpu:?} in ~1 s");
        assert!(latency < Duration::from_millis(100), "learned of the death after {latency:?}");
        // Windows waits on the owner's process handle: at once, not at the next slice.
        #[cfg(windows)]
        assert!(latency < Duration::from_millis(20), "learned of the death after {latency:?}");
        assert!(cpu < Duration::from_millis(50), "the waiter burned {cpu:?} of CPU in ~1 s");
    });
}

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `timespec` is plain data that clock_gettime fills.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: a valid clock id and a pointer to a timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::FILETIME;
        use windows_sys::Win32::System::Threading::{GetCurrentThread, GetThreadTimes};
        let zero = FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 };
        let (mut c, mut e, mut k, mut u) = (zero, zero, zero, zero);
        // SAFETY: the pseudo-handle of this thread and four FILETIMEs to fill.
        unsafe { GetThreadTimes(GetCurrentThread(), &mut c, &mut e, &mut k, &mut u) };
        let t = |f: FILETIME| (u64::from(f.dwHighDateTime) << 32) | u64::from(f.dwLowDateTime);
        Duration::from_nanos((t(k) + t(u)) * 100)
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_fork_child_does_not_keep_a_dead_owner_alive() {
    const TEST: &str = "a_fork_child_does_not_keep_a_dead_owner_alive";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    let (_dir, path, view) = area_file();
    let area = SyncArea::open(&view, 0).unwrap();
    let mutex = area.mutex(0).unwrap();
    drop(mutex.lock().unwrap()); // joined first: the peer's slot is not this process's to take
    let mut peer = Peer::spawn(TEST, "fork-hold", &path);
    let child: libc::pid_t = peer.expect("forked").parse().unwrap();
    peer.kill();
    // SAFETY: kill with signal 0 only checks that the process exists.
    assert_eq!(unsafe { libc::kill(child, 0) }, 0, "the fork child should still run");
    let result = mutex.lock_timeout(Duration::from_secs(2));
    // SAFETY: the fork child is ours to end (it only sleeps).
    unsafe { libc::kill(child, libc::SIGKILL) };
    assert!(
        matches!(result, Err(LockError::OwnerDied(_))),
        "the fork child kept its dead parent's lock alive: {result:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_fork_child_dropping_an_inherited_guard_leaves_the_parents_lock_held() {
    const TEST: &str = "a_fork_child_dropping_an_inherited_guard_leaves_the_parents_lock_held";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    let (_dir, path, view) = area_file();
    let area = SyncArea::open(&view, 0).unwrap();
    let mutex = area.mutex(0).unwrap();
    let guard = mutex.lock().unwrap();
    // SAFETY: the child only drops its copy of the guard (atomics, at most a futex wake)
    // and calls _exit.
    let child = unsafe { libc::fork() };
    assert!(child >= 0);
    if child == 0 {
        drop(guard);
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: our child.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(mutex.owner_slot(), area.slot(), "the child's drop released the parent's lock");
    let mut peer = Peer::spawn(TEST, "try-lock", &path);
    assert_eq!(peer.expect("try"), "busy", "another process took the lock this process holds");
    peer.wait_success();
    drop(guard);
    let mut peer = Peer::spawn(TEST, "try-lock", &path);
    assert_eq!(peer.expect("try"), "locked");
    peer.wait_success();
}

#[test]
fn a_process_that_cannot_join_still_wakes_the_waiters_it_sets_and_releases() {
    const TEST: &str = "a_process_that_cannot_join_still_wakes_the_waiters_it_sets_and_releases";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    // One participant slot, taken by this process's waiters: the peer cannot join.
    let (_dir, path, file) = file_with(4096, |_| 0);
    let view = Mapping::from_file(&file, Access::ReadWrite).unwrap().view_mut(..).unwrap();
    let area = SyncArea::init(&view, 0, SyncAreaOptions::new().participants(1).objects(3)).unwrap();
    area.set_spins(0);
    let event = area.event(1, ResetMode::Manual, false).unwrap();
    let sem = area.semaphore(2, 0, 5).unwrap();
    std::thread::scope(|s| {
        let waiters = [
            s.spawn(|| {
                let start = Instant::now();
                (event.wait_timeout(Duration::from_secs(5)).unwrap(), start.elapsed())
            }),
            s.spawn(|| {
                let start = Instant::now();
                (sem.acquire_timeout(Duration::from_secs(5)).unwrap(), start.elapsed())
            }),
        ];
        std::thread::sleep(Duration::from_millis(200)); // both asleep
        let mut peer = Peer::spawn(TEST, "set-and-release", path.to_str().unwrap());
        assert_eq!(peer.expect("set"), "Ok(())", "set() failed in a process without a slot");
        assert_eq!(peer.expect("released"), "Ok(0)");
        peer.wait_success();
        for waiter in waiters {
            let (woken, waited) = waiter.join().unwrap();
            assert!(woken);
            assert!(waited < Duration::from_secs(3), "the wake-up was lost: woke after {waited:?}");
        }
    });
}

#[test]
fn a_copy_of_an_area_file_is_another_area_with_its_own_slot() {
    const TEST: &str = "a_copy_of_an_area_file_is_another_area_with_its_own_slot";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    let (dir, path, view) = area_file();
    let area = SyncArea::open(&view, 0).unwrap();
    drop(area.mutex(0).unwrap().lock().unwrap()); // joined the original
    let copy = dir.path().join("copy");
    std::fs::copy(&path, &copy).unwrap();
    let copy = copy.to_str().unwrap().to_owned();
    let copy_view = open_view(&copy);
    let copy_area = SyncArea::open(&copy_view, 0).unwrap();
    let guard = copy_area.mutex(0).unwrap().lock().unwrap();
    // The copy's lock must stand for a live process in the copy too.
    let mut peer = Peer::spawn(TEST, "try-lock", &copy);
    assert_eq!(peer.expect("try"), "busy", "a live owner's lock in the copied file was taken");
    peer.wait_success();
    drop(guard);
}

#[test]
fn a_dead_owners_reused_slot_and_an_unrepaired_steal_still_say_owner_died() {
    const TEST: &str = "a_dead_owners_reused_slot_and_an_unrepaired_steal_still_say_owner_died";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    let (_dir, path, view) = area_file();
    let mut peer = Peer::spawn(TEST, "hold", &path);
    peer.expect("locked");
    peer.kill();
    // This process joins now, taking the dead owner's slot 0 (its next generation).
    let area = SyncArea::open(&view, 0).unwrap();
    drop(area.mutex(1).unwrap().lock().unwrap());
    assert_eq!(area.slot(), Some(0));
    // The inspector must not name this live process as the holder of the dead one's lock.
    let info = mmf::sync::inspect(&view_ro(&path), 0).unwrap();
    let held = info.objects.iter().find(|o| o.index == 0).unwrap();
    assert_eq!(held.holder, Some(0));
    assert_eq!(held.holder_pid, None, "the slot's new process was named as the holder");
    assert_eq!(held.holder_liveness, Some(mmf::sync::Liveness::Dead));
    let mutex = area.mutex(0).unwrap();
    match mutex.lock_timeout(Duration::from_secs(2)) {
        Err(LockError::OwnerDied(guard)) => drop(guard), // not repaired
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    match mutex.lock_timeout(Duration::from_secs(2)) {
        Err(LockError::OwnerDied(guard)) => guard.mark_consistent(),
        other => panic!("unrepaired: expected OwnerDied again, got {other:?}"),
    }
    drop(mutex.lock().unwrap());
}

fn view_ro(path: &str) -> mmf::View {
    let file = std::fs::File::open(path).unwrap();
    Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_waiter_in_another_pid_namespace_never_steals_a_live_lock() {
    const TEST: &str = "a_waiter_in_another_pid_namespace_never_steals_a_live_lock";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    if !mmf_testkit::root_for("a waiter in another PID namespace (unshare -p)") {
        return;
    }
    let (_dir, path, view) = area_file();
    let area = SyncArea::open(&view, 0).unwrap();
    let mutex = area.mutex(0).unwrap();
    let guard = mutex.lock().unwrap();
    let mut peer =
        Peer::spawn_under(&["unshare", "-p", "-f", "--"], TEST, "steal-attempt", &path, |_| {});
    let pid: u32 = peer.expect("pid").parse().unwrap();
    assert_ne!(pid, std::process::id());
    assert!(pid < 10, "the peer should see a fresh PID namespace, saw pid {pid}");
    assert_eq!(
        peer.expect("first"),
        "timeout",
        "a live owner's lock was taken from another namespace"
    );
    drop(guard);
    peer.say("go");
    assert_eq!(peer.expect("second"), "locked");
    peer.wait_success();
}

#[test]
fn a_waiter_killed_while_asleep_is_taken_out_of_the_count_and_breaks_nothing() {
    const TEST: &str = "a_waiter_killed_while_asleep_is_taken_out_of_the_count_and_breaks_nothing";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    let (_dir, path, view) = area_file();
    let area = SyncArea::open(&view, 0).unwrap();
    let mutex = area.mutex(0).unwrap();
    let event = area.event(1, ResetMode::Auto, false).unwrap();
    let guard = mutex.lock().unwrap();
    let mut peer = Peer::spawn_with(TEST, "sleep-on-both", &path, |c| {
        c.env("MMF_SYNC_AREA", &path);
    });
    peer.expect("sleeping");
    std::thread::sleep(Duration::from_millis(100)); // both of its threads asleep
    peer.kill();
    // The dead sleepers are still counted, and the inspector says they are dead ...
    let counts = || {
        let info = mmf::sync::inspect(&view, 0).unwrap();
        info.objects.iter().map(|o| (o.sleepers, o.stale_sleepers)).collect::<Vec<_>>()
    };
    assert_eq!(counts(), [(1, 1), (1, 1)], "both of the peer's threads should have been asleep");
    // ... until a wake-up finds nobody: then what the dead process recorded is taken back,
    // for both objects (the set of an event nobody waits for, here).
    event.set().unwrap();
    assert_eq!(counts(), [(0, 0), (0, 0)], "the dead sleepers stayed counted");
    drop(guard);
    // The objects still behave.
    for _ in 0..3 {
        assert!(event.wait_timeout(Duration::ZERO).unwrap(), "the dead waiter took the set");
        let t = Instant::now();
        assert!(!event.wait_timeout(Duration::from_millis(50)).unwrap());
        assert!(t.elapsed() >= Duration::from_millis(50));
        drop(mutex.lock_timeout(Duration::from_secs(5)).expect("the mutex still works"));
        event.set().unwrap();
    }
    assert!(event.wait_timeout(Duration::ZERO).unwrap());
    std::thread::scope(|s| {
        let waiter = s.spawn(|| event.wait_timeout(Duration::from_secs(10)).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        event.set().unwrap();
        assert!(waiter.join().unwrap(), "a live sleeper was not woken");
    });
}

#[test]
fn a_newcomer_taking_a_dead_sleepers_slot_takes_its_count_back() {
    const TEST: &str = "a_newcomer_taking_a_dead_sleepers_slot_takes_its_count_back";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    // Two slots: this process's, and the one the peer dies in and the newcomer takes.
    let (_dir, path, file) = file_with(4096, |_| 0);
    let view = Mapping::from_file(&file, Access::ReadWrite).unwrap().view_mut(..).unwrap();
    let area = SyncArea::init(&view, 0, SyncAreaOptions::new().participants(2).objects(4)).unwrap();
    let guard = area.mutex(0).unwrap().lock().unwrap();
    let path = path.to_str().unwrap().to_owned();
    let mut peer = Peer::spawn_with(TEST, "sleep-on-both", &path, |c| {
        c.env("MMF_SYNC_AREA", &path);
    });
    peer.expect("sleeping");
    std::thread::sleep(Duration::from_millis(100));
    peer.kill();
    let sleepers = || -> Vec<u32> {
        let info = mmf::sync::inspect(&view, 0).unwrap();
        info.objects.iter().map(|o| o.sleepers).collect()
    };
    assert_eq!(sleepers(), [1, 1]);
    let mut newcomer = Peer::spawn(TEST, "try-lock", &path);
    assert_eq!(newcomer.expect("try"), "busy");
    newcomer.wait_success();
    assert_eq!(sleepers(), [0, 0], "the newcomer took the dead sleepers' slot, not their count");
    drop(guard);
}

/// One side of the handoff: `n` increments under the mutex, then `n` rounds of ping-pong
/// on two auto-reset events (the parent sets 1 and waits on 2, the child the reverse).
fn handoff_side(area: &SyncArea<'_>, view: &ViewMut, n: u64, parent: bool) {
    let mutex = area.mutex(0).unwrap();
    let counter: &AtomicU64 = view.get(COUNTER).unwrap();
    for _ in 0..n {
        let _g = mutex.lock_timeout(Duration::from_secs(10)).expect("lost wake-up on the mutex");
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    let ping = area.event(1, ResetMode::Auto, false).unwrap();
    let pong = area.event(2, ResetMode::Auto, false).unwrap();
    let (mine, theirs) = if parent { (&ping, &pong) } else { (&pong, &ping) };
    for round in 0..n {
        if parent {
            mine.set().unwrap();
            assert!(
                theirs.wait_timeout(Duration::from_secs(10)).unwrap(),
                "lost wake-up at {round}"
            );
        } else {
            assert!(
                theirs.wait_timeout(Duration::from_secs(10)).unwrap(),
                "lost wake-up at {round}"
            );
            mine.set().unwrap();
        }
    }
}

#[test]
fn two_processes_hand_off_without_lost_wakeups() {
    const TEST: &str = "two_processes_hand_off_without_lost_wakeups";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    let n = knob("MMF_SYNC_HANDOFFS", 20_000);
    // Spinning first (the fast handoff), then sleeping at every wait (the futex path).
    for spins in [100u32, 0] {
        let (_dir, path, view) = area_file();
        let area = SyncArea::open(&view, 0).unwrap();
        area.set_spins(spins);
        let mut peer = Peer::spawn(TEST, "handoff", &path);
        peer.say(&n.to_string());
        peer.say(&spins.to_string());
        let t = Instant::now();
        handoff_side(&area, &view, n, true);
        peer.expect("done");
        peer.wait_success();
        let counter = view.get::<AtomicU64>(COUNTER).unwrap().load(Ordering::Relaxed);
        assert_eq!(counter, 2 * n, "the mutex let both processes in at once");
        eprintln!("spins {spins}: {n} lock handoffs + {n} event round trips in {:?}", t.elapsed());
    }
}
