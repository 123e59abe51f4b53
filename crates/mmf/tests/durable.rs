//! Durability where it is decided (Linux): after a flush, the page cache holds none of the
//! file's pages dirty or under write-back (`cachestat`), and a read past the page cache
//! (`O_DIRECT`) returns the bytes. A read through the cache would pass even if `flush` did
//! nothing. On the ext4 (or whatever disk file system) under `target/`, and on a small
//! tmpfs, where there is nothing to write.
#![cfg(target_os = "linux")]

use std::fs::File;
use std::path::PathBuf;

use mmf::{Access, Flushed, MappingOptions, ViewOptions};
use mmf_testkit::durability::{page_cache, read_direct};
use mmf_testkit::{Peer, role, tell};

const MIB: usize = 1 << 20;

/// A new empty file in a directory on the disk file system under `target/`.
fn disk_file(tag: &str) -> (tempfile::TempDir, PathBuf, File) {
    mmf_testkit::files::new_file_in(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")), tag)
}

/// Whether the file system under `target/` is tmpfs (then there is no device to test
/// against, and the disk tests say so).
fn target_on_tmpfs() -> bool {
    mmf_testkit::files::in_memory_under(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")))
}

#[test]
fn flush_leaves_nothing_dirty_and_the_device_has_the_bytes() {
    if target_on_tmpfs() {
        eprintln!("SKIPPED: target/ is on tmpfs, which has no device; the tmpfs test covers it");
        return;
    }
    let (_dir, path, file) = disk_file("view");
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(4 * MIB as u64)
        .map_file(&file)
        .unwrap();
    let view = mapping.view_mut(..).unwrap();
    view.write_at(100, b"first record").unwrap();
    view.write_at(3 * MIB + 5, b"second record").unwrap();
    let before = page_cache(&file, 0, 0);
    assert!(before.dirty > 0, "the stores should have dirtied pages: {before:?}");

    assert_eq!(view.flush().unwrap(), Flushed::Durable);
    let after = page_cache(&file, 0, 0);
    assert!(after.clean(), "after flush the page cache still holds {after:?}");
    assert_eq!(read_direct(&path, 100, 12), b"first record");
    assert_eq!(read_direct(&path, 3 * MIB as u64 + 5, 13), b"second record");
}

#[test]
fn flush_range_writes_its_range_and_leaves_the_rest() {
    if target_on_tmpfs() {
        eprintln!("SKIPPED: target/ is on tmpfs");
        return;
    }
    let (_dir, path, file) = disk_file("ranges");
    let size = 16 * MIB;
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(size as u64).map_file(&file).unwrap();
    let view = mapping.view_mut(..).unwrap();
    view.write_at(10, b"near").unwrap();
    view.write_at(12 * MIB, b"far").unwrap();
    // Only the far range: the near page stays dirty (a folio is at most 2 MiB).
    view.flush_range(12 * MIB, 3).unwrap();
    let far = page_cache(&file, 8 * MIB as u64, 8 * MIB as u64);
    let near = page_cache(&file, 0, 4 * MIB as u64);
    assert!(far.clean(), "the flushed range is still dirty: {far:?}");
    assert!(near.dirty > 0, "flush_range must not write other ranges: {near:?}");
    assert_eq!(read_direct(&path, 12 * MIB as u64, 3), b"far");
    view.flush_range(0, 4096).unwrap();
    assert!(page_cache(&file, 0, 0).clean());
    assert_eq!(read_direct(&path, 10, 4), b"near");
}

#[test]
fn a_write_through_commit_is_durable_after_flush_range() {
    if target_on_tmpfs() {
        eprintln!("SKIPPED: target/ is on tmpfs");
        return;
    }
    let (_dir, path, file) = disk_file("commit");
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(8 * MIB as u64)
        .map_file(&file)
        .unwrap();
    let log = ViewOptions::new().write_through(true).map_mut(&mapping).unwrap();
    // Settle the new file first, so that only the commit is dirty.
    log.flush().unwrap();
    log.write_at(70_000, b"commit 1").unwrap();
    let page = page_cache(&file, 70_000 / 4096 * 4096, 4096);
    assert_eq!(page.dirty, 1, "the write should have dirtied its page: {page:?}");
    // Through the file, not the mapping: the view's own page tables hold nothing dirty
    // (a store would have made its page dirty there).
    assert_eq!(mmf_testkit::files::dirty_kb(log.as_ptr()), 0, "a store went through the mapping");

    assert_eq!(log.flush_range(70_000, 8).unwrap(), Flushed::Durable);
    assert!(page_cache(&file, 0, 0).clean(), "still dirty: {:?}", page_cache(&file, 0, 0));
    assert_eq!(read_direct(&path, 70_000, 8), b"commit 1");
}

/// A full file system is an error from the write itself: no page is ever faulted. The test
/// mounts a 1 MiB tmpfs in a private user and mount namespace (`unshare -Urm`).
#[test]
fn a_write_through_into_a_full_file_system_is_storage_full() {
    if let Some((role, _)) = role() {
        assert_eq!(role, "small-fs");
        let dir = small_tmpfs();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("f"))
            .unwrap();
        let mapping = MappingOptions::new()
            .access(Access::ReadWrite)
            .size(8 * MIB as u64)
            .map_file(&file)
            .unwrap();
        let log = ViewOptions::new().write_through(true).map_mut(&mapping).unwrap();
        log.write_at(0, &vec![1u8; 512 * 1024]).unwrap();
        let err = log.write_at(MIB, &vec![2u8; 2 * MIB]).unwrap_err();
        tell(&format!("storage full {}", matches!(err, mmf::Error::StorageFull { .. })));
        tell(&format!("message {err}"));
        return;
    }
    let test = "a_write_through_into_a_full_file_system_is_storage_full";
    let mut child = Peer::spawn_under(&["unshare", "-Urm", "--"], test, "small-fs", "", |_| {});
    assert_eq!(child.expect("storage full"), "true");
    assert!(child.expect("message").contains("no space"));
    child.wait_success();
}

/// On tmpfs there is no device: a flush says so, and the bytes are there for a direct read.
#[test]
fn on_tmpfs_a_flush_says_the_bytes_live_in_memory() {
    if let Some((role, _)) = role() {
        assert_eq!(role, "tmpfs");
        let dir = small_tmpfs();
        let path = dir.join("f");
        let file =
            File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        let mapping = MappingOptions::new()
            .access(Access::ReadWrite)
            .size(MIB as u64)
            .map_file(&file)
            .unwrap();
        let view = mapping.view_mut(..).unwrap();
        view.write_at(5000, b"mapped").unwrap();
        let log = ViewOptions::new().write_through(true).map_mut(&mapping).unwrap();
        log.write_at(9000, b"written").unwrap();
        tell(&format!(
            "flushed {:?} {:?}",
            view.flush().unwrap(),
            log.flush_range(9000, 7).unwrap()
        ));
        let direct = [read_direct(&path, 5000, 6), read_direct(&path, 9000, 7)];
        tell(&format!("direct {}", String::from_utf8_lossy(&direct.concat())));
        return;
    }
    let test = "on_tmpfs_a_flush_says_the_bytes_live_in_memory";
    let mut child = Peer::spawn_under(&["unshare", "-Urm", "--"], test, "tmpfs", "", |_| {});
    assert_eq!(child.expect("flushed"), "InMemory InMemory");
    assert_eq!(child.expect("direct"), "mappedwritten");
    child.wait_success();
}

/// Mounts a 1 MiB tmpfs on a new directory (in the private mount namespace of the role),
/// kept for the rest of the role.
fn small_tmpfs() -> PathBuf {
    mmf_testkit::small_tmpfs().keep()
}

/// `sync_parent` syncs the directory (the CLI tests check the `fsync` it makes, with a
/// relative path too); a path whose directory is gone is an error.
#[test]
fn sync_parent_of_a_path_in_a_missing_directory_is_not_found() {
    let (dir, path, _file) = disk_file("named");
    mmf::file::sync_parent(&path).unwrap();
    let gone = mmf::file::sync_parent(dir.path().join("no-such-dir/file")).unwrap_err();
    assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
}
