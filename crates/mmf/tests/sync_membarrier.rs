//! The asymmetric unlock between real processes (Linux): joining an area registers the
//! process for `membarrier(2)`, a process whose `membarrier` a seccomp filter refuses falls
//! back to compare-and-swap unlocks and short sleeps, and lock handoffs between the two
//! kinds of process lose no wake-up.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mmf::sync::{SyncArea, SyncAreaOptions};
use mmf::{Access, Mapping, ViewMut};
use mmf_testkit::{Peer, file_with, hear, open_rw, role, tell};

/// `MEMBARRIER_CMD_GET_REGISTRATIONS` (Linux 6.3), which the libc crate does not carry:
/// the commands this process is registered for.
const MEMBARRIER_CMD_GET_REGISTRATIONS: libc::c_int = 1 << 9;

fn membarrier(cmd: libc::c_int) -> libc::c_long {
    // SAFETY: membarrier takes no pointers.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) }
}

/// Whether this kernel offers the global expedited barrier and its registration.
fn kernel_offers_membarrier() -> bool {
    let wanted = (libc::MEMBARRIER_CMD_GLOBAL_EXPEDITED
        | libc::MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) as libc::c_long;
    let offered = membarrier(libc::MEMBARRIER_CMD_QUERY);
    offered >= 0 && offered & wanted == wanted
}

/// Makes every later `membarrier` call of this process fail with `EPERM` (a seccomp
/// filter, as a sandbox would install).
fn refuse_membarrier() {
    let op = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let mut filter = [
        op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0), // seccomp_data.nr
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_membarrier as u32,
        },
        op(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        op(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_mut_ptr() };
    // SAFETY: a valid filter program that outlives the call (the kernel copies it).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &program as *const _),
            0
        );
    }
    assert_eq!(membarrier(libc::MEMBARRIER_CMD_QUERY), -1, "the filter did not take");
}

fn area_file() -> (tempfile::TempDir, String, ViewMut) {
    let (dir, path, file) = file_with(4096, |_| 0);
    let view = Mapping::from_file(&file, Access::ReadWrite).unwrap().view_mut(..).unwrap();
    drop(SyncArea::init(&view, 0, SyncAreaOptions::new().participants(4).objects(2)).unwrap());
    (dir, path.to_str().unwrap().to_owned(), view)
}

fn open_view(path: &str) -> ViewMut {
    let file = open_rw(Path::new(path));
    Mapping::from_file(&file, Access::ReadWrite).unwrap().view_mut(..).unwrap()
}

const COUNTER: usize = 2048;
/// Both sides count from 0 to 2 here, then start at once.
const START: usize = 2056;

/// `n` increments of the shared counter under mutex 0, sleeping at once when it is taken
/// (no spinning), after both processes arrived.
fn count(area: &SyncArea<'_>, view: &ViewMut, n: u64) {
    area.set_spins(0);
    let mutex = area.mutex(0).unwrap();
    let counter: &AtomicU64 = view.get(COUNTER).unwrap();
    let start: &AtomicU64 = view.get(START).unwrap();
    start.fetch_add(1, Ordering::SeqCst);
    while start.load(Ordering::SeqCst) < 2 {
        std::hint::spin_loop();
    }
    for _ in 0..n {
        let _g = mutex.lock_timeout(Duration::from_secs(10)).expect("lost wake-up on the mutex");
        let c = counter.load(Ordering::Relaxed);
        for _ in 0..50 {
            std::hint::spin_loop(); // a critical section the other side runs into
        }
        counter.store(c + 1, Ordering::Relaxed);
    }
}

fn play(role: &str, path: &str) {
    match role {
        // Reports its membarrier registrations before and after opening an area.
        "registrations" => {
            tell(&format!("before {}", membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS)));
            let view = open_view(path);
            let area = SyncArea::open(&view, 0).unwrap();
            tell(&format!("after {}", membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS)));
            tell(&format!("plain {}", area.plain_unlock().unwrap()));
        }
        // Without membarrier: how it unlocks, then its half of the counting.
        "refused" => {
            refuse_membarrier();
            let view = open_view(path);
            let area = SyncArea::open(&view, 0).unwrap();
            tell(&format!("plain {}", area.plain_unlock().unwrap()));
            let n = hear().unwrap().parse().unwrap();
            count(&area, &view, n);
            tell("done");
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn opening_an_asymmetric_area_registers_the_process() {
    const TEST: &str = "opening_an_asymmetric_area_registers_the_process";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    let (_dir, path, _view) = area_file();
    let mut peer = Peer::spawn(TEST, "registrations", &path);
    let before: i64 = peer.expect("before").parse().unwrap();
    let after: i64 = peer.expect("after").parse().unwrap();
    let plain = peer.expect("plain");
    peer.wait_success();
    let register = i64::from(libc::MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
    assert_eq!(plain, kernel_offers_membarrier().to_string());
    if before >= 0 {
        // Linux 6.3 and later tell: not registered before, registered after.
        assert_eq!(before & register, 0, "the fresh process was registered already");
        assert_eq!(after & register, register, "opening the area did not register the process");
    }
}

#[test]
fn a_process_without_membarrier_hands_off_with_one_that_has_it() {
    const TEST: &str = "a_process_without_membarrier_hands_off_with_one_that_has_it";
    if let Some((role, path)) = role() {
        return play(&role, &path);
    }
    let n = 20_000;
    let (_dir, path, view) = area_file();
    let area = SyncArea::open(&view, 0).unwrap();
    assert_eq!(area.plain_unlock().unwrap(), kernel_offers_membarrier());
    let mut peer = Peer::spawn(TEST, "refused", &path);
    assert_eq!(peer.expect("plain"), "false", "a process without membarrier unlocked plainly");
    peer.say(&n.to_string());
    count(&area, &view, n);
    peer.expect("done");
    peer.wait_success();
    let counter = view.get::<AtomicU64>(COUNTER).unwrap().load(Ordering::Relaxed);
    assert_eq!(counter, 2 * n, "the mutex let both processes in at once");
}
