//! The reaper: one small helper process per creating process, which unlinks the names of
//! that process's scoped objects once every holder is gone — also when the last holders
//! were killed and could not do it themselves.
//!
//! It is a fresh image, not a copy of the creator: the creator runs `/proc/self/exe` again
//! with `argv[0] = "mmf-reaper"` and `MMF_REAPER=1` in its environment, and a function mmf
//! places in the program's `.init_array` sees both before `main` and runs the reaper
//! instead of the program ([`run`]). So the reaper holds none of the creator's memory,
//! descriptors or secrets (a few MiB of resident pages), shows as `mmf-reaper CREATOR_PID`
//! in `ps`, runs in a session of its own (no terminal signals reach it), and exits when the
//! creator is gone and so are the objects it watches; a creator never waits for it, and it
//! never exits while its creator lives, so it leaves no zombie either way.
//!
//! The creator sends it one line per scoped object it creates (`DEV INO NAME`) over a
//! socket that is the reaper's standard input. It cannot be started — and mmf then relies
//! on every open, create and `list` removing dead objects — when the hook is not part of
//! the main program (mmf linked into a shared library loaded by, say, Python: then
//! `/proc/self/exe` is not a program that would run the hook) or `/proc` is missing.

use std::ffi::{c_char, c_int, c_void};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod run;

/// The environment variable, and `argv[0]`, that make a program start as the reaper.
const ENV: &str = "MMF_REAPER";
const ARGV0: &str = "mmf-reaper";
/// What a reaper says once it runs, so that the creator knows the hook took over.
const READY: &[u8] = b"mmf-reaper ready\n";

/// The hook ran in this process, from the main program's `.init_array`.
static IN_MAIN_PROGRAM: AtomicBool = AtomicBool::new(false);

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

/// This process's reaper: the socket to it, and the child to reap if it dies early.
struct Reaper {
    socket: UnixStream,
    child: Child,
}

static REAPER: Mutex<Option<Reaper>> = Mutex::new(None);
/// Starting a reaper failed once: do not try again on every create.
static CANNOT_START: AtomicBool = AtomicBool::new(false);

/// Has this process's reaper watch the scoped object `/dev/shm/NAME` (identity `dev`,
/// `ino`), starting the reaper on first use. Best effort: without a reaper, dead objects
/// are still removed by the next open, create or listing of them.
pub(super) fn watch(name: &str, dev: u64, ino: u64) {
    if !IN_MAIN_PROGRAM.load(Ordering::Relaxed) || CANNOT_START.load(Ordering::Relaxed) {
        return;
    }
    let line = format!("{dev} {ino} {name}\n");
    let mut reaper = REAPER.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..2 {
        if reaper.is_none() {
            *reaper = start();
        }
        let Some(r) = reaper.as_mut() else {
            CANNOT_START.store(true, Ordering::Relaxed);
            return;
        };
        if send_all(&r.socket, line.as_bytes()).is_ok() {
            return;
        }
        // It died (someone killed it): reap it and start another.
        let _ = r.child.try_wait();
        *reaper = None;
    }
}

/// `send(MSG_NOSIGNAL)` of all of `bytes`: a dead reaper is an error, never a SIGPIPE.
fn send_all(socket: &UnixStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe `bytes`; `socket` is an open socket.
        let n = unsafe {
            libc::send(socket.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL)
        };
        match n {
            -1 if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            -1 => return Err(std::io::Error::last_os_error()),
            n => bytes = &bytes[n as usize..],
        }
    }
    Ok(())
}

/// Runs the program again as the reaper and waits (a bounded time) for it to say it runs.
fn start() -> Option<Reaper> {
    let (socket, theirs) = UnixStream::pair().ok()?;
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0(ARGV0)
        .arg(std::process::id().to_string())
        .env(ENV, "1")
        .current_dir("/")
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec and calls only setsid,
    // which is async-signal-safe and touches no memory.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().ok()?;
    let mut said = [0u8; READY.len()];
    let ready = socket.set_read_timeout(Some(Duration::from_secs(10))).is_ok()
        && (&socket).read_exact(&mut said).is_ok()
        && said == READY;
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    Some(Reaper { socket, child })
}
