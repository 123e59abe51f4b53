//! Named mappings on Linux: `shm_open("/NAME")` objects with the lifetime of Windows named
//! objects (see the `named` module's docs for the design).
//!
//! - Every holder keeps a shared `flock` on the object. The kernel releases it when the
//!   holder's last descriptor closes, however the process ends.
//! - An object mmf created carries the extended attribute `user.mmf` (`mmf1 pagefile`, or
//!   `mmf1 file DEV INO SIZE\nPATH` for a file's mapping opened by name).
//! - The last holder to let go in order takes the lock exclusively and unlinks the name;
//!   the creator's reaper process (blocked on the exclusive lock) does it when the last
//!   holder died instead. An opener re-checks the link count after its lock is granted, so
//!   it never uses an object that was unlinked while it waited.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Backing, CreationMode, NamedInfo, NamedSpec, Opened, check_size};
use crate::error::{Error, Result};
use crate::sys::map::{Access, Section};
use crate::sys::pal::{cvt, flock, fstat};

mod mark;
mod reaper;

use mark::{FileMark, Mark};

const SHM_DIR: &str = "/dev/shm";

/// A holder's share of a named object: the locked descriptor. Dropping the last one in
/// the process lets the object go (and unlinks it if this was the last holder anywhere).
#[derive(Debug)]
pub(crate) struct Hold {
    lock: Arc<File>,
    name: String,
    /// mmf created the object (so mmf may remove it).
    ours: bool,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.ours {
            // Errors are ignored: the reaper (or the next `list`) removes what we could not.
            let _ = unlink_if_unheld(&self.lock, &self.name);
        }
    }
}

fn shm_name(name: &str) -> CString {
    CString::new(format!("/{name}")).expect("validated names have no NUL")
}

fn shm_path(name: &str) -> PathBuf {
    Path::new(SHM_DIR).join(name)
}

/// Whether `name` still names the inode `st` describes.
fn names_inode(name: &str, st: &libc::stat) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(shm_path(name))
        .is_ok_and(|m| m.dev() == st.st_dev && m.ino() == st.st_ino)
}

/// Takes the lock exclusively without waiting; if nobody else holds the object and the
/// name still refers to it, unlinks the name. Returns whether it did.
fn unlink_if_unheld(file: &File, name: &str) -> io::Result<bool> {
    if flock(file, libc::LOCK_EX | libc::LOCK_NB).is_err() {
        return Ok(false); // someone still holds it
    }
    let st = fstat(file)?;
    if st.st_nlink == 0 || !names_inode(name, &st) {
        return Ok(false);
    }
    // SAFETY: a NUL-terminated name.
    cvt(unsafe { libc::shm_unlink(shm_name(name).as_ptr()) })?;
    Ok(true)
}

fn open_flags(access: Access) -> libc::c_int {
    let rw = if access == Access::ReadWrite { libc::O_RDWR } else { libc::O_RDONLY };
    rw | libc::O_NOFOLLOW | libc::O_CLOEXEC
}

fn shm_open(name: &str, flags: libc::c_int, mode: libc::mode_t) -> io::Result<File> {
    // SAFETY: a NUL-terminated name; shm_open returns a new descriptor we then own.
    let fd = cvt(unsafe { libc::shm_open(shm_name(name).as_ptr(), flags, mode) })?;
    // SAFETY: `fd` is a new descriptor nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `CreateFileMapping` with a name: create (or open, per the creation mode) the object.
///
/// The object is built whole — size, permissions, mark, shared lock — as an unnamed
/// `O_TMPFILE` in `/dev/shm`, and only then given its name with `linkat`, which fails if
/// the name exists. So no opener ever sees a half-made object, and no lock changes type.
pub(crate) fn create(spec: &NamedSpec<'_>, file: Option<(&Arc<File>, u64)>) -> Result<Opened> {
    let size = spec.size.ok_or(Error::ZeroSize)?;
    let (object, section, data) = build(spec, size, file)?;
    for _ in 0..16 {
        match link(&object, spec.name) {
            Ok(()) => {
                if !spec.keep {
                    let st = fstat(&object).map_err(Error::os("fstat"))?;
                    reaper::spawn(&path_bytes(&shm_path(spec.name)), st.st_dev, st.st_ino);
                }
                let hold = Hold { lock: object, name: spec.name.into(), ours: !spec.keep };
                return Ok(Opened { section, size, file: data, hold, created: true });
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(Error::Os { op: "linkat(/dev/shm)", source: e }),
        }
        match spec.creation {
            CreationMode::CreateNew if !reclaim_if_dead(spec.name) => {
                return Err(Error::AlreadyExists { name: spec.name.into() });
            }
            CreationMode::CreateNew => continue, // a dead object of ours was removed
            _ => match open(spec) {
                Err(Error::NotFound { .. }) => continue, // it went away meanwhile: create it
                other => return other,
            },
        }
    }
    Err(Error::AlreadyExists { name: spec.name.into() })
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
            object.set_len(size).map_err(Error::os("ftruncate"))?;
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
    // Without user xattrs (tmpfs before Linux 6.6) only the creator and its reaper know a
    // pagefile object is ours: openers then never unlink it, the reaper still does. A
    // file's mapping cannot be opened by name without its record, so that is an error.
    if let Err(e) = mark::write(&object, &Mark { kept: spec.keep, file: file_mark }) {
        if is_file {
            return Err(Error::Os {
                op: "fsetxattr(user.mmf) for a named file mapping",
                source: e,
            });
        }
    }
    Ok((object, section, data))
}

/// Gives the unnamed object its name; `EEXIST` if the name is taken.
fn link(object: &File, name: &str) -> io::Result<()> {
    let from = CString::new(format!("/proc/self/fd/{}", object.as_raw_fd())).expect("no NUL");
    let to = path_bytes(&shm_path(name));
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

/// Removes `name` if it is an mmf object whose every holder died. Returns whether the name
/// is now free.
fn reclaim_if_dead(name: &str) -> bool {
    let Ok(object) = shm_open(name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0) else {
        return false;
    };
    mark::read(&object).is_some_and(|m| !m.kept) && unlink_if_unheld(&object, name).unwrap_or(false)
}

/// `OpenFileMapping`: open an existing object by name.
pub(crate) fn open(spec: &NamedSpec<'_>) -> Result<Opened> {
    let name = spec.name;
    let object =
        shm_open(name, open_flags(spec.access), 0).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound { name: name.into() },
            Some(libc::ELOOP) => Error::NotRegularFile { name: name.into() },
            _ => Error::Os { op: "shm_open", source: e },
        })?;
    let st = fstat(&object).map_err(Error::os("fstat"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::NotRegularFile { name: name.into() });
    }
    // SAFETY: geteuid cannot fail.
    if st.st_uid != unsafe { libc::geteuid() } && !spec.foreign_owner {
        return Err(Error::ForeignOwner { name: name.into(), owner: st.st_uid });
    }
    flock(&object, libc::LOCK_SH).map_err(Error::os("flock"))?;
    // Unlinked while we waited for the lock: its last holder let it go.
    let st = fstat(&object).map_err(Error::os("fstat"))?;
    if st.st_nlink == 0 {
        return Err(Error::NotFound { name: name.into() });
    }
    let mark = mark::read(&object);
    let object = Arc::new(object);
    let (section, size, file) = match mark.as_ref().and_then(|m| m.file.as_ref()) {
        Some(f) => {
            let data = open_backing_file(name, f, spec.access)?;
            let section = Section::from_file(&data, spec.access, f.size, f.size)?;
            (section, f.size, Some(data))
        }
        None => (Section::shared(Arc::clone(&object)), st.st_size as u64, None),
    };
    check_size(spec, size)?;
    let ours = mark.is_some_and(|m| !m.kept);
    let hold = Hold { lock: object, name: name.into(), ours };
    Ok(Opened { section, size, file, hold, created: false })
}

fn open_backing_file(name: &str, mark: &FileMark, access: Access) -> Result<Arc<File>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(access == Access::ReadWrite)
        .open(&mark.path)
        .map_err(Error::os("open (the file behind the named mapping)"))?;
    let st = fstat(&file).map_err(Error::os("fstat"))?;
    if st.st_dev != mark.dev || st.st_ino != mark.ino {
        // The path now names another file: the one that was mapped is gone.
        return Err(Error::NotFound { name: name.into() });
    }
    Ok(Arc::new(file))
}

/// The live objects mmf created whose names `accept` admits; dead ones are removed on the
/// way.
pub(crate) fn list(accept: impl Fn(&str) -> bool) -> Result<Vec<NamedInfo>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(SHM_DIR).map_err(Error::os("opendir(/dev/shm)"))?;
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if !accept(&name) {
            continue;
        }
        let Ok(object) = shm_open(&name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0)
        else {
            continue;
        };
        let Some(mark) = mark::read(&object) else { continue };
        if !mark.kept && unlink_if_unheld(&object, &name).unwrap_or(false) {
            continue; // every holder had died
        }
        let Ok(st) = fstat(&object) else { continue };
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
    // SAFETY: a NUL-terminated name.
    cvt(unsafe { libc::shm_unlink(shm_name(name).as_ptr()) }).map(drop).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            Error::NotFound { name: name.into() }
        } else {
            Error::Os { op: "shm_unlink", source: e }
        }
    })
}

/// A path as a C string.
fn path_bytes(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("validated names have no NUL")
}
