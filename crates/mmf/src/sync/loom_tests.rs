//! The lock and sleeper handshakes under loom: the very state machines of `protocol.rs`,
//! with a model host whose `park`/`unpark` behave as a futex (Linux) or as a semaphore of
//! wake-up tokens (Windows). A lost wake-up leaves every thread parked, which loom reports
//! as a deadlock; a broken exclusion shows as a wrong count.
//!
//! The asymmetric unlock (a plain store, then a plain load of `sleepers`; the sleeper pays
//! with `membarrier(2)`) is modelled as the C++/Rust memory model can state it: the
//! sleeper's `membarrier` as a SeqCst fence ([`Host::sleeper_barrier`] of the model host),
//! and the unlocker's side as the SeqCst fence that `membarrier` makes it behave as if it
//! had (`protocol::light_fence` under loom). What this model cannot check: that the kernel
//! really interposes that barrier (an unlocker in a process that did not register runs
//! without it: `sys::sync` registers before joining), and that the compiler keeps the
//! load after the store natively (`compiler_fence`). What it does check: that with the
//! two fences where they are, no interleaving loses a wake-up, and that without the
//! sleeper's (the test with a broken barrier) one does.
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
    /// Mutexes unlock with a plain store (an asymmetric area).
    plain: bool,
    /// The sleeper's barrier works (`false`: the broken model that loom must fail).
    barrier: bool,
}

impl Host for ModelHost {
    fn token(&self) -> Result<u32> {
        Ok(self.token)
    }
    fn plain_unlock(&self) -> bool {
        self.plain
    }
    fn sleep_begin(&self, _index: u32) -> bool {
        true
    }
    fn sleep_end(&self, _index: u32, _recorded: bool) {}
    fn sleeper_barrier(&self) -> bool {
        // membarrier in an asymmetric area; in a symmetric one, the SeqCst order of the
        // read-modify-writes that loom only sees as acquire/release.
        if self.barrier {
            crate::primitive::sync::atomic::fence(SeqCst);
        }
        true
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
    hosts_with(wake, false, true)
}

fn hosts_with(wake: Wake, plain: bool, barrier: bool) -> (ModelHost, ModelHost) {
    let kernel = Arc::new(Kernel { wake, tokens: Mutex::new(0), cv: Condvar::new() });
    (
        ModelHost { kernel: Arc::clone(&kernel), token: 1 << 10, plain, barrier },
        ModelHost { kernel, token: 1 << 10 | 1, plain, barrier },
    )
}

/// Two "processes" each take the mutex once and bump a counter with a plain load+store.
fn mutex_excludes_and_wakes(wake: Wake) {
    mutex_excludes_and_wakes_with(wake, false, true);
}

fn mutex_excludes_and_wakes_with(wake: Wake, plain: bool, barrier: bool) {
    model(move || {
        let m = Arc::new(object());
        let count = Arc::new(AtomicU32::new(0));
        let (a, b) = hosts_with(wake, plain, barrier);
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

/// The asymmetric unlock: a plain store and a plain load, the sleeper's barrier in place.
#[test]
fn sync_mutex_plain_unlock_futex() {
    mutex_excludes_and_wakes_with(Wake::Futex, true, true);
}

/// Three threads on one plain-unlocked mutex: two sleepers at once, each woken in turn.
#[test]
fn sync_mutex_plain_unlock_two_sleepers() {
    model(|| {
        let m = Arc::new(object());
        let count = Arc::new(AtomicU32::new(0));
        let kernel =
            Arc::new(Kernel { wake: Wake::Futex, tokens: Mutex::new(0), cv: Condvar::new() });
        let host = |slot: u32| ModelHost {
            kernel: Arc::clone(&kernel),
            token: 1 << 10 | slot,
            plain: true,
            barrier: true,
        };
        let others: Vec<_> = (1..3)
            .map(|slot| {
                let (m, count, h) = (Arc::clone(&m), Arc::clone(&count), host(slot));
                thread::spawn(move || {
                    protocol::mutex_lock(&m, 0, &h, None).unwrap();
                    count.store(count.load(Relaxed) + 1, Relaxed);
                    protocol::mutex_unlock(&m, 0, &h, h.token, false).unwrap();
                })
            })
            .collect();
        let a = host(0);
        protocol::mutex_lock(&m, 0, &a, None).unwrap();
        count.store(count.load(Relaxed) + 1, Relaxed);
        protocol::mutex_unlock(&m, 0, &a, a.token, false).unwrap();
        for t in others {
            t.join().unwrap();
        }
        assert_eq!(count.load(Relaxed), 3);
    });
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

/// Runs the model `broken` in a child (this test binary again, test `test`) and checks
/// that loom found a deadlock there: loom reports one by a panic that aborts the process.
fn loom_finds_a_deadlock(test: &str, broken: fn()) {
    if std::env::var_os("MMF_LOOM_BROKEN").is_some() {
        return broken();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("MMF_LOOM_BROKEN", "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "loom did not find the lost wake-up");
    assert!(stderr.contains("deadlock"), "the model failed for another reason: {stderr}");
}

/// The check that loom can fail here: a waker that looks for sleepers *before* it frees
/// the lock (the handshake's order reversed) loses a wake-up in some interleaving.
#[test]
fn sync_loom_finds_a_waker_that_looks_for_sleepers_too_early() {
    loom_finds_a_deadlock(
        "sync::loom_tests::sync_loom_finds_a_waker_that_looks_for_sleepers_too_early",
        broken_waker_model,
    );
}

/// And for the asymmetric unlock: a sleeper that skips its barrier (`membarrier`) loses a
/// wake-up to a plain unlock in some interleaving.
#[test]
fn sync_loom_finds_a_plain_unlock_without_the_sleepers_barrier() {
    loom_finds_a_deadlock(
        "sync::loom_tests::sync_loom_finds_a_plain_unlock_without_the_sleepers_barrier",
        || mutex_excludes_and_wakes_with(Wake::Futex, true, false),
    );
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
