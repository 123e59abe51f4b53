//! Named mappings on Linux: `/dev/shm/NAME` objects (what `shm_open("/NAME")` opens) with
//! the lifetime of Windows named objects.
//!
//! - Every holder keeps a shared `flock` on the object (`liveness.rs`); the kernel drops it
//!   when the holder's description goes, however the process ends.
//! - An object mmf created carries its mark, the extended attribute `user.mmf`
//!   (`mark.rs`): its lifetime (scoped or kept) and, for a file's mapping, the file.
//!   Objects without a mark are other programs': mmf never locks or removes them.
//! - A dead scoped object is never visible: every open, create and listing probes it and
//!   unlinks it if nobody holds it. The last holder to let go in order unlinks it at once;
//!   each creating process's reaper (`reaper.rs`) does so when the last holders died
//!   instead.
//! - Every open of a name is non-blocking and checks the type first, so a FIFO or device
//!   planted in `/dev/shm` is refused, never waited on.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Backing, CreationMode, NamedInfo, NamedSpec, Opened, check_size};
use crate::error::{Error, Result};
use crate::sys::map::{Access, Section};
use crate::sys::pal::{cvt, flock, fstat};

mod holds;
mod liveness;
mod mark;
mod reaper;

pub(crate) use holds::register_fork_handlers;

use liveness::Liveness;
use mark::{FileMark, Mark};

const SHM_DIR: &str = "/dev/shm";

/// A holder's share of a named object: its descriptor, locked shared for mmf's objects.
/// Dropping it lets the object go, and unlinks the name if this was the last holder
/// anywhere. A `fork` child gets a description of its own for each hold (`holds.rs`).
#[derive(Debug)]
pub(crate) struct Hold {
    lock: Arc<File>,
    path: PathBuf,
    /// For a scoped mmf object, whose last holder removes it: the flag a fork child sets
    /// when it could not take a description of its own (its copy then never touches the
    /// lock it shares with its parent).
    scoped: Option<Arc<AtomicBool>>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let Some(inert) = &self.scoped else { return };
        holds::unregister(self.lock.as_raw_fd());
        if !inert.load(Ordering::Relaxed) {
            // Errors are ignored: the reaper (or the next open or list) removes what we
            // could not.
            let _ = liveness::unlink_if_unheld(&self.lock, &self.path);
        }
    }
}

impl Hold {
    fn new(lock: Arc<File>, name: &str, scoped: bool) -> Hold {
        let scoped = scoped.then(|| holds::register(lock.as_raw_fd(), name));
        Hold { lock, path: shm_path(name), scoped }
    }
}

fn shm_path(name: &str) -> PathBuf {
    Path::new(SHM_DIR).join(name)
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("validated names have no NUL")
}

/// Opens `/dev/shm/NAME` without following a symlink and without blocking (a FIFO
/// planted there would block a plain open), and refuses anything but a regular file.
fn open_object(name: &str, write: bool) -> Result<(File, libc::stat)> {
    let rw = if write { libc::O_RDWR } else { libc::O_RDONLY };
    let flags = rw | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let path = c_path(&shm_path(name));
    // SAFETY: a NUL-terminated path; open returns a new descriptor that we then own.
    let fd =
        cvt(unsafe { libc::open(path.as_ptr(), flags) }).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound { name: name.into() },
            // A symlink; a socket or a device without a driver behind it; a directory.
            Some(libc::ELOOP | libc::ENXIO | libc::ENODEV | libc::EISDIR) => {
                Error::NotRegularFile { name: name.into() }
            }
            // Another user's object that we may not open this way.
            Some(libc::EACCES | libc::EPERM) => match owner_of(name) {
                Some(owner) if owner != euid() => Error::ForeignOwner { name: name.into(), owner },
                _ => Error::Os { op: "open(/dev/shm)", source: e },
            },
            _ => Error::Os { op: "open(/dev/shm)", source: e },
        })?;
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let object = unsafe { File::from_raw_fd(fd) };
    let st = fstat(&object).map_err(Error::os("fstat"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::NotRegularFile { name: name.into() });
    }
    Ok((object, st))
}

/// The owner of `/dev/shm/NAME` (`lstat`), if it can be had.
fn owner_of(name: &str) -> Option<libc::uid_t> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(shm_path(name)).ok().map(|m| m.uid())
}

fn euid() -> libc::uid_t {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether nobody but this user could have written the object's mark: it is ours, and no
/// one else may write it. A file's mark is used only then, since it names the file that
/// opening by name maps (and writes).
fn mark_is_trusted(st: &libc::stat) -> bool {
    st.st_uid == euid() && st.st_mode & 0o022 == 0
}

/// `CreateFileMapping` with a name: creates the object, or opens it for
/// [`CreationMode::OpenOrCreate`].
///
/// The object is built whole — size and memory reserved, permissions, mark, shared lock —
/// as an unnamed `O_TMPFILE` in `/dev/shm`, and only then given its name with `linkat`,
/// which fails if the name exists. So no opener ever sees a half-made object.
pub(crate) fn create(spec: &NamedSpec<'_>, file: Option<(&Arc<File>, u64)>) -> Result<Opened> {
    let size = spec.size.ok_or(Error::ZeroSize)?;
    if file.is_some() && spec.permissions & 0o022 != 0 {
        return Err(Error::UntrustedFile { name: spec.name.into() });
    }
    let (object, section, data) = build(spec, size, file)?;
    if !spec.keep {
        // Before the name exists: a creator killed between naming the object and telling
        // its reaper would leave it behind.
        reaper::watch(spec.name, &object);
    }
    for _ in 0..64 {
        match link(&object, spec.name) {
            Ok(()) => {
                let hold = Hold::new(object, spec.name, !spec.keep);
                return Ok(Opened { section, size, file: data, hold, created: true });
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(Error::Os { op: "linkat(/dev/shm)", source: e }),
        }
        match spec.creation {
            CreationMode::CreateNew if !reclaim_if_dead(spec.name)? => {
                return Err(Error::AlreadyExists { name: spec.name.into() });
            }
            CreationMode::CreateNew => continue, // a dead object was removed: the name is free
            _ => match open(spec) {
                Err(Error::NotFound { .. }) => continue, // dead or gone: create it
                other => return other,
            },
        }
    }
    Err(Error::Busy { name: spec.name.into() })
}

/// The complete, locked, still unnamed object.
fn build(
    spec: &NamedSpec<'_>,
    size: u64,
    file: Option<(&Arc<File>, u64)>,
) -> Result<(Arc<File>, Section, Option<Arc<File>>)> {
    let dir = CString::new(SHM_DIR).expect("no NUL");
    let flags = libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path; open returns a new descriptor that we then own.
    let fd = cvt(unsafe { libc::open(dir.as_ptr(), flags, spec.permissions as libc::c_uint) })
        .map_err(Error::os("open(/dev/shm, O_TMPFILE)"))?;
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let object = Arc::new(unsafe { File::from_raw_fd(fd) });
    flock(&object, libc::LOCK_SH).map_err(Error::os("flock"))?;
    // Exactly the permissions asked for, whatever the umask.
    // SAFETY: fchmod on our own descriptor.
    cvt(unsafe { libc::fchmod(object.as_raw_fd(), spec.permissions as libc::mode_t) })
        .map_err(Error::os("fchmod"))?;
    let (section, data, file_mark) = match file {
        None => {
            reserve(&object, size)?;
            (Section::shared(Arc::clone(&object)), None, None)
        }
        Some((data, file_len)) => {
            let section = Section::from_file(data, spec.access, size, file_len)?;
            let st = fstat(data).map_err(Error::os("fstat"))?;
            let path = std::fs::read_link(format!("/proc/self/fd/{}", data.as_raw_fd()))
                .map_err(Error::os("readlink(/proc/self/fd)"))?;
            let mark = FileMark { dev: st.st_dev, ino: st.st_ino, size, path };
            (section, Some(Arc::clone(data)), Some(mark))
        }
    };
    let is_file = file_mark.is_some();
    // Without user xattrs (tmpfs before Linux 6.6) an object has no mark, and openers treat
    // it as another program's: they never lock or unlink it; the last holder and the
    // reaper still do. A file's mapping cannot be opened by name without its mark, so that
    // is an error.
    if let Err(e) = mark::write(&object, &Mark { kept: spec.keep, file: file_mark }) {
        if is_file {
            return Err(Error::Os { op: "fsetxattr(user.mmf)", source: e });
        }
    }
    Ok((object, section, data))
}

/// Sizes a new pagefile object and reserves its memory now (`fallocate`), so that a full
/// `/dev/shm` is an error here and not a SIGBUS at some later write.
fn reserve(object: &File, size: u64) -> Result<()> {
    let len = libc::off_t::try_from(size).map_err(|_| Error::TooLarge { size })?;
    // SAFETY: fallocate on our own descriptor, mode 0 (allocate and extend the size).
    let rc = unsafe { libc::fallocate(object.as_raw_fd(), 0, 0, len) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) => {
            Err(Error::NoSpace { size, available: free_bytes(object) })
        }
        // A file system without fallocate: size it, and let the pages come on demand.
        Some(libc::EOPNOTSUPP) => object.set_len(size).map_err(Error::os("ftruncate")),
        _ => Err(Error::Os { op: "fallocate", source: err }),
    }
}

/// The bytes an unprivileged user may still allocate in the object's file system.
fn free_bytes(object: &File) -> u64 {
    // SAFETY: statvfs is plain data that fstatvfs fills.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a pointer to a statvfs buffer.
    if unsafe { libc::fstatvfs(object.as_raw_fd(), &mut st) } != 0 {
        return 0;
    }
    st.f_bavail.saturating_mul(st.f_frsize)
}

/// Gives the unnamed object its name; `EEXIST` if the name is taken.
fn link(object: &File, name: &str) -> io::Result<()> {
    let from = CString::new(format!("/proc/self/fd/{}", object.as_raw_fd())).expect("no NUL");
    let to = c_path(&shm_path(name));
    // SAFETY: two NUL-terminated paths; linkat creates a name and fails if it exists.
    cvt(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

/// Removes the object under `name` if it is a scoped mmf object that nobody holds.
/// Returns whether the name is free now (also when the object went away meanwhile).
fn reclaim_if_dead(name: &str) -> Result<bool> {
    let (object, _) = match open_object(name, false) {
        Ok(found) => found,
        Err(Error::NotFound { .. }) => return Ok(true),
        Err(Error::NotRegularFile { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    if mark::read(&object).is_none_or(|m| m.kept) {
        return Ok(false); // another program's, or kept: never reclaimed
    }
    Ok(match liveness::probe(&object, name, &shm_path(name), true)? {
        Liveness::Gone | Liveness::Dead { unlinked: true } => true,
        // Dead but not ours to remove (or the name moved on): free only if it is gone.
        Liveness::Dead { unlinked: false } => !shm_path(name).exists(),
        Liveness::Alive | Liveness::Busy => false,
    })
}

/// `OpenFileMapping`: open an existing object by name.
pub(crate) fn open(spec: &NamedSpec<'_>) -> Result<Opened> {
    let name = spec.name;
    let (object, st) = open_object(name, spec.access == Access::ReadWrite)?;
    if st.st_uid != euid() && !spec.foreign_owner {
        return Err(Error::ForeignOwner { name: name.into(), owner: st.st_uid });
    }
    let mark = mark::read(&object);
    match &mark {
        // Another program's object: use it, never lock or remove it.
        None => {}
        Some(m) if m.kept => liveness::hold_shared(&object, name)?,
        Some(_) => match liveness::probe(&object, name, &shm_path(name), true)? {
            Liveness::Alive => {}
            Liveness::Dead { .. } | Liveness::Gone => {
                return Err(Error::NotFound { name: name.into() });
            }
            Liveness::Busy => return Err(Error::Busy { name: name.into() }),
        },
    }
    if mark.is_some() && fstat(&object).map_err(Error::os("fstat"))?.st_nlink == 0 {
        return Err(Error::NotFound { name: name.into() }); // unlinked while we locked
    }
    let object = Arc::new(object);
    let (section, size, file) = match mark.as_ref().and_then(|m| m.file.as_ref()) {
        Some(_) if !mark_is_trusted(&st) => {
            return Err(Error::UntrustedFile { name: name.into() });
        }
        Some(f) => {
            let (data, len) = open_backing_file(name, f, spec.access)?;
            let size = f.size.min(len);
            let section = Section::from_file(&data, spec.access, size, len)?;
            (section, size, Some(data))
        }
        None => (Section::shared(Arc::clone(&object)), st.st_size as u64, None),
    };
    check_size(spec, size)?;
    let scoped = mark.is_some_and(|m| !m.kept);
    let hold = Hold::new(object, name, scoped);
    Ok(Opened { section, size, file, hold, created: false })
}

/// The file a trusted mark names, if it is still the file that was mapped; and its length.
fn open_backing_file(name: &str, mark: &FileMark, access: Access) -> Result<(Arc<File>, u64)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(access == Access::ReadWrite)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&mark.path)
        .map_err(Error::os("open (the file behind the named mapping)"))?;
    let st = fstat(&file).map_err(Error::os("fstat"))?;
    if st.st_dev != mark.dev || st.st_ino != mark.ino || st.st_mode & libc::S_IFMT != libc::S_IFREG
    {
        // The path now names another file: the one that was mapped is gone.
        return Err(Error::NotFound { name: name.into() });
    }
    Ok((Arc::new(file), st.st_size as u64))
}

/// The live objects mmf created whose names `accept` admits; dead ones are removed on the
/// way. Other programs' objects, FIFOs and the like are skipped without blocking.
pub(crate) fn list(accept: impl Fn(&str) -> bool) -> Result<Vec<NamedInfo>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(SHM_DIR).map_err(Error::os("opendir(/dev/shm)"))?;
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if !accept(&name) {
            continue;
        }
        let Ok((object, st)) = open_object(&name, false) else { continue };
        let Some(mark) = mark::read(&object) else { continue };
        // Only this user's scoped objects are probed, and never waited on: another user's
        // file with a forged mark and a held lock must not stall a listing.
        if !mark.kept && st.st_uid == euid() {
            match liveness::probe(&object, &name, &shm_path(&name), false) {
                Ok(Liveness::Alive | Liveness::Busy) => {}
                _ => continue, // every holder had died (now removed), or gone meanwhile
            }
        }
        let (size, backing) = match mark.file {
            Some(f) => (f.size, Backing::File(f.path)),
            None => (st.st_size as u64, Backing::Pagefile),
        };
        found.push(NamedInfo { name, size, owner: Some(st.st_uid), backing, kept: mark.kept });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// `shm_unlink`.
pub(crate) fn remove(name: &str) -> Result<()> {
    let path = CString::new(format!("/{name}")).expect("validated names have no NUL");
    // SAFETY: a NUL-terminated name.
    cvt(unsafe { libc::shm_unlink(path.as_ptr()) }).map(drop).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            Error::NotFound { name: name.into() }
        } else {
            Error::Os { op: "shm_unlink", source: e }
        }
    })
}
