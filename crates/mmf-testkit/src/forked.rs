//! Children made by `fork` without `exec` (Linux): for what a child inherits, which a
//! re-run of the test binary ([`Peer`](crate::Peer)) cannot show.

/// How a forked child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkEnd {
    /// It returned from its function (exit status 0).
    Fine,
    /// Its alarm went off: it waited for ever somewhere.
    Hung,
    /// It panicked (status 1), or ended otherwise.
    Failed,
}

/// Forks; the child runs `child` under an `alarm(alarm_secs)` and leaves with `_exit`
/// (status 0, or 1 if it panicked), never running its parent's destructors. Waits for it
/// and tells how it ended.
pub fn in_forked_child(alarm_secs: u32, child: impl FnOnce()) -> ForkEnd {
    // SAFETY: the child runs `child`, which the caller makes fit for a fork child, then
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: alarm only schedules a signal (a hang ends the child).
        unsafe { libc::alarm(alarm_secs) };
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)) {
            Ok(()) => 0,
            Err(_) => 1,
        };
        // SAFETY: leaves the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
        ForkEnd::Hung
    } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        ForkEnd::Fine
    } else {
        ForkEnd::Failed
    }
}

/// Counts of [`ForkEnd`]s: (fine, hung, failed).
pub fn tally(ends: impl IntoIterator<Item = ForkEnd>) -> (u64, u64, u64) {
    ends.into_iter().fold((0, 0, 0), |(f, h, o), e| match e {
        ForkEnd::Fine => (f + 1, h, o),
        ForkEnd::Hung => (f, h + 1, o),
        ForkEnd::Failed => (f, h, o + 1),
    })
}
