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
/// the state ([`NONE`], [`INSTALLING`]: a thread is at it, [`INSTALLED`]), the rest counts
/// forks between their `prepare` and their `parent`/`child` handlers ([`FORK_ONE`] each).
/// An install starts only while no fork is under way, and a fork waits for an install
/// under way ([`fork_prepare`]), so no child is copied with the install half done. (A
/// `Once`, before: a child forked while another thread ran it waited for ever at its first
/// guarded access; then a look in `prepare` that did not stop an install starting after
/// it, while the fork went on through the other handlers: review 51, 2 children in 20,000.)
static WORD: AtomicU32 = AtomicU32::new(NONE);
const STATE: u32 = 3;
const NONE: u32 = 0;
const INSTALLING: u32 = 1;
const INSTALLED: u32 = 2;
const FORK_ONE: u32 = 4;

/// Installs `handler` for SIGBUS, once per process: the dispositions are recorded first, so
/// the handler never runs without them.
#[inline]
pub(super) fn install(handler: Handler) {
    if WORD.load(Ordering::Acquire) & STATE != INSTALLED {
        install_slow(handler);
    }
}

/// [`install`] when it is not done yet: waits while another thread installs or a fork is
/// under way (a fork's handlers take a few milliseconds at most).
#[cold]
fn install_slow(handler: Handler) {
    loop {
        let word = WORD.load(Ordering::Acquire);
        if word & STATE == INSTALLED {
            return;
        }
        // Not installed, no install nor fork under way: this thread installs.
        if word == NONE
            && WORD.compare_exchange(NONE, INSTALLING, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            let ours = &actions(Some(handler)).ours;
            // SAFETY: installs a handler that makes only async-signal-safe calls and defers
            // to the recorded previous disposition for every SIGBUS that is not a guarded
            // access's.
            unsafe { libc::sigaction(libc::SIGBUS, ours, std::ptr::null_mut()) };
            // No fork counted itself meanwhile (`fork_prepare` waits while INSTALLING).
            WORD.store(INSTALLED, Ordering::Release);
            return;
        }
        std::thread::yield_now();
    }
}

/// `fork`'s `prepare` handler (`sys/fork.rs`; mmf's last to run): waits for an install
/// under way (two `sigaction` calls; the installing thread waits for nothing), then counts
/// the fork, which keeps new installs from starting until [`fork_parent`] or
/// [`fork_child`].
pub(crate) fn fork_prepare() {
    loop {
        let word = WORD.load(Ordering::Acquire);
        if word & STATE != INSTALLING
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

/// `fork`'s `child` handler: the child's only thread is the forking one, so no fork is
/// under way in it (the parent's other threads' forks, counted in the copy, are not its);
/// the state is `NONE` or `INSTALLED` (`fork_prepare` waited out any install).
pub(crate) fn fork_child() {
    let word = WORD.load(Ordering::Relaxed);
    WORD.store(word & STATE, Ordering::Release);
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
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    use super::{INSTALLED, INSTALLING, NONE, STATE, WORD};
    use crate::sys::fork::tests::{in_child, plays, run_alone};

    /// A fork while another thread installs the handler waits for the install: the child
    /// is never copied with it half done. The install is played by a thread that holds the
    /// state at `INSTALLING` for 100 ms, in a process of its own (the state is the
    /// process's).
    #[test]
    fn a_fork_waits_for_an_install_under_way() {
        if plays("fork-during-install") {
            WORD.store(INSTALLING, Ordering::Release);
            let installer = std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                WORD.store(INSTALLED, Ordering::Release);
            });
            let installed = in_child(|| WORD.load(Ordering::Acquire) & STATE == INSTALLED);
            installer.join().unwrap();
            assert!(installed, "the child was copied mid-install");
            return;
        }
        run_alone(
            "sys::fault::sigbus::tests::a_fork_waits_for_an_install_under_way",
            "fork-during-install",
        );
    }

    /// Review 51: an install that starts while a fork is on its way through the other
    /// handlers (held here at the sync layer's gate by a thread inside it) is not copied
    /// half done: the fork keeps it from starting, or waits for it. With the first version
    /// (a look for an install under way, made before the gate's handler), the child
    /// waited for ever at its first guarded access.
    #[test]
    fn an_install_starting_while_a_fork_is_in_its_handlers_is_not_copied_half_done() {
        if plays("install-during-fork") {
            let (inside, leave) = (mpsc::channel(), mpsc::channel::<()>());
            let gate = std::thread::spawn(move || {
                let gate = crate::sys::sync::fork_gate();
                inside.0.send(()).unwrap();
                leave.1.recv().unwrap();
                drop(gate);
            });
            inside.1.recv().unwrap();
            // The child's first guarded access installs, under an alarm.
            let forker = std::thread::spawn(|| {
                in_child(|| {
                    // SAFETY: alarm only schedules a signal (a hang ends the child).
                    unsafe { libc::alarm(5) };
                    crate::sys::fault::install();
                    true
                })
            });
            // The fork is in its handlers now, at the gate.
            std::thread::sleep(Duration::from_millis(100));
            // An install starts (or, held back by the fork, waits) and takes 200 ms.
            let installer = std::thread::spawn(|| {
                loop {
                    if WORD
                        .compare_exchange(NONE, INSTALLING, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        std::thread::sleep(Duration::from_millis(200));
                        WORD.store(INSTALLED, Ordering::Release);
                        return;
                    }
                    std::thread::yield_now();
                }
            });
            std::thread::sleep(Duration::from_millis(50));
            leave.0.send(()).unwrap();
            gate.join().unwrap();
            installer.join().unwrap();
            assert!(forker.join().unwrap(), "the child hung at its first guarded access");
            return;
        }
        run_alone(
            "sys::fault::sigbus::tests::an_install_starting_while_a_fork_is_in_its_handlers_is_not_copied_half_done",
            "install-during-fork",
        );
    }

    /// An install waits while a fork is under way (counted by its `prepare`, not yet
    /// uncounted by `parent`): started in that gap, the child would be copied mid-install.
    #[test]
    fn an_install_waits_for_a_fork_under_way() {
        if plays("install-waits-for-fork") {
            assert_eq!(WORD.load(Ordering::Acquire), NONE);
            super::fork_prepare();
            let installer = std::thread::spawn(crate::sys::fault::install);
            std::thread::sleep(Duration::from_millis(100));
            let during = WORD.load(Ordering::Acquire);
            super::fork_parent();
            installer.join().unwrap();
            assert_eq!(during, super::FORK_ONE, "the install started during the fork");
            assert_eq!(WORD.load(Ordering::Acquire), INSTALLED);
            return;
        }
        run_alone(
            "sys::fault::sigbus::tests::an_install_waits_for_a_fork_under_way",
            "install-waits-for-fork",
        );
    }

    /// A child of a process that never installed the handler installs it at its first
    /// guarded access: the fork it came from, counted in the copy, is not under way in it.
    #[test]
    fn a_child_installs_although_its_own_fork_was_counted() {
        if plays("child-installs") {
            assert_eq!(WORD.load(Ordering::Acquire), NONE);
            let installed = in_child(|| {
                // SAFETY: alarm only schedules a signal (a hang ends the child).
                unsafe { libc::alarm(5) };
                crate::sys::fault::install();
                WORD.load(Ordering::Acquire) == INSTALLED
            });
            assert!(installed, "the child's install waited for its own fork");
            return;
        }
        run_alone(
            "sys::fault::sigbus::tests::a_child_installs_although_its_own_fork_was_counted",
            "child-installs",
        );
    }

    /// A thread inside the sync layer's gate installs the handler while a fork waits at
    /// the gate: the install goes through, so the thread leaves the gate and the fork goes
    /// on. Were installs held back before the gate (the install's `prepare` run first),
    /// each would wait for the other for ever (the role's alarm ends it).
    #[test]
    fn an_install_inside_the_fork_gate_does_not_wait_for_the_fork() {
        if plays("install-inside-gate") {
            // SAFETY: alarm only schedules a signal (a deadlock ends this process).
            unsafe { libc::alarm(10) };
            let (inside, go) = (mpsc::channel(), mpsc::channel::<()>());
            let gate = std::thread::spawn(move || {
                let gate = crate::sys::sync::fork_gate();
                inside.0.send(()).unwrap();
                go.1.recv().unwrap();
                crate::sys::fault::install();
                drop(gate);
            });
            inside.1.recv().unwrap();
            let forker = std::thread::spawn(|| {
                in_child(|| WORD.load(Ordering::Acquire) & STATE == INSTALLED)
            });
            // The fork is in its handlers now, at the gate.
            std::thread::sleep(Duration::from_millis(100));
            go.0.send(()).unwrap();
            gate.join().unwrap();
            assert!(forker.join().unwrap(), "the child was copied before the install");
            return;
        }
        run_alone(
            "sys::fault::sigbus::tests::an_install_inside_the_fork_gate_does_not_wait_for_the_fork",
            "install-inside-gate",
        );
    }

    /// Review 51: the real install racing `fork`, 3,000 rounds (each puts the state back
    /// to `NONE` and has a thread install while this one forks); a child that sees
    /// `INSTALLING` would wait for ever at its first guarded access. The first version:
    /// 1–2 children in 3,000–20,000.
    #[test]
    fn the_real_install_racing_forks_is_never_copied_half_done() {
        if plays("install-racing-fork") {
            crate::sys::fault::install(); // the dispositions recorded: rounds redo the sigaction
            let (go, stop) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicBool::new(false)));
            let installer = {
                let (go, stop) = (Arc::clone(&go), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut seen = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let now = go.load(Ordering::Acquire);
                        if now != seen {
                            seen = now;
                            crate::sys::fault::install();
                        }
                        std::hint::spin_loop();
                    }
                })
            };
            let mut half_done = 0;
            for round in 1..=3000 {
                WORD.store(NONE, Ordering::Release);
                go.store(round, Ordering::Release);
                half_done +=
                    u32::from(!in_child(|| WORD.load(Ordering::Acquire) & STATE != INSTALLING));
                while WORD.load(Ordering::Acquire) & STATE != INSTALLED {
                    std::hint::spin_loop();
                }
            }
            stop.store(true, Ordering::Relaxed);
            installer.join().unwrap();
            assert_eq!(half_done, 0, "children copied with the install half done");
            return;
        }
        run_alone(
            "sys::fault::sigbus::tests::the_real_install_racing_forks_is_never_copied_half_done",
            "install-racing-fork",
        );
    }
}
