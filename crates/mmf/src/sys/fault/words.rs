//! Copies in and out of mapped memory with relaxed atomic accesses, word by word: the
//! fallback where mmf has no copy routine in assembly.
//!
//! Mapped memory may be changed by other views, other processes or the file's other
//! writers while we copy, and safe code may hold an atomic at the same address. Relaxed
//! atomic loads and stores make every access an atomic one, so no access of the copy races
//! a plain or same-sized atomic access (a volatile access racing an atomic would, by the
//! letter of `read_volatile`'s documentation). Racing atomics of *different* sizes (an
//! `AtomicU32` a user holds inside a word of the copy) are a case the Rust rules do not yet
//! settle (rust-lang/rust#128778). A racing writer can
//! still leave a torn mix of old and new bytes in the copy, which is the documented
//! behaviour of `read_at`/`write_at` (as with `pread` racing `pwrite`). Aligned 8-byte
//! words keep it near `memcpy` speed.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

/// Loads the byte at `p`.
///
/// # Safety
/// `p` is readable for the call.
#[inline]
unsafe fn load_u8(p: *const u8) -> u8 {
    // SAFETY: AtomicU8 has the layout of u8 and any address is aligned for it; the caller
    // vouches that `p` is readable. Atomics only ever touch the memory through atomics.
    unsafe { AtomicU8::from_ptr(p.cast_mut()) }.load(Relaxed)
}

/// Stores `v` at `p`.
///
/// # Safety
/// `p` is writable for the call.
#[inline]
unsafe fn store_u8(p: *mut u8, v: u8) {
    // SAFETY: as in `load_u8`, for writing.
    unsafe { AtomicU8::from_ptr(p) }.store(v, Relaxed)
}

/// Loads the 8-aligned word at `p`.
///
/// # Safety
/// `p` is 8-aligned and readable for 8 bytes.
#[inline]
unsafe fn load_u64(p: *const u64) -> u64 {
    // SAFETY: the caller vouches for alignment and readability.
    unsafe { AtomicU64::from_ptr(p.cast_mut()) }.load(Relaxed)
}

/// Stores the 8-aligned word `v` at `p`.
///
/// # Safety
/// `p` is 8-aligned and writable for 8 bytes.
#[inline]
unsafe fn store_u64(p: *mut u64, v: u64) {
    // SAFETY: the caller vouches for alignment and writability.
    unsafe { AtomicU64::from_ptr(p) }.store(v, Relaxed)
}

const WORD: usize = size_of::<u64>();

/// Copies `dst.len()` bytes from `src` into `dst`.
///
/// # Safety
/// `src..src+dst.len()` must be mapped and readable for the whole call.
#[inline]
pub(crate) unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
    let n = dst.len();
    let head = src.align_offset(WORD).min(n);
    let words = (n - head) / WORD;
    for (i, d) in dst[..head].iter_mut().enumerate() {
        // SAFETY: i < n, inside the range the caller vouches for.
        *d = unsafe { load_u8(src.add(i)) };
    }
    for w in 0..words {
        let at = head + w * WORD;
        // SAFETY: `src + at` is 8-aligned (past the head) and `at + 8 <= n`.
        let v = unsafe { load_u64(src.add(at).cast::<u64>()) };
        dst[at..at + WORD].copy_from_slice(&v.to_ne_bytes());
    }
    for (i, d) in dst.iter_mut().enumerate().skip(head + words * WORD) {
        // SAFETY: i < n.
        *d = unsafe { load_u8(src.add(i)) };
    }
}

/// Copies `src` to `dst..dst+src.len()`.
///
/// # Safety
/// `dst..dst+src.len()` must be mapped and writable for the whole call, and no Rust
/// reference may be live over it.
#[inline]
pub(crate) unsafe fn copy_in(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let head = dst.align_offset(WORD).min(n);
    let words = (n - head) / WORD;
    for (i, &s) in src[..head].iter().enumerate() {
        // SAFETY: i < n, inside the range the caller vouches for.
        unsafe { store_u8(dst.add(i), s) };
    }
    for w in 0..words {
        let at = head + w * WORD;
        let v = u64::from_ne_bytes(src[at..at + WORD].try_into().expect("8 bytes"));
        // SAFETY: `dst + at` is 8-aligned (past the head) and `at + 8 <= n`.
        unsafe { store_u64(dst.add(at).cast::<u64>(), v) };
    }
    for (i, &s) in src.iter().enumerate().skip(head + words * WORD) {
        // SAFETY: i < n.
        unsafe { store_u8(dst.add(i), s) };
    }
}

/// Copies `len` bytes from `src` to `dst`, both mapped memory, in one pass (forward).
///
/// # Safety
/// `src..src+len` must be readable and `dst..dst+len` writable for the whole call, with no
/// Rust reference live over the destination.
pub(crate) unsafe fn copy_across(src: *const u8, dst: *mut u8, len: usize) {
    if src.align_offset(WORD) != dst.align_offset(WORD) {
        // Different alignments: through a small buffer, each side with aligned words.
        let mut buf = [0u8; 4096];
        for at in (0..len).step_by(buf.len()) {
            let n = buf.len().min(len - at);
            // SAFETY: `at + n <= len`, inside both ranges the caller vouches for.
            unsafe {
                copy_out(src.add(at), &mut buf[..n]);
                copy_in(dst.add(at), &buf[..n]);
            }
        }
        return;
    }
    let head = src.align_offset(WORD).min(len);
    let words = (len - head) / WORD;
    let byte = |i: usize| {
        // SAFETY: i < len.
        unsafe { store_u8(dst.add(i), load_u8(src.add(i))) }
    };
    // Head, words, tail: strictly forward.
    (0..head).for_each(byte);
    let (s, d) = (src.wrapping_add(head).cast::<u64>(), dst.wrapping_add(head).cast::<u64>());
    for w in 0..words {
        // SAFETY: both are 8-aligned past the head and `head + (w + 1) * 8 <= len`.
        unsafe { store_u64(d.add(w), load_u64(s.add(w))) };
    }
    (head + words * WORD..len).for_each(byte);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alignment and length combination round-trips exactly.
    #[test]
    fn copies_are_exact_at_every_alignment() {
        let mut mem = [0u64; 8]; // 64 aligned bytes
        let base = mem.as_mut_ptr().cast::<u8>();
        for start in 0..16 {
            for len in 0..40 {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + start + 1) as u8).collect();
                // SAFETY: start + len <= 56 < 64 bytes of `mem`, and no reference is live.
                unsafe { copy_in(base.add(start), &data) };
                let mut out = vec![0; len];
                // SAFETY: as above.
                unsafe { copy_out(base.add(start), &mut out) };
                assert_eq!(out, data, "start {start} len {len}");
            }
        }
    }

    #[test]
    fn direct_copies_are_exact_at_every_alignment_pair() {
        let src: Vec<u8> = (0..5000u32).map(|i| (i * 13 + 7) as u8).collect();
        for (s, d) in [(0, 0), (3, 3), (1, 2), (0, 5), (7, 0)] {
            for len in [0, 1, 7, 8, 9, 63, 4097, 4990] {
                let mut dst = vec![0u8; 5100];
                // SAFETY: s + len <= 5000 and d + len <= 5100; `dst` is not borrowed.
                unsafe { copy_across(src.as_ptr().add(s), dst.as_mut_ptr().add(d), len) };
                assert_eq!(&dst[d..d + len], &src[s..s + len], "{s} {d} {len}");
                assert!(dst[..d].iter().chain(&dst[d + len..]).all(|&b| b == 0));
            }
        }
    }
}
