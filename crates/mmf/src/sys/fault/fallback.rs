//! The fault guard where mmf has no guarded routines in assembly (Linux on other than
//! x86-64): copies register their ranges, and a fault is caught by range.
//!
//! A peer that truncates a file or shared-memory object under a view makes
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
use std::sync::atomic::{AtomicBool, Ordering, compiler_fence};

use super::{Cause, Fault, Guarded};
use super::{sigbus, words, zero_fill};

// The guarded copy on this thread: up to two ranges `[start, end)` (an empty range has
// `end == 0`), and which of them faulted (bit 0 the first, bit 1 the second). Separate
// cells, written as little as possible: a random 8-byte `read_at` is dominated by a cache
// miss, and every extra store here costs memory-level parallelism.
// Each range also names its view's `broken` flag, which the handler raises first, so that
// other threads copying through the same view see the breakage too.
thread_local! {
    static FIRST: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    static SECOND: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    static FLAGS: Cell<[*const AtomicBool; 2]> = const { Cell::new([std::ptr::null(); 2]) };
    static FAULTED: Cell<u8> = const { Cell::new(0) };
    static FAULT_AT: Cell<usize> = const { Cell::new(0) };
}

static PAGE: OnceLock<usize> = OnceLock::new();

#[inline]
pub(crate) fn install() {
    PAGE.get_or_init(crate::sys::pal::page_size);
    sigbus::install(handler);
}

/// Copies `len` bytes from `src` to `dst` under the guard of `ranges`.
///
/// # Safety
/// `src..src+len` readable and `dst..dst+len` writable for the whole call, no Rust
/// reference live over the destination; `ranges` are the views' ranges the copy touches.
pub(crate) unsafe fn copy(
    dst: *mut u8,
    src: *const u8,
    len: usize,
    ranges: [Option<Guarded<'_>>; 2],
) -> Result<(), Fault> {
    let (first, second) = match ranges {
        [Some(a), b] => (a, b),
        [None, Some(b)] => (b, None),
        [None, None] => unreachable!("a guarded copy touches a view"),
    };
    // SAFETY: the caller's promise.
    guarded(first, second, || unsafe { words::copy_across(src, dst, len) })
}

/// As [`copy`]: the fallback has one way of copying.
///
/// # Safety
/// As [`copy`].
pub(crate) unsafe fn copy_into_view(
    dst: *mut u8,
    src: *const u8,
    len: usize,
    ranges: [Option<Guarded<'_>>; 2],
) -> Result<(), Fault> {
    // SAFETY: the caller's promise.
    unsafe { copy(dst, src, len, ranges) }
}

/// Loads 8 bytes at `src` under the guard of `range`.
///
/// # Safety
/// `src..src+8` readable for the whole call.
pub(crate) unsafe fn load8(src: *const u8, range: Guarded<'_>) -> Result<[u8; 8], Fault> {
    let mut out = [0u8; 8];
    // SAFETY: the caller's promise.
    guarded(range, None, || unsafe { words::copy_out(src, &mut out) })?;
    Ok(out)
}

/// Runs `copy`, which touches `first` (and `second`, if given), and returns the fault if a
/// SIGBUS was caught in either range. Copies do not nest.
#[inline]
fn guarded(
    first: Guarded<'_>,
    second: Option<Guarded<'_>>,
    copy: impl FnOnce(),
) -> Result<(), Fault> {
    install();
    let span = |g: &Guarded<'_>| (g.start as usize, g.start as usize + g.len);
    FIRST.set(span(&first));
    if let Some(second) = &second {
        SECOND.set(span(second));
        FLAGS.set([first.broken, second.broken]);
    } else {
        FLAGS.set([first.broken, std::ptr::null()]);
    }
    // The copy's accesses stay between arming and disarming the guard.
    compiler_fence(Ordering::SeqCst);
    copy();
    compiler_fence(Ordering::SeqCst);
    FIRST.set((0, 0));
    if second.is_some() {
        SECOND.set((0, 0));
    }
    if FAULTED.get() != 0 && FAULTED.replace(0) != 0 {
        return Err(Fault { addr: FAULT_AT.get().max(1), cause: Cause::Unknown });
    }
    Ok(())
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    let inside = |(start, end): (usize, usize)| start <= addr && addr < end;
    // Only a real access fault (not a kill()) at an address of the copy is ours.
    let hit = if code != libc::BUS_ADRERR {
        None
    } else if inside(FIRST.get()) {
        Some(0)
    } else if inside(SECOND.get()) {
        Some(1)
    } else {
        None
    };
    if let Some(which) = hit {
        let page = PAGE.get().copied().unwrap_or(4096);
        let at = (addr & !(page - 1)) as *mut libc::c_void;
        let flags = libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        let broken = FLAGS.get()[which];
        if !broken.is_null() {
            // SAFETY: the flag belongs to a view borrowed for the whole guarded copy.
            unsafe { (*broken).store(true, Ordering::SeqCst) };
        }
        // SAFETY: replaces one page of the view being copied (the page that no longer has
        // a backing object) with a private zero page. The copy then reads or writes zeros
        // instead of faulting again; the view's flag, raised above, makes every copy through
        // it (on any thread) report the breakage instead of trusting those zeros.
        let p = unsafe { libc::mmap(at, page, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        if p != libc::MAP_FAILED {
            FAULT_AT.set(addr);
            FAULTED.set(FAULTED.get() | 1 << which);
            return;
        }
    }
    // A plain atomic of one of mmf's shared structures (a channel's ring).
    if code == libc::BUS_ADRERR && hit.is_none() && zero_fill::repair(addr) {
        return;
    }
    // Not ours: what the disposition before mmf's does with it.
    sigbus::forward(signal, info, context, code > 0 && code != libc::BUS_MCEERR_AO);
}
