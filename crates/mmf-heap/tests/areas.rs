//! One heap file reached through two lock areas: processes in two mount namespaces
//! (containers sharing a volume but not `/dev/shm`), two Windows sessions, or after the
//! area's name was removed while processes held it. Two areas are two writer locks and two
//! reader tables: the second opener is refused (`presence.rs`), never let in to corrupt
//! the heap. Real processes; the hidden `lock_area_tag` option stands for the namespace
//! where the test cannot make one (Windows, a run without root).

use std::path::{Path, PathBuf};

use mmf_heap::{Heap, HeapOptions, Off};
use mmf_testkit::{Peer, hear, role, tell};

/// A child: opens the heap at `path` (through the area tagged `tag`, read-only if asked),
/// says `opened` or `refused: ERROR`, and holds it until told to go.
fn child(arg: &str) {
    let mut parts = arg.split('|');
    let (path, tag, read_only) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
    // SAFETY: only these test processes write the file, through mmf-heap.
    let heap = unsafe {
        Heap::open(path, HeapOptions::new().lock_area_tag(tag).read_only(read_only == Some("ro")))
    };
    match &heap {
        Ok(_) => tell("opened"),
        Err(e) => tell(&format!("refused: {e}")),
    }
    let _ = hear();
}

fn make(dir: &Path) -> PathBuf {
    let path = dir.join("areas.heap");
    // SAFETY: a new file of this test.
    let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap();
    let mut tx = heap.write().unwrap();
    let v: Off<u64> = tx.alloc(&7).unwrap();
    tx.set_root("v", &v).unwrap();
    tx.commit().unwrap();
    path
}

/// What a child opening `path` through area `tag` says (it is then told to go).
fn try_open(test: &str, path: &Path, tag: &str, read_only: bool) -> String {
    let ro = if read_only { "|ro" } else { "" };
    let mut peer = Peer::spawn(test, "open", &format!("{}|{tag}{ro}", path.display()));
    let said = peer.expect("");
    peer.say("go");
    peer.wait_success();
    said
}

fn assert_refused(said: &str, what: &str) {
    assert!(
        said.starts_with("refused") && said.contains("another lock area"),
        "{what}: the child said {said:?}"
    );
}

#[test]
fn a_process_using_another_lock_area_is_refused() {
    const TEST: &str = "a_process_using_another_lock_area_is_refused";
    if let Some((_, arg)) = role() {
        return child(&arg);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = make(dir.path());
    // SAFETY: as in `child`.
    let here = unsafe { Heap::open(&path, &HeapOptions::new()) }.unwrap();
    assert_eq!(try_open(TEST, &path, "", false), "opened", "the same area");
    assert_refused(&try_open(TEST, &path, "-elsewhere", false), "a writer of another area");
    assert_refused(&try_open(TEST, &path, "-elsewhere", true), "a reader of another area");
    drop(here);
    // Nobody left on the first area: the other one may have the file.
    let mut there = Peer::spawn(TEST, "open", &format!("{}|-elsewhere", path.display()));
    assert_eq!(there.expect(""), "opened");
    // SAFETY: as above.
    let refused =
        unsafe { Heap::open(&path, &HeapOptions::new()) }.err().map(|e| format!("refused: {e}"));
    assert_refused(&refused.unwrap_or_default(), "this process, while the other area is used");
    there.say("go");
    there.wait_success();
    // SAFETY: as above.
    let heap = unsafe { Heap::open(&path, &HeapOptions::new()) }.unwrap();
    let v: Off<u64> = heap.read().unwrap().root("v").unwrap().unwrap();
    assert_eq!(heap.read().unwrap().get(v).unwrap(), 7);
}

/// Many processes of one area opening and closing at once are never taken for another
/// area (on Windows a look locks the range for a moment, which another look can meet).
#[test]
fn processes_opening_at_once_through_one_area_are_not_refused() {
    const TEST: &str = "processes_opening_at_once_through_one_area_are_not_refused";
    if let Some((role, arg)) = role() {
        assert_eq!(role, "cycle");
        for i in 0..40 {
            // SAFETY: as in `child`.
            if let Err(e) = unsafe { Heap::open(&arg, &HeapOptions::new()) } {
                tell(&format!("refused at {i}: {e}"));
                return;
            }
        }
        tell("done");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = make(dir.path());
    let arg = path.display().to_string();
    let mut peers: Vec<Peer> = (0..4).map(|_| Peer::spawn(TEST, "cycle", &arg)).collect();
    for p in &mut peers {
        assert_eq!(p.expect(""), "done");
    }
    peers.into_iter().for_each(Peer::wait_success);
}

/// The area's name removed while a process has the heap open (`mmf shm rm`, which the
/// area's errors suggest once nobody has it open): the next opener would make a new area.
#[cfg(target_os = "linux")]
#[test]
fn an_opener_after_the_area_name_was_removed_is_refused() {
    const TEST: &str = "an_opener_after_the_area_name_was_removed_is_refused";
    if let Some((_, arg)) = role() {
        return child(&arg);
    }
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = make(dir.path());
    // SAFETY: as in `child`.
    let here = unsafe { Heap::open(&path, &HeapOptions::new()) }.unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    let prefix = format!("mmf-heap-{:x}-{:x}-", meta.dev(), meta.ino());
    let removed: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| std::fs::remove_file(e.path()).map(|()| e.path()))
        .collect();
    assert_eq!(removed.len(), 1, "the area {prefix}*: {removed:?}");
    assert_refused(&try_open(TEST, &path, "", false), "an opener after the name went");
    drop(here);
}

/// A process in another mount namespace with its own `/dev/shm` (a container sharing
/// the volume): the real case the tag stands for.
#[cfg(target_os = "linux")]
#[test]
fn a_process_in_another_mount_namespace_is_refused() {
    const TEST: &str = "a_process_in_another_mount_namespace_is_refused";
    if let Some((_, arg)) = role() {
        return child(&arg);
    }
    if !mmf_testkit::root_for("a private /dev/shm in a new mount namespace") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = make(dir.path());
    let wrapper = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        "mount -t tmpfs -o size=1m shm /dev/shm && exec \"$@\"",
        "sh",
    ];
    let arg = format!("{}|", path.display());
    let mut first = Peer::spawn_under(&wrapper, TEST, "open", &arg, |_| {});
    assert_eq!(first.expect(""), "opened", "alone in its namespace");
    // SAFETY: as in `child`.
    let refused =
        unsafe { Heap::open(&path, &HeapOptions::new()) }.err().map(|e| format!("refused: {e}"));
    assert_refused(&refused.unwrap_or_default(), "this namespace, while the other has it");
    first.say("go");
    first.wait_success();
    // SAFETY: as above.
    let here = unsafe { Heap::open(&path, &HeapOptions::new()) }.unwrap();
    let mut second = Peer::spawn_under(&wrapper, TEST, "open", &arg, |_| {});
    assert_refused(&second.expect(""), "the other namespace, while this one has it");
    second.say("go");
    second.wait_success();
    drop(here);
}

/// An opener of another area that keeps trying does not keep out the processes of the
/// area in use: a refused opener gives its lock back between looks (review 45: 3 of 20
/// opens of the right area were refused while another area's opener retried, as each
/// try held its lock for its 0.2 s of looks).
#[test]
fn a_refused_opener_that_keeps_trying_keeps_nobody_out() {
    const TEST: &str = "a_refused_opener_that_keeps_trying_keeps_nobody_out";
    if let Some((role, arg)) = role() {
        if role == "intruder" {
            let (path, tries) = arg.split_once('|').unwrap();
            let mut refused = 0;
            for _ in 0..tries.parse::<u32>().unwrap() {
                // SAFETY: as in `child`.
                let open = unsafe { Heap::open(path, HeapOptions::new().lock_area_tag("-x")) };
                refused += u32::from(open.is_err());
            }
            return tell(&format!("refused {refused}"));
        }
        return child(&arg);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = make(dir.path());
    // SAFETY: as in `child`.
    let here = unsafe { Heap::open(&path, &HeapOptions::new()) }.unwrap();
    let mut intruder = Peer::spawn(TEST, "intruder", &format!("{}|15", path.display()));
    for i in 0..10 {
        assert_eq!(try_open(TEST, &path, "", i % 2 == 1), "opened", "open {i} of the area in use");
    }
    assert_eq!(intruder.expect(""), "refused 15");
    intruder.wait_success();
    drop(here);
}
