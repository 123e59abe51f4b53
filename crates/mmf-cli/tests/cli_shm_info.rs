//! `mmf shm info`: a named mutex whose holder was killed shows the holder's slot, its pid
//! and that it is dead; JSON for scripts; a name without a sync area is a clear error.

use std::path::Path;

use mmf::sync::NamedMutex;
use mmf_testkit::cli::{Tool, assert_fails};
use mmf_testkit::{Peer, hear, role, tell, unique_name};

const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

const TEST: &str = "info_shows_a_dead_holder_of_a_named_mutex";

#[test]
fn info_shows_a_dead_holder_of_a_named_mutex() {
    if let Some((_, name)) = role() {
        let mutex = NamedMutex::open(&name).unwrap();
        let _guard = mutex.lock().unwrap();
        tell("locked");
        hear();
        return;
    }
    let name = unique_name("cli-info");
    let mutex = NamedMutex::create(&name).unwrap();
    let mut peer = Peer::spawn(TEST, "hold", &name);
    peer.expect("locked");
    let pid = peer.pid();
    let alive = MMF.ok(&["shm", "info", &name], Path::new("."));
    assert!(alive.contains(&format!("pid {pid}")), "{alive}");
    assert!(alive.contains("alive"), "{alive}");
    assert!(
        alive.contains(&format!("mutex                held by slot 0 (pid {pid}, alive)")),
        "{alive}"
    );

    peer.kill();
    let dead = MMF.ok(&["shm", "info", &name], Path::new("."));
    assert!(dead.contains(&format!("held by slot 0 (pid {pid}, dead)")), "{dead}");

    let json: serde_json::Value =
        serde_json::from_str(&MMF.ok(&["shm", "info", &name, "--json"], Path::new("."))).unwrap();
    assert_eq!(json["participants"][0]["pid"], pid);
    assert_eq!(json["participants"][0]["alive"], false);
    assert_eq!(json["objects"][0]["kind"], "mutex");
    assert_eq!(json["objects"][0]["holder_pid"], pid);
    drop(mutex);
}

#[test]
fn info_on_a_name_without_a_sync_area_says_so() {
    let name = unique_name("cli-info-plain");
    let _m = mmf_testkit::create_named(&name, 4096).unwrap();
    let out = MMF.run(&["shm", "info", &name], Path::new("."));
    assert_fails(&out, 1, "no sync area here");
}

/// Words that cannot be (a lock word naming slot 1023 of a 64-slot table, more sleepers
/// than a system has threads, a semaphore count past its maximum) are shown as corrupt,
/// never interpreted.
#[test]
fn info_shows_impossible_words_as_corrupt() {
    use std::sync::atomic::{AtomicU32, Ordering};

    use mmf::sync::NamedSemaphore;
    // A named object's area: a 64-byte header, 64 participant slots of 32 bytes, then
    // object 0: state, sleepers.
    const STATE: usize = 64 + 64 * 32;
    let name = unique_name("cli-info-corrupt");
    let mutex = NamedMutex::create(&name).unwrap();
    let view = mutex.mapping().view_mut(..).unwrap();
    view.get::<AtomicU32>(STATE).unwrap().store(5 << 10 | 1023, Ordering::SeqCst);
    view.get::<AtomicU32>(STATE + 4).unwrap().store(u32::MAX, Ordering::SeqCst);
    let out = MMF.ok(&["shm", "info", &name], Path::new("."));
    assert!(out.contains("mutex                CORRUPT: "), "{out}");
    assert!(out.contains("the lock word 0x17ff names no owner (slot 1023 of 64"), "{out}");
    assert!(out.contains("4294967295 sleepers, more than a system has threads"), "{out}");
    assert!(!out.contains("held by"), "a corrupt lock word was read as a holder: {out}");
    let json: serde_json::Value =
        serde_json::from_str(&MMF.ok(&["shm", "info", &name, "--json"], Path::new("."))).unwrap();
    assert_eq!(json["objects"][0]["holder"], serde_json::Value::Null);
    assert_eq!(json["objects"][0]["corrupt"].as_array().unwrap().len(), 2, "{json}");

    let sem_name = unique_name("cli-info-corrupt-sem");
    let sem = NamedSemaphore::create(&sem_name, 1, 3).unwrap();
    let view = sem.mapping().view_mut(..).unwrap();
    view.get::<AtomicU32>(STATE).unwrap().store(9, Ordering::SeqCst);
    let out = MMF.ok(&["shm", "info", &sem_name], Path::new("."));
    assert!(out.contains("semaphore            CORRUPT: count 9 past its maximum 3"), "{out}");
}

/// Another user's object (made by `nobody` through `setpriv`) is refused, as the named
/// layer refuses it everywhere, unless `--allow-foreign-owner` says to look anyway.
#[cfg(target_os = "linux")]
#[test]
fn info_of_another_users_object_needs_allow_foreign_owner() {
    const TEST: &str = "info_of_another_users_object_needs_allow_foreign_owner";
    if let Some((role, name)) = role() {
        assert_eq!(role, "maker");
        let mut keep = mmf::named::NameOptions::new();
        keep.keep(true);
        drop(NamedMutex::create_with(&name, &keep).unwrap());
        tell("made");
        return;
    }
    if !mmf_testkit::root_for("making a named mutex as another user (setpriv)") {
        return;
    }
    let name = unique_name("cli-info-foreign");
    let wrapper = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    let mut maker = Peer::spawn_under(&wrapper, TEST, "maker", &name, |_| {});
    maker.expect("made");
    maker.wait_success();
    let refused = MMF.run(&["shm", "info", &name], Path::new("."));
    assert_fails(&refused, 1, "--allow-foreign-owner");
    // Every command that opens it refuses it in the shell's words, not the library's
    // (review 55: `NameOptions::allow_foreign_owner` was the advice).
    for args in [&["shm", "info", &name][..], &["shm", "dump", &name], &["chan", "info", &name]] {
        let out = MMF.run(args, Path::new("."));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && err.contains("belongs to user 65534")
                && err.contains(&format!("`mmf shm rm {name}`"))
                && !err.contains("NameOptions"),
            "{args:?}: {err}"
        );
    }
    let out = MMF.ok(&["shm", "info", &name, "--allow-foreign-owner"], Path::new("."));
    assert!(out.contains("0 of 64 participant slots in use"), "{out}");
    assert!(out.contains("mutex                free; 0 waiting"), "{out}");
    std::fs::remove_file(Path::new("/dev/shm").join(&name)).unwrap();
}
