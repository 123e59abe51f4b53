//! The lock and sleeper handshakes under loom: the very state machines of `protocol.rs`,
//! with a model host whose `park`/`unpark` behave as a futex (Linux) or as a semaphore of
//! wake-up tokens (Windows). A lost wake-up leaves every thread parked, which loom reports
//! as a deadlock; a broken exclusion shows as a wrong count.
//!
//! ```text
//! RUSTFLAGS="--cfg mmf_loom" cargo test -p mmf --lib --target-dir target/loom -- sync::loom
//! ```

use std::time::Instant;

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use super::layout::Object;
use super::protocol::{self, Host, Locked};
use crate::error::Result;
use crate::primitive::sync::atomic::Ordering::{Relaxed, SeqCst};
use crate::primitive::sync::atomic::{AtomicU32, AtomicU64};

/// How the model kernel wakes sleepers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wake {
    /// Linux: sleep only while the word holds the expected value; wake all.
    Futex,
    /// Windows: a semaphore of tokens; a waker releases `min(n, sleepers)`.
    Tokens,
}

struct Kernel {
    wake: Wake,
    tokens: Mutex<u32>,
    cv: Condvar,
}

struct ModelHost {
    kernel: Arc<Kernel>,
    token: u32,
}

impl Host for ModelHost {
    fn token(&self) -> Result<u32> {
        Ok(self.token)
    }
    fn thread(&self) -> u32 {
        self.token
    }
    fn owner_dead(&self, _token: u32) -> Result<bool> {
        Ok(false)
    }
    fn prepare(&self, _index: u32) -> Result<()> {
        Ok(())
    }
    fn park(
        &self,
        o: &Object,
        _: u32,
        expected: u32,
        _: Option<Instant>,
        _: Option<u32>,
    ) -> Result<()> {
        let mut tokens = self.kernel.tokens.lock().unwrap();
        match self.kernel.wake {
            Wake::Futex => {
                if o.state.load(SeqCst) == expected {
                    drop(self.kernel.cv.wait(tokens).unwrap());
                }
            }
            Wake::Tokens => {
                while *tokens == 0 {
                    tokens = self.kernel.cv.wait(tokens).unwrap();
                }
                *tokens -= 1;
            }
        }
        Ok(())
    }
    fn unpark(&self, o: &Object, _: u32, n: u32) -> Result<()> {
        let mut tokens = self.kernel.tokens.lock().unwrap();
        if self.kernel.wake == Wake::Tokens {
            *tokens += n.min(o.sleepers.load(SeqCst));
        }
        self.kernel.cv.notify_all();
        Ok(())
    }
    fn spins(&self) -> u32 {
        0 // straight to the sleeper handshake
    }
}

fn object() -> Object {
    Object {
        state: AtomicU32::new(0),
        sleepers: AtomicU32::new(0),
        desc: AtomicU64::new(0),
        flags: AtomicU32::new(0),
        owner_thread: AtomicU32::new(0),
        _reserved: AtomicU64::new(0),
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

fn hosts(wake: Wake) -> (ModelHost, ModelHost) {
    let kernel = Arc::new(Kernel { wake, tokens: Mutex::new(0), cv: Condvar::new() });
    (
        ModelHost { kernel: Arc::clone(&kernel), token: 1 << 10 },
        ModelHost { kernel, token: 1 << 10 | 1 },
    )
}

/// Two "processes" each take the mutex once and bump a counter with a plain load+store.
fn mutex_excludes_and_wakes(wake: Wake) {
    model(move || {
        let m = Arc::new(object());
        let count = Arc::new(AtomicU32::new(0));
        let (a, b) = hosts(wake);
        let (m2, count2) = (Arc::clone(&m), Arc::clone(&count));
        let other = thread::spawn(move || {
            assert_eq!(protocol::mutex_lock(&m2, 0, &b, None).unwrap(), Locked::Clean);
            count2.store(count2.load(Relaxed) + 1, Relaxed);
            protocol::mutex_unlock(&m2, 0, &b, b.token().unwrap(), false).unwrap();
        });
        assert_eq!(protocol::mutex_lock(&m, 0, &a, None).unwrap(), Locked::Clean);
        count.store(count.load(Relaxed) + 1, Relaxed);
        protocol::mutex_unlock(&m, 0, &a, a.token().unwrap(), false).unwrap();
        other.join().unwrap();
        assert_eq!(count.load(Relaxed), 2);
        assert_eq!(m.sleepers.load(Relaxed), 0);
    });
}

#[test]
fn sync_mutex_handshake_futex() {
    mutex_excludes_and_wakes(Wake::Futex);
}

#[test]
fn sync_mutex_handshake_tokens() {
    mutex_excludes_and_wakes(Wake::Tokens);
}

fn auto_event_wakes_its_waiter(wake: Wake) {
    model(move || {
        let e = Arc::new(object());
        let (a, b) = hosts(wake);
        let e2 = Arc::clone(&e);
        let waiter = thread::spawn(move || {
            assert!(protocol::event_wait(&e2, 0, &b, None, false).unwrap());
        });
        protocol::event_set(&e, 0, &a, false).unwrap();
        waiter.join().unwrap();
        assert_eq!(e.state.load(Relaxed) & 1, 0, "the auto-reset event was not reset");
    });
}

#[test]
fn sync_event_handshake_futex() {
    auto_event_wakes_its_waiter(Wake::Futex);
}

#[test]
fn sync_event_handshake_tokens() {
    auto_event_wakes_its_waiter(Wake::Tokens);
}

fn semaphore_hands_over(wake: Wake) {
    model(move || {
        let s = Arc::new(object());
        let (a, b) = hosts(wake);
        let s2 = Arc::clone(&s);
        let waiter = thread::spawn(move || {
            assert!(protocol::semaphore_acquire(&s2, 0, &b, None).unwrap());
        });
        assert_eq!(protocol::semaphore_release(&s, 0, &a, 1, 1).unwrap(), Some(0));
        waiter.join().unwrap();
        assert_eq!(s.state.load(Relaxed), 0);
    });
}

#[test]
fn sync_semaphore_handshake_futex() {
    semaphore_hands_over(Wake::Futex);
}

#[test]
fn sync_semaphore_handshake_tokens() {
    semaphore_hands_over(Wake::Tokens);
}

/// The check that loom can fail here: a waker that looks for sleepers *before* it frees
/// the lock (the handshake's order reversed) loses a wake-up in some interleaving. Loom
/// reports the deadlock by a panic that aborts the process, so the model runs in a child
/// (this test binary again) and the parent checks that it died saying "deadlock".
#[test]
fn sync_loom_finds_a_waker_that_looks_for_sleepers_too_early() {
    const TEST: &str =
        "sync::loom_tests::sync_loom_finds_a_waker_that_looks_for_sleepers_too_early";
    if std::env::var_os("MMF_LOOM_BROKEN_WAKER").is_some() {
        return broken_waker_model();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env("MMF_LOOM_BROKEN_WAKER", "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "loom did not find the lost wake-up");
    assert!(stderr.contains("deadlock"), "the model failed for another reason: {stderr}");
}

fn broken_waker_model() {
    model(|| {
        let m = Arc::new(object());
        let (a, b) = hosts(Wake::Futex);
        let m2 = Arc::clone(&m);
        let other = thread::spawn(move || {
            protocol::mutex_lock(&m2, 0, &b, None).unwrap();
            protocol::mutex_unlock(&m2, 0, &b, b.token().unwrap(), false).unwrap();
        });
        protocol::mutex_lock(&m, 0, &a, None).unwrap();
        let sleepers = m.sleepers.load(SeqCst); // too early
        crate::primitive::sync::atomic::fence(SeqCst);
        m.state.swap(0, SeqCst);
        if sleepers > 0 {
            a.unpark(&m, 0, 1).unwrap();
        }
        other.join().unwrap();
    });
}
