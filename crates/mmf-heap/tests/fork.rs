//! A child `fork`ed (without `exec`) while other threads of its parent open and close
//! heaps: it opens heaps of its own, commits and ends, whatever those threads held at the
//! fork. (CI once saw such a child wait forever: the process-wide list of open heaps was
//! locked by the parent's opening thread, which does not exist in the child.)
//!
//! `MMF_FORK_CHILDREN` (default 60) sets how many children each test forks.

#![cfg(target_os = "linux")]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mmf_heap::{Durability, FileBackend, Heap, HeapOptions, Off, PHashMap};
use mmf_testkit::forked::{in_forked_child, tally};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn children() -> u64 {
    std::env::var("MMF_FORK_CHILDREN").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}

fn open(path: &Path) -> Heap<FileBackend> {
    // SAFETY: only this test, through mmf-heap, writes the file.
    unsafe { Heap::open(path, HeapOptions::new().create(true)) }.unwrap()
}

/// Commits 100 keys to a heap of its own and checks them (in a child).
fn use_a_heap(path: &Path) {
    let heap = open(path);
    let mut tx = heap.write().unwrap();
    let mut h: PHashMap<u64, u64> = tx.root("h").unwrap().unwrap_or_default();
    for k in 0..100u64 {
        h.insert(&mut tx, &k, &(k + 1)).unwrap();
    }
    tx.set_root("h", &h).unwrap();
    tx.commit_with(Durability::None).unwrap();
    let r = heap.read().unwrap();
    let h: PHashMap<u64, u64> = r.root("h").unwrap().unwrap();
    assert_eq!(h.get(&r, &7).unwrap(), Some(&8));
}

/// Forks `n` children while `busy` runs in two threads; each child runs `child` under a
/// 10 s alarm. Returns (fine, hung, failed otherwise), having printed them; fails if a
/// thread of the parent failed.
fn fork_while(
    dir: &Path,
    busy: impl Fn(&Path, u64) + Send + Sync + 'static,
    child: impl Fn(&Path, &Path),
) -> (u64, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(busy);
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (stop, busy, dir) = (stop.clone(), busy.clone(), dir.to_owned());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    busy(&dir.join(format!("busy{t}.heap")), i);
                    i += 1;
                }
            })
        })
        .collect();
    // Let the threads get going.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (ok, hung, other) = tally((0..children()).map(|i| {
        let own = dir.join(format!("child{i}.heap"));
        let shared = dir.join("busy0.heap");
        in_forked_child(10, || child(&own, &shared))
    }));
    stop.store(true, Ordering::Relaxed);
    let busy_failed = threads.into_iter().map(|t| t.join().is_err()).filter(|&e| e).count();
    eprintln!("children: {ok} fine, {hung} hung (SIGALRM), {other} failed otherwise");
    assert_eq!(busy_failed, 0, "a thread of the parent failed");
    (ok, hung, other)
}

/// The parent's threads open a heap and drop it, again and again (each open joins the
/// heap's lock area and takes its presence lock); the children open heaps of their own.
#[test]
fn a_child_forked_while_threads_open_heaps_opens_its_own() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let (_, hung, other) = fork_while(
        dir.path(),
        |path, _| {
            let heap = open(path);
            drop(heap.read().unwrap());
        },
        |own, _| use_a_heap(own),
    );
    assert_eq!((hung, other), (0, 0));
}

/// The same, and each child opens the heap its parent's thread was opening at the fork,
/// as well as one of its own.
#[test]
fn a_child_forked_while_threads_open_heaps_opens_theirs_too() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let (_, hung, other) = fork_while(
        dir.path(),
        |path, i| {
            let heap = open(path);
            let mut tx = heap.write().unwrap();
            tx.set_root("n", &i).unwrap();
            tx.commit_with(Durability::None).unwrap();
        },
        |own, shared| {
            use_a_heap(own);
            let heap = open(shared);
            let r = heap.read().unwrap();
            let _: Option<u64> = r.root("n").unwrap();
        },
    );
    assert_eq!((hung, other), (0, 0));
}

fn set(heap: &Heap<FileBackend>, value: u64) {
    let mut tx = heap.write().unwrap();
    let old: Option<Off<u64>> = tx.root("v").unwrap();
    let new = tx.alloc(&value).unwrap();
    if let Some(old) = old {
        tx.free(old).unwrap();
    }
    tx.set_root("v", &new).unwrap();
    // Durable: space is reused only once the commits that freed it are.
    tx.commit().unwrap();
}

/// A pipe: (read end, write end).
fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: an array of two descriptors for pipe to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: two new descriptors that nothing else owns.
    unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) }
}

/// A child reads through the heap it inherited, while its parent held a snapshot at the
/// fork; the parent then lets its snapshot go and commits 200 times, each freeing the
/// value the child's snapshot holds a reference to. The child's snapshot must hold: the
/// child pins in a reader row of its own. (It pinned through its parent's row, cached in
/// the copied handle, and not even that when the parent's snapshot, copied into the
/// child's list of pins, was older: the value changed under the child's `&u64`.)
#[test]
fn a_fork_child_reading_an_inherited_heap_keeps_its_snapshot() {
    use std::io::{Read, Write};
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let heap = open(&dir.path().join("inherited.heap"));
    set(&heap, 1000);
    let parents = heap.read().unwrap();
    let (mut ready_r, mut ready_w) = pipe();
    let (mut go_r, mut go_w) = pipe();
    // SAFETY: the child reads the heap and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: alarm only schedules a signal (a hang ends the child).
        unsafe { libc::alarm(120) };
        drop((ready_r, go_w));
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let snap = heap.read().unwrap();
            // What the docs say to do with a parent's snapshot; its pin is not the
            // child's to give back (review 50: it gave back the child's own).
            drop(parents);
            let v: Off<u64> = snap.root("v").unwrap().unwrap();
            let value: &u64 = snap.get_ref(v).unwrap();
            ready_w.write_all(b"r").unwrap();
            let mut b = [0u8];
            go_r.read_exact(&mut b).unwrap();
            if *value == 1000 { 0 } else { 2 }
        }))
        .unwrap_or(1);
        // SAFETY: leaves the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    // The child's ends: a child that fails closes them, and the reads below end.
    drop((ready_w, go_r));
    let mut b = [0u8];
    assert_eq!(ready_r.read(&mut b).unwrap(), 1, "the child failed before reading");
    drop(parents);
    for i in 0..200 {
        set(&heap, 2000 + i);
    }
    go_w.write_all(b"g").unwrap();
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "the child ended by signal: {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "2: the child's snapshot changed under it (its pin was not in any reader row)"
    );
}

/// Two threads of the parent read one heap without pause; each child opens the same file
/// again and reads. (The parent's and the child's handles share the process's pins of the
/// file, whose lock a reading thread of the parent held at the fork in 34 of 60 children:
/// they waited for ever; review 49.)
#[test]
fn a_child_forked_while_threads_read_opens_the_heap_again_and_reads() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.heap");
    let heap = Arc::new(open(&path));
    set(&heap, 7);
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (heap, stop) = (heap.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    drop(heap.read().unwrap());
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (ok, hung, other) = tally((0..children()).map(|_| {
        in_forked_child(10, || {
            let again = open(&path);
            let snap = again.read().unwrap();
            let v: Off<u64> = snap.root("v").unwrap().unwrap();
            assert_eq!(*snap.get_ref(v).unwrap(), 7);
        })
    }));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    eprintln!("children: {ok} fine, {hung} hung (SIGALRM), {other} failed otherwise");
    assert_eq!((hung, other), (0, 0));
}

/// Forks from a thread-local's destructor, in [`a_fork_from_a_thread_local_destructor_goes_on`].
struct ForkOnDrop;

impl Drop for ForkOnDrop {
    fn drop(&mut self) {
        assert_eq!(in_forked_child(10, || {}), mmf_testkit::forked::ForkEnd::Fine);
    }
}

thread_local! { static FORKS_ON_DROP: ForkOnDrop = const { ForkOnDrop }; }

/// Review 51: a thread forks once (the handlers' first run in it), then again from a
/// thread-local's destructor, after the thread's other thread-locals were destroyed. The
/// `prepare` handler kept the lock it holds across `fork` in a thread-local: it panicked
/// there, inside an `extern "C"` function, and the process aborted — any program that
/// links mmf-heap, since the handlers are registered at load. The role never opens a heap.
#[test]
fn a_fork_from_a_thread_local_destructor_goes_on() {
    if mmf_testkit::roles::plays("fork-in-tls-destructor") {
        std::thread::spawn(|| {
            FORKS_ON_DROP.with(|_| {}); // registered first, destroyed last
            assert_eq!(in_forked_child(10, || {}), mmf_testkit::forked::ForkEnd::Fine);
        })
        .join()
        .unwrap();
        return;
    }
    mmf_testkit::roles::run_alone(
        "a_fork_from_a_thread_local_destructor_goes_on",
        "fork-in-tls-destructor",
    );
}
