//! Linux: mmf's `fork` handlers, registered when the program is loaded.
//!
//! Three parts of mmf keep process-wide state that a `fork` must not copy half-changed,
//! each with `pthread_atfork` handlers (their modules say what they do):
//! - the named layer's holds (`named/linux/holds.rs`): each hold gets a description of
//!   its own in the child;
//! - the sync layer (`sync/linux.rs`): the fork gate and the slot-lock descriptors; the
//!   child closes them and counts a new fork generation;
//! - the `SIGBUS` handler's installation (`fault/sigbus.rs`): a fork waits for one under way.
//!
//! They used to be registered on first use. glibc runs no `child` handler of a handler
//! registered while another thread is inside `fork`, so a child forked at that moment
//! kept its parent's generation (and with it the parent's sync memberships), and a child
//! forked while another thread ran the `SIGBUS` handler's `Once` waited for ever at its
//! first guarded access. A function in `.init_array` now registers them all before `main`
//! (or when a shared library containing mmf is loaded), before any thread of the program
//! exists; the calls on first use stay, as no-ops.
//!
//! Order: `prepare` handlers run in the reverse order of registration, `parent` and
//! `child` handlers in that order. The holds are registered first, so a fork closes the
//! sync layer's gate (waiting for threads inside it, which may create holds) before it
//! locks the holds' registry, and waits for a `SIGBUS` install last (it waits for nothing).
//! mmf-heap registers its own handlers the same way.

#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER_AT_LOAD: extern "C" fn() = register_at_load;

/// Registers every fork handler of mmf (see the module's docs for the order).
extern "C" fn register_at_load() {
    super::named::register_fork_handlers();
    super::sync::register_fork_handlers();
    // SAFETY: registers a `prepare` handler that only loads an atomic and yields.
    unsafe { libc::pthread_atfork(Some(wait_for_install), None, None) };
}

extern "C" fn wait_for_install() {
    super::fault::wait_for_install();
}

#[cfg(test)]
mod tests {
    /// A fresh process that forks before it uses anything of mmf: the child must count a
    /// new fork generation, which only the sync layer's `child` handler does. Registered on
    /// first use (before `sys/fork.rs`), nothing was registered yet, and the child counted 0.
    #[test]
    fn fork_handlers_are_registered_before_first_use() {
        const ROLE: &str = "MMF_TEST_FORK_AT_LOAD";
        if std::env::var_os(ROLE).is_some() {
            assert_eq!(crate::sys::sync::fork_generation(), 0);
            // SAFETY: the child calls only async-signal-safe functions and `_exit`s.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
            if pid == 0 {
                let code = if crate::sys::sync::fork_generation() == 1 { 0 } else { 1 };
                // SAFETY: ends the child without running the parent's exit handlers.
                unsafe { libc::_exit(code) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFEXITED(status), "status {status:#x}");
            assert_eq!(libc::WEXITSTATUS(status), 0, "the child counted no fork");
            return;
        }
        // A new process of this test alone: the test binary's other tests (run in threads
        // of this one) may have used mmf already.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sys::fork::tests::fork_handlers_are_registered_before_first_use"])
            .args(["--nocapture", "--test-threads=1"])
            .env(ROLE, "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"), "the role ran");
    }
}
