//! `mmf heap check` and `mmf heap stat`: a good heap checks out and shows its roots; a
//! damaged block of the last commit, or a file that is not a heap, is exit status 1.

use std::path::Path;

use mmf_heap::{Heap, HeapOptions, Off, PStr};
use mmf_testkit::cli::{Tool, assert_fails};

const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

/// A heap with two roots; returns the offset of the counter's block (written by the
/// last commit).
fn make(path: &Path) -> u64 {
    // SAFETY: only this test writes the new file.
    let heap = unsafe { Heap::open(path, HeapOptions::new().create(true)) }.unwrap();
    let mut tx = heap.write().unwrap();
    let name = tx.str("ann").unwrap();
    tx.set_root("name", &name).unwrap();
    tx.commit().unwrap();
    let mut tx = heap.write().unwrap();
    let counter: Off<u64> = tx.alloc(&0x5555_5555_5555_5555).unwrap();
    tx.set_root("counter", &counter).unwrap();
    tx.commit().unwrap();
    counter.raw()
}

#[test]
fn a_good_heap_checks_out_and_stat_shows_its_roots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.heap");
    make(&path);
    let p = path.to_str().unwrap();
    let out = MMF.ok(&["heap", "check", p], dir.path());
    assert!(out.contains("ok: transaction 3, 2 roots"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&MMF.ok(&["heap", "check", p, "--json"], dir.path())).unwrap();
    assert_eq!((json["ok"].as_bool(), json["txn"].as_u64()), (Some(true), Some(3)), "{json}");
    assert_eq!((json["roots"].as_u64(), json["strings"].as_u64()), (Some(2), Some(1)), "{json}");

    let text = MMF.ok(&["heap", "stat", p], dir.path());
    assert!(text.contains("transaction     3"), "{text}");
    assert!(text.contains("oldest reader   none"), "{text}");
    assert!(text.contains("counter") && text.contains("name"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&MMF.ok(&["heap", "stat", p, "--json"], dir.path())).unwrap();
    assert_eq!(json["txn"], 3);
    assert_eq!(json["format"], 3);
    assert_eq!(json["roots"][0]["name"], "counter");
    assert_eq!(json["roots"][0]["len"], 8);
    assert_eq!(
        json["roots"][0]["type_hash"],
        format!("{:#018x}", <Off<u64> as mmf_heap::Persist>::TYPE_HASH)
    );
    assert_eq!(
        json["roots"][1]["type_hash"],
        format!("{:#018x}", <PStr as mmf_heap::Persist>::TYPE_HASH)
    );
    assert!(json["oldest_reader"].is_null());
    assert!(json["file_len"].as_u64().unwrap() >= json["allocated_end"].as_u64().unwrap());
}

/// A heap file of format version 1 (its hash buckets interleaved: read as format 3 they
/// would give wrong answers), its superblock resealed: `check`, `stat` and `dump` each
/// refuse it with one line that says it is older, exit status 1, no panic. (review-s8)
#[test]
fn a_format_1_heap_is_refused_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.heap");
    make(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[16..20].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    let hash = xxhash_rust::xxh3::xxh3_64(&bytes[..size - 8]);
    bytes[size - 8..size].copy_from_slice(&hash.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        &["heap", "check", p][..],
        &["heap", "stat", p],
        &["heap", "dump", p],
        &["heap", "dump", p, "name"],
    ] {
        let out = MMF.run(args, dir.path());
        assert_fails(&out, 1, "format version 1, written by an older mmf-heap");
    }
    // With `--json`, the error is also the one object on stdout.
    for command in ["check", "stat", "dump"] {
        let out = MMF.run(&["heap", command, p, "--json"], dir.path());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!((out.status.code(), json["ok"].as_bool()), (Some(1), Some(false)), "{json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(error.contains("format version 1, written by an older"), "{command}: {json}");
    }
}

#[test]
fn a_damaged_block_of_the_last_commit_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.heap");
    let at = make(&path) as usize;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let out = MMF.run(&["heap", "check", path.to_str().unwrap()], dir.path());
    assert_fails(&out, 1, "corrupted");
    let out = MMF.run(&["heap", "check", path.to_str().unwrap(), "--json"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false, "{json}");
    assert!(json["error"].as_str().is_some_and(|e| e.contains("corrupted")), "{json}");
    // `stat` and `dump` show the last whole commit, as a reader would, and say so.
    let file = path.to_str().unwrap();
    for args in [&["heap", "stat", file][..], &["heap", "dump", file]] {
        let out = MMF.run(args, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("the newest commit, transaction 3 (slot at byte")
                && err.contains("transaction 2 checks out and is shown"),
            "{args:?}: {err}"
        );
    }
    let good = dir.path().join("g.heap");
    make(&good);
    let out = MMF.run(&["heap", "stat", good.to_str().unwrap()], dir.path());
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
}

/// Review 55: a newest commit slot that does not check out itself (a crash while it was
/// written leaves one; so does damage) made every command show the commit before with no
/// word of it. Not a failure of `check` (a crash is no damage), but said by each command,
/// and in `--json`.
#[test]
fn a_torn_newest_slot_is_said_by_check_stat_and_dump() {
    use mmf_heap::format::{SLOT_OFFSETS, Slot};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.heap");
    make(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    // The slot of transaction 3, the newest, torn after its first 40 bytes.
    let txn = |at: u64| Slot::parse(&bytes[at as usize..], at).map(|s| s.txn_id).unwrap_or(0);
    let at = *SLOT_OFFSETS.iter().max_by_key(|&&at| txn(at)).unwrap();
    assert_eq!(txn(at), 3);
    bytes[at as usize + 40..][..64].fill(0xff);
    std::fs::write(&path, &bytes).unwrap();
    let file = path.to_str().unwrap();
    let said = format!("the commit slot at byte {at} does not check out: a newer commit cut off");
    for args in [&["heap", "check", file][..], &["heap", "stat", file], &["heap", "dump", file]] {
        let out = MMF.run(args, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains(&said) && err.contains("transaction 2 checks out and is shown"),
            "{args:?}: {err}"
        );
    }
    for command in ["check", "stat"] {
        let out = MMF.run(&["heap", command, file, "--json"], dir.path());
        assert!(out.status.success(), "{out:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["txn"], 2, "{json}");
        assert_eq!(json["passed_over"]["offset"], at, "{command}: {json}");
        assert_eq!(json["passed_over"]["txn"], serde_json::Value::Null, "{command}: {json}");
    }
    // A sound heap: nothing said, `null`.
    let good = dir.path().join("g.heap");
    make(&good);
    let out = MMF.run(&["heap", "check", good.to_str().unwrap(), "--json"], dir.path());
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["passed_over"], serde_json::Value::Null, "{json}");
}

#[test]
fn a_file_that_is_not_a_heap_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.txt");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let out = MMF.run(&["heap", "check", path.to_str().unwrap()], dir.path());
    assert_fails(&out, 1, "not an mmf heap");
    // Every `--json` command: one object on stdout with the error, the same error on
    // stderr, exit status 1 (review 55: `stat` and `dump` printed no JSON).
    let file = path.to_str().unwrap();
    for command in ["check", "stat", "dump"] {
        let out = MMF.run(&["heap", command, file, "--json"], dir.path());
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{command}: {e}: {out:?}"));
        assert_eq!((out.status.code(), json["ok"].as_bool()), (Some(1), Some(false)), "{json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(error.contains("not an mmf heap"), "{command}: {json}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(error), "{command}: {out:?}");
    }
    let out = MMF.run(&["heap", "stat", "missing.heap"], dir.path());
    assert_fails(&out, 1, "missing.heap");
}

/// A flipped byte in a collection nested deep in a root, written by an older commit:
/// the last commit's blocks check out, but `check` walks everything the roots reach
/// and fails there, naming the node (review s7: it said "ok").
#[test]
fn damage_deep_in_a_nested_collection_fails_the_check() {
    use mmf_heap::zerocopy::IntoBytes;
    use mmf_heap::{PMap, PVec};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.heap");
    let node = {
        // SAFETY: only this test writes the new file.
        let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap();
        let mut tx = heap.write().unwrap();
        let mut outer: PMap<u64, PVec<u64>> = PMap::default();
        for k in 0..40u64 {
            let mut v = PVec::default();
            for i in 0..600 {
                v.push(&mut tx, &(k + i)).unwrap();
            }
            outer.insert(&mut tx, &k, &v).unwrap();
        }
        tx.set_root("outer", &outer).unwrap();
        tx.commit().unwrap();
        let mut tx = heap.write().unwrap();
        tx.set_root("other", &1u32).unwrap();
        tx.commit().unwrap();
        let snap = heap.read().unwrap();
        let outer: PMap<u64, PVec<u64>> = snap.root("outer").unwrap().unwrap();
        let deep = *outer.get(&snap, &33).unwrap().unwrap();
        u64::from_le_bytes(deep.as_bytes()[..8].try_into().unwrap())
    };
    let p = path.to_str().unwrap();
    let out = MMF.ok(&["heap", "check", p], dir.path());
    assert!(out.contains("41 collections"), "{out}");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[node as usize + 64] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let out = MMF.run(&["heap", "check", p], dir.path());
    assert_fails(&out, 1, &format!("at byte offset {node}"));
}

/// Output that cannot be written (a full disk: `/dev/full`) is the command's one-line
/// error and exit status 1, not a panic (exit status 101) as `println!` made it.
#[cfg(target_os = "linux")]
#[test]
fn output_to_a_full_disk_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.heap");
    make(&path);
    let p = path.to_str().unwrap();
    for args in [&["heap", "check", p][..], &["heap", "stat", p], &["heap", "stat", p, "--json"]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = std::process::Command::new(MMF.0).args(args).stdout(full).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot write the output") && !err.contains("panicked"), "{err}");
    }
}

mod dump {
    use std::path::Path;

    use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
    use mmf_heap::{Heap, HeapOptions, Off, PBytes, PHashMap, PMap, PStr, PVec};
    use mmf_testkit::cli::assert_fails;

    use super::MMF;

    #[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
    #[zerocopy(crate = "mmf_heap::zerocopy")]
    #[repr(C)]
    struct Item {
        id: u64,
        qty: i32,
        price: f32,
        name: PStr,
    }
    mmf_heap::persist!(Item { id: u64, qty: i32, price: f32, name: PStr });

    /// A heap with a nested root (a map of vectors of items with names), a hash map of
    /// blobs and a pointer; returns the offset of the map's root node.
    fn make(path: &Path) -> u64 {
        // SAFETY: only this test writes the new file.
        let heap = unsafe { Heap::open(path, HeapOptions::new().create(true)) }.unwrap();
        let mut tx = heap.write().unwrap();
        let mut shelves: PMap<PStr, PVec<Item>> = PMap::new();
        for (s, shelf) in ["left", "right"].iter().enumerate() {
            let mut items = PVec::new();
            for i in 0..30u64 {
                let name = tx.str(&format!("{shelf} item {i}")).unwrap();
                let item = Item { id: i, qty: i as i32 - 3, price: 1.5, name };
                items.push(&mut tx, &item).unwrap();
            }
            let _ = s;
            shelves.insert(&mut tx, shelf, &items).unwrap();
        }
        tx.set_root("shelves", &shelves).unwrap();
        let mut blobs: PHashMap<u32, PBytes> = PHashMap::new();
        let blob = tx.bytes(&[0xde, 0xad, 0xbe, 0xef]).unwrap();
        blobs.insert(&mut tx, &7, &blob).unwrap();
        tx.set_root("blobs", &blobs).unwrap();
        let answer: Off<i64> = tx.alloc(&-42).unwrap();
        tx.set_root("answer", &answer).unwrap();
        tx.commit().unwrap();
        // Another commit, so that the map's nodes are not in the last manifest.
        let mut tx = heap.write().unwrap();
        tx.set_root("n", &1u8).unwrap();
        tx.commit().unwrap();
        u64::from_le_bytes(shelves.as_bytes()[..8].try_into().unwrap())
    }

    #[test]
    fn dump_walks_nested_collections_and_shows_strings_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.heap");
        make(&path);
        let p = path.to_str().unwrap();

        // Every root, its type, its top level.
        let all = MMF.ok(&["heap", "dump", p], dir.path());
        assert!(all.contains("shelves: PMap<PStr, PVec<Item>> = (2 entries)"), "{all}");
        assert!(all.contains("blobs: PHashMap<u32, PBytes> = (1 entries, hash order)"), "{all}");
        assert!(all.contains("answer: Off<i64> = → 0x"), "{all}");
        assert!(!all.contains("(30 elements)") && !all.contains("more"), "{all}");
        // Without ROOT, --items and --depth still count (review 55: --items was ignored).
        let some = MMF.ok(&["heap", "dump", p, "--items", "1", "--depth", "2"], dir.path());
        assert!(some.contains("… 1 more") && some.contains("(30 elements)"), "{some}");

        let text = MMF.ok(&["heap", "dump", p, "shelves", "--items", "2"], dir.path());
        assert!(text.contains("\"left\": (30 elements)"), "{text}");
        assert!(
            text.contains("[1] Item { id: 1, qty: -2, price: 1.5, name: \"left item 1\" }"),
            "{text}"
        );
        assert!(text.contains("… 28 more"), "{text}");
        let blobs = MMF.ok(&["heap", "dump", p, "blobs"], dir.path());
        assert!(blobs.contains("7: <4 bytes: deadbeef>"), "{blobs}");
        let answer = MMF.ok(&["heap", "dump", p, "answer"], dir.path());
        assert!(answer.contains(": -42"), "{answer}");

        let json: serde_json::Value = serde_json::from_str(&MMF.ok(
            &["heap", "dump", p, "shelves", "--json", "--items", "1", "--bytes", "4"],
            dir.path(),
        ))
        .unwrap();
        let shelves = &json["roots"][0];
        assert_eq!(shelves["type"], "PMap<PStr, PVec<Item>>");
        assert_eq!(shelves["value"]["len"], 2);
        let left = &shelves["value"]["entries"][0];
        assert_eq!(left[0], "left");
        assert_eq!(left[1]["len"], 30);
        let item = &left[1]["items"][0];
        assert_eq!((item["type"].as_str(), item["qty"].as_i64()), (Some("Item"), Some(-3)));
        assert_eq!(item["name"]["text"], "left");
        assert_eq!(item["name"]["len"], 11);
    }

    #[test]
    fn dump_reports_a_damaged_node_with_its_offset_and_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.heap");
        let node = make(&path) as usize;
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[node + 200] ^= 0x01; // inside the node: only its checksum tells
        std::fs::write(&path, &bytes).unwrap();
        let p = path.to_str().unwrap();
        let out = MMF.run(&["heap", "dump", p, "shelves"], dir.path());
        assert_fails(&out, 1, &format!("at byte offset {node}"));
        let out = MMF.run(&["heap", "dump", p, "no-such-root"], dir.path());
        assert_fails(&out, 1, "no root named");
        // The other roots still dump.
        MMF.ok(&["heap", "dump", p, "blobs"], dir.path());
    }
}

/// A hash map of string keys (buckets of slots, keys in the key heap),
/// nested in an ordered map and big enough for directories and split buckets, with a
/// string in each value: `check` walks every bucket and string, `dump` shows them.
/// (review-s8)
#[test]
fn a_hash_map_nested_in_a_map_checks_out_and_dumps() {
    use mmf_heap::{PHashMap, PMap};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.heap");
    {
        // SAFETY: only this test writes the new file.
        let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap();
        let mut tx = heap.write().unwrap();
        let mut outer: PMap<u32, PHashMap<PStr, PStr>> = PMap::new();
        for o in 0..3u32 {
            let mut inner = PHashMap::new();
            for i in 0..700u32 {
                let v = tx.str(&format!("value {o}/{i}")).unwrap();
                inner.insert(&mut tx, format!("key {i:04} of {o}").as_str(), &v).unwrap();
            }
            // Removals: some buckets merge again.
            for i in (0..700u32).filter(|i| i % 3 == 0) {
                inner.remove(&mut tx, format!("key {i:04} of {o}").as_str()).unwrap();
            }
            outer.insert(&mut tx, &o, &inner).unwrap();
        }
        tx.set_root("outer", &outer).unwrap();
        tx.commit().unwrap();
    }
    let p = path.to_str().unwrap();
    let out = MMF.ok(&["heap", "check", p], dir.path());
    assert!(out.contains("ok: transaction 2, 1 roots"), "{out}");
    assert!(out.contains("4 collections") && out.contains("1398 strings"), "{out}");
    let text = MMF.ok(&["heap", "dump", p, "outer", "--items", "3"], dir.path());
    assert!(text.contains("PMap<u32, PHashMap<PStr, PStr>>"), "{text}");
    assert!(text.contains("(466 entries, hash order)"), "{text}");
    assert!(text.contains("\"key ") && text.contains("\"value 0/"), "{text}");
}

/// A heap of 100k hash map entries (~13 MB) at `path`, in one commit.
#[cfg(target_os = "linux")]
fn make_big(path: &Path) {
    use mmf_heap::PHashMap;
    // SAFETY: only this test writes the new file.
    let heap = unsafe { Heap::open(path, HeapOptions::new().create(true)) }.unwrap();
    let mut tx = heap.write().unwrap();
    let mut map: PHashMap<u64, [u64; 8]> = PHashMap::new();
    for k in 0..100_000u64 {
        map.insert(&mut tx, &k, &[k; 8]).unwrap();
    }
    tx.set_root("map", &map).unwrap();
    tx.commit().unwrap();
}

/// `mmf heap check FILE` with `meanwhile` done while it is stopped with `file` mapped
/// (run again where it was done before it was seen mapped, up to 10 times); its output,
/// after it was checked not to be a death by a signal.
#[cfg(target_os = "linux")]
fn check_interrupted(dir: &Path, file: &Path, meanwhile: impl Fn()) -> std::process::Output {
    use std::os::unix::process::ExitStatusExt;
    let p = file.to_str().unwrap();
    for _ in 0..10 {
        if let Some(out) = MMF.run_paused_when_mapped(&["heap", "check", p], dir, file, &meanwhile)
        {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.signal(), None, "killed by a signal: {stderr}");
            return out;
        }
    }
    panic!("in 10 tries the check was never seen with {p} mapped");
}

/// A heap file truncated by another process while `mmf heap check` reads it: one line
/// that says so, status 1, never death by `SIGBUS`. The command is stopped as soon as it
/// has the file mapped, the file is cut to 64 KiB, and it goes on. What reads past the
/// cut here is one of mmf's guarded copies (opening hashes what the last commit wrote),
/// which reports it.
#[cfg(target_os = "linux")]
#[test]
fn a_heap_file_truncated_under_the_check_is_one_line_and_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.heap");
    make_big(&path);
    let work = dir.path().join("cut.heap");
    // A copy to cut (a try that ends before the command is seen with the file mapped
    // leaves it whole for the next).
    std::fs::copy(&path, &work).unwrap();
    let out = check_interrupted(dir.path(), &work, || {
        let file = std::fs::OpenOptions::new().write(true).open(&work).unwrap();
        file.set_len(64 * 1024).unwrap();
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cut.heap") && stderr.contains("truncated"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A `SIGBUS` outside mmf's guarded copies (a heap command reads most nodes in place,
/// where a page past a truncation faults; here the signal is sent, as such a fault would
/// raise it, while the command is stopped with the file mapped): the command's handler
/// names the file, says what happened, and exits with status 1. Without it the command
/// died of the signal without a word.
#[cfg(target_os = "linux")]
#[test]
fn a_sigbus_outside_the_guarded_copies_is_one_line_and_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("bus.heap");
    make_big(&work);
    let p = work.to_str().unwrap();
    let out = check_interrupted(dir.path(), &work, || {
        let sent = std::process::Command::new("pkill").args(["-BUS", "-f", p]).status();
        assert!(sent.expect("pkill (procps)").success(), "no process named {p}");
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bus.heap") && stderr.contains("could not be read"), "{stderr}");
}

/// Review 42: `mmf heap check` by another user locked out the owner's writes (and failed
/// itself while the owner had the heap open). Now another user's read-only open uses no
/// lock area: the check passes while the owner holds the heap, and the owner writes on.
#[cfg(target_os = "linux")]
#[test]
fn another_user_checks_a_heap_the_owner_has_open() {
    use std::os::unix::fs::PermissionsExt;
    if !mmf_testkit::root_for("mmf heap check as another user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("shared.heap");
    // SAFETY: only this test writes the new file.
    let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true).mode(0o644)) }.unwrap();
    let write = |value: u64| {
        let mut tx = heap.write().unwrap();
        let v = tx.alloc(&value).unwrap();
        tx.set_root("v", &v).unwrap();
        tx.commit().unwrap();
    };
    write(1);
    let as_nobody = |args: &[&str]| {
        let mut command = std::process::Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", MMF.0])
            .args(args)
            .current_dir(dir.path());
        mmf_testkit::output(&mut command).unwrap()
    };
    let p = path.to_str().unwrap();
    for args in [["heap", "check", p], ["heap", "stat", p], ["heap", "dump", p]] {
        let out = as_nobody(&args);
        assert!(out.status.success(), "{args:?} as nobody: {out:?}");
        write(2);
    }
    let out = as_nobody(&["heap", "check", p]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: transaction 5"), "{out:?}");
    // The owner's snapshot is not visible to the other user, and stat says so.
    let snap = heap.read().unwrap();
    let out = as_nobody(&["heap", "stat", p]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("oldest reader   none among the readers this command can see"), "{text}");
    let out = as_nobody(&["heap", "stat", p, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["oldest_reader_complete"], false, "{json}");
    drop(snap);
    let json: serde_json::Value =
        serde_json::from_str(&MMF.ok(&["heap", "stat", p, "--json"], dir.path())).unwrap();
    assert_eq!(json["oldest_reader_complete"], true, "{json}");
}
