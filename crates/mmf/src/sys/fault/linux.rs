//! Linux x86-64: the `SIGBUS` handler of the exception table (`x86_64.rs`).
//!
//! A truncated file or shared-memory object, a page that cannot be allocated (full tmpfs,
//! sparse file on a full disk) and a failing device all raise `SIGBUS` at the access. If the
//! faulting instruction is one of the guarded accesses, the handler makes the routine
//! return the fault; otherwise the signal goes to the disposition that was in place when
//! mmf installed its handler (Rust's std has one for stack overflows), and mmf's handler
//! stays installed — a `kill -BUS` (or a previous handler that resets the disposition)
//! never leaves later copies unguarded. A real fault that is not mmf's still kills the
//! process as it would without mmf.
//!
//! The handler makes only async-signal-safe calls (`sigaction`, `raise`) and reads only
//! data written before it was installed.

use std::sync::OnceLock;

use super::x86_64::{self, CODE_IO, CODE_UNKNOWN};

/// The `SIGBUS` disposition in place before mmf's, and mmf's own.
static ACTIONS: OnceLock<(libc::sigaction, libc::sigaction)> = OnceLock::new();

/// Installs the handler, once per process.
pub(crate) fn install() {
    ACTIONS.get_or_init(|| {
        // SAFETY: sigaction is plain data; zeroed is "no flags, no handler".
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: only reads the current action into `previous`.
        unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) };
        // SAFETY: as above.
        let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
        ours.sa_sigaction = handler as *const () as libc::sighandler_t;
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        // SAFETY: installs a handler that makes only async-signal-safe calls and defers to
        // `previous` for every SIGBUS that is not a guarded access's.
        unsafe {
            libc::sigemptyset(&mut ours.sa_mask);
            libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut());
        }
        (previous, ours)
    });
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if code > 0 {
        // SAFETY: as above; the context is this thread's, to be resumed after we return.
        let gregs = unsafe { &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
        if x86_64::claims(gregs[libc::REG_RIP as usize] as usize) {
            let cause = match code {
                libc::BUS_MCEERR_AR | libc::BUS_MCEERR_AO => CODE_IO,
                _ => CODE_UNKNOWN,
            };
            gregs[libc::REG_RAX as usize] = addr.max(1) as i64;
            gregs[libc::REG_RDX as usize] = (cause | x86_64::LOAD_FAULTED) as i64;
            gregs[libc::REG_RIP as usize] = x86_64::fixup() as i64;
            return;
        }
    }
    forward(signal, info, context, code > 0);
}

/// A SIGBUS that is not a guarded access's: what the previous disposition does with it.
fn forward(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
    fault: bool,
) {
    let Some((previous, ours)) = ACTIONS.get() else { return };
    let action = previous.sa_sigaction;
    if action == libc::SIG_IGN && !fault {
        return; // an ignored kill(): ignore it
    }
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // SAFETY: sigaction is plain data; zeroed means SIG_DFL with no flags.
        let default: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: the default disposition: a fault re-executes the instruction and kills
        // the process, as it would have without mmf; a kill() is raised again to do so.
        unsafe {
            libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
            if !fault {
                libc::raise(signal);
            }
        }
        return;
    }
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
    if !fault {
        // The process lives on (the previous handler returned from a kill()): whatever it
        // did to the disposition (std's resets it to the default), mmf's guard stays.
        // SAFETY: reinstalls the handler installed once by `install`.
        unsafe { libc::sigaction(libc::SIGBUS, ours, std::ptr::null_mut()) };
    }
}
