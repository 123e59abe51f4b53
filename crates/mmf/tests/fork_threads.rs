//! A child `fork`ed (without `exec`) while other threads of its parent create named
//! objects and join sync areas: it creates and joins its own, whatever those threads held
//! at the fork. Such a child once waited for ever at its first join (the list of joined
//! areas was locked by a joining thread, which the child does not have) or its first
//! create (the socket to the reaper, locked by a thread starting the reaper). The
//! `mmf-heap` crate's `tests/fork.rs` does the same through heaps.
//!
//! `MMF_FORK_CHILDREN` (default 60) sets how many children the test forks.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mmf::sync::{SyncArea, SyncAreaOptions};
use mmf::{Access, MappingOptions};
use mmf_testkit::unique_name;

/// Creates a scoped named mapping `name`, makes a sync area in it, joins it (a lock) and
/// lets it all go.
fn create_and_join(name: &str) {
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(16384)
        .name(name)
        .map_anonymous()
        .unwrap();
    let view = mapping.view_mut(..).unwrap();
    let options = SyncAreaOptions::new().participants(8).objects(2).clone();
    let area = SyncArea::open_or_init_owned(view, 0, &options).unwrap();
    drop(area.mutex(0).unwrap().lock().unwrap());
}

#[test]
fn a_child_forked_while_threads_create_and_join_does_both() {
    let children =
        std::env::var("MMF_FORK_CHILDREN").ok().and_then(|v| v.parse().ok()).unwrap_or(60u64);
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            let name = unique_name(&format!("fork-busy{t}"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    create_and_join(&name);
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (mut ok, mut hung, mut other) = (0, 0, 0);
    for i in 0..children {
        let own = unique_name(&format!("fork-child{i}"));
        // SAFETY: the child makes and joins an area of its own, then leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: alarm only schedules a signal (a hang ends the child).
            unsafe { libc::alarm(10) };
            let code = match std::panic::catch_unwind(|| create_and_join(&own)) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: leaves the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
            hung += 1;
        } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            ok += 1;
        } else {
            other += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let failed = threads.into_iter().map(|t| t.join().is_err()).filter(|&e| e).count();
    eprintln!("children: {ok} fine, {hung} hung (SIGALRM), {other} failed otherwise");
    assert_eq!((hung, other, failed), (0, 0, 0), "(hung, failed, parent's threads failed)");
}
