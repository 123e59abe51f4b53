//! A heap file truncated under an `mmf heap` command (Linux). The heap commands read the
//! file through a mapping: if another process truncates it meanwhile, the next read of a
//! page past its new end faults (`SIGBUS`; so does a page the device fails to read), and
//! the command would die of the signal without a word. They install this handler first:
//! it names the file, says what happened and exits with status 1. Nothing is written, so
//! nothing is left half done. (Windows cannot shrink a file while it is mapped.)
//!
//! mmf's own `SIGBUS` handler (guarded copies; installed later, if at all) passes every
//! fault that is not one of its guarded accesses on to this one.

use std::path::Path;
use std::sync::OnceLock;

/// What the handler writes to stderr, made before it is installed.
static MESSAGE: OnceLock<Vec<u8>> = OnceLock::new();

/// Installs the handler for the rest of the process; `path` is the heap file it names.
#[allow(unsafe_code, reason = "installing a signal handler is a libc call")]
pub fn exit_on_truncation(path: &Path) {
    let _ = MESSAGE.set(
        format!(
            "mmf: {}: a page of the file could not be read: another process truncated it \
             while this command read it (or the device failed); nothing was written: run \
             the command again once no other process is changing the file\n",
            path.display()
        )
        .into_bytes(),
    );
    // SAFETY: a zeroed `sigaction` is a valid value (no flags, empty mask) that is then
    // filled in; `handler` makes only async-signal-safe calls (`write`, `_exit`) and reads
    // a `OnceLock` that was set above, before the handler could run.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

#[allow(unsafe_code, reason = "a signal handler's libc calls")]
extern "C" fn handler(_signal: libc::c_int) {
    if let Some(message) = MESSAGE.get() {
        // SAFETY: `write` on stderr with a live buffer of that length; async-signal-safe.
        unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
    }
    // SAFETY: `_exit` ends the process at once (no destructors, no atexit handlers): what
    // a signal handler may do.
    unsafe { libc::_exit(1) }
}
