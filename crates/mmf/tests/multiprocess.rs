//! Two real processes share a file through their own views: the test binary re-runs
//! itself as the child, with an environment variable naming the role.

mod common;

use std::process::Command;

use mmf::{Access, Mapping};

const CHILD_FILE: &str = "MMF_TEST_CHILD_FILE";

/// Offsets the two processes write at: past the first allocation granule, unaligned.
const PARENT_AT: usize = 70_001;
const CHILD_AT: usize = 150_003;

#[test]
fn child_sees_parent_writes_before_any_flush_and_back() {
    if let Ok(path) = std::env::var(CHILD_FILE) {
        return child(&path);
    }
    let (_dir, path, file) = common::file_with(256 * 1024, |_| 0);
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let mut view = mapping.view_mut(..).unwrap();
    view.write_at(PARENT_AT, b"written by the parent, not flushed").unwrap();

    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_sees_parent_writes_before_any_flush_and_back", "--nocapture"])
        .env(CHILD_FILE, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("child: saw the parent's bytes"), "{stdout}");

    // The child wrote through its own view and did not flush either.
    let mut got = [0u8; 24];
    view.read_at(CHILD_AT, &mut got).unwrap();
    assert_eq!(&got, b"written by the child pid");
}

fn child(path: &str) {
    let file = common::open_rw(std::path::Path::new(path));
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    // Its own view, at a different offset from the parent's.
    let mut view = mapping.view_mut(65_536..).unwrap();
    let mut got = [0u8; 34];
    view.read_at(PARENT_AT - 65_536, &mut got).unwrap();
    assert_eq!(&got, b"written by the parent, not flushed");
    println!("child: saw the parent's bytes");
    view.write_at(CHILD_AT - 65_536, b"written by the child pid").unwrap();
}
