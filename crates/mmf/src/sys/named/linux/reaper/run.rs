//! The reaper process itself (see `reaper.rs`): it waits, in one `poll`, for new objects
//! on its standard input (a `SOCK_SEQPACKET` socket from its creator: one name and one
//! descriptor per message) and for `inotify` close events on the objects it watches. A
//! close event means some holder's description went away; the reaper then tries the
//! object's lock exclusively without waiting, and if nobody holds it any more, unlinks its
//! name (if the name still names that object). The kernel sends the close event before it
//! releases that description's lock, so a try that fails right after an event is tried
//! again a few times (1 ms to 1 s apart). Objects it could not watch (the `inotify` watch
//! limit, or no inotify instance to be had) are tried once a second instead. It exits when
//! its creator is gone and so are all the objects it watched.
//!
//! It runs before the program's `main`, in a process that is nothing else: it uses std,
//! but never returns into the program. It acts only on regular files of its own user that
//! are not marked to be kept.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::super::{liveness, mark};
use super::{OneFd, READY};
use crate::sys::pal::{cvt, flock, fstat};

/// One object the reaper watches.
struct Object {
    file: File,
    path: PathBuf,
}

/// Runs the reaper; never returns.
pub(super) fn main() -> ! {
    // SAFETY: fstat of descriptor 0 into a local buffer; _exit ends the process.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(0, &mut st) != 0 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            libc::_exit(1); // not started by a creator: nothing to do
        }
    }
    let max_fd = raise_descriptor_limit();
    // SAFETY: PR_SET_NAME copies a NUL-terminated name of at most 16 bytes; close_range
    // (or the loop) closes descriptors this fresh process inherited and does not use (all
    // but 0, 1, 2).
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"mmf-reaper".as_ptr());
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..max_fd {
                libc::close(fd);
            }
        }
    }
    // SAFETY: descriptor 0 is the creator's socket (checked above); nothing else owns it.
    let creator = unsafe { OwnedFd::from_raw_fd(0) };
    let code = match Reaper::new(creator).and_then(Reaper::run) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    // SAFETY: _exit ends the process without running the program's exit handlers.
    unsafe { libc::_exit(code) }
}

/// Raises the soft limit of open descriptors to the hard one (the reaper holds one per
/// object); returns the limit.
fn raise_descriptor_limit() -> RawFd {
    // SAFETY: rlimit is plain data that getrlimit fills; setrlimit reads it.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        RawFd::try_from(limit.rlim_cur.min(1 << 20)).unwrap_or(1024)
    }
}

/// An object whose try failed right after a close event: tried again at `at`.
struct Recheck {
    wd: i32,
    at: Instant,
    round: u32,
}

struct Reaper {
    creator: Option<OwnedFd>,
    /// `None` when inotify is not to be had: every object is then tried once a second.
    inotify: Option<OwnedFd>,
    watched: HashMap<i32, Object>,
    unwatched: Vec<Object>,
    rechecks: Vec<Recheck>,
    next_sweep: Instant,
}

impl Reaper {
    fn new(creator: OwnedFd) -> io::Result<Reaper> {
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
        // SAFETY: sends our bytes on our socket.
        let sent = unsafe {
            libc::send(creator.as_raw_fd(), READY.as_ptr().cast(), READY.len(), libc::MSG_NOSIGNAL)
        };
        cvt(sent)?;
        Ok(Reaper {
            creator: Some(creator),
            inotify,
            watched: HashMap::new(),
            unwatched: Vec::new(),
            rechecks: Vec::new(),
            next_sweep: Instant::now(),
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
            // SAFETY: `fds` is an array of two pollfd; a negative fd is ignored.
            match cvt(unsafe { libc::poll(fds.as_mut_ptr(), 2, self.timeout()) }) {
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
            self.run_rechecks();
            if Instant::now() >= self.next_sweep {
                self.unwatched.retain(|object| !try_reap(object));
                self.next_sweep = Instant::now() + Duration::from_secs(1);
            }
        }
        Ok(())
    }

    /// Milliseconds until the next recheck or sweep; -1 when only events matter.
    fn timeout(&self) -> i32 {
        let now = Instant::now();
        let sweep = (!self.unwatched.is_empty()).then_some(self.next_sweep);
        let next = self.rechecks.iter().map(|r| r.at).chain(sweep).min();
        next.map_or(-1, |at| at.saturating_duration_since(now).as_millis().min(1000) as i32)
    }

    /// Messages from the creator: a name and a descriptor each; end of file when it is gone.
    fn read_creator(&mut self) {
        loop {
            let Some(creator) = self.creator.as_ref() else { return };
            match receive(creator) {
                Ok(Some((name, fd))) => {
                    if let Some(object) = adopt(&name, fd) {
                        self.add(object);
                    }
                }
                Ok(None) => {
                    self.creator = None;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.creator = None;
                    return;
                }
            }
        }
    }

    /// Watches a new object for close events, then tries it at once (its holders may be
    /// gone already). The watch comes first, so no close is missed in between.
    fn add(&mut self, object: Object) {
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
            if !try_reap(&object) {
                self.unwatched.push(object);
            }
            return;
        }
        self.watched.insert(wd, object);
        self.try_watched(wd, 0);
    }

    /// Tries a watched object; done with it, or schedules a recheck.
    fn try_watched(&mut self, wd: i32, round: u32) {
        let Some(object) = self.watched.get(&wd) else { return };
        if try_reap(object) {
            if let Some(inotify) = &self.inotify {
                // SAFETY: removes our own watch; the descriptor then closes on drop.
                unsafe { libc::inotify_rm_watch(inotify.as_raw_fd(), wd) };
            }
            self.watched.remove(&wd);
            self.rechecks.retain(|r| r.wd != wd);
        } else if round < 6 {
            let at = Instant::now() + Duration::from_millis(1 << (2 * round));
            self.rechecks.retain(|r| r.wd != wd);
            self.rechecks.push(Recheck { wd, at, round: round + 1 });
        }
    }

    fn run_rechecks(&mut self) {
        let now = Instant::now();
        let due: Vec<(i32, u32)> =
            self.rechecks.iter().filter(|r| r.at <= now).map(|r| (r.wd, r.round)).collect();
        self.rechecks.retain(|r| r.at > now);
        for (wd, round) in due {
            self.try_watched(wd, round);
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
                self.try_watched(event.wd, 0);
            }
        }
    }
}

/// One message from the creator: `Ok(None)` at end of file.
fn receive(creator: &OwnedFd) -> io::Result<Option<(String, Option<OwnedFd>)>> {
    let mut name = [0u8; 512];
    let mut iov = libc::iovec { iov_base: name.as_mut_ptr().cast(), iov_len: name.len() };
    let mut control = OneFd::control();
    let mut msg = OneFd::message(&mut iov, &mut control);
    let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
    // SAFETY: our socket and a message whose buffers live through the call.
    let n = cvt(unsafe { libc::recvmsg(creator.as_raw_fd(), &mut msg, flags) })?;
    if n == 0 {
        return Ok(None);
    }
    let mut fd = None;
    // SAFETY: walks the control messages the kernel wrote into our buffer; an SCM_RIGHTS
    // message carries one descriptor that is now ours.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        if !header.is_null()
            && (*header).cmsg_level == libc::SOL_SOCKET
            && (*header).cmsg_type == libc::SCM_RIGHTS
        {
            let raw = libc::CMSG_DATA(header).cast::<RawFd>().read_unaligned();
            fd = Some(OwnedFd::from_raw_fd(raw));
        }
    }
    let name = String::from_utf8_lossy(&name[..n as usize]).into_owned();
    Ok(Some((name, fd)))
}

/// The object of a message: the description the creator opened for us (no lock on it),
/// checked to be a regular file of our own user not marked to be kept. `None` for anything
/// else.
fn adopt(name: &str, passed: Option<OwnedFd>) -> Option<Object> {
    let file = File::from(passed?);
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let st = fstat(&file).ok()?;
    // SAFETY: geteuid cannot fail.
    let ours = st.st_uid == unsafe { libc::geteuid() };
    let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
    // Not kept (objects made where tmpfs has no user attributes carry no mark at all).
    let scoped = mark::read(&file).is_none_or(|m| !m.kept);
    (ours && regular && scoped).then(|| Object { file, path: PathBuf::from("/dev/shm").join(name) })
}

/// Unlinks the object's name if nobody holds it; returns whether the reaper is done with
/// it (nobody holds it any more). An object without a name is not done with: it may not
/// have been named yet (the creator hands it over first), and once nobody holds it there
/// is simply nothing to unlink.
fn try_reap(object: &Object) -> bool {
    match flock(&object.file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => {
            let _ = liveness::unlink_if_named(&object.file, &object.path);
            true
        }
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}
