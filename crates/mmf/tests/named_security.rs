//! Named mappings are secure by default (Linux): exact owner-only permissions whatever the
//! umask, and squatters (objects or symlinks planted under the name, objects of other
//! users) make creation and opening fail instead of being used.
#![cfg(target_os = "linux")]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use mmf::{Access, Error, Mapping, MappingOptions};
use mmf_testkit::{Peer, create_named, role, root_for, tell, unique_name};

fn shm(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name)
}

fn create_new(name: &str) -> mmf::Result<Mapping> {
    create_named(name, 4096)
}

/// umask is per process: each umask is tried in a child of its own.
#[test]
fn new_objects_are_exactly_0600_under_any_umask() {
    if let Some((_, umask)) = role() {
        let umask = u32::from_str_radix(&umask, 8).unwrap();
        // SAFETY: umask only changes this (child) process's file-creation mask.
        unsafe { libc::umask(umask) };
        let name = unique_name("umask");
        let _m = create_new(&name).unwrap();
        let mode = std::fs::metadata(shm(&name)).unwrap().permissions().mode() & 0o777;
        tell(&format!("mode {mode:o}"));
        let wide = unique_name("umask-wide");
        let _w = MappingOptions::new()
            .access(Access::ReadWrite)
            .size(4096)
            .name(&wide)
            .permissions(0o660)
            .map_anonymous()
            .unwrap();
        let mode = std::fs::metadata(shm(&wide)).unwrap().permissions().mode() & 0o777;
        tell(&format!("wide {mode:o}"));
        return;
    }
    for umask in ["000", "077", "022"] {
        let mut child = Peer::spawn("new_objects_are_exactly_0600_under_any_umask", "umask", umask);
        assert_eq!(child.expect("mode"), "600", "umask {umask}");
        assert_eq!(child.expect("wide"), "660", "umask {umask}");
        child.wait_success();
    }
}

#[test]
fn a_planted_object_makes_create_new_fail() {
    let name = unique_name("squat");
    std::fs::write(shm(&name), vec![0u8; 4096]).unwrap();
    std::fs::set_permissions(shm(&name), std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = create_new(&name).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    // Not ours (no mark), so mmf never removes it.
    assert!(shm(&name).exists());
    std::fs::remove_file(shm(&name)).unwrap();
}

#[test]
fn a_planted_symlink_is_never_followed() {
    let name = unique_name("symlink");
    let target = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(target.path(), vec![7u8; 4096]).unwrap();
    std::os::unix::fs::symlink(target.path(), shm(&name)).unwrap();
    let err = create_new(&name).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    let err = Mapping::open(&name, Access::ReadOnly).unwrap_err();
    assert!(matches!(err, Error::NotRegularFile { .. }), "{err:?}");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert_eq!(std::fs::read(target.path()).unwrap(), vec![7u8; 4096], "target untouched");
    std::fs::remove_file(shm(&name)).unwrap();
}

#[test]
fn a_directory_under_the_name_is_refused() {
    let name = unique_name("dir");
    std::fs::create_dir(shm(&name)).unwrap();
    let err = Mapping::open(&name, Access::ReadOnly).unwrap_err();
    std::fs::remove_dir(shm(&name)).unwrap();
    assert!(matches!(err, Error::NotRegularFile { .. }), "{err:?}");
}

/// The object is made by another user (`nobody`, through `setpriv`), as a neighbour would.
#[test]
fn an_object_of_another_user_is_refused_unless_allowed() {
    if let Some((role, name)) = role() {
        assert_eq!(role, "maker");
        std::fs::write(shm(&name), vec![1u8; 4096]).unwrap();
        tell("made");
        return;
    }
    if !root_for("making an object as another user (setpriv)") {
        return;
    }
    let name = unique_name("foreign");
    let wrapper = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    let test = "an_object_of_another_user_is_refused_unless_allowed";
    let mut maker = Peer::spawn_under(&wrapper, test, "maker", &name, |_| {});
    maker.expect("made");
    maker.wait_success();
    assert_eq!(std::fs::metadata(shm(&name)).unwrap().uid(), 65534);
    let err = Mapping::open(&name, Access::ReadOnly).unwrap_err();
    assert!(matches!(err, Error::ForeignOwner { owner: 65534, .. }), "{err:?}");
    let opened = MappingOptions::new().allow_foreign_owner(true).open_named(&name).unwrap();
    assert_eq!(opened.size(), 4096);
    drop(opened);
    assert!(shm(&name).exists(), "not ours: never removed");
    std::fs::remove_file(shm(&name)).unwrap();
}
