//! The pool: what it keeps, gives back and refuses; `trim` that never hangs (review 13);
//! on Linux, what `MADV_FREE` does to kept and rewritten pages.

use super::*;

const K64: usize = 64 << 10;

/// [`Pool::keep`] of a test's region.
fn keep(pool: &Pool, r: Region) {
    // SAFETY: the tests' regions are used by nothing once kept.
    unsafe { pool.keep(r) };
}

#[test]
fn a_kept_region_is_taken_back_once_by_its_size_and_trim_empties_the_pool() {
    static POOL: Pool = Pool::new(SPARE_MAX);
    let r = Region::new(K64);
    let p = r.ptr;
    keep(&POOL, r);
    let again = POOL.take(K64).expect("kept");
    assert_eq!(again.ptr, p);
    assert!(POOL.take(K64).is_none(), "taken once");
    keep(&POOL, again);
    keep(&POOL, Region::new(4 << 20));
    assert_eq!(POOL.trim(), K64 + (4 << 20));
    assert!(POOL.take(K64).is_none(), "trimmed");
    assert_eq!(POOL.trim(), 0);
}

#[test]
fn sizes_off_the_grid_and_regions_past_the_limit_are_not_kept() {
    static POOL: Pool = Pool::new(3 * K64);
    // Not a power of two, below the first region, above the largest: freed.
    for bytes in [K64 + 16, 16 << 10, 64 << 20] {
        keep(&POOL, Region::new(bytes));
        assert!(POOL.take(bytes).is_none(), "{bytes}");
    }
    // The pool holds at most its bytes: two of 64 KiB, not a third... nor one of 128 KiB.
    keep(&POOL, Region::new(K64));
    keep(&POOL, Region::new(K64));
    keep(&POOL, Region::new(2 * K64));
    keep(&POOL, Region::new(K64));
    assert_eq!(POOL.trim(), 3 * K64);
}

/// Runs `f` while another thread holds `pool`'s lock.
fn while_held(pool: &'static Pool, f: impl FnOnce()) {
    let (held, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|s| {
        s.spawn(|| {
            let _guard = pool.regions.lock().unwrap();
            held.wait();
            release.wait();
        });
        held.wait();
        f();
        release.wait();
    });
}

#[test]
fn the_pool_held_by_another_thread_is_done_without_and_trim_gives_up() {
    static POOL: Pool = Pool::new(SPARE_MAX);
    keep(&POOL, Region::new(K64));
    while_held(&POOL, || {
        assert!(POOL.take(K64).is_none(), "no waiting for the lock");
        keep(&POOL, Region::new(K64)); // freed, not kept
        let start = std::time::Instant::now();
        assert_eq!(POOL.trim(), 0);
        assert!(start.elapsed() < Duration::from_secs(5));
    });
    assert_eq!(POOL.trim(), K64, "the one kept before");
}

/// A child forked while a thread of its parent holds the pool: its arenas do without the
/// pool, and `trim` returns instead of waiting forever on a lock no thread will release
/// (review 13: `trim_memory` used to block on it).
#[cfg(target_os = "linux")]
#[test]
fn a_child_forked_while_the_pool_is_held_goes_on() {
    static POOL: Pool = Pool::new(SPARE_MAX);
    let mut pid = 0;
    while_held(&POOL, || {
        // SAFETY: the child runs the code under test and leaves with _exit; a deadlock
        // there is what the alarm catches.
        pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: alarm and _exit are async-signal-safe.
            unsafe { libc::alarm(10) };
            let mut a = crate::arena::Arena::with_pool(&POOL);
            a.alloc(10, true);
            drop(a);
            let code = if POOL.trim() == 0 { 0 } else { 1 };
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
    });
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child: status {status:#x} (SIGALRM: it hung on the inherited lock)"
    );
}

/// `MADV_PAGEOUT` of a range: what memory pressure does to `MADV_FREE`d pages, now.
#[cfg(target_os = "linux")]
fn page_out(p: *mut u8, len: usize) {
    // SAFETY: advice on memory of ours; without swap it discards only clean lazy-free pages.
    let r = unsafe { libc::madvise(p.cast(), len, libc::MADV_PAGEOUT) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

/// A kept region's pages may really go: the next arena then finds zeros, not a fault or
/// another process's bytes; pages written after the advice are never discarded.
#[cfg(target_os = "linux")]
#[test]
fn kept_pages_may_be_reclaimed_and_pages_written_again_are_not() {
    static POOL: Pool = Pool::new(SPARE_MAX);
    let bytes = 4 << 20;
    let r = Region::new(bytes);
    let p = r.ptr.as_ptr().cast::<u8>();
    // SAFETY: the region's bytes, ours.
    unsafe { p.write_bytes(0xab, bytes) };
    keep(&POOL, r);
    page_out(p, bytes);
    let r = POOL.take(bytes).expect("kept");
    // SAFETY: the region's bytes, ours, and initialised (reclaimed pages read as zeros).
    let s = unsafe { std::slice::from_raw_parts(p, bytes) };
    assert!(s.iter().all(|&x| x == 0 || x == 0xab));
    // SAFETY: as above.
    unsafe { p.write_bytes(0x5c, bytes) };
    page_out(p, bytes);
    // SAFETY: as above.
    let s = unsafe { std::slice::from_raw_parts(p, bytes) };
    assert!(s.iter().all(|&x| x == 0x5c), "written after MADV_FREE, yet discarded");
    // SAFETY: nothing uses it.
    unsafe { r.free() };
}

/// The advice covers whole pages only: the bytes after a region that ends inside a page
/// belong to someone else and stay (review 13 lost 4,080 such bytes to the rounded-up
/// advice).
#[cfg(target_os = "linux")]
#[test]
fn the_advice_stops_at_the_last_whole_page() {
    let outer = Region::new(4 << 20);
    let base = outer.ptr.as_ptr().cast::<u8>();
    // SAFETY: the region's bytes, ours.
    unsafe { base.write_bytes(0x11, 4 << 20) };
    let end = (2 << 20) + 16;
    advise_free(base.cast(), end);
    page_out(base, 4 << 20);
    // SAFETY: as above.
    let after = unsafe { std::slice::from_raw_parts(base.add(end), (4 << 20) - end) };
    assert!(after.iter().all(|&x| x == 0x11), "bytes past the advised range were discarded");
    // SAFETY: nothing uses it.
    unsafe { outer.free() };
}
