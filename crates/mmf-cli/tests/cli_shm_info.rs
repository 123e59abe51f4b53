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
