//! Linux x86-64: the `SIGBUS` handler of the exception table (`x86_64.rs`).
//!
//! A truncated file or shared-memory object, a page that cannot be allocated (full tmpfs,
//! sparse file on a full disk) and a failing device all raise `SIGBUS` at the access. If the
//! faulting instruction is one of the guarded accesses, the handler makes the routine
//! return the fault; otherwise the signal goes to the disposition that was in place when
//! mmf installed its handler (Rust's std has one for stack overflows), and mmf's handler
//! stays installed — a `kill -BUS` (or a previous handler that resets the disposition)
//! never leaves later copies unguarded; a `kill -BUS` is not passed to std's handler at all
//! (`sigbus.rs` says why). A real fault that is not mmf's still kills the process as it
//! would without mmf.
//!
//! A fault of any other instruction inside a region of mmf's own shared structures (a
//! channel's ring, `zero_fill.rs`) gets a zero page over the lost page instead.
//!
//! The handler makes only async-signal-safe calls (`sigaction`, `raise`, `_exit`, and
//! `mmap` for a zero page) and reads only data recorded before it was installed or atomics.

use super::x86_64::{self, CODE_IO, CODE_UNKNOWN};
use super::{sigbus, zero_fill};

/// Installs the handler, once per process.
pub(crate) fn install() {
    sigbus::install(handler);
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // Faults of the access itself: past the end of the object (BUS_ADRERR), the object's
    // own error (BUS_OBJERR), a hardware memory error at the access (BUS_MCEERR_AR) — not
    // BUS_MCEERR_AO, an asynchronous notice about some page of the process.
    let access_fault = matches!(code, libc::BUS_ADRERR | libc::BUS_OBJERR | libc::BUS_MCEERR_AR);
    if access_fault {
        // SAFETY: as above; the context is this thread's, to be resumed after we return.
        let gregs = unsafe { &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
        if x86_64::claims(gregs[libc::REG_RIP as usize] as usize) {
            let cause = match code {
                libc::BUS_MCEERR_AR => CODE_IO,
                _ => CODE_UNKNOWN,
            };
            gregs[libc::REG_RAX as usize] = addr.max(1) as i64;
            gregs[libc::REG_RDX as usize] = (cause | x86_64::LOAD_FAULTED) as i64;
            gregs[libc::REG_RIP as usize] = x86_64::fixup() as i64;
            return;
        }
        // A plain atomic of one of mmf's shared structures (a channel's ring): a zero page
        // over the lost page, and the structure's flag raised.
        if code == libc::BUS_ADRERR && zero_fill::repair(addr) {
            return;
        }
    }
    // A fault of an access, not a kill() (code <= 0) nor the asynchronous notice.
    sigbus::forward(signal, info, context, code > 0 && code != libc::BUS_MCEERR_AO);
}
