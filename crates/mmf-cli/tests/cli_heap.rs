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

    let text = MMF.ok(&["heap", "stat", p], dir.path());
    assert!(text.contains("transaction     3"), "{text}");
    assert!(text.contains("oldest reader   none"), "{text}");
    assert!(text.contains("counter") && text.contains("name"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&MMF.ok(&["heap", "stat", p, "--json"], dir.path())).unwrap();
    assert_eq!(json["txn"], 3);
    assert_eq!(json["format"], 1);
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
}

#[test]
fn a_file_that_is_not_a_heap_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.txt");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let out = MMF.run(&["heap", "check", path.to_str().unwrap()], dir.path());
    assert_fails(&out, 1, "not an mmf heap");
    let out = MMF.run(&["heap", "stat", "missing.heap"], dir.path());
    assert_fails(&out, 1, "missing.heap");
}
