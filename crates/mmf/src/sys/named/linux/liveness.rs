//! Whether a named object has a holder, by `flock` on the object.
//!
//! Every holder of an mmf object (scoped or kept) keeps a shared lock on an open file
//! description of its own; the kernel drops it when the last descriptor or mapping of that
//! description goes, however the process ends. Only two things ever take the lock
//! exclusively, each for a moment and without waiting: whoever checks that nobody holds
//! the object before unlinking it (the last holder letting go, the reaper, an opener or a
//! creator finding a dead object, `list`), and nothing else. So:
//!
//! - exclusive granted at once ⇒ no holder: the object is dead;
//! - exclusive refused, shared granted ⇒ a holder exists: alive (and now we hold it too);
//! - both refused ⇒ someone is checking right now: retry for a moment, never without bound
//!   (a hostile process holding an exclusive lock gets [`Error::Busy`], not a hang).
//!
//! `flock` conversion is not atomic (a failed upgrade of a shared lock drops it), so a
//! holder's own description is only ever upgraded when it is letting go, and the probes
//! here run on a fresh description that holds no lock yet.

use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys::pal::{flock, fstat};

/// How long an open waits for a moment's exclusive lock to pass before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// What a probe found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Liveness {
    /// A holder exists; the probing description now holds the lock shared.
    Alive,
    /// Nobody held it: the probe took it exclusively and tried to unlink the name.
    /// `unlinked` says whether it did (another user's object in the sticky `/dev/shm`
    /// cannot be removed by us, and the name may already name another object).
    Dead {
        /// The probe removed the name.
        unlinked: bool,
    },
    /// Another process holds it exclusively right now, and the probe was not to wait.
    Busy,
    /// Unlinked already (by whoever checked before us).
    Gone,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Probes a scoped object through `object`, a fresh description of it that holds no lock.
///
/// # Errors
/// [`Error::Busy`] when another process holds it exclusively for longer than a moment; the
/// OS's refusal.
pub(super) fn probe(
    object: &File,
    name: &str,
    path: &std::path::Path,
    wait: bool,
) -> Result<Liveness> {
    let deadline = Instant::now() + if wait { BUSY_TIMEOUT } else { Duration::ZERO };
    let mut pause = Duration::from_micros(50);
    loop {
        if fstat(object).map_err(Error::os("fstat"))?.st_nlink == 0 {
            return Ok(Liveness::Gone);
        }
        match flock(object, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => {
                let unlinked = unlink_if_named(object, path).unwrap_or(false);
                return Ok(Liveness::Dead { unlinked });
            }
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(Error::Os { op: "flock", source: e }),
        }
        match flock(object, libc::LOCK_SH | libc::LOCK_NB) {
            Ok(()) => {
                // Unlinked between the two locks: treat as gone, not as a live object.
                if fstat(object).map_err(Error::os("fstat"))?.st_nlink == 0 {
                    return Ok(Liveness::Gone);
                }
                return Ok(Liveness::Alive);
            }
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(Error::Os { op: "flock", source: e }),
        }
        if !wait {
            return Ok(Liveness::Busy);
        }
        if Instant::now() >= deadline {
            return Err(Error::Busy { name: name.into() });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Takes the shared lock of a kept object (which may have no holder at all), waiting a
/// moment for an exclusive one to pass.
///
/// # Errors
/// As [`probe`].
pub(super) fn hold_shared(object: &File, name: &str) -> Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match flock(object, libc::LOCK_SH | libc::LOCK_NB) {
            Ok(()) => return Ok(()),
            Err(e) if would_block(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if would_block(&e) => return Err(Error::Busy { name: name.into() }),
            Err(e) => return Err(Error::Os { op: "flock", source: e }),
        }
    }
}

/// A holder letting go: if nobody else holds the object (the upgrade of our own shared
/// lock to exclusive succeeds at once), unlink its name. Returns whether it did.
pub(super) fn unlink_if_unheld(lock: &File, path: &std::path::Path) -> io::Result<bool> {
    if flock(lock, libc::LOCK_EX | libc::LOCK_NB).is_err() {
        return Ok(false); // someone still holds it
    }
    unlink_if_named(lock, path)
}

/// Unlinks `path` if it still names the (linked) inode of `object`, which the caller holds
/// exclusively, and the object is this user's. Returns whether it did.
///
/// Between the check and the unlink there is a window of a few instructions: if another
/// process removes the name and creates a new object under it in exactly that window, the
/// new object's name is removed (its holders keep it; new opens say NotFound). Linux has
/// no unlink-if-inode call; the window is documented in `named`.
pub(super) fn unlink_if_named(object: &File, path: &std::path::Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let st = fstat(object)?;
    // SAFETY: geteuid cannot fail.
    if st.st_uid != unsafe { libc::geteuid() } {
        return Ok(false); // another user's: never removed by mmf (root included)
    }
    let named =
        std::fs::symlink_metadata(path).is_ok_and(|m| m.dev() == st.st_dev && m.ino() == st.st_ino);
    if st.st_nlink == 0 || !named {
        return Ok(false);
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
