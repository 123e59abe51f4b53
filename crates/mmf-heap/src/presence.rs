//! Which lock area the processes that have a heap file open use, told by byte-range locks
//! on the heap file itself.
//!
//! The lock area is a named object (`/dev/shm` on Linux, `Local\` on Windows): processes
//! that see different namespaces of names reach one file through different areas. That
//! happens between containers that share a volume but not `/dev/shm`, between Windows
//! sessions (a service and a desktop program), and when an area's name is removed while
//! processes hold it (`mmf shm rm`): the next opener makes a new one. Two areas mean two
//! writer locks and two reader tables, so two writers at once or space reused under a
//! reader: a corrupted heap. File locks belong to the inode, whatever the mount
//! namespace (overlayfs's merged view and its upper directory are two inodes: not told
//! apart).
//!
//! Each area carries a random nonzero nonce (its table's `NONCE_AT` word). Every process
//! that has the heap open holds a shared lock on byte `PRESENCE + nonce % SPAN` of the
//! heap file (far past any data; a lock past the end of a file is allowed on both
//! systems). After taking it, an opener asks whether any other byte of
//! `[PRESENCE, PRESENCE + SPAN)` is locked: if so, a process using another area has the
//! file open, and opening here is refused once that has lasted [`TRIES`] looks (the
//! opener gives its byte back between looks, so that it keeps nobody out while it
//! tries). Two openers of different areas cannot both get in: the one that gets in last
//! looked while the other held its byte for good. The kernel drops the locks of a
//! process that ends, however it ends. Outside readers' pins (`PINS`) live in the same
//! file, above this range.

use std::fs::File;
use std::io;
use std::time::Duration;

use crate::error::{Error, Result};

/// How many times an opener looks, a millisecond apart, before it believes another area
/// is in use.
const TRIES: u32 = 200;

/// The first byte of the presence range: 2^61, beyond any heap file.
const PRESENCE: u64 = 1 << 61;
/// The range's length: one byte per possible area.
const SPAN: u64 = 1 << 40;

/// A shared lock on this area's byte of a heap file, held while it lives (through a
/// description of the file of its own: [`own_description`]). Without the lock when the
/// file system has no byte-range locks.
pub(crate) struct Presence {
    file: File,
}

impl Presence {
    /// The handle that holds the lock (a writer looks at the outside pins through it).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

/// A handle of `file` to hold locks on. Linux: a new open file description
/// (`/proc/self/fd/N` opened again, read-only, close-on-exec), as OFD locks belong to the
/// description and last while any descriptor of it is open: on a duplicate of the heap's
/// own handle the lock would outlive the `Presence` until the heap's file closes too, and
/// a child forked in between (by another thread) would keep it, without the lock area,
/// for as long as it ran — the next opener of the heap, finding the area gone and a lock
/// of another nonce, was refused (a test forking while threads open and close heaps saw
/// it). Where `/proc` cannot be opened, and on Windows (no `fork`; a lock belongs to the
/// handle), a duplicate.
pub(crate) fn own_description(file: &File) -> Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(own) = File::open(format!("/proc/self/fd/{}", file.as_raw_fd())) {
            return Ok(own);
        }
    }
    file.try_clone().map_err(|e| Error::io("duplicate the heap file's handle", e))
}

/// Whether `e` says the file system takes no byte-range locks (NFS without its lock
/// daemon, some FUSE file systems), rather than that one is in the way.
pub(crate) fn locks_unsupported(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOLCK | libc::EINVAL | libc::EOPNOTSUPP | libc::EOVERFLOW | libc::ENOSYS)
        )
    }
    #[cfg(not(unix))]
    {
        use windows_sys::Win32::Foundation::{ERROR_INVALID_FUNCTION, ERROR_NOT_SUPPORTED};
        matches!(e.raw_os_error(), Some(c) if c == ERROR_NOT_SUPPORTED as i32 || c == ERROR_INVALID_FUNCTION as i32)
    }
}

/// Takes this area's presence lock on `file` and checks that no process using another
/// area has the file open. On a file system without byte-range locks nothing can be
/// checked, and the heap opens as before the check existed.
///
/// # Errors
/// `Io` ("open the lock area", `ResourceBusy`) naming the area while another lock of
/// the range stays; the OS error of a lock call that failed otherwise.
pub(crate) fn join(file: &File, nonce: u64, area: &str) -> Result<Presence> {
    let file = own_description(file)?;
    let mine = PRESENCE + nonce % SPAN;
    let look = || {
        Ok::<_, io::Error>(
            sys::locked_by_others(&file, PRESENCE, mine)?
                || sys::locked_by_others(&file, mine + 1, PRESENCE + SPAN)?,
        )
    };
    // Lock, then look; while another lock is there, give this one back between looks,
    // so that an opener that is refused does not keep the other side out while it
    // tries. (Two openers of different areas cannot both get in: the one that gets in
    // last looked while the other held its lock for good.) Only a lock that stays
    // counts: one may outlive its area for a moment (a process forking in another thread
    // holds copies of every descriptor until its `exec`, and with them the lock of a heap
    // just closed), and on Windows a look meets another opener's look.
    for _ in 0..TRIES {
        let locked = match sys::lock_shared(&file, mine) {
            Err(e) if locks_unsupported(&e) => return Ok(Presence { file }),
            other => other.map_err(|e| Error::io("lock the heap file", e))?,
        };
        if locked {
            if !look().map_err(|e| Error::io("look at the heap file's locks", e))? {
                return Ok(Presence { file });
            }
            sys::unlock(&file, mine).map_err(|e| Error::io("unlock the heap file", e))?;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let place = if cfg!(windows) { "named section Local\\" } else { "/dev/shm/" };
    Err(Error::io(
        "open the lock area",
        io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!(
                "another process holds a lock in this heap file's presence range: processes \
                 that use another lock area have the heap open (they run in another {}, or \
                 the lock area {place}{area} was removed while they had it), and two areas \
                 would let two writers corrupt the heap; close the heap there first, or open \
                 it where they run (a user who may read the file can also hold such a lock \
                 on purpose: a heap created with mode 0o600 is its owner's alone)",
                if cfg!(windows) { "session" } else { "mount namespace (a container)" },
            ),
        ),
    ))
}

/// The first byte of the outside readers' pins: a shared lock on byte `PINS + t` of the
/// heap file pins transaction `t` for a reader that does not use the lock area (another
/// user's read-only open, `lock.rs`).
const PINS: u64 = 1 << 62;
/// Transactions above this are not pinned by byte (2^61 commits are never reached).
const PIN_SPAN: u64 = 1 << 61;

/// Locks byte `PINS + txn` shared: pins `txn` for the writers of every process.
pub(crate) fn pin_outside(file: &File, txn: u64) -> Result<()> {
    if txn >= PIN_SPAN {
        return Err(Error::InvalidArgument { what: "a transaction id past 2^61" });
    }
    match sys::lock_shared(file, PINS + txn) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::io(
            "pin a snapshot",
            io::Error::new(
                io::ErrorKind::ResourceBusy,
                "another process holds an exclusive lock in this heap file's pin range, \
                 which no mmf process takes",
            ),
        )),
        Err(e) => Err(Error::io("pin a snapshot", e)),
    }
}

/// Gives back the pin of `txn`.
pub(crate) fn unpin_outside(file: &File, txn: u64) -> Result<()> {
    sys::unlock(file, PINS + txn.min(PIN_SPAN)).map_err(|e| Error::io("unpin a snapshot", e))
}

/// The oldest transaction an outside reader of another process has pinned: the lowest
/// locked byte of the pin range, narrowed down one lock at a time (a look answers with
/// some lock in the range, not the lowest). One system call while there is none.
pub(crate) fn oldest_outside(file: &File) -> Result<Option<u64>> {
    let mut oldest = None;
    let mut end = PINS + PIN_SPAN;
    loop {
        let at = match sys::a_lock_in(file, PINS, end) {
            Ok(Some(at)) => at,
            Ok(None) => break,
            // No byte-range locks here: no outside reader could pin (its open fails).
            Err(e) if locks_unsupported(&e) => break,
            Err(e) => return Err(Error::io("look at the pins", e)),
        };
        let at = at.max(PINS);
        oldest = Some(at - PINS);
        end = at;
    }
    Ok(oldest)
}

#[cfg(target_os = "linux")]
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    fn flock(kind: libc::c_short, start: u64, len: u64) -> libc::flock {
        // SAFETY: `flock` is plain integers; all zeros is a valid value (l_pid must be 0
        // for the OFD commands).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = start as libc::off_t;
        fl.l_len = len as libc::off_t;
        fl
    }

    /// A shared open-file-description lock on byte `at` (`F_OFD_SETLK`, `F_RDLCK`): only
    /// another exclusive lock conflicts, and nothing takes one there.
    /// `Ok(false)`: an exclusive lock is in the way (`EAGAIN`/`EACCES`).
    pub(super) fn lock_shared(file: &File, at: u64) -> io::Result<bool> {
        let fl = flock(libc::F_RDLCK as libc::c_short, at, 1);
        // SAFETY: a valid descriptor and a valid `flock` the call only reads.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) } == -1 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EACCES) => Ok(false),
                _ => Err(e),
            };
        }
        Ok(true)
    }

    /// Gives back this description's lock on byte `at` (`F_UNLCK`).
    pub(super) fn unlock(file: &File, at: u64) -> io::Result<()> {
        let fl = flock(libc::F_UNLCK as libc::c_short, at, 1);
        // SAFETY: as in `lock_shared`.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The start of some lock of another open file description that covers a byte of
    /// `[from, to)` (`F_OFD_GETLK` asking for an exclusive lock: any lock conflicts).
    pub(super) fn a_lock_in(file: &File, from: u64, to: u64) -> io::Result<Option<u64>> {
        if from >= to {
            return Ok(None);
        }
        let mut fl = flock(libc::F_WRLCK as libc::c_short, from, to - from);
        // SAFETY: a valid descriptor and a valid `flock` the call fills in.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok((fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_start as u64))
    }

    /// Whether a lock of another open file description covers a byte of `[from, to)`.
    pub(super) fn locked_by_others(file: &File, from: u64, to: u64) -> io::Result<bool> {
        Ok(a_lock_in(file, from, to)?.is_some())
    }
}

#[cfg(windows)]
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::windows::io::AsRawHandle;

    use windows_sys::Win32::Foundation::ERROR_LOCK_VIOLATION;
    use windows_sys::Win32::Storage::FileSystem::{
        LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY, LockFileEx, UnlockFileEx,
    };
    use windows_sys::Win32::System::IO::OVERLAPPED;

    fn at(offset: u64) -> OVERLAPPED {
        let mut ov = OVERLAPPED::default();
        ov.Anonymous.Anonymous.Offset = offset as u32;
        ov.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
        ov
    }

    /// `LockFileEx` of `[from, from + len)`, failing at once: `Ok(false)` if another lock
    /// is in the way (`ERROR_LOCK_VIOLATION`).
    fn try_lock(file: &File, flags: u32, from: u64, len: u64) -> io::Result<bool> {
        let mut ov = at(from);
        let flags = flags | LOCKFILE_FAIL_IMMEDIATELY;
        // SAFETY: a valid handle of a file opened without FILE_FLAG_OVERLAPPED (the call
        // completes before it returns) and an OVERLAPPED that only gives the offset.
        let ok = unsafe {
            LockFileEx(file.as_raw_handle(), flags, 0, len as u32, (len >> 32) as u32, &mut ov)
        };
        if ok != 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) { Ok(false) } else { Err(e) }
    }

    /// Outside readers are not used on Windows (`lock.rs`): nothing to give back.
    /// Gives back this handle's lock on byte `at` (`UnlockFileEx`).
    pub(super) fn unlock(file: &File, at: u64) -> io::Result<()> {
        let mut ov = self::at(at);
        // SAFETY: as in `try_lock`.
        if unsafe { UnlockFileEx(file.as_raw_handle(), 0, 1, 0, &mut ov) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Outside readers are not used on Windows: none to find.
    pub(super) fn a_lock_in(_: &File, _: u64, _: u64) -> io::Result<Option<u64>> {
        Ok(None)
    }

    /// A shared lock on byte `at` (`LockFileEx` without `LOCKFILE_EXCLUSIVE_LOCK`).
    /// `Ok(false)`: an exclusive lock is in the way (another opener's look, a moment).
    pub(super) fn lock_shared(file: &File, at: u64) -> io::Result<bool> {
        try_lock(file, 0, at, 1)
    }

    /// Whether another handle's lock covers a byte of `[from, to)`: an exclusive lock of
    /// the range, failing at once, given back if it was taken. (A failure may be another
    /// opener looking at the same moment: the caller looks again.)
    pub(super) fn locked_by_others(file: &File, from: u64, to: u64) -> io::Result<bool> {
        if from >= to {
            return Ok(false);
        }
        let len = to - from;
        if !try_lock(file, LOCKFILE_EXCLUSIVE_LOCK, from, len)? {
            return Ok(true);
        }
        let mut ov = at(from);
        // SAFETY: as in `try_lock`; the range is the one just locked.
        unsafe { UnlockFileEx(file.as_raw_handle(), 0, len as u32, (len >> 32) as u32, &mut ov) };
        Ok(false)
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
mod sys {
    //! Other systems are not supported by mmf; nothing is checked there.
    use std::fs::File;
    use std::io;

    pub(super) fn lock_shared(_: &File, _: u64) -> io::Result<bool> {
        Ok(true)
    }

    pub(super) fn locked_by_others(_: &File, _: u64, _: u64) -> io::Result<bool> {
        Ok(false)
    }

    pub(super) fn unlock(_: &File, _: u64) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn a_lock_in(_: &File, _: u64, _: u64) -> io::Result<Option<u64>> {
        Ok(None)
    }
}
