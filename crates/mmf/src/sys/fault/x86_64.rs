//! The guarded copy routines on x86-64 (Linux and Windows), and their exception table.
//!
//! Leaf routines in assembly, opaque to the compiler (so the copies are not data races
//! in Rust's memory model whatever a peer does to the bytes: an `asm` block is an external
//! operation the model does not see into, like a system call that reads or writes the
//! memory — see the unsafe-code-guidelines discussion of inline assembly and of volatile
//! accesses racing atomics, rust-lang/unsafe-code-guidelines#152 and #321):
//!
//! - `copy(dst, src, len)`: `rep movsb` (fast-strings microcode: `memcpy` speed for large
//!   copies on every x86-64 made since Ivy Bridge / Zen);
//! - `copy_small(dst, src, len)` for `len <= 64`: overlapping pairs of words or of 16-byte
//!   vectors (below 8 bytes `rep movsb`), without `rep movsb`'s start-up;
//! - `load8(src)`: one unaligned 8-byte load, its value returned in a register.
//!
//! Nothing is stored or armed per call. The platform's fault handler asks [`claims`]
//! whether the faulting instruction is one of the guarded accesses; if so it sets the result
//! registers (`rax` = the faulting address, `rdx` = the platform's fault code, with
//! [`LOAD_FAULTED`] set so that a load can tell it from a value) and resumes
//! at [`FIXUP`], a `ret`, so the routine returns the fault instead of the process dying.
//! This is the Linux kernel's exception table for `copy_from_user`, in user space.
//!
//! All routines use the System V calling convention on every OS (`extern "sysv64"`), so
//! one body serves Linux and Windows; the direction flag is clear on entry under both ABIs,
//! which `rep movsb` needs.

use super::{Cause, Fault, Guarded};

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
#[cfg(target_os = "linux")]
macro_rules! hidden_nt {
    () => {
        concat!(
            ".hidden __mmf_guard_v1_copy_nt\n",
            ".hidden __mmf_guard_v1_copy_nt_begin\n",
            ".hidden __mmf_guard_v1_copy_nt_end\n",
            ".hidden __mmf_guard_v1_copy_small\n",
            ".hidden __mmf_guard_v1_copy_small_begin\n",
            ".hidden __mmf_guard_v1_copy_small_end",
        )
    };
}
#[cfg(not(target_os = "linux"))]
macro_rules! hidden_nt {
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
    hidden_nt!(),
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
    "    xor edx, edx",
    "    ret",
    // The streaming copy: 64 bytes at a time, non-temporal stores to a 16-byte aligned
    // destination (the head goes by rep movsb), the tail by rep movsb, then sfence. Every
    // instruction from `_nt_begin` to `_nt_end` may fault and is claimed.
    ".p2align 4",
    ".globl __mmf_guard_v1_copy_nt",
    ".globl __mmf_guard_v1_copy_nt_begin",
    ".globl __mmf_guard_v1_copy_nt_end",
    "__mmf_guard_v1_copy_nt:",
    "__mmf_guard_v1_copy_nt_begin:",
    "    mov rcx, rdi",
    "    neg rcx",
    "    and rcx, 15",
    "    sub rdx, rcx",
    "    rep movsb",
    "2:",
    "    cmp rdx, 64",
    "    jb 3f",
    "    movdqu xmm0, xmmword ptr [rsi]",
    "    movdqu xmm1, xmmword ptr [rsi + 16]",
    "    movdqu xmm2, xmmword ptr [rsi + 32]",
    "    movdqu xmm3, xmmword ptr [rsi + 48]",
    "    movntdq xmmword ptr [rdi], xmm0",
    "    movntdq xmmword ptr [rdi + 16], xmm1",
    "    movntdq xmmword ptr [rdi + 32], xmm2",
    "    movntdq xmmword ptr [rdi + 48], xmm3",
    "    add rsi, 64",
    "    add rdi, 64",
    "    sub rdx, 64",
    "    jmp 2b",
    "3:",
    "    mov rcx, rdx",
    "    rep movsb",
    "__mmf_guard_v1_copy_nt_end:",
    "    sfence",
    "    xor eax, eax",
    "    xor edx, edx",
    "    ret",
    // The small copy (`len <= SMALL`): plain moves, no microcode start-up — two overlapping
    // words or 16-byte vectors cover any length from 8 to 64 (the bytes in the overlap
    // are read and written twice, with the same values), all loads before the stores;
    // below 8 bytes, rep movsb. Every instruction from `_small_begin` to `_small_end` may
    // fault and is claimed (the routine uses no stack, so the fixup's `ret` returns from it).
    ".p2align 4",
    ".globl __mmf_guard_v1_copy_small",
    ".globl __mmf_guard_v1_copy_small_begin",
    ".globl __mmf_guard_v1_copy_small_end",
    "__mmf_guard_v1_copy_small:",
    "__mmf_guard_v1_copy_small_begin:",
    "    cmp rdx, 32",
    "    ja 5f",
    "    cmp rdx, 16",
    "    jae 4f",
    "    cmp rdx, 8",
    "    jae 3f",
    "    mov rcx, rdx",
    "    rep movsb",
    "    jmp 9f",
    "3:",
    "    mov rcx, qword ptr [rsi]",
    "    mov r8, qword ptr [rsi + rdx - 8]",
    "    mov qword ptr [rdi], rcx",
    "    mov qword ptr [rdi + rdx - 8], r8",
    "    jmp 9f",
    "4:",
    "    movdqu xmm0, xmmword ptr [rsi]",
    "    movdqu xmm1, xmmword ptr [rsi + rdx - 16]",
    "    movdqu xmmword ptr [rdi], xmm0",
    "    movdqu xmmword ptr [rdi + rdx - 16], xmm1",
    "    jmp 9f",
    "5:",
    "    movdqu xmm0, xmmword ptr [rsi]",
    "    movdqu xmm1, xmmword ptr [rsi + 16]",
    "    movdqu xmm2, xmmword ptr [rsi + rdx - 32]",
    "    movdqu xmm3, xmmword ptr [rsi + rdx - 16]",
    "    movdqu xmmword ptr [rdi], xmm0",
    "    movdqu xmmword ptr [rdi + 16], xmm1",
    "    movdqu xmmword ptr [rdi + rdx - 32], xmm2",
    "    movdqu xmmword ptr [rdi + rdx - 16], xmm3",
    "9:",
    "__mmf_guard_v1_copy_small_end:",
    "    xor eax, eax",
    "    xor edx, edx",
    "    ret",
    "__mmf_guard_v1_fixup:",
    "    sfence",
    "    ret",
);

/// What the load returns in `rax:rdx`: the value and 0, or (set by the handler) the fault
/// address and the cause code with bit 8 set.
#[repr(C)]
struct Loaded {
    value: u64,
    fault: usize,
}

/// Marks a load's `rdx` as faulted (the cause code alone may be 0).
pub(super) const LOAD_FAULTED: usize = 0x100;

/// What a routine returns: `addr == 0` when it completed; else the fault (set by the
/// handler). Returned in `rax:rdx` under the System V convention.
#[repr(C)]
struct Outcome {
    addr: usize,
    code: usize,
}

unsafe extern "sysv64" {
    fn __mmf_guard_v1_copy(dst: *mut u8, src: *const u8, len: usize) -> Outcome;
    fn __mmf_guard_v1_load8(src: *const u8) -> Loaded;
    fn __mmf_guard_v1_copy_nt(dst: *mut u8, src: *const u8, len: usize) -> Outcome;
    fn __mmf_guard_v1_copy_small(dst: *mut u8, src: *const u8, len: usize) -> Outcome;
    static __mmf_guard_v1_copy_small_begin: u8;
    static __mmf_guard_v1_copy_small_end: u8;
    static __mmf_guard_v1_copy_nt_begin: u8;
    static __mmf_guard_v1_copy_nt_end: u8;
    static __mmf_guard_v1_copy_at: u8;
    static __mmf_guard_v1_load8_at: u8;
    static __mmf_guard_v1_fixup: u8;
}

#[inline(always)]
fn outcome(o: Outcome) -> Result<(), Fault> {
    if o.addr == 0 { Ok(()) } else { Err(fault_of(o.addr, o.code & !LOAD_FAULTED)) }
}

#[cold]
fn fault_of(addr: usize, code: usize) -> Fault {
    let cause = match code {
        CODE_NO_SPACE => Cause::NoSpace,
        CODE_IO => Cause::Io,
        _ => Cause::Unknown,
    };
    Fault { addr, cause }
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
unsafe fn copy_plain(dst: *mut u8, src: *const u8, len: usize) -> Result<(), Fault> {
    if len <= SMALL {
        // SAFETY: as below; the routine clobbers only caller-saved registers (rcx, r8,
        // xmm0-3 under System V).
        return outcome(unsafe { __mmf_guard_v1_copy_small(dst, src, len) });
    }
    // SAFETY: the routine reads `src..src+len` and writes `dst..dst+len`, which the caller
    // vouches for; a fault there resumes at the fixup with the fault in rax:rdx.
    outcome(unsafe { __mmf_guard_v1_copy(dst, src, len) })
}

/// Copies of at most this many bytes take the small routine's plain moves: `rep movsb`'s
/// microcode start-up costs more than the copy there (a channel's 64-byte message).
pub(crate) const SMALL: usize = 64;

/// Copies of at least this many bytes between views stream past the caches
/// ([`copy_streaming`]), as `memcpy` does for large copies.
pub(crate) const STREAMING: usize = 256 * 1024;

/// [`copy_plain`] with non-temporal stores: for large copies whose destination is not read
/// again at once (into a mapping), at the speed of `memcpy`'s streaming path.
///
/// # Safety
/// As [`copy_plain`].
#[inline]
unsafe fn copy_streaming(dst: *mut u8, src: *const u8, len: usize) -> Result<(), Fault> {
    debug_assert!(len >= 16);
    // SAFETY: as in `copy`; the routine clobbers only caller-saved registers (xmm0-3 are
    // caller-saved under System V).
    outcome(unsafe { __mmf_guard_v1_copy_nt(dst, src, len) })
}

/// Loads 8 bytes at `src` (any alignment), as the machine orders them.
///
/// # Safety
/// `src..src+8` must be mapped readable (faults as for [`copy`]).
#[inline]
unsafe fn load_word(src: *const u8) -> Result<[u8; 8], Fault> {
    // SAFETY: reads 8 bytes at `src` (the caller vouches for them); the value comes back in
    // a register, nothing is stored.
    let loaded = unsafe { __mmf_guard_v1_load8(src) };
    if loaded.fault == 0 {
        return Ok(loaded.value.to_ne_bytes());
    }
    Err(fault_of(loaded.value as usize, loaded.fault & !LOAD_FAULTED))
}

/// Whether the faulting instruction at `ip` is one of the guarded accesses.
#[inline]
pub(super) fn claims(ip: usize) -> bool {
    // Only the addresses of the routine labels are taken (safe), never their bytes read.
    let (copy_at, load_at) =
        (&raw const __mmf_guard_v1_copy_at as usize, &raw const __mmf_guard_v1_load8_at as usize);
    let (nt_begin, nt_end) = (
        &raw const __mmf_guard_v1_copy_nt_begin as usize,
        &raw const __mmf_guard_v1_copy_nt_end as usize,
    );
    let (small_begin, small_end) = (
        &raw const __mmf_guard_v1_copy_small_begin as usize,
        &raw const __mmf_guard_v1_copy_small_end as usize,
    );
    ip == copy_at
        || ip == load_at
        || (nt_begin..nt_end).contains(&ip)
        || (small_begin..small_end).contains(&ip)
}

/// Where a claimed fault resumes: a `ret` that returns the registers the handler set.
#[inline]
pub(super) fn fixup() -> usize {
    &raw const __mmf_guard_v1_fixup as usize
}

// The contract's entry points (`sys::fault`), for Linux and Windows alike; the ranges
// are the fallback guard's, which the exception table does not need.

/// Copies `len` bytes from `src` to `dst`.
///
/// # Safety
/// As [`copy_plain`]; the platform's handler is installed (`install`).
#[inline]
pub(crate) unsafe fn copy(
    dst: *mut u8,
    src: *const u8,
    len: usize,
    _ranges: [Option<Guarded<'_>>; 2],
) -> Result<(), Fault> {
    // SAFETY: the caller's promise.
    unsafe { copy_plain(dst, src, len) }
}

/// Copies `len` bytes from `src` into a view at `dst`: large copies stream past the
/// caches, as `memcpy` does (nobody reads a mapping's bytes back at once).
///
/// # Safety
/// As [`copy`].
#[inline]
pub(crate) unsafe fn copy_into_view(
    dst: *mut u8,
    src: *const u8,
    len: usize,
    _ranges: [Option<Guarded<'_>>; 2],
) -> Result<(), Fault> {
    // SAFETY: the caller's promise.
    unsafe {
        if len >= STREAMING { copy_streaming(dst, src, len) } else { copy_plain(dst, src, len) }
    }
}

/// Loads 8 bytes at `src`.
///
/// # Safety
/// As [`load_word`]; the platform's handler is installed (`install`).
#[inline]
pub(crate) unsafe fn load8(src: *const u8, _range: Guarded<'_>) -> Result<[u8; 8], Fault> {
    // SAFETY: the caller's promise.
    unsafe { load_word(src) }
}
