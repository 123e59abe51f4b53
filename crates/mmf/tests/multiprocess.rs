//! Two real processes share a file through their own views: the test binary re-runs
//! itself as the child (a `Peer` playing a role).

use mmf::{Access, Mapping};
use mmf_testkit::{Peer, file_with, open_rw, role, tell};

/// Offsets the two processes write at: past the first allocation granule, unaligned.
const PARENT_AT: usize = 70_001;
const CHILD_AT: usize = 150_003;

const TEST: &str = "child_sees_parent_writes_before_any_flush_and_back";

#[test]
fn child_sees_parent_writes_before_any_flush_and_back() {
    if let Some((_, path)) = role() {
        return child(&path);
    }
    let (_dir, path, file) = file_with(256 * 1024, |_| 0);
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let view = mapping.view_mut(..).unwrap();
    view.write_at(PARENT_AT, b"written by the parent, not flushed").unwrap();

    let mut peer = Peer::spawn(TEST, "child", path.to_str().unwrap());
    assert_eq!(peer.expect("saw"), "written by the parent, not flushed");
    peer.expect("wrote");
    // The child wrote through its own view and did not flush either.
    let mut got = [0u8; 24];
    view.read_at(CHILD_AT, &mut got).unwrap();
    assert_eq!(&got, b"written by the child pid");
    peer.wait_success();
}

fn child(path: &str) {
    let file = open_rw(std::path::Path::new(path));
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    // Its own view, at a different offset from the parent's.
    let view = mapping.view_mut(65_536..).unwrap();
    let mut got = [0u8; 34];
    view.read_at(PARENT_AT - 65_536, &mut got).unwrap();
    tell(&format!("saw {}", String::from_utf8_lossy(&got)));
    view.write_at(CHILD_AT - 65_536, b"written by the child pid").unwrap();
    tell("wrote");
}
