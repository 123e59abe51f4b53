//! Linux helpers: `cvt` / `cvt_r` (as std's `sys/pal/unix`), `fstat`, `flock`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `-1` → the thread's last OS error (`errno`); every other value passes through.
pub(crate) fn cvt<T: PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// [`cvt`] of a call retried as long as it fails with `EINTR`.
pub(crate) fn cvt_r<T: PartialEq + From<i8>>(mut call: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `fstat(2)`.
pub(crate) fn fstat(file: &File) -> io::Result<libc::stat> {
    // SAFETY: `stat` is plain data that fstat fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a pointer to a stat buffer.
    cvt(unsafe { libc::fstat(file.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// `flock(2)`, retried on `EINTR`.
pub(crate) fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    // SAFETY: flock only changes the lock state of our descriptor's open file description.
    cvt_r(|| unsafe { libc::flock(file.as_raw_fd(), op) }).map(drop)
}

/// `sysconf(_SC_PAGESIZE)`, asked once.
pub(crate) fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it only reads a system constant.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).ok().filter(|s| s.is_power_of_two()).unwrap_or(4096)
    })
}

/// The CPU the calling thread runs on now (`sched_getcpu(3)`; glibc 2.35 and later read it
/// from the thread's `rseq` area, a load, else the vDSO's `getcpu`). `None` when the call
/// fails (no `getcpu` in a sandbox). A hint: the thread may move at once.
#[inline]
#[cfg_attr(mmf_loom, allow(dead_code))]
pub(crate) fn current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu takes no arguments and touches no memory of ours.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}
