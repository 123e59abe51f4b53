//! The exact lifetime of named objects on Linux, with real processes: across `fork`, after
//! SIGKILL, with one small reaper per creator, and against neighbours that plant FIFOs,
//! hold locks or fill `/dev/shm`.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mmf::{Access, CreationMode, Error, Mapping, MappingOptions};
use mmf_testkit::{Peer, create_named, hear, role, root_for, tell, unique_name};

fn shm(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name)
}

/// Waits (bounded) until `/dev/shm/NAME` is gone — looked at directly, not through an open,
/// which would itself remove a dead object.
fn wait_unlinked(name: &str, within: Duration) {
    let start = Instant::now();
    while shm(name).exists() {
        assert!(start.elapsed() < within, "{name} outlived its holders by {within:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read(mapping: &Mapping, offset: usize, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    mapping.view(..).unwrap().read_at(offset, &mut buf).unwrap();
    buf
}

/// Runs `f` on a thread and fails the test if it does not finish in `secs` (a hang).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(Duration::from_secs(secs)).expect("hung: no answer in time")
}

/// `fork` without `exec`: the child inherits the views (it is a holder until it exits),
/// reads and writes through them, and dropping its copies never takes the parent's name.
#[test]
fn a_fork_child_uses_inherited_views_and_never_takes_the_parents_name() {
    if let Some((_, name)) = role() {
        let mapping = create_named(&name, 4096).unwrap();
        let view = mapping.view_mut(..).unwrap();
        view.write_at(0, b"parent").unwrap();
        // SAFETY: the child only copies through the view, drops it and the mapping (munmap,
        // close, getpid) and calls _exit: no locks that another thread could hold.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut buf = [0; 6];
            let ok = view.read_at(0, &mut buf).is_ok() && &buf == b"parent";
            let wrote = view.write_at(100, b"child").is_ok();
            drop(view);
            drop(mapping);
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(if ok && wrote { 0 } else { 3 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        tell(&format!("child status {status}"));
        std::thread::sleep(Duration::from_millis(100));
        let again = Mapping::open(&name, Access::ReadOnly).unwrap();
        tell(&format!("parent reads {}", String::from_utf8_lossy(&read(&again, 100, 5))));
        return;
    }
    let name = unique_name("fork");
    let test = "a_fork_child_uses_inherited_views_and_never_takes_the_parents_name";
    let mut parent = Peer::spawn(test, "parent", &name);
    assert_eq!(parent.expect("child status"), "0", "the child read, wrote and exited cleanly");
    assert_eq!(parent.expect("parent reads"), "child", "and the name outlived the child");
    parent.wait_success();
    wait_unlinked(&name, Duration::from_secs(10));
}

/// The parent dies first (SIGKILL): the fork child still holds the object through its
/// inherited views; when it exits, the name goes.
#[test]
fn a_fork_child_keeps_the_object_after_its_parent_is_killed() {
    if let Some((_, name)) = role() {
        let mapping = create_named(&name, 4096).unwrap();
        mapping.view_mut(..).unwrap().write_at(0, b"kept by the child").unwrap();
        let view = mapping.view(..).unwrap();
        drop(mapping);
        // SAFETY: as above; the child reads a line, copies, prints and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let heard = hear();
            let mut buf = [0; 17];
            view.read_at(0, &mut buf).unwrap();
            tell(&format!("child {heard:?} {}", String::from_utf8_lossy(&buf)));
            // SAFETY: ends the child.
            unsafe { libc::_exit(0) };
        }
        tell(&format!("forked {pid}"));
        hear();
        unreachable!("killed while it waits");
    }
    let name = unique_name("fork-orphan");
    let test = "a_fork_child_keeps_the_object_after_its_parent_is_killed";
    let mut parent = Peer::spawn(test, "parent", &name);
    parent.expect("forked");
    parent.kill();
    std::thread::sleep(Duration::from_millis(200));
    {
        let opened = Mapping::open(&name, Access::ReadOnly).expect("the child still holds it");
        assert_eq!(read(&opened, 0, 17), b"kept by the child");
    }
    parent.say("go");
    assert_eq!(parent.expect("child"), "Some(\"go\") kept by the child");
    wait_unlinked(&name, Duration::from_secs(10));
}

/// The reapers of this machine's processes: (pid, creator pid, resident kB).
fn reapers() -> Vec<(u32, u32, u64)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.first() != Some(&&b"mmf-reaper"[..]) {
            continue;
        }
        let Some(creator) =
            args.get(1).and_then(|a| std::str::from_utf8(a).ok()).and_then(|a| a.parse().ok())
        else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0);
        found.push((pid, creator, rss));
    }
    found
}

/// One reaper per creating process, holding none of the creator's memory, and it reclaims
/// every object after the creator is SIGKILLed, then exits.
#[test]
fn one_small_reaper_per_creator_reclaims_after_sigkill() {
    const OBJECTS: usize = 20;
    if let Some((_, prefix)) = role() {
        let mut big = vec![1u8; 256 << 20]; // touched: 256 MiB resident
        big[12345] = 2;
        let held: Vec<Mapping> =
            (0..OBJECTS).map(|i| create_named(&format!("{prefix}{i}"), 4096).unwrap()).collect();
        drop(big);
        tell(&format!("ready {}", held.len()));
        hear();
        unreachable!("killed while it waits");
    }
    let prefix = format!("{}-", unique_name("reaper"));
    let mut creator =
        Peer::spawn("one_small_reaper_per_creator_reclaims_after_sigkill", "c", &prefix);
    assert_eq!(creator.expect("ready"), OBJECTS.to_string());
    let pid = creator.pid();
    let mine: Vec<_> = reapers().into_iter().filter(|r| r.1 == pid).collect();
    assert_eq!(mine.len(), 1, "one reaper for {OBJECTS} objects: {mine:?}");
    let (reaper, _, rss_kb) = mine[0];
    eprintln!("reaper {reaper}: VmRSS {rss_kb} kB (creator touched 256 MiB)");
    assert!(rss_kb < 16 * 1024, "the reaper holds {rss_kb} kB");
    creator.kill();
    for i in 0..OBJECTS {
        wait_unlinked(&format!("{prefix}{i}"), Duration::from_secs(10));
    }
    // Its work done and its creator gone, it exits (init reaps it).
    let start = Instant::now();
    while std::fs::read_to_string(format!("/proc/{reaper}/status"))
        .is_ok_and(|s| !s.contains("State:\tZ"))
    {
        assert!(start.elapsed() < Duration::from_secs(10), "the reaper did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Without inotify (no instance to be had), the reaper still reclaims, polling.
#[test]
fn the_reaper_reclaims_without_inotify() {
    if let Some((_, name)) = role() {
        let _held = create_named(&name, 4096).unwrap();
        tell("ready");
        hear();
        unreachable!("killed while it waits");
    }
    let name = unique_name("poll");
    let mut creator = Peer::spawn_with("the_reaper_reclaims_without_inotify", "c", &name, |c| {
        c.env("MMF_REAPER_POLL", "1");
    });
    creator.expect("ready");
    let (reaper, ..) = *reapers().iter().find(|r| r.1 == creator.pid()).expect("its reaper");
    let inotify = std::fs::read_dir(format!("/proc/{reaper}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| target.to_string_lossy().contains("inotify"));
    assert!(!inotify, "the reaper polls instead of using inotify");
    creator.kill();
    wait_unlinked(&name, Duration::from_secs(10));
}

/// Once the last holder is dead, the name is free at once: `CreateNew` succeeds and
/// `OpenOrCreate` creates fresh zeroed memory — whatever the reaper is doing meanwhile.
/// `MMF_SOAK_CYCLES` raises the count (default 200).
#[test]
fn a_dead_object_is_never_visible() {
    if let Some((_, name)) = role() {
        let mapping = create_named(&name, 4096).unwrap();
        mapping.view_mut(..).unwrap().write_at(0, b"stale").unwrap();
        tell("ready");
        hear();
        unreachable!("killed while it waits");
    }
    let cycles: usize =
        std::env::var("MMF_SOAK_CYCLES").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let name = unique_name("dead");
    for i in 0..cycles {
        let mut holder = Peer::spawn("a_dead_object_is_never_visible", "holder", &name);
        holder.expect("ready");
        holder.kill(); // SIGKILL and waitpid
        let fresh = match i % 3 {
            0 => create_named(&name, 4096),
            1 => MappingOptions::new()
                .access(Access::ReadWrite)
                .size(4096)
                .name(&name)
                .creation(CreationMode::OpenOrCreate)
                .map_anonymous(),
            _ => match Mapping::open(&name, Access::ReadOnly) {
                Err(Error::NotFound { .. }) => create_named(&name, 4096),
                other => panic!("cycle {i}: open of a dead object gave {other:?}"),
            },
        };
        let fresh = fresh.unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        assert!(fresh.created(), "cycle {i}: the dead object was reused");
        assert_eq!(read(&fresh, 0, 5), [0; 5], "cycle {i}: stale contents");
    }
}

/// A FIFO planted under a name never blocks mmf: listing skips it, opening and creating
/// refuse it.
#[test]
fn a_planted_fifo_is_refused_and_never_blocks() {
    let name = unique_name("fifo");
    let path = std::ffi::CString::new(shm(&name).to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o666) }, 0);
    let n = name.clone();
    let (listed, opened, created, either) = within(20, move || {
        let listed = mmf::named::list().map(|l| l.iter().any(|o| o.name == n));
        let opened = Mapping::open(&n, Access::ReadWrite).map(drop);
        let created = create_named(&n, 4096).map(drop);
        let either = MappingOptions::new()
            .access(Access::ReadWrite)
            .size(4096)
            .name(&n)
            .map_anonymous()
            .map(drop);
        (listed, opened, created, either)
    });
    std::fs::remove_file(shm(&name)).unwrap();
    assert!(!listed.unwrap(), "not listed");
    assert!(matches!(opened, Err(Error::NotRegularFile { .. })), "{opened:?}");
    assert!(matches!(created, Err(Error::AlreadyExists { .. })), "{created:?}");
    assert!(matches!(either, Err(Error::NotRegularFile { .. })), "{either:?}");
}

/// Another program's object (no mark) is used without locking it: its own exclusive lock
/// neither blocks mmf nor is blocked by mmf.
#[test]
fn another_programs_locked_object_neither_blocks_nor_is_blocked() {
    use std::os::fd::AsRawFd;
    let name = unique_name("foreign-lock");
    std::fs::write(shm(&name), vec![5u8; 4096]).unwrap();
    let theirs = std::fs::File::open(shm(&name)).unwrap();
    let lock = |f: &std::fs::File, op| {
        // SAFETY: flock on our own descriptor.
        unsafe { libc::flock(f.as_raw_fd(), op) }
    };
    assert_eq!(lock(&theirs, libc::LOCK_EX | libc::LOCK_NB), 0);
    let n = name.clone();
    let mapping = within(10, move || Mapping::open(&n, Access::ReadOnly)).unwrap();
    assert_eq!(read(&mapping, 0, 3), [5, 5, 5]);
    assert_eq!(lock(&theirs, libc::LOCK_UN), 0);
    let again = std::fs::File::open(shm(&name)).unwrap();
    assert_eq!(lock(&again, libc::LOCK_EX | libc::LOCK_NB), 0, "mmf holds no lock on it");
    drop(mapping);
    assert!(shm(&name).exists(), "another program's object is never removed");
    std::fs::remove_file(shm(&name)).unwrap();
}

/// A kept mmf object locked exclusively by a hostile process: opening it gives up after a
/// bounded wait with a clear error.
#[test]
fn a_hostile_exclusive_lock_gives_busy_not_a_hang() {
    use std::os::fd::AsRawFd;
    let name = unique_name("hostile");
    let made = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(4096)
        .name(&name)
        .creation(CreationMode::CreateNew)
        .keep(true)
        .map_anonymous()
        .unwrap();
    drop(made);
    let hostile = std::fs::File::open(shm(&name)).unwrap();
    // A sibling test spawning a process at the moment `made` was dropped hands its child a
    // copy of `made`'s descriptor, and with it the shared lock, until that child's `exec`:
    // so the hostile lock is tried for a while, not once.
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: flock on our own descriptor.
    while unsafe { libc::flock(hostile.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        assert!(Instant::now() < deadline, "{}", std::io::Error::last_os_error());
        std::thread::sleep(Duration::from_millis(5));
    }
    let n = name.clone();
    let start = Instant::now();
    let err = within(20, move || Mapping::open(&n, Access::ReadOnly)).unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert!(err.to_string().contains("locked exclusively"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(hostile);
    mmf::named::remove(&name).unwrap();
}

/// A full `/dev/shm` is an error at creation, never a SIGBUS later. The test mounts a 1 MiB
/// tmpfs over `/dev/shm` in a private user and mount namespace (`unshare -Urm`).
#[test]
fn no_space_in_dev_shm_is_an_error_at_creation() {
    if let Some((role, _)) = role() {
        assert_eq!(role, "small-shm");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", "/dev/shm"])
            .status()
            .unwrap();
        assert!(mounted.success(), "mount a small tmpfs");
        let err = create_named("mmf-test-nospace-big", 8 << 20).unwrap_err();
        tell(&format!("big {}", matches!(err, Error::NoSpace { size, .. } if size == 8 << 20)));
        tell(&format!("message {err}"));
        let small = create_named("mmf-test-nospace-small", 512 << 10).unwrap();
        let view = small.view_mut(..).unwrap();
        view.write_at(0, &vec![9u8; 512 << 10]).unwrap();
        tell("small ok");
        let again = create_named("mmf-test-nospace-second", 768 << 10).unwrap_err();
        tell(&format!("second {}", matches!(again, Error::NoSpace { .. })));
        return;
    }
    let test = "no_space_in_dev_shm_is_an_error_at_creation";
    let mut child = Peer::spawn_under(&["unshare", "-Urm", "--"], test, "small-shm", "", |_| {});
    assert_eq!(child.expect("big"), "true");
    let message = child.expect("message");
    assert!(message.contains("no space in /dev/shm"), "{message}");
    child.expect("small ok");
    assert_eq!(child.expect("second"), "true", "what is reserved stays reserved");
    child.wait_success();
}

/// Another user rewrites the mark of an object that others may write, to point at a file
/// of the owner's: the owner's open refuses to map that file.
#[test]
fn a_forged_file_mark_never_redirects_writes() {
    use std::os::unix::fs::MetadataExt;
    if let Some((role, arg)) = role() {
        assert_eq!(role, "forger");
        let (name, mark) = arg.split_once('|').unwrap();
        let path = std::ffi::CString::new(shm(name).to_str().unwrap()).unwrap();
        let mark = mark.replace("\\n", "\n");
        // SAFETY: NUL-terminated path and attribute name; value pointer and length match.
        let rc = unsafe {
            libc::setxattr(path.as_ptr(), c"user.mmf".as_ptr(), mark.as_ptr().cast(), mark.len(), 0)
        };
        tell(&format!("forged {rc}"));
        return;
    }
    if !root_for("acting as another user (setpriv)") {
        return;
    }
    let name = unique_name("forged");
    let owner = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(4096)
        .name(&name)
        .permissions(0o666)
        .creation(CreationMode::CreateNew)
        .map_anonymous()
        .unwrap();
    let victim = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(victim.path(), b"precious data, not to be overwritten").unwrap();
    let meta = std::fs::metadata(victim.path()).unwrap();
    let mark = format!(
        "mmf1 scoped file {} {} {}\\n{}",
        meta.dev(),
        meta.ino(),
        meta.len(),
        victim.path().display()
    );
    let wrapper = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    let test = "a_forged_file_mark_never_redirects_writes";
    let mut forger = Peer::spawn_under(&wrapper, test, "forger", &format!("{name}|{mark}"), |_| {});
    assert_eq!(forger.expect("forged"), "0", "another user could rewrite the mark");
    forger.wait_success();
    let err = MappingOptions::new().access(Access::ReadWrite).open_named(&name).unwrap_err();
    assert!(matches!(err, Error::UntrustedFile { .. }), "{err:?}");
    assert_eq!(std::fs::read(victim.path()).unwrap(), b"precious data, not to be overwritten");
    drop(owner);
}

/// The size of a file mapping opened by name comes from the file, not from its mark alone:
/// a file cut short under the name maps only what is there.
#[test]
fn a_named_file_mapping_takes_its_size_from_the_file() {
    let name = unique_name("file-size");
    let (_dir, path, file) = mmf_testkit::file_with(65_536, |_| b'f');
    let creator = MappingOptions::new()
        .access(Access::ReadWrite)
        .name(&name)
        .creation(CreationMode::CreateNew)
        .map_file(&file)
        .unwrap();
    assert_eq!(creator.size(), 65_536);
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(4096).unwrap();
    let opened = Mapping::open(&name, Access::ReadOnly).unwrap();
    assert_eq!(opened.size(), 4096, "the file's size now, not the recorded 65536");
    let err = MappingOptions::new()
        .access(Access::ReadWrite)
        .name(&unique_name("file-0666"))
        .permissions(0o666)
        .map_file(&file)
        .unwrap_err();
    assert!(matches!(err, Error::UntrustedFile { .. }), "{err:?}");
}

/// A directory under an object's name is not a shared-memory object (its `open` fails with
/// `EISDIR`, which was reported as a failed `open(/dev/shm)`), and a channel object cut
/// below its header before anyone opens it is `Corrupted` saying so (it was a view's
/// "range 0..128 is past the end").
#[cfg(target_os = "linux")]
#[test]
fn a_directory_or_a_channel_cut_below_its_header_is_named_for_what_it_is() {
    let name = unique_name("planted-dir");
    std::fs::create_dir(shm(&name)).unwrap();
    let opened = Mapping::open(&name, Access::ReadWrite).map(drop);
    let chan = mmf::channel::open(&name).map(drop);
    std::fs::remove_dir(shm(&name)).unwrap();
    assert!(matches!(opened, Err(Error::NotRegularFile { .. })), "{opened:?}");
    assert!(matches!(chan, Err(Error::NotRegularFile { .. })), "{chan:?}");

    let name = unique_name("cut-channel");
    let mut options = mmf::channel::ChannelOptions::new();
    options.name_options(mmf::named::NameOptions::new().keep(true).clone());
    drop(mmf::channel::create(&name, &options).unwrap());
    for len in [127, 100, 1] {
        std::fs::OpenOptions::new().write(true).open(shm(&name)).unwrap().set_len(len).unwrap();
        match mmf::channel::open(&name) {
            Err(Error::Corrupted { reason }) => {
                assert!(reason.contains(&format!("{len} bytes, shorter than")), "{reason}")
            }
            other => panic!("a channel cut to {len} bytes: {:?}", other.map(drop)),
        }
    }
    std::fs::remove_file(shm(&name)).unwrap();
}
