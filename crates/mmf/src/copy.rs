//! Copies in and out of mapped memory with volatile accesses.
//!
//! Mapped memory may be changed by other views, other processes or the file's other
//! writers while we copy. Volatile loads and stores tell the compiler that: it may not
//! assume the bytes are stable, merge or elide accesses, or invent reads. A racing writer
//! can still leave a torn mix of old and new bytes in the copy, which is the documented
//! behaviour of `read_at`/`write_at` (as with `pread` racing `pwrite`). Aligned 8-byte
//! accesses keep it near `memcpy` speed.

use std::ptr;

const WORD: usize = size_of::<u64>();

/// Copies `dst.len()` bytes from `src` into `dst`.
///
/// # Safety
/// `src..src+dst.len()` must be mapped and readable for the whole call.
pub(crate) unsafe fn read_volatile(src: *const u8, dst: &mut [u8]) {
    let n = dst.len();
    let head = src.align_offset(WORD).min(n);
    let words = (n - head) / WORD;
    for (i, d) in dst[..head].iter_mut().enumerate() {
        // SAFETY: i < n, inside the range the caller vouches for.
        *d = unsafe { ptr::read_volatile(src.add(i)) };
    }
    for w in 0..words {
        let at = head + w * WORD;
        // SAFETY: `src + at` is 8-aligned (past the head) and `at + 8 <= n`.
        let v = unsafe { ptr::read_volatile(src.add(at).cast::<u64>()) };
        dst[at..at + WORD].copy_from_slice(&v.to_ne_bytes());
    }
    for (i, d) in dst.iter_mut().enumerate().skip(head + words * WORD) {
        // SAFETY: i < n.
        *d = unsafe { ptr::read_volatile(src.add(i)) };
    }
}

/// Copies `src` to `dst..dst+src.len()`.
///
/// # Safety
/// `dst..dst+src.len()` must be mapped and writable for the whole call, and no Rust
/// reference may be live over it.
pub(crate) unsafe fn write_volatile(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let head = dst.align_offset(WORD).min(n);
    let words = (n - head) / WORD;
    for (i, &s) in src[..head].iter().enumerate() {
        // SAFETY: i < n, inside the range the caller vouches for.
        unsafe { ptr::write_volatile(dst.add(i), s) };
    }
    for w in 0..words {
        let at = head + w * WORD;
        let v = u64::from_ne_bytes(src[at..at + WORD].try_into().expect("8 bytes"));
        // SAFETY: `dst + at` is 8-aligned (past the head) and `at + 8 <= n`.
        unsafe { ptr::write_volatile(dst.add(at).cast::<u64>(), v) };
    }
    for (i, &s) in src.iter().enumerate().skip(head + words * WORD) {
        // SAFETY: i < n.
        unsafe { ptr::write_volatile(dst.add(i), s) };
    }
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
                unsafe { write_volatile(base.add(start), &data) };
                let mut out = vec![0; len];
                // SAFETY: as above.
                unsafe { read_volatile(base.add(start), &mut out) };
                assert_eq!(out, data, "start {start} len {len}");
            }
        }
    }
}
