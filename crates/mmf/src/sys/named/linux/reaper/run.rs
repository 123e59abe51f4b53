//! The reaper process itself (see `reaper.rs`): it waits, in one `poll`, for new objects
//! on its standard input (a socket from its creator) and for `inotify` close events on the
//! objects it watches. A close event means some holder's description went away; the reaper
//! then tries the object's lock exclusively without waiting, and if nobody holds it any
//! more, unlinks its name (if the name still names that object). Objects it could not
//! watch (the `inotify` watch limit, or no inotify
//! instance to be had) are tried once a second instead. It exits when its
//! creator is gone and so are all the objects it watched.
//!
//! It runs before the program's `main`, in a process that is nothing else: it uses std,
//! but never returns into the program.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use super::super::liveness;
use super::READY;
use crate::sys::pal::{cvt, flock, fstat};

/// One object the reaper watches.
struct Object {
    file: File,
    path: PathBuf,
}

/// Runs the reaper; never returns.
pub(super) fn main() -> ! {
    // SAFETY: PR_SET_NAME copies a NUL-terminated name of at most 16 bytes; the raw
    // close_range closes descriptors this fresh process inherited and does not use (all
    // but 0, 1, 2); the fallback loop does the same one by one.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"mmf-reaper".as_ptr());
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..1024 {
                libc::close(fd);
            }
        }
    }
    // SAFETY: descriptor 0 is the socket the creator passed as standard input; nothing
    // else in this process owns it.
    let creator = unsafe { UnixStream::from_raw_fd(0) };
    let code = match Reaper::new(creator).and_then(Reaper::run) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    // SAFETY: _exit ends the process without running the program's exit handlers.
    unsafe { libc::_exit(code) }
}

struct Reaper {
    creator: Option<UnixStream>,
    /// `None` when inotify is not to be had (the per-user instance limit, say): every
    /// object is then tried once a second.
    inotify: Option<OwnedFd>,
    watched: HashMap<i32, Object>,
    unwatched: Vec<Object>,
    pending: Vec<u8>,
}

impl Reaper {
    fn new(mut creator: UnixStream) -> io::Result<Reaper> {
        // `MMF_REAPER_POLL=1` (inherited from the creator) forces the once-a-second fallback,
        // so that it can be tested without exhausting the machine's inotify instances.
        let poll_only = std::env::var_os("MMF_REAPER_POLL").is_some_and(|v| v == "1");
        let inotify = if poll_only {
            None
        } else {
            // SAFETY: plain flags; returns a new descriptor that we then own.
            let fd = cvt(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) });
            // SAFETY: a new descriptor nothing else owns.
            fd.ok().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        };
        creator.write_all(READY)?;
        creator.set_nonblocking(true)?;
        Ok(Reaper {
            creator: Some(creator),
            inotify,
            watched: HashMap::new(),
            unwatched: Vec::new(),
            pending: Vec::new(),
        })
    }

    fn run(mut self) -> io::Result<()> {
        while self.creator.is_some() || !self.watched.is_empty() || !self.unwatched.is_empty() {
            let creator_fd = self.creator.as_ref().map_or(-1, |c| c.as_raw_fd());
            let inotify_fd = self.inotify.as_ref().map_or(-1, |i| i.as_raw_fd());
            let mut fds = [
                libc::pollfd { fd: creator_fd, events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: inotify_fd, events: libc::POLLIN, revents: 0 },
            ];
            let timeout = if self.unwatched.is_empty() { -1 } else { 1000 };
            // SAFETY: `fds` is an array of two pollfd; a negative fd is ignored.
            match cvt(unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) }) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            if fds[0].revents != 0 {
                self.read_creator();
            }
            if fds[1].revents != 0 {
                self.read_events();
            }
            self.unwatched.retain(|object| !try_reap(object));
        }
        Ok(())
    }

    /// New objects from the creator; end of file when it is gone.
    fn read_creator(&mut self) {
        let Some(creator) = self.creator.as_mut() else { return };
        let mut buf = [0u8; 4096];
        match creator.read(&mut buf) {
            Ok(0) => self.creator = None,
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(_) => self.creator = None,
        }
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            if let Some(object) = parse(&line[..end]) {
                self.add(object);
            }
        }
    }

    /// Watches a new object for close events, then tries it at once (its holders may be
    /// gone already).
    fn add(&mut self, object: Object) {
        if try_reap(&object) {
            return;
        }
        let path = CString::new(format!("/proc/self/fd/{}", object.file.as_raw_fd()));
        let mask = libc::IN_CLOSE_WRITE | libc::IN_CLOSE_NOWRITE;
        let wd = match (&self.inotify, path) {
            // SAFETY: a valid inotify descriptor and a NUL-terminated path.
            (Some(inotify), Ok(p)) => unsafe {
                libc::inotify_add_watch(inotify.as_raw_fd(), p.as_ptr(), mask)
            },
            _ => -1,
        };
        if wd < 0 {
            self.unwatched.push(object);
        } else {
            self.watched.insert(wd, object);
        }
    }

    /// Close events: try each object that had one.
    fn read_events(&mut self) {
        let Some(inotify) = self.inotify.as_ref().map(|i| i.as_raw_fd()) else { return };
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into our buffer from our inotify descriptor.
            let n = unsafe { libc::read(inotify, buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n) = usize::try_from(n) else { return }; // EAGAIN: drained
            let mut at = 0;
            let header = size_of::<libc::inotify_event>();
            while at + header <= n {
                // SAFETY: the kernel wrote whole events; the header is read unaligned.
                let event: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().add(at).cast()) };
                at += header + event.len as usize;
                let done = self.watched.get(&event.wd).is_some_and(try_reap);
                if done {
                    // SAFETY: removes our own watch; the descriptor then closes on drop.
                    unsafe { libc::inotify_rm_watch(inotify, event.wd) };
                    self.watched.remove(&event.wd);
                }
            }
        }
    }
}

/// `DEV INO NAME` → the object, opened (without following links or blocking) and checked
/// to be that inode.
fn parse(line: &[u8]) -> Option<Object> {
    let text = std::str::from_utf8(line).ok()?;
    let mut words = text.splitn(3, ' ');
    let dev: u64 = words.next()?.parse().ok()?;
    let ino: u64 = words.next()?.parse().ok()?;
    let name = words.next()?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let path = PathBuf::from("/dev/shm").join(name);
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .ok()?;
    let st = fstat(&file).ok()?;
    (st.st_dev == dev && st.st_ino == ino).then_some(Object { file, path })
}

/// Unlinks the object's name if nobody holds it; returns whether the reaper is done with
/// it (removed now, or by someone else before).
fn try_reap(object: &Object) -> bool {
    match fstat(&object.file) {
        Ok(st) if st.st_nlink == 0 => return true,
        Ok(_) => {}
        Err(_) => return true,
    }
    match flock(&object.file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => {
            let _ = liveness::unlink_if_named(&object.file, &object.path);
            true
        }
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}
