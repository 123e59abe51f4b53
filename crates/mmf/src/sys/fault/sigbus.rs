//! The SIGBUS disposition mmf installs on Linux, and what it does with a signal that is not
//! a guarded access's fault — one piece for the exception table (x86-64, `linux.rs`) and
//! the fallback guard (`fallback.rs`).
//!
//! The signal goes to the disposition found when mmf installed its handler (Rust's std has
//! one for stack overflows), and mmf's handler stays installed: a `kill -BUS`, or a previous
//! handler that resets the disposition, never leaves later copies unguarded. A real fault
//! that is not mmf's kills the process, as it would without mmf. Only async-signal-safe
//! calls (`sigaction`, `raise`, `_exit`) on data recorded before the handler was installed.
//!
//! One exception: a SIGBUS sent by a process (`kill`, `tkill`, `sigqueue`: not a fault) is
//! not passed to std's stack-overflow handler. For anything but its stack overflow, that
//! handler resets SIGBUS to the default action and returns; until mmf put its own handler
//! back, a guarded fault of another thread met the default action and killed the process
//! (CI, 2026-12-02; `tests/shared_access.rs`). Std's handler is told apart as the one that
//! handles SIGSEGV too (std installs one function for both); without mmf it would have done
//! nothing with the signal but that reset, so the signal is ignored. A handler of the
//! program's own (the CLI's, `mmf-cli/src/sigbus.rs`) still gets every SIGBUS mmf does not
//! claim. The rule's limits: a handler that chains to std's (signal-hook's) is not std's
//! and gets the signal, and std's reset can then open the window again; a handler of the
//! program's that also handles SIGSEGV (a crash reporter) is taken for std's and does not
//! see a `kill -BUS`.
//!
//! What no handler can help: a thread that blocks SIGBUS (`pthread_sigmask`) dies of its
//! first guarded fault, since the kernel resets the disposition to the default for a fault
//! signal that the faulting thread blocks.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The `SIGBUS` disposition in place before mmf's, mmf's own, and whether the previous one
/// is std's stack-overflow handler (see the module's docs).
static ACTIONS: OnceLock<Actions> = OnceLock::new();

struct Actions {
    previous: libc::sigaction,
    ours: libc::sigaction,
    previous_is_std: bool,
}

/// The handler's signature (`SA_SIGINFO`).
pub(super) type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// Whether the handler is installed, and the forks under way, in one word: bits 0–1 are
/// the state ([`NONE`]; [`WANTED`]: a thread waits for the forks under way to end, to
/// install; [`INSTALLING`]: it is at it; [`INSTALLED`]), the rest counts forks between
/// their `prepare` and their `parent`/`child` handlers ([`FORK_ONE`] each). An install
/// starts only while no fork is under way, and a fork waits while an install is wanted or
/// under way ([`fork_prepare`]): no child is copied with the install half done, and forks
/// in a row from many threads cannot keep an install waiting for ever. (A `Once`, before:
/// a child forked while another thread ran it waited for ever at its first guarded access;
/// then a look in `prepare` that did not stop an install starting after it, while the fork
/// went on through the other handlers: review 51, 2 children in 20,000.)
static WORD: AtomicU32 = AtomicU32::new(NONE);
const STATE: u32 = 3;
const NONE: u32 = 0;
const WANTED: u32 = 1;
const INSTALLING: u32 = 2;
const INSTALLED: u32 = 3;
const FORK_ONE: u32 = 4;

/// Installs `handler` for SIGBUS, once per process: the dispositions are recorded first, so
/// the handler never runs without them.
#[inline]
pub(super) fn install(handler: Handler) {
    if WORD.load(Ordering::Acquire) & STATE != INSTALLED {
        install_slow(handler);
    }
}

/// [`install`] when it is not done yet: waits while another thread installs; else says
/// it wants to (new forks wait), waits for the forks under way to end (their handlers
/// take milliseconds at most), and installs.
#[cold]
fn install_slow(handler: Handler) {
    // Registered at load already, unless the program lost that entry: then now.
    crate::sys::fork::register();
    loop {
        let word = WORD.load(Ordering::Acquire);
        match word & STATE {
            INSTALLED => return,
            NONE => {
                let wanted = word | WANTED;
                if WORD.compare_exchange(word, wanted, Ordering::Acquire, Ordering::Relaxed).is_ok()
                {
                    break;
                }
            }
            _ => std::thread::yield_now(), // another thread's install
        }
    }
    // WANTED: no fork counts itself now, and the counted ones end.
    while WORD.load(Ordering::Acquire) != WANTED {
        std::thread::yield_now();
    }
    WORD.store(INSTALLING, Ordering::Relaxed);
    let ours = &actions(Some(handler)).ours;
    // SAFETY: installs a handler that makes only async-signal-safe calls and defers to the
    // recorded previous disposition for every SIGBUS that is not a guarded access's.
    unsafe { libc::sigaction(libc::SIGBUS, ours, std::ptr::null_mut()) };
    WORD.store(INSTALLED, Ordering::Release);
}

/// `fork`'s `prepare` handler (`sys/fork.rs`; mmf's last to run): waits while an install
/// is wanted or under way (it waits only for forks counted before it, and makes two
/// `sigaction` calls), then counts the fork, which keeps new installs from starting until
/// [`fork_parent`] or [`fork_child`].
pub(crate) fn fork_prepare() {
    loop {
        let word = WORD.load(Ordering::Acquire);
        if matches!(word & STATE, NONE | INSTALLED)
            && WORD
                .compare_exchange_weak(word, word + FORK_ONE, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
        std::thread::yield_now();
    }
}

/// `fork`'s `parent` handler: the fork no longer holds installs back.
pub(crate) fn fork_parent() {
    WORD.fetch_sub(FORK_ONE, Ordering::Release);
}

/// The word as the last fork copied it, before [`fork_child`] rewrites it: what the
/// tests look at (review 52: the rewritten word never shows a copy made mid-install).
#[cfg(test)]
static COPIED: AtomicU32 = AtomicU32::new(NONE);

/// `fork`'s `child` handler: the child's only thread is the forking one, so no fork is
/// under way in it (the parent's other threads' forks, counted in the copy, are not its),
/// nor an install (one wanted by a parent's thread is that thread's, which is not here;
/// none was under way, as this fork was counted).
pub(crate) fn fork_child() {
    let copied = WORD.load(Ordering::Relaxed);
    #[cfg(test)]
    COPIED.store(copied, Ordering::Relaxed);
    let installed = copied & STATE == INSTALLED;
    WORD.store(if installed { INSTALLED } else { NONE }, Ordering::Release);
}

/// The disposition found before mmf's, and mmf's own, recorded once (by `install`, with
/// the handler; later callers pass `None`).
fn actions(handler: Option<Handler>) -> &'static Actions {
    ACTIONS.get_or_init(|| {
        let (previous, segv) = (current(libc::SIGBUS), current(libc::SIGSEGV));
        let previous_is_std = is_handler(&previous)
            && previous.sa_flags & libc::SA_SIGINFO != 0
            && segv.sa_sigaction == previous.sa_sigaction;
        // SAFETY: as above.
        let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
        let handler = handler.expect("install records the dispositions first");
        ours.sa_sigaction = handler as *const () as libc::sighandler_t;
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        // SAFETY: an empty mask for our handler.
        unsafe { libc::sigemptyset(&mut ours.sa_mask) };
        Actions { previous, ours, previous_is_std }
    })
}

/// A SIGBUS that is not a guarded access's: what the previous disposition does with it.
pub(super) fn forward(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
    fault: bool,
) {
    let Actions { previous, ours, previous_is_std } = actions(None);
    let action = previous.sa_sigaction;
    if !fault && (action == libc::SIG_IGN || *previous_is_std) {
        // An ignored kill(), or one std's handler would only have reset the disposition
        // for (module docs): ignore it (mmf's handler stays).
        return;
    }
    if !is_handler(previous) {
        // Without mmf the process would die of this signal now: it does (the fault is not
        // left to re-execute, which a peer growing the file back could let pass — and
        // leave the process with no guard).
        die_of(signal);
    }
    // mmf's, or a handler installed after it that passed the signal on.
    let before = current(libc::SIGBUS);
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO and has that signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(action) };
        f(signal, info, context);
    } else {
        // SAFETY: a plain handler installed without SA_SIGINFO has this signature.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
        f(signal);
    }
    let now = current(libc::SIGBUS);
    if fault && now.sa_sigaction == libc::SIG_DFL {
        // The previous handler gave the fault up to the default action (std's does, for
        // anything but a stack overflow): die of it now rather than re-execute.
        die_of(signal);
    }
    // The process lives on (a kill(), or a fault the previous handler repaired): whatever
    // it did to the disposition, the one before it (mmf's guard, or a handler installed
    // after it) stays. A default or ignore read as the one before is another thread's
    // forward caught in its previous handler's reset: mmf's own goes back then.
    let keep = if is_handler(&before) { &before } else { ours };
    if now.sa_sigaction != keep.sa_sigaction {
        // SAFETY: puts back a disposition read above or the one `install` installed.
        unsafe { libc::sigaction(libc::SIGBUS, keep, std::ptr::null_mut()) };
    }
}

/// The disposition of `signal` now (`sigaction`, async-signal-safe).
fn current(signal: libc::c_int) -> libc::sigaction {
    // SAFETY: sigaction is plain data; zeroed is "no flags, no handler", which the call
    // overwrites.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: only reads the current disposition into `action`.
    unsafe { libc::sigaction(signal, std::ptr::null(), &mut action) };
    action
}

/// Whether `action` is a handler (not the default action, not ignore).
fn is_handler(action: &libc::sigaction) -> bool {
    action.sa_sigaction != libc::SIG_DFL && action.sa_sigaction != libc::SIG_IGN
}

/// The default action of `signal` (SIGBUS: terminate with a core dump), now.
fn die_of(signal: libc::c_int) -> ! {
    // SAFETY: sigaction is plain data; zeroed means SIG_DFL with no flags. Restoring the
    // default and raising the signal (not blocked: SA_NODEFER) ends the process; _exit is
    // the backstop.
    unsafe {
        let default: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, &default, std::ptr::null_mut());
        libc::raise(signal);
        libc::_exit(128 + signal)
    }
}

#[cfg(test)]
#[path = "sigbus_tests.rs"]
mod tests;
