//! Linux: mmf's `fork` handlers, registered when the program is loaded.
//!
//! Three parts of mmf keep process-wide state that a `fork` must not copy half-changed,
//! each with `pthread_atfork` handlers (their modules say what they do):
//! - the named layer's holds (`named/linux/holds.rs`): each hold gets a description of
//!   its own in the child;
//! - the sync layer (`sync/linux.rs`): the fork gate and the slot-lock descriptors; the
//!   child closes them and counts a new fork generation;
//! - the `SIGBUS` handler's installation (`fault/sigbus.rs`): a fork waits for one under
//!   way and keeps new ones from starting until it is done.
//!
//! They used to be registered on first use. glibc runs no `child` handler of a handler
//! registered while another thread is inside `fork`, so a child forked at that moment
//! kept its parent's generation (and with it the parent's sync memberships), and a child
//! forked while another thread ran the `SIGBUS` handler's `Once` waited for ever at its
//! first guarded access. A function in `.init_array` now registers them all before `main`,
//! before the program has threads of its own. (A shared library containing mmf registers
//! them when it is loaded: a program that `dlopen`s it while its other threads fork has
//! the old window once, at the load.) The calls on first use stay (`register`), as no-ops.
//!
//! Order: `prepare` handlers run in the reverse order of registration, `parent` and
//! `child` handlers in that order. So the `SIGBUS` install's are registered first, the
//! holds' next and the sync layer's last: a fork first closes the sync layer's gate
//! (waiting for the threads inside), then locks the holds' registry, then holds installs
//! back (waiting for one under way, which waits only for forks counted before it). No
//! thread inside the gate takes the registry or installs the handler today (only
//! `sync/join.rs` enters it); the order keeps it so if one ever does: held back earlier,
//! an install by a thread inside the gate would wait for the fork, and the fork for that
//! thread (`sigbus_tests.rs` builds that case). mmf-heap registers its
//! own handlers the same way (its `prepare` takes only its list of open heaps, which no
//! thread holds while it waits for anything).

#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER_AT_LOAD: extern "C" fn() = register_at_load;

extern "C" fn register_at_load() {
    register();
}

/// Registers every fork handler of mmf, once (see the module's docs for the order): at
/// load, and again (a no-op) wherever mmf first needs them (a hold, the sync gate, a
/// membership, the SIGBUS handler's install), in case a program's link lost the
/// `.init_array` entry: the one place that registers, so the order holds either way.
pub(crate) fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers handlers that only load and change an atomic and yield.
        unsafe {
            libc::pthread_atfork(Some(install_prepare), Some(install_parent), Some(install_child));
        }
        super::named::register_fork_handlers();
        super::sync::register_fork_handlers();
    });
}

extern "C" fn install_prepare() {
    super::fault::fork_prepare();
}

extern "C" fn install_parent() {
    super::fault::fork_parent();
}

extern "C" fn install_child() {
    super::fault::fork_child();
}

/// Tests of what a fresh process does at a `fork` (mmf's unit tests cannot use
/// mmf-testkit, which would link a second mmf: its guarded routines' symbols collide).
#[cfg(test)]
pub(crate) mod tests {
    use crate::sys::sync::fork_generation;

    const ROLE: &str = "MMF_UNIT_ROLE";

    /// Whether this process plays `role` (see [`run_alone`]).
    pub(crate) fn plays(role: &str) -> bool {
        std::env::var(ROLE).is_ok_and(|r| r == role)
    }

    /// Runs the unit test `test` alone in a new process playing `role`, and panics with its
    /// output unless it passed.
    pub(crate) fn run_alone(test: &str, role: &str) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{test} as {role}: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Forks; the child exits with status 0 if `check()` holds, 1 otherwise (it calls
    /// only what a fork child may: `check` reads atomics). Returns whether it held.
    pub(crate) fn in_child(check: fn() -> bool) -> bool {
        // SAFETY: the child calls `check` and `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(i32::from(!check())) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }

    /// A fresh process that forks before it uses anything of mmf: the child must count a
    /// new fork generation, which only the sync layer's `child` handler does. Registered on
    /// first use (before this file), nothing was registered yet, and the child counted 0.
    #[test]
    fn fork_handlers_are_registered_before_first_use() {
        if plays("fork-at-load") {
            assert_eq!(fork_generation(), 0);
            assert!(in_child(|| fork_generation() == 1), "the child counted no fork");
            return;
        }
        run_alone(
            "sys::fork::tests::fork_handlers_are_registered_before_first_use",
            "fork-at-load",
        );
    }
}
