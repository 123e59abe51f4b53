//! A guard against a lost futex wake-up in the raw anchors, so that the bench cannot hang.
//!
//! Why: on 2026-12-02 a CI run hung in `channel_rtt_hybrid/raw_hybrid` after 4.6M round trips
//! with both processes in `FUTEX_WAIT` on words of a shared page of an ext4 file. The page
//! showed the wake-up had been sent: the word the peer slept on had moved, and its sleep flag
//! had been taken by the poster, which wakes when it takes it. Attaching a debugger to the
//! peer, which interrupts its wait so that the kernel compares the word again, let the run
//! go on. So the kernel lost a `FUTEX_WAKE` to a waiter on that word (guest kernel
//! 6.18.44). The anchors keep their untimed `FUTEX_WAIT`: a timeout would add an hrtimer to
//! every sleep and change what they measure. Instead a watchdog thread looks at the page
//! every 200 ms. If its two words stood still for 2 s while a side's sleep flag is up, it
//! signals both processes (`SIGUSR1`, whose handler does nothing). An untimed `FUTEX_WAIT`
//! interrupted by a signal returns (or restarts) and compares the word again, and the
//! waiter goes on. Nothing is added to a round trip. A pair that merely waits for its turn
//! (the peer asleep, the bench driving another contestant) looks the same, so each signal
//! that brings no progress doubles the wait before the next one (up to a minute).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The do-nothing handler of `SIGUSR1`: its only effect is to interrupt a system call.
extern "C" fn nothing(_: libc::c_int) {}

/// Installs the do-nothing `SIGUSR1` handler in this process (the bench and the peer roles
/// both call it before they wait).
pub fn install() {
    // SAFETY: sigaction with a zeroed struct, an empty mask and a handler that touches
    // nothing (async-signal-safe); SA_RESTART restarts interrupted calls other than futex
    // waits, which compare their word again either way.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
}

/// A running watchdog of one raw pair; stopped (and joined) on drop.
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Watches the words at offsets 0 and 128 of the page at `path` (the pair's ping and
    /// pong; their sleep flags at 64 and 192), signalling this thread and process `peer`
    /// when the words stand still while a flag is up.
    pub fn start(path: &Path, peer: u32) -> Watchdog {
        install();
        let view = super::linux::raw_view(path);
        // SAFETY: pthread_self has no preconditions.
        let main = unsafe { libc::pthread_self() };
        let stop = Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        let thread = std::thread::spawn(move || {
            let word = |o| view.get::<AtomicU32>(o).unwrap().load(Ordering::Relaxed);
            let mut last = (word(0), word(128));
            let (mut still, mut limit) = (0, 10);
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let now = (word(0), word(128));
                if now == last {
                    still += 1;
                } else {
                    (still, limit) = (0, 10);
                }
                last = now;
                if still >= limit && (word(64) == 1 || word(192) == 1) {
                    // SAFETY: signals to our own bench thread (alive: it joins us before it
                    // ends) and to our own child process, both with the handler installed.
                    unsafe {
                        libc::pthread_kill(main, libc::SIGUSR1);
                        libc::kill(peer as libc::pid_t, libc::SIGUSR1);
                    }
                    (still, limit) = (0, (limit * 2).min(300));
                }
            }
        });
        Watchdog { stop, thread: Some(thread) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
