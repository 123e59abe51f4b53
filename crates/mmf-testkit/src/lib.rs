//! The test kit every crate of the workspace tests with (`publish = false`).
//!
//! - [`roles`]: multi-process tests with real processes. A test re-runs its own binary as a
//!   [`Peer`] playing a role, talks to it over pipes, and can kill it (SIGKILL /
//!   `TerminateProcess`).
//! - [`files`]: temporary files with a known byte pattern, reading a file without a
//!   mapping, and (Linux) the dirty-page count of a mapping.
//! - [`cli`]: running a command-line binary and checking how it fails.
//! - [`unique_name`] and [`create_named`]: named objects no other test or run uses.

pub mod cli;
pub mod files;
pub mod roles;

pub use files::{file_with, open_rw, pattern, read_file_at};
pub use roles::{Peer, hear, role, tell};

/// A name no other test or run uses: `mmf-test-TAG-PID-N`.
pub fn unique_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("mmf-test-{tag}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Creates a new read-write pagefile-backed named mapping (`CreationMode::CreateNew`).
///
/// # Errors
/// As [`mmf::MappingOptions::map_anonymous`].
pub fn create_named(name: &str, size: u64) -> mmf::Result<mmf::Mapping> {
    mmf::MappingOptions::new()
        .access(mmf::Access::ReadWrite)
        .size(size)
        .name(name)
        .creation(mmf::CreationMode::CreateNew)
        .map_anonymous()
}
