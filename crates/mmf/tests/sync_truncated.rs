//! A peer truncates a named Mutex, Event or Semaphore's `/dev/shm` object: every later
//! operation of this process on it is an error naming the truncation, never a SIGBUS (the
//! object's view is registered for zero pages in place of lost ones) and never a lock
//! "taken" on the zero page. Linux only (a named object is a /dev/shm file; a Windows
//! section cannot shrink).
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use mmf::sync::{LockError, NamedEvent, NamedMutex, NamedSemaphore, ResetMode};
use mmf_testkit::{Peer, role, tell, unique_name};

/// Truncates the named object's /dev/shm file to nothing, as a hostile peer would.
fn cut(name: &str) {
    let path = format!("/dev/shm/{}", name.trim_start_matches('/'));
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
}

/// Whether `e` is the truncation error.
fn is_truncation(e: &dyn std::fmt::Display) -> bool {
    e.to_string().contains("truncated under this process")
}

#[test]
fn a_truncated_named_mutex_is_an_error_not_a_sigbus_nor_a_free_lock() {
    let name = unique_name("mutex-cut");
    let mutex = NamedMutex::create(&name).unwrap();
    drop(mutex.lock().unwrap());
    cut(&name);
    // The lock word now reads 0 (free) on a zero page: taking it there would let two
    // processes hold the "same" lock.
    match mutex.try_lock() {
        Err(LockError::Os(e)) => assert!(is_truncation(&e), "{e}"),
        other => panic!("try_lock after the cut: {:?}", other.map(|_| "taken")),
    }
    match mutex.lock_timeout(Duration::from_millis(100)) {
        Err(LockError::Os(e)) => assert!(is_truncation(&e), "{e}"),
        other => panic!("lock after the cut: {:?}", other.map(|_| "taken")),
    }
}

#[test]
fn a_truncated_named_event_and_semaphore_are_errors_not_sigbus() {
    let (e_name, s_name) = (unique_name("event-cut"), unique_name("sem-cut"));
    let event = NamedEvent::create(&e_name, ResetMode::Manual, false).unwrap();
    let sem = NamedSemaphore::create(&s_name, 1, 4).unwrap();
    cut(&e_name);
    cut(&s_name);
    let set = event.event().set().unwrap_err();
    assert!(is_truncation(&set), "{set}");
    let waited = event.event().wait_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(is_truncation(&waited), "{waited}");
    let released = sem.semaphore().release(1).unwrap_err();
    assert!(is_truncation(&released), "{released}");
    // The count reads 0 on the zero page: without the check this would time out.
    let acquired = sem.semaphore().acquire_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(is_truncation(&acquired), "{acquired}");
}

/// A process asleep in `wait` on a named event (no timeout) when a peer truncates the
/// object: no wake-up will ever come, yet it returns the truncation error within its sleep
/// slice (50 ms) — not a SIGBUS, not a sleep forever.
#[test]
fn a_waiter_asleep_on_a_truncated_named_event_gets_an_error() {
    if let Some((role, name)) = role() {
        assert_eq!(role, "waiter");
        let event = NamedEvent::open(&name).unwrap();
        tell("waiting");
        let start = Instant::now();
        let r = event.event().wait();
        let what = match r {
            Err(e) if is_truncation(&e) => "truncated".to_owned(),
            Err(e) => e.to_string(),
            Ok(()) => "set".to_owned(),
        };
        tell(&format!("woke {what} {}", u8::from(start.elapsed() < Duration::from_secs(10))));
        return;
    }
    let name = unique_name("event-cut-wait");
    let _event = NamedEvent::create(&name, ResetMode::Auto, false).unwrap();
    let test = "a_waiter_asleep_on_a_truncated_named_event_gets_an_error";
    let mut waiter = Peer::spawn(test, "waiter", &name);
    waiter.expect("waiting");
    std::thread::sleep(Duration::from_millis(300)); // past its spinning: asleep
    cut(&name);
    // A waiter that never wakes is killed after 20 s (and the test fails).
    let pid = waiter.pid();
    let done = std::sync::atomic::AtomicBool::new(false);
    let woke = std::thread::scope(|s| {
        s.spawn(|| {
            let until = Instant::now() + Duration::from_secs(20);
            while !done.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !done.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        });
        let said = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waiter.expect("woke")));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        said.unwrap_or_else(|_| "never (killed after 20 s)".to_owned())
    });
    let status = waiter.child.wait().unwrap();
    assert_eq!(woke, "truncated 1", "the waiter's wait after the cut");
    assert!(status.success(), "the waiter ended with {status}");
}

/// A cut grown back before this process touched a lost page: no fault, no zero page, but
/// the object's pages are fresh zeros (the lock word reads free, the header is gone). The
/// next operation is the truncation error, not a lock taken on a wiped object.
#[test]
fn a_named_mutex_cut_and_grown_back_is_an_error_not_a_free_lock() {
    let name = unique_name("mutex-regrown");
    let mutex = NamedMutex::create(&name).unwrap();
    drop(mutex.lock().unwrap());
    let path = format!("/dev/shm/{}", name.trim_start_matches('/'));
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(0).unwrap();
    file.set_len(len).unwrap();
    match mutex.try_lock() {
        Err(LockError::Os(e)) => assert!(is_truncation(&e), "{e}"),
        other => panic!("try_lock after the cut and regrowth: {:?}", other.map(|_| "taken")),
    }
}
