//! The fault guard: a peer that truncates a file or shared-memory object under a view makes
//! the next access past the new end raise SIGBUS, which kills the process. Inside a guarded
//! copy (`read_at`, `write_at`) the SIGBUS handler instead puts a private zero page over
//! the faulting page (`mmap(MAP_FIXED|MAP_ANONYMOUS)`), notes the fault, and returns: the
//! copy finishes on zeros, and the caller turns the note into `Error::Truncated`. The view
//! stays mapped; the replaced pages no longer show the object, which the error tells the
//! caller to re-map.
//!
//! Every other SIGBUS — outside a guarded copy, or at an address outside the copy's range —
//! goes to the handler that was installed before (or to the default action, which kills
//! the process), exactly as if mmf had installed nothing.
//!
//! The handler is installed once, the first time a guarded copy runs. It makes only
//! async-signal-safe system calls and reads thread-local state that needs no allocation.

use std::cell::Cell;
use std::sync::OnceLock;

/// The ranges of the guarded copy on this thread (start, end), and which of them faulted
/// (bit 0 the first, bit 1 the second).
#[derive(Clone, Copy)]
struct Guard {
    ranges: [(usize, usize); 2],
    faulted: u8,
}

const IDLE: Guard = Guard { ranges: [(0, 0); 2], faulted: 0 };

thread_local! {
    static GUARD: Cell<Guard> = const { Cell::new(IDLE) };
}

/// The SIGBUS action that was in place before ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
static PAGE: OnceLock<usize> = OnceLock::new();

fn install() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        PAGE.get_or_init(super::page_size);
        // SAFETY: sigaction is plain data; zeroed is a valid "no flags, no handler" value.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: only reads the current action into `previous`.
        unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) };
        PREVIOUS.get_or_init(|| previous);
        // SAFETY: as above.
        let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
        ours.sa_sigaction = handler as *const () as libc::sighandler_t;
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        // SAFETY: installs a handler that makes only async-signal-safe calls and defers to
        // `previous` (saved above) for every SIGBUS that is not its own.
        unsafe {
            libc::sigemptyset(&mut ours.sa_mask);
            libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut());
        }
    });
}

/// Runs `copy`, which touches the given ranges (`(start, len)`; a second range of length
/// 0 for none). Returns which ranges had a SIGBUS caught: bit 0 the first, bit 1 the second.
pub(crate) fn guarded(ranges: [(*const u8, usize); 2], copy: impl FnOnce()) -> u8 {
    install();
    let ranges = ranges.map(|(start, len)| (start as usize, start as usize + len));
    let outer = GUARD.replace(Guard { ranges, faulted: 0 });
    copy();
    GUARD.replace(outer).faulted
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let guard = GUARD.with(Cell::get);
    let hit = guard.ranges.iter().position(|&(start, end)| start <= addr && addr < end);
    if let Some(which) = hit {
        let page = PAGE.get().copied().unwrap_or(4096);
        let at = (addr & !(page - 1)) as *mut libc::c_void;
        let flags = libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: replaces one page of the view being copied (the page that no longer has
        // a backing object) with a private zero page; nothing else refers to it but the
        // copy, which then reads or writes zeros instead of faulting again.
        let p = unsafe { libc::mmap(at, page, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        if p != libc::MAP_FAILED {
            GUARD.set(Guard { faulted: guard.faulted | 1 << which, ..guard });
            return;
        }
    }
    // Not ours: behave as if we were not here.
    // SAFETY: sigaction is plain data; zeroed means SIG_DFL with no flags.
    let default: libc::sigaction = unsafe { std::mem::zeroed() };
    let previous = PREVIOUS.get().unwrap_or(&default);
    let action = previous.sa_sigaction;
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // SAFETY: restores the previous disposition; a fault re-executes the instruction
        // and gets it; a signal sent by kill() is raised again so it is not lost.
        unsafe {
            libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut());
            if (*info).si_code <= 0 {
                libc::raise(signal);
            }
        }
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO and has that signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(action) };
        f(signal, info, context);
    } else {
        // SAFETY: a plain handler installed without SA_SIGINFO has this signature.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
        f(signal);
    }
}
