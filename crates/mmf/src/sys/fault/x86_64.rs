//! The guarded copy routines on x86-64 (Linux and Windows), and their exception table.
//!
//! Two leaf routines in assembly, opaque to the compiler (so the copies are not data races
//! in Rust's memory model whatever a peer does to the bytes: an `asm` block is an external
//! operation the model does not see into, like a system call that reads or writes the
//! memory — see the unsafe-code-guidelines discussion of inline assembly and of volatile
//! accesses racing atomics, rust-lang/unsafe-code-guidelines#152 and #321):
//!
//! - `copy(dst, src, len)`: `rep movsb` (fast-strings microcode: `memcpy` speed for large
//!   copies on every x86-64 made since Ivy Bridge / Zen);
//! - `load8(src, out)`: one unaligned 8-byte load.
//!
//! Nothing is stored or armed per call. The platform's fault handler asks [`claims`]
//! whether the faulting instruction is one of the two accesses; if so it sets the result
//! registers (`rax` = the faulting address, `rdx` = the platform's fault code) and resumes
//! at [`FIXUP`], a `ret`, so the routine returns the fault instead of the process dying.
//! This is the Linux kernel's exception table for `copy_from_user`, in user space.
//!
//! Both routines use the System V calling convention on every OS (`extern "sysv64"`), so
//! one body serves Linux and Windows; the direction flag is clear on entry under both ABIs,
//! which `rep movsb` needs.

use super::{Cause, Fault};

// The routines. Symbols are versioned so that two versions of mmf in one program do not
// clash; on ELF they are hidden, so a shared library does not export them.
#[cfg(target_os = "linux")]
macro_rules! hidden {
    () => {
        concat!(
            ".hidden __mmf_guard_v1_copy\n",
            ".hidden __mmf_guard_v1_copy_at\n",
            ".hidden __mmf_guard_v1_load8\n",
            ".hidden __mmf_guard_v1_load8_at\n",
            ".hidden __mmf_guard_v1_fixup",
        )
    };
}
#[cfg(not(target_os = "linux"))]
macro_rules! hidden {
    () => {
        ""
    };
}

std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl __mmf_guard_v1_copy",
    ".globl __mmf_guard_v1_copy_at",
    ".globl __mmf_guard_v1_load8",
    ".globl __mmf_guard_v1_load8_at",
    ".globl __mmf_guard_v1_fixup",
    hidden!(),
    "__mmf_guard_v1_copy:",
    "    mov rcx, rdx",
    "__mmf_guard_v1_copy_at:",
    "    rep movsb",
    "    xor eax, eax",
    "    xor edx, edx",
    "    ret",
    ".p2align 4",
    "__mmf_guard_v1_load8:",
    "__mmf_guard_v1_load8_at:",
    "    mov rax, qword ptr [rdi]",
    "    mov qword ptr [rsi], rax",
    "    xor eax, eax",
    "    xor edx, edx",
    "    ret",
    "__mmf_guard_v1_fixup:",
    "    ret",
);

/// What a routine returns: `addr == 0` when it completed; else the fault (set by the
/// handler). Returned in `rax:rdx` under the System V convention.
#[repr(C)]
struct Outcome {
    addr: usize,
    code: usize,
}

unsafe extern "sysv64" {
    fn __mmf_guard_v1_copy(dst: *mut u8, src: *const u8, len: usize) -> Outcome;
    fn __mmf_guard_v1_load8(src: *const u8, out: *mut u64) -> Outcome;
    static __mmf_guard_v1_copy_at: u8;
    static __mmf_guard_v1_load8_at: u8;
    static __mmf_guard_v1_fixup: u8;
}

fn outcome(o: Outcome) -> Result<(), Fault> {
    if o.addr == 0 {
        return Ok(());
    }
    let cause = match o.code {
        CODE_NO_SPACE => Cause::NoSpace,
        CODE_IO => Cause::Io,
        _ => Cause::Unknown,
    };
    Err(Fault { addr: o.addr, cause })
}

/// What a handler puts in `rdx` for the cause it knows.
pub(super) const CODE_UNKNOWN: usize = 0;
pub(super) const CODE_NO_SPACE: usize = 1;
pub(super) const CODE_IO: usize = 2;

/// Copies `len` bytes from `src` to `dst` (forward, one pass).
///
/// # Safety
/// `src..src+len` must be mapped readable and `dst..dst+len` mapped writable (faults of a
/// truncated or failing backing object are caught), with no Rust reference live over the
/// destination.
#[inline]
pub(crate) unsafe fn copy(dst: *mut u8, src: *const u8, len: usize) -> Result<(), Fault> {
    // SAFETY: the routine reads `src..src+len` and writes `dst..dst+len`, which the caller
    // vouches for; a fault there resumes at the fixup with the fault in rax:rdx.
    outcome(unsafe { __mmf_guard_v1_copy(dst, src, len) })
}

/// Loads 8 bytes at `src` (any alignment), as the machine orders them.
///
/// # Safety
/// `src..src+8` must be mapped readable (faults as for [`copy`]).
#[inline]
pub(crate) unsafe fn load8(src: *const u8) -> Result<[u8; 8], Fault> {
    let mut word = 0u64;
    // SAFETY: reads 8 bytes at `src` (the caller vouches for them) into a local.
    outcome(unsafe { __mmf_guard_v1_load8(src, &mut word) })?;
    Ok(word.to_ne_bytes())
}

/// Whether the faulting instruction at `ip` is one of the guarded accesses.
#[inline]
pub(super) fn claims(ip: usize) -> bool {
    // Only the addresses of the routine labels are taken (safe), never their bytes read.
    let (copy_at, load_at) =
        (&raw const __mmf_guard_v1_copy_at as usize, &raw const __mmf_guard_v1_load8_at as usize);
    ip == copy_at || ip == load_at
}

/// Where a claimed fault resumes: a `ret` that returns the registers the handler set.
#[inline]
pub(super) fn fixup() -> usize {
    &raw const __mmf_guard_v1_fixup as usize
}
