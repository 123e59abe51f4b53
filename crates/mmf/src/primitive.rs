//! The atomics that mmf's lock-free algorithms are written on: `core`'s normally, loom's
//! under `--cfg mmf_loom`, so that loom can explore every interleaving of the same code
//! (the shim crossbeam-utils uses).
//!
//! Only algorithms written above `sys` use this (the sync and channel layers); memory that
//! peers share through a mapping is reached through `std` atomics in `map::shared`, whose
//! types are public API, and the fault guard's flag stays a `std` atomic because a signal
//! handler touches it.
//!
//! ```text
//! RUSTFLAGS="--cfg mmf_loom" cargo test -p mmf --lib --release primitive
//! ```

#[cfg(not(mmf_loom))]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use core::sync::atomic::{
            AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
        };
    }
}

#[cfg(mmf_loom)]
pub(crate) mod sync {
    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{
            AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
        };
    }
}

/// A busy-wait hint (`pause` / `yield`); under loom, a yield to the model's scheduler.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(mmf_loom))]
    core::hint::spin_loop();
    #[cfg(mmf_loom)]
    loom::thread::yield_now();
}

#[cfg(all(test, mmf_loom))]
mod loom_tests;
