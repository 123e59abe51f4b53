//! The reaper: one small helper process per creating process, which unlinks the names of
//! that process's scoped objects once every holder is gone — also when the last holders
//! were killed and could not do it themselves.
//!
//! It is a fresh image, not a copy of the creator: the creator runs `/proc/self/exe` again
//! with `argv[0] = "mmf-reaper"` and `MMF_REAPER=1` in its environment, and a function mmf
//! places in the program's `.init_array` sees both before `main` and runs the reaper
//! instead of the program ([`run`]). So the reaper holds none of the creator's memory,
//! descriptors or secrets (a few MiB of resident pages) and shows as `mmf-reaper
//! CREATOR_PID` in `ps`. It is started through a double fork into a session of its own:
//! it is not the creator's child (a `wait(-1)` there never waits for it, and no zombie is
//! left), and no terminal signal reaches it. It exits once the creator is gone and so are
//! the objects it watches.
//!
//! The creator hands it each scoped object before naming it — the name and the object's
//! descriptor (`SCM_RIGHTS`) over a `SOCK_SEQPACKET` socket that is the reaper's standard
//! input — so a creator killed between creating and naming leaves nothing behind. Sends
//! never block (a stopped reaper cannot stall a create); a new reaper, started when the old
//! one died, is handed every object the creator still holds.
//!
//! It is not started — and mmf then relies on every open, create and `list` removing dead
//! objects — where it cannot run: mmf linked into a shared library loaded by another
//! program (Python, say: `/proc/self/exe` would not run the hook), a C library other than
//! glibc (which passes `.init_array` functions no arguments), a missing `/proc`. A program
//! run with elevated privileges (`AT_SECURE`) never acts as a reaper, whatever its
//! arguments say. Nor can a reaper survive what kills every process of its group (the
//! death of a PID namespace's init, a cgroup kill): the next open, create or listing of a
//! dead object removes it.

// Without glibc the hook is not placed, and nothing here runs.
#![cfg_attr(not(target_env = "gnu"), allow(dead_code))]

use std::ffi::{c_char, c_int, c_void};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::holds;
use crate::sys::pal::cvt;

mod run;

/// The environment variable, and `argv[0]`, that make a program start as the reaper.
const ENV: &str = "MMF_REAPER";
const ARGV0: &str = "mmf-reaper";
/// What a reaper says once it runs, so that the creator knows the hook took over.
const READY: &[u8] = b"mmf-reaper ready";

/// The hook ran in this process, from the main program's `.init_array`.
static IN_MAIN_PROGRAM: AtomicBool = AtomicBool::new(false);

// glibc calls `.init_array` functions with (argc, argv, envp); other C libraries do not.
#[cfg(target_env = "gnu")]
#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = init;

/// Runs before `main` in every program that links mmf: notes that the hook is there, and
/// turns the process into the reaper if it was started as one.
extern "C" fn init(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) {
    if !in_main_program() {
        return;
    }
    IN_MAIN_PROGRAM.store(true, Ordering::Relaxed);
    // SAFETY: glibc calls `.init_array` functions of the main program with the process's
    // `argc`, `argv` and `envp`: arrays of NUL-terminated strings, `envp` NULL-terminated.
    if unsafe { started_as_reaper(argc, argv, envp) } {
        // SAFETY: getauxval only reads the auxiliary vector; _exit ends the process.
        unsafe {
            if libc::getauxval(libc::AT_SECURE) != 0 {
                libc::_exit(1); // a privileged program is never a reaper for anyone
            }
        }
        run::main();
    }
}

/// Whether `init` lies in the main program (and not in a shared library that contains
/// mmf), comparing the objects `dladdr` finds for it and for the program's headers.
fn in_main_program() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    let phdr = unsafe { libc::getauxval(libc::AT_PHDR) } as *const c_void;
    let base = |addr: *const c_void| {
        // SAFETY: Dl_info is plain data that dladdr fills; dladdr only reads the loader's
        // tables and accepts any address.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        (unsafe { libc::dladdr(addr, &mut info) } != 0).then_some(info.dli_fbase)
    };
    let hook = init as *const c_void;
    !phdr.is_null() && base(phdr).is_some() && base(phdr) == base(hook)
}

/// `argv[0]` is [`ARGV0`] and [`ENV`]`=1` is set.
///
/// # Safety
/// `argv` has `argc` valid C strings; `envp` is a NULL-terminated array of C strings.
unsafe fn started_as_reaper(
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> bool {
    use std::ffi::CStr;
    if argc < 1 || argv.is_null() || envp.is_null() {
        return false;
    }
    // SAFETY: argc >= 1, so argv[0] is a valid C string (the caller's promise).
    let arg0 = unsafe { CStr::from_ptr(*argv) };
    if arg0.to_bytes() != ARGV0.as_bytes() {
        return false;
    }
    let wanted = format!("{ENV}=1");
    let mut at = envp;
    // SAFETY: walks the NULL-terminated array of C strings the caller vouches for.
    unsafe {
        while !(*at).is_null() {
            if CStr::from_ptr(*at).to_bytes() == wanted.as_bytes() {
                return true;
            }
            at = at.add(1);
        }
    }
    false
}

/// The socket to this process's reaper, once it runs.
static REAPER: Mutex<Option<OwnedFd>> = Mutex::new(None);
/// The pid of the process whose thread holds `REAPER` (0: none). A `fork` child may
/// inherit `REAPER` locked by a thread of its parent, which does not run in it: it sees
/// another pid here and does without a reaper (a child once waited for ever here). No
/// `fork` handler takes `REAPER`: starting the reaper forks (`Command` with `pre_exec`),
/// which runs every handler, and one waiting for `REAPER` there deadlocked with the
/// thread starting it (review 49).
static REAPER_HOLDER: AtomicU32 = AtomicU32::new(0);
/// Starting a reaper failed once: do not try again on every create.
static CANNOT_START: AtomicBool = AtomicBool::new(false);

/// Hands the scoped object `name` (open as `object`, not yet named) to this process's
/// reaper, starting the reaper on first use. Best effort: without a reaper, dead objects
/// are still removed by the next open, create or listing of them.
pub(super) fn watch(name: &str, object: &File) {
    if !IN_MAIN_PROGRAM.load(Ordering::Relaxed) || CANNOT_START.load(Ordering::Relaxed) {
        return;
    }
    let Some(mut reaper) = lock_reaper() else {
        return;
    };
    for _ in 0..2 {
        if reaper.is_none() {
            let Some(socket) = start() else {
                CANNOT_START.store(true, Ordering::Relaxed);
                return;
            };
            // A new reaper (the first, or one after the last died): it gets every object
            // this process still holds.
            for (held, fd) in holds::all() {
                let _ = send(&socket, &held, fd);
            }
            *reaper = Some(socket);
        }
        let Some(socket) = reaper.as_ref() else { return };
        match send(socket, name, object.as_raw_fd()) {
            Ok(()) => return,
            // A reaper that does not read (stopped): never block a create for it.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => *reaper = None, // it died: start another
        }
    }
}

/// `REAPER`, locked, with `REAPER_HOLDER` set while it is; `None` when a thread of the
/// parent process holds it (this is a `fork` child, which then does without a reaper
/// from now on), when it stays locked with no holder named for 100 ms (a child forked
/// just as a thread of its parent took or gave it back: this create goes without), or
/// after 15 s (a reaper's start waits 10 s at most).
fn lock_reaper() -> Option<ReaperLock> {
    let me = std::process::id();
    let start = std::time::Instant::now();
    let mut unnamed = 0;
    let guard = loop {
        match REAPER.try_lock() {
            Ok(guard) => break guard,
            Err(std::sync::TryLockError::Poisoned(e)) => break e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                let holder = REAPER_HOLDER.load(Ordering::Acquire);
                if holder != 0 && holder != me {
                    CANNOT_START.store(true, Ordering::Relaxed);
                    return None;
                }
                unnamed = if holder == 0 { unnamed + 1 } else { 0 };
                if unnamed >= 100 || start.elapsed().as_secs() >= 15 {
                    return None;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    };
    REAPER_HOLDER.store(me, Ordering::Release);
    Some(ReaperLock(guard))
}

/// `REAPER` locked by [`lock_reaper`]; clears `REAPER_HOLDER` before it unlocks.
struct ReaperLock(MutexGuard<'static, Option<OwnedFd>>);

impl Drop for ReaperLock {
    fn drop(&mut self) {
        REAPER_HOLDER.store(0, Ordering::Release);
    }
}

impl std::ops::Deref for ReaperLock {
    type Target = Option<OwnedFd>;
    fn deref(&self) -> &Option<OwnedFd> {
        &self.0
    }
}

impl std::ops::DerefMut for ReaperLock {
    fn deref_mut(&mut self) -> &mut Option<OwnedFd> {
        &mut self.0
    }
}

/// One message: the name, with a new description of the object (`SCM_RIGHTS`) — not the
/// holder's own, whose shared lock, while the message is in flight, would make a dead
/// holder look alive. Never blocks, and a dead reaper is an error, never a SIGPIPE.
fn send(socket: &OwnedFd, name: &str, held: RawFd) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let fresh = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{held}"))?;
    let fd = fresh.as_raw_fd();
    let mut iov = libc::iovec { iov_base: name.as_ptr().cast_mut().cast(), iov_len: name.len() };
    let mut control = OneFd::control();
    let msg = OneFd::message(&mut iov, &mut control);
    // SAFETY: the control buffer has room for one header with one descriptor
    // (CMSG_SPACE), which CMSG_FIRSTHDR and CMSG_DATA address inside it.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
        libc::CMSG_DATA(header).cast::<RawFd>().write_unaligned(fd);
    }
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: a connected socket and a message whose buffers live through the call.
    cvt(unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, flags) }).map(drop)
}

/// A message of one buffer and room for one descriptor (`SCM_RIGHTS`): what the creator
/// sends and the reaper receives.
struct OneFd;

impl OneFd {
    /// A control buffer with room for one header carrying one descriptor (`CMSG_SPACE`).
    fn control() -> Vec<u64> {
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
        vec![0u64; space.div_ceil(8)]
    }

    /// The message header over `iov` and `control`, which must outlive its use.
    fn message(iov: &mut libc::iovec, control: &mut [u64]) -> libc::msghdr {
        // SAFETY: msghdr is plain data; the fields set below describe the caller's buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(control) as _;
        msg
    }
}

/// Runs the program again as the reaper, through a double fork, and waits (a bounded
/// time) for it to say it runs.
fn start() -> Option<OwnedFd> {
    let mut fds = [0; 2];
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: an array of two descriptors for socketpair to fill.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) }).ok()?;
    // SAFETY: socketpair returned two new descriptors that nothing else owns.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0(ARGV0)
        .arg(std::process::id().to_string())
        .env(ENV, "1")
        .current_dir("/")
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: runs in the child between fork and exec, making only async-signal-safe
    // calls: a new session, then (where the raw clone below means fork: x86-64 and
    // AArch64, whose other clone arguments are all 0 here) a raw fork, skipping atfork
    // handlers, whose parent exits at once, so that the reaper is not our child and is not
    // left a zombie.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
                match libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) {
                    0 => {}
                    -1 => return Err(io::Error::last_os_error()),
                    _ => libc::_exit(0),
                }
            }
            Ok(())
        });
    }
    let mut intermediate = command.spawn().ok()?;
    drop(command); // our copy of the reaper's end: its exit must be seen as end of file
    let _ = intermediate.wait();
    let mut ready = libc::pollfd { fd: ours.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd for our socket.
    let polled = unsafe { libc::poll(&mut ready, 1, 10_000) };
    let mut said = [0u8; 64];
    // SAFETY: reads into our buffer from our socket, without waiting.
    let n = unsafe {
        libc::recv(ours.as_raw_fd(), said.as_mut_ptr().cast(), said.len(), libc::MSG_DONTWAIT)
    };
    let ok = polled == 1 && usize::try_from(n).is_ok_and(|n| said[..n] == *READY);
    ok.then_some(ours)
}
