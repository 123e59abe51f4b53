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
use std::sync::atomic::{AtomicU8, Ordering};

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

/// Whether the handler is installed: [`NONE`], [`INSTALLING`] (a thread is at it) or
/// [`INSTALLED`]. Not a `Once`: a `fork` while another thread ran a `Once` left the child
/// waiting for ever at its first guarded access (the `Once` copied as running, its runner
/// not copied); `fork` now waits for an install under way ([`wait_for_install`], from a
/// `prepare` handler), which makes two `sigaction` calls and waits for nothing.
static STATE: AtomicU8 = AtomicU8::new(NONE);
const NONE: u8 = 0;
const INSTALLING: u8 = 1;
const INSTALLED: u8 = 2;

/// Installs `handler` for SIGBUS, once per process: the dispositions are recorded first, so
/// the handler never runs without them.
#[inline]
pub(super) fn install(handler: Handler) {
    if STATE.load(Ordering::Acquire) != INSTALLED {
        install_slow(handler);
    }
}

#[cold]
fn install_slow(handler: Handler) {
    match STATE.compare_exchange(NONE, INSTALLING, Ordering::Acquire, Ordering::Acquire) {
        Ok(_) => {
            let ours = &actions(Some(handler)).ours;
            // SAFETY: installs a handler that makes only async-signal-safe calls and defers
            // to the recorded previous disposition for every SIGBUS that is not a guarded
            // access's.
            unsafe { libc::sigaction(libc::SIGBUS, ours, std::ptr::null_mut()) };
            STATE.store(INSTALLED, Ordering::Release);
        }
        Err(_) => wait_for_install(),
    }
}

/// Waits while another thread installs the handler (a few microseconds): what `fork`'s
/// `prepare` handler does, so that no child is copied with the install half done.
pub(crate) fn wait_for_install() {
    while STATE.load(Ordering::Acquire) == INSTALLING {
        std::thread::yield_now();
    }
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
mod tests {
    use std::sync::atomic::Ordering;

    use super::{INSTALLED, INSTALLING, STATE};
    use crate::sys::fork::tests::{in_child, plays, run_alone};

    /// A fork while another thread installs the handler waits for the install
    /// (`sys/fork.rs`'s `prepare` handler): the child is never copied with it half done.
    /// The install is played by a thread that holds the state at `INSTALLING` for 100 ms,
    /// in a process of its own (the state is the process's).
    #[test]
    fn a_fork_waits_for_an_install_under_way() {
        if plays("fork-during-install") {
            STATE.store(INSTALLING, Ordering::Release);
            let installer = std::thread::spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                STATE.store(INSTALLED, Ordering::Release);
            });
            let installed = in_child(|| STATE.load(Ordering::Acquire) == INSTALLED);
            installer.join().unwrap();
            assert!(installed, "the child was copied mid-install");
            return;
        }
        run_alone(
            "sys::fault::sigbus::tests::a_fork_waits_for_an_install_under_way",
            "fork-during-install",
        );
    }
}
