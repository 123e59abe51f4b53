//! Safe access to memory that peers change: atomics and `Shared` types across real
//! processes, and the fault guard that turns a peer's truncation into an error.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use mmf::{Access, Error, Mapping, Shared};
use mmf_testkit::{Peer, create_named, hear, role, tell, unique_name};

#[repr(C)]
struct Counters {
    hits: AtomicU64,
    owner: AtomicU32,
    spare: AtomicU32,
}
// SAFETY: repr(C), atomics only, valid for every bit pattern.
unsafe impl Shared for Counters {}

const ROUNDS: u64 = 20_000;

#[test]
fn atomics_count_correctly_across_processes() {
    if let Some((_, name)) = role() {
        let mapping = Mapping::open(&name, Access::ReadWrite).unwrap();
        let view = mapping.view_mut(..).unwrap();
        let counters: &Counters = view.get(128).unwrap();
        tell("ready");
        hear();
        for _ in 0..ROUNDS {
            counters.hits.fetch_add(1, Ordering::AcqRel);
        }
        counters.owner.store(2, Ordering::Release);
        return;
    }
    let name = unique_name("atomics");
    let mapping = create_named(&name, 4096).unwrap();
    let view = mapping.view_mut(..).unwrap();
    let counters: &Counters = view.get(128).unwrap();
    let mut child = Peer::spawn("atomics_count_correctly_across_processes", "adder", &name);
    child.expect("ready");
    child.say("go");
    for _ in 0..ROUNDS {
        counters.hits.fetch_add(1, Ordering::AcqRel);
    }
    child.wait_success();
    assert_eq!(counters.hits.load(Ordering::Acquire), 2 * ROUNDS);
    assert_eq!(view.atomic_u32(136).unwrap().load(Ordering::Acquire), 2);
    assert_eq!(counters.spare.load(Ordering::Relaxed), 0);
}

#[test]
fn typed_access_checks_bounds_and_alignment() {
    let mapping = Mapping::anonymous(4096).unwrap();
    let view = mapping.view_mut(8..108).unwrap(); // 100 bytes, data 8-aligned
    assert!(view.atomic_u64(0).is_ok());
    assert!(view.atomic_u64(88).is_ok());
    assert!(matches!(view.atomic_u64(96), Err(Error::OutOfRange { .. })));
    assert!(matches!(view.atomic_u64(4), Err(Error::Misaligned { offset: 4, align: 8 })));
    assert!(matches!(view.atomic_u32(2), Err(Error::Misaligned { align: 4, .. })));
    assert!(matches!(view.get::<[AtomicU64; 13]>(0), Err(Error::OutOfRange { .. })));
    assert!(view.get::<[AtomicU64; 12]>(0).is_ok());
    assert!(matches!(view.get::<AtomicU64>(usize::MAX), Err(Error::Overflow { .. })));
    let err = view.atomic_u64(4).unwrap_err();
    assert!(err.to_string().contains("not a multiple of 8"), "{err}");
}

/// The peer truncates (and regrows) files on request, one trial at a time.
#[cfg(unix)]
fn truncating_peer() -> Peer {
    Peer::spawn("a_peer_truncating_under_the_view_gives_errors_not_sigbus", "truncator", "")
}

/// A peer truncates under the view: every guarded copy past the new end is an error, not a
/// SIGBUS, also with a `kill -BUS` of the process between trials (which must neither kill
/// it nor disarm the guard). On x86-64 the view keeps showing the object: regrown, it reads
/// again. `MMF_TRUNCATE_TRIALS` sets the trials (default 100).
#[test]
#[cfg(unix)]
fn a_peer_truncating_under_the_view_gives_errors_not_sigbus() {
    if role().is_some() {
        while let Some(line) = hear() {
            let (path, len) = line.rsplit_once(' ').unwrap();
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(len.parse().unwrap()).unwrap();
            tell("done");
        }
        return;
    }
    const SIZE: usize = 64 * 4096;
    let trials: usize =
        std::env::var("MMF_TRUNCATE_TRIALS").ok().and_then(|n| n.parse().ok()).unwrap_or(100);
    let mut peer = truncating_peer();
    let dir = tempfile::tempdir().unwrap();
    for trial in 0..trials {
        // Alternate a named shared-memory object and a plain file, zero and half.
        let named = trial % 2 == 0;
        let keep = if trial % 4 < 2 { 0 } else { SIZE / 2 };
        let (mapping, path) = if named {
            let name = unique_name("truncate");
            let mapping = create_named(&name, SIZE as u64).unwrap();
            (mapping, format!("/dev/shm/{name}"))
        } else {
            let path = dir.path().join(format!("file{trial}"));
            std::fs::write(&path, vec![7u8; SIZE]).unwrap();
            let file = mmf_testkit::open_rw(&path);
            (Mapping::from_file(&file, Access::ReadWrite).unwrap(), path.display().to_string())
        };
        let view = mapping.view_mut(..).unwrap();
        view.write_at(0, &vec![9u8; SIZE]).unwrap();
        // A signal sent with kill between trials: survived, and the guard stays armed.
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGBUS) };
        peer.say(&format!("{path} {keep}"));
        peer.expect("done");

        let mut buf = vec![0u8; SIZE];
        let err = view.read_at(0, &mut buf).unwrap_err();
        assert!(matches!(err, Error::Truncated { offset: 0, len: SIZE }), "trial {trial}: {err:?}");
        assert!(err.to_string().contains("truncated"), "{err}");
        let mut word = [0u8; 8];
        let err = view.read_at(SIZE - 8, &mut word).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "trial {trial}: 8-byte read {err:?}");
        let err = view.write_at(SIZE - 10, b"lost").unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "trial {trial}: {err:?}");
        let other = Mapping::anonymous(SIZE as u64).unwrap();
        let err = other.view_mut(..).unwrap().copy_from(0, &view, 0, SIZE).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "trial {trial}: {err:?}");
        // What is still there reads the bytes written before, through the same view.
        if keep > 0 {
            let mut head = vec![0u8; keep];
            view.read_at(0, &mut head).unwrap();
            assert!(head.iter().all(|&b| b == 9), "trial {trial}");
        }
        if cfg!(target_arch = "x86_64") {
            // Regrown (zeros past the old end), the object reads again through the view.
            peer.say(&format!("{path} {SIZE}"));
            peer.expect("done");
            view.read_at(0, &mut buf).unwrap();
            assert!(buf[keep..].iter().all(|&b| b == 0), "trial {trial}: regrown zeros");
            assert!(!view.is_broken());
        }
    }
    peer.wait_success();
}

/// A copy from a view whose file shrank reports it, naming the source's side; the
/// destination stays usable.
#[test]
#[cfg(unix)]
fn copy_from_a_truncated_source_is_an_error() {
    let (_dir, _path, file) = mmf_testkit::file_with(64 * 4096, |_| 5);
    let src = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    let target = Mapping::anonymous(64 * 4096).unwrap();
    let dst = target.view_mut(..).unwrap();
    dst.copy_from(0, &src, 0, 64 * 4096).unwrap();
    file.set_len(4096).unwrap();
    let err = dst.copy_from(100, &src, 0, 63 * 4096).unwrap_err();
    assert!(matches!(err, Error::Truncated { offset: 0, .. }), "the source's offset: {err:?}");
    dst.write_at(0, b"fine").unwrap();
    src.read_at(0, &mut [0u8; 4096]).unwrap(); // the page that is left still reads
    assert!(src.read_at(4096, &mut [0u8; 1]).is_err());
}

/// A SIGBUS sent with kill() is not a fault the guard may claim: it goes where it went
/// before mmf (but not to Rust's std handler, which would reset the disposition), and
/// mmf's handler stays installed, so the process survives any number of them and
/// truncations are still caught.
#[test]
#[cfg(unix)]
fn a_sigbus_sent_by_kill_never_disarms_the_guard() {
    if role().is_some() {
        let (_dir, _path, file) = mmf_testkit::file_with(8192, |_| 1);
        let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
        for _ in 0..1000 {
            // SAFETY: raise only sends a signal to this process.
            unsafe { libc::raise(libc::SIGBUS) };
        }
        file.set_len(0).unwrap();
        let err = view.read_at(0, &mut [0u8; 16]).unwrap_err();
        tell(&format!("after 1000 kills: {}", matches!(err, Error::Truncated { .. })));
        return;
    }
    let test = "a_sigbus_sent_by_kill_never_disarms_the_guard";
    let mut child = Peer::spawn(test, "raiser", "");
    assert_eq!(child.expect("after 1000 kills:"), "true");
    child.wait_success();
}

/// A SIGBUS sent with kill() while another thread's guarded copies fault: none of those
/// faults may meet a disposition other than mmf's. (Forwarded to Rust's std handler, a
/// kill() had it reset SIGBUS to the default action until mmf reinstalled its own, and a
/// guarded fault of another thread in that window killed the process: CI, 2026-12-02.)
/// `MMF_KILL_RAISES` sets the kills (default 20,000). On x86-64 only: elsewhere the first
/// fault breaks the view, and later copies return the error without touching memory.
#[test]
#[cfg(all(unix, target_arch = "x86_64"))]
fn a_sigbus_sent_by_kill_while_other_threads_fault_kills_nothing() {
    use std::sync::atomic::AtomicBool;
    if role().is_some() {
        let (_dir, _path, file) = mmf_testkit::file_with(8192, |_| 1);
        let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
        file.set_len(0).unwrap();
        let raises: u64 =
            std::env::var("MMF_KILL_RAISES").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
        let (stop, faults) = (AtomicBool::new(false), AtomicU64::new(0));
        let during = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let err = view.read_at(0, &mut [0u8; 16]).unwrap_err();
                    assert!(matches!(err, Error::Truncated { .. }), "{err:?}");
                    faults.fetch_add(1, Ordering::Relaxed);
                }
            });
            // The kills start once the other thread is faulting, and must overlap faults.
            while faults.load(Ordering::Relaxed) < 100 {
                std::thread::yield_now();
            }
            let first = faults.load(Ordering::Relaxed);
            for _ in 0..raises {
                // SAFETY: raise only sends a signal to this process.
                unsafe { libc::raise(libc::SIGBUS) };
            }
            let during = faults.load(Ordering::Relaxed) - first;
            stop.store(true, Ordering::Relaxed);
            during
        });
        tell(&format!("survived, faults during the kills {}", u64::from(during > 0)));
        return;
    }
    let test = "a_sigbus_sent_by_kill_while_other_threads_fault_kills_nothing";
    let mut child = Peer::spawn(test, "raiser", "");
    assert_eq!(child.expect("survived, faults during the kills"), "1");
    child.wait_success();
}

/// A SIGBUS outside a guarded copy keeps its default action: the process dies of it.
#[test]
#[cfg(unix)]
fn a_sigbus_outside_the_guard_is_still_fatal() {
    if role().is_some() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![1u8; 8192]).unwrap();
        let file = mmf_testkit::open_rw(&path);
        let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
        let mut byte = [0];
        view.read_at(0, &mut byte).unwrap(); // the guard's handler is installed now
        file.set_len(0).unwrap();
        tell("truncated");
        // SAFETY: deliberately breaks the promise (the file shrank) to check that the
        // unguarded access still dies of SIGBUS.
        let slice = unsafe { view.as_slice() };
        // SAFETY: the element is inside the slice; reading it is what must fault.
        let value = unsafe { std::ptr::read_volatile(&slice[4096]) };
        tell(&format!("survived {value}"));
        return;
    }
    let mut child = Peer::spawn("a_sigbus_outside_the_guard_is_still_fatal", "victim", "");
    child.expect("truncated");
    let status = child.child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}
