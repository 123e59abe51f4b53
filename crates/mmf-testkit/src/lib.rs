//! The test kit every crate of the workspace tests with (`publish = false`).
//!
//! - [`roles`]: multi-process tests with real processes. A test re-runs its own binary as a
//!   [`Peer`] playing a role, talks to it over pipes, and can kill it (SIGKILL /
//!   `TerminateProcess`).
//! - [`files`]: temporary files with a known byte pattern, reading a file without a
//!   mapping, and (Linux) the dirty-page count of a mapping.
//! - [`durability`] (Linux): where durability is decided — a file's dirty pages in the
//!   page cache (`cachestat`) and reads past the page cache (`O_DIRECT`).
//! - [`cli`]: running a command-line binary and checking how it fails.
//! - [`forked`] (Linux): a child made by `fork` without `exec`, with an alarm.
//! - [`unique_name`] and [`create_named`]: named objects no other test or run uses.

pub mod cli;
#[cfg(target_os = "linux")]
pub mod durability;
pub mod files;
#[cfg(target_os = "linux")]
pub mod forked;
pub mod roles;

#[cfg(target_os = "linux")]
pub use files::small_tmpfs;
pub use files::{file_with, open_rw, pattern, read_file_at};
pub use roles::{Peer, hear, role, tell};

/// Starts `command` ([`Command::spawn`](std::process::Command::spawn)), trying again when
/// Wine fails to start a process.
///
/// Under Wine, `CreateProcess` now and then fails with `ERROR_INTERNAL_ERROR` (1359): the new
/// process died while Wine was still starting it, before any of its code ran (seen once in a
/// CI run of a test that starts a peer every few milliseconds). That is the test host, not the
/// code under test, so up to 5 tries are made, a little apart; any other error, or the sixth
/// 1359, is returned. On Linux this is `command.spawn()`.
///
/// # Errors
/// As [`Command::spawn`](std::process::Command::spawn).
pub fn spawn(command: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    #[cfg(windows)]
    let wine_start_failure = |e: &std::io::Error| {
        e.raw_os_error() == Some(windows_sys::Win32::Foundation::ERROR_INTERNAL_ERROR as i32)
    };
    #[cfg(not(windows))]
    let wine_start_failure = |_: &std::io::Error| false;
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if wine_start_failure(&e) && tries < 5 => {
                tries += 1;
                eprintln!("the process did not start ({e}); try {tries} of 5 more");
                std::thread::sleep(std::time::Duration::from_millis(50 * tries));
            }
            other => return other,
        }
    }
}

/// Runs `command` to its end ([`Command::output`](std::process::Command::output)), started
/// with [`spawn`]'s retry of Wine's failed process starts. stdout and stderr are captured;
/// stdin is what `command` says (inherited unless set, unlike `Command::output`).
///
/// # Errors
/// As [`Command::output`](std::process::Command::output).
pub fn output(command: &mut std::process::Command) -> std::io::Result<std::process::Output> {
    use std::process::Stdio;
    let child = spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped()))?;
    child.wait_with_output()
}

/// Whether a test that needs root (to act as another user, mount a file system) can run.
///
/// As root: `true`. Otherwise the test is skipped with the reason printed — unless
/// `MMF_REQUIRE_ROOT_TESTS=1` (set by CI, which runs as root), where a skip would hide a
/// test that did not run, so this panics instead.
pub fn root_for(what: &str) -> bool {
    // The effective user id, from /proc (the same code on every Unix-like test host).
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false);
    if root {
        return true;
    }
    if std::env::var("MMF_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
        panic!("{what} needs root, and MMF_REQUIRE_ROOT_TESTS=1 says this run must have it");
    }
    eprintln!(
        "SKIPPED: {what} needs root (CI runs it; MMF_REQUIRE_ROOT_TESTS=1 makes a skip fail)"
    );
    false
}

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
