//! The reaper and the lifetime protocol against what a review threw at them (Linux): churn,
//! fork orders, kills during create, a stopped reaper, `wait(-1)`, odd ways to start the
//! program, and neighbours that plant files, forge marks and hold locks.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mmf::{Access, CreationMode, Error, Mapping, MappingOptions};
use mmf_testkit::{Peer, create_named, hear, role, root_for, tell, unique_name};

fn shm(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name)
}

fn names_with(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "{what} not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Live (not zombie) reapers of a creator.
fn live_reapers(creator: u32) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.first() == Some(&&b"mmf-reaper"[..])
            && args.get(1).is_some_and(|a| *a == creator.to_string().as_bytes())
        {
            n += 1;
        }
    }
    n
}

/// Many orderly create-and-drop cycles: the reaper lets go of every object (none of their
/// memory stays held) and exits after its creator.
#[test]
fn churn_leaves_no_object_held_and_the_reaper_exits() {
    if let Some((_, name)) = role() {
        for _ in 0..2000 {
            let m = MappingOptions::new().size(1 << 20).name(&name).map_anonymous().unwrap();
            drop(m);
        }
        tell("done");
        hear();
        return;
    }
    let name = unique_name("churn");
    let mut creator = Peer::spawn("churn_leaves_no_object_held_and_the_reaper_exits", "c", &name);
    creator.expect("done");
    let pid = creator.pid();
    // Unlinked objects the reaper still holds open would show as deleted /dev/shm files.
    let held = || -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|p| std::fs::read_dir(p.path().join("fd")).ok())
            .flat_map(|fds| fds.flatten())
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter(|t| {
                t.to_string_lossy().contains(&name) && t.to_string_lossy().ends_with("(deleted)")
            })
            .count()
    };
    wait_until("the reaper letting go of dropped objects", Duration::from_secs(10), || held() == 0);
    creator.say("exit");
    creator.wait_success();
    wait_until("the reaper exiting after its creator", Duration::from_secs(10), || {
        live_reapers(pid) == 0
    });
    assert!(!shm(&name).exists());
}

/// fork, then the parent lets go in order while the child still holds the object: the
/// name stays until the child lets go too. And with a third holder that leaves last.
#[test]
fn a_parents_orderly_drop_never_takes_a_childs_object() {
    if let Some((role, name)) = role() {
        let mapping = create_named(&name, 4096).unwrap();
        let view = mapping.view(..).unwrap();
        let third = (role == "with-third").then(|| Mapping::open(&name, Access::ReadOnly).unwrap());
        let mut pipe = [0; 2];
        // SAFETY: a pipe for the parent to tell its child to go on.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        // SAFETY: the child only waits on the pipe, checks, drops and exits (_exit).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut byte = [0u8];
            // SAFETY: read(2) of one byte from the pipe.
            unsafe { libc::read(pipe[0], byte.as_mut_ptr().cast(), 1) };
            let alive = Mapping::open(&name, Access::ReadOnly).is_ok();
            drop(view);
            drop(mapping);
            // SAFETY: ends the child.
            unsafe { libc::_exit(if alive { 0 } else { 4 }) };
        }
        drop(view);
        drop(mapping); // the parent lets go first, at once
        drop(third); // and the third holder after it
        let still = Mapping::open(&name, Access::ReadOnly).is_ok();
        tell(&format!("after the parent {still}"));
        // SAFETY: one byte to the child through the pipe.
        unsafe { libc::write(pipe[1], b"g".as_ptr().cast(), 1) };
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        tell(&format!("child {status}"));
        return;
    }
    for role in ["alone", "with-third"] {
        let name = unique_name("fork-drop");
        let mut parent =
            Peer::spawn("a_parents_orderly_drop_never_takes_a_childs_object", role, &name);
        assert_eq!(parent.expect("after the parent"), "true", "{role}: the child holds it");
        assert_eq!(parent.expect("child"), "0", "{role}: the child still found it");
        parent.wait_success();
        wait_until("the name going with the child", Duration::from_secs(10), || {
            !shm(&name).exists()
        });
    }
}

/// A creator killed at any moment of a burst of creates leaves nothing behind.
#[test]
fn kills_during_creates_leave_nothing_behind() {
    if let Some((_, prefix)) = role() {
        tell("go");
        let mut held = Vec::new();
        for i in 0.. {
            held.push(create_named(&format!("{prefix}{i}"), 4096).unwrap());
        }
        unreachable!();
    }
    let prefix = format!("{}-", unique_name("killcreate"));
    for round in 0..20 {
        let mut creator = Peer::spawn("kills_during_creates_leave_nothing_behind", "c", &prefix);
        creator.expect("go");
        std::thread::sleep(Duration::from_micros(500 + 900 * round));
        creator.kill();
    }
    wait_until("every name gone", Duration::from_secs(20), || names_with(&prefix).is_empty());
}

/// A stopped reaper never stalls a create; the creator is not the reaper's parent, so
/// `wait` finds no child.
#[test]
fn a_stopped_reaper_stalls_nothing_and_is_nobodys_child() {
    if let Some((_, prefix)) = role() {
        let first = create_named(&format!("{prefix}first"), 4096).unwrap();
        // SAFETY: waitpid of any child, without waiting: there must be none.
        let waited = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        tell(&format!("wait {waited} {}", errno == Some(libc::ECHILD)));
        hear(); // the test stops the reaper
        let start = Instant::now();
        let held: Vec<_> =
            (0..2000).map(|i| create_named(&format!("{prefix}{i}"), 4096).unwrap()).collect();
        tell(&format!("created {} in {} ms", held.len(), start.elapsed().as_millis()));
        drop((first, held));
        return;
    }
    let prefix = format!("{}-", unique_name("stopped"));
    let test = "a_stopped_reaper_stalls_nothing_and_is_nobodys_child";
    let mut creator = Peer::spawn(test, "c", &prefix);
    assert_eq!(creator.expect("wait"), "-1 true", "no child to wait for");
    let reaper = wait_for_reaper(creator.pid());
    // SAFETY: stops the reaper process, resumed below.
    unsafe { libc::kill(reaper as i32, libc::SIGSTOP) };
    creator.say("go");
    let created = creator.expect("created");
    // SAFETY: resumes it.
    unsafe { libc::kill(reaper as i32, libc::SIGCONT) };
    assert!(created.starts_with("2000 in"), "{created}");
    creator.wait_success();
    wait_until("every name gone", Duration::from_secs(20), || names_with(&prefix).is_empty());
}

fn wait_for_reaper(creator: u32) -> u32 {
    let start = Instant::now();
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            if args.first() == Some(&&b"mmf-reaper"[..])
                && args.get(1).is_some_and(|a| *a == creator.to_string().as_bytes())
            {
                return entry.file_name().to_string_lossy().parse().unwrap();
            }
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no reaper for {creator}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Run through the dynamic loader, `/proc/self/exe` is the loader, which cannot be the
/// reaper: the first create must not wait for one for long.
#[test]
fn a_program_run_through_the_loader_creates_without_delay() {
    if let Some((_, name)) = role() {
        let start = Instant::now();
        let _m = create_named(&name, 4096).unwrap();
        tell(&format!("ms {}", start.elapsed().as_millis()));
        return;
    }
    let loader = std::fs::read_link("/proc/self/exe").ok().and_then(|_| {
        ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"]
            .into_iter()
            .find(|l| std::path::Path::new(l).exists())
    });
    let Some(loader) = loader else { panic!("no dynamic loader found at the usual paths") };
    let name = unique_name("loader");
    let test = "a_program_run_through_the_loader_creates_without_delay";
    let mut child = Peer::spawn_under(&[loader], test, "c", &name, |_| {});
    let ms: u64 = child.expect("ms").parse().unwrap();
    assert!(ms < 2000, "the first create took {ms} ms");
    child.wait_success();
}

/// Neighbours: another user's files with a forged mark and an exclusive lock never stall
/// `list`; a squatted name is AlreadyExists; a planted socket is NotRegularFile.
#[test]
fn neighbours_cannot_stall_list_or_confuse_create() {
    use std::os::unix::fs::PermissionsExt;
    if !root_for("planting objects owned by another user") {
        return;
    }
    let prefix = format!("{}-", unique_name("planted"));
    let mut locks = Vec::new();
    for i in 0..5 {
        let path = shm(&format!("{prefix}{i}"));
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let mark = b"mmf1 scoped pagefile";
        // SAFETY: NUL-terminated path and attribute name; value pointer and length match.
        let rc = unsafe {
            libc::setxattr(c.as_ptr(), c"user.mmf".as_ptr(), mark.as_ptr().cast(), mark.len(), 0)
        };
        assert_eq!(rc, 0);
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: flock on our own descriptor.
        assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
        locks.push(file);
    }
    let start = Instant::now();
    let listed = mmf::named::list().unwrap();
    assert!(start.elapsed() < Duration::from_secs(1), "list took {:?}", start.elapsed());
    assert!(listed.iter().filter(|o| o.name.starts_with(&prefix)).count() <= 5);
    drop(locks);
    // Dead by its forged mark, but not ours to remove: the name is taken.
    let err = create_named(&format!("{prefix}0"), 4096).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    for i in 0..5 {
        std::fs::remove_file(shm(&format!("{prefix}{i}"))).unwrap();
    }
    // A socket planted under a name.
    let name = unique_name("socket");
    let socket = std::os::unix::net::UnixListener::bind(shm(&name)).unwrap();
    let err = Mapping::open(&name, Access::ReadOnly).unwrap_err();
    assert!(matches!(err, Error::NotRegularFile { .. }), "{err:?}");
    drop(socket);
    std::fs::remove_file(shm(&name)).unwrap();
}

/// Another user's readable object: opening it read-write (or creating over it) is refused
/// as another user's, not as an opaque OS error.
#[test]
fn another_users_object_is_named_as_such_when_it_cannot_be_opened() {
    if let Some((_, name)) = role() {
        let err = MappingOptions::new()
            .access(Access::ReadWrite)
            .size(4096)
            .name(&name)
            .creation(CreationMode::OpenOrCreate)
            .map_anonymous()
            .unwrap_err();
        tell(&format!("foreign {}", matches!(err, Error::ForeignOwner { owner: 65534, .. })));
        return;
    }
    if !root_for("making an object as another user") {
        return;
    }
    let name = unique_name("their");
    std::fs::write(shm(&name), vec![0u8; 4096]).unwrap();
    std::os::unix::fs::chown(shm(&name), Some(65534), Some(65534)).unwrap();
    let wrapper = ["setpriv", "--reuid=4243", "--regid=4243", "--clear-groups", "--"];
    let test = "another_users_object_is_named_as_such_when_it_cannot_be_opened";
    let mut opener = Peer::spawn_under(&wrapper, test, "opener", &name, |_| {});
    assert_eq!(opener.expect("foreign"), "true");
    opener.wait_success();
    std::fs::remove_file(shm(&name)).unwrap();
}
