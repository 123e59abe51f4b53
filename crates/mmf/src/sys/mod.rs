//! The platform layer: the only place that calls `libc` or `windows-sys`.
//!
//! Split by feature, not by platform (the shape of std's `library/std/src/sys`): each
//! feature folder has a `mod.rs` that *is the contract* — the types every platform shares
//! and the functions every platform provides, documented once — and a `linux.rs` and a
//! `windows.rs` that implement it. Helpers the features share (`cvt`, descriptors and
//! handles, the owner-only DACL) are in [`pal`].
//!
//! | feature | what it provides |
//! |---|---|
//! | [`map`] | file-mapping objects (`Section`), views (`Region`), flush, advice, populate, lock, residency |
//! | [`named`] | named objects: create, open, lifetime, list, remove |
//! | [`fault`] | the guard that turns a fault inside a copy into an error |
//! | [`cache`] | whole-file page cache: evict, data ranges |
//! | [`sync`] | sleeping and waking across processes (futex, named semaphores), participant liveness |
//!
//! Contract types that `sys` takes and returns are defined here, below every layer that
//! uses them; nothing in `sys` imports from the layers above it except `crate::error`.
//! Linux is selected by `target_os = "linux"`; every other target but Windows stops with a
//! `compile_error!` naming what a port must provide.

#[cfg(not(any(target_os = "linux", windows)))]
compile_error!(
    "mmf supports Linux and Windows only. A port to another OS provides the contracts in \
     crates/mmf/src/sys/{map,named,fault,cache}/mod.rs (mmap/msync/madvise/mincore, named \
     objects with a lifetime, a SIGBUS guard, page-cache calls) and the helpers in sys/pal."
);

pub(crate) mod cache;
pub(crate) mod fault;
#[cfg(target_os = "linux")]
mod fork;
pub(crate) mod map;
pub(crate) mod named;
pub(crate) mod pal;
#[cfg_attr(mmf_loom, allow(unused_imports))]
pub(crate) mod sync;
