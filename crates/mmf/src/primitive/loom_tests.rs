//! Keeps the loom switch alive: the shim's atomics are loom's, so loom finds the missing
//! ordering in a broken publication (which `core` atomics on x86 would never show) and
//! accepts the correct one.

use loom::sync::Arc;
use loom::thread;

use super::spin_loop;
use super::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Publishes a value through a flag with the given store ordering; the reader spins on the
/// flag with Acquire and checks the value.
fn publish(store: Ordering) {
    loom::model(move || {
        let data = Arc::new(AtomicU64::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let (d, r) = (Arc::clone(&data), Arc::clone(&ready));
        let writer = thread::spawn(move || {
            d.store(42, Ordering::Relaxed);
            r.store(true, store);
        });
        while !ready.load(Ordering::Acquire) {
            spin_loop();
        }
        assert_eq!(data.load(Ordering::Relaxed), 42, "the reader saw the flag before the data");
        writer.join().unwrap();
    });
}

#[test]
fn release_acquire_publication_holds_in_every_interleaving() {
    publish(Ordering::Release);
}

#[test]
fn loom_finds_a_relaxed_publication() {
    let caught = std::panic::catch_unwind(|| publish(Ordering::Relaxed))
        .expect_err("loom must find the stale read: is the shim using loom's atomics?");
    let message = caught
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| caught.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(message.contains("the reader saw the flag before the data"), "{message}");
}
