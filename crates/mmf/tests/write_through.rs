//! Write-through views and what a flush says, on both platforms: every view sees a
//! write-through write at once, what cannot write through is refused, and `flush` tells
//! what it did. (Where the bytes end up — dirty counts, the device — is `durable.rs`, Linux.)

use std::fs::File;
use std::path::PathBuf;

use mmf::{Access, Flushed, Mapping, MappingOptions, ViewOptions};
use mmf_testkit::open_rw;

const MIB: usize = 1 << 20;

/// A new empty file in a directory on the file system under `target/`.
fn disk_file(tag: &str) -> (tempfile::TempDir, PathBuf, File) {
    mmf_testkit::files::new_file_in(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")), tag)
}

/// Whether the file system under `target/` keeps its files in memory (tmpfs).
fn target_on_tmpfs() -> bool {
    mmf_testkit::files::in_memory_under(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")))
}

#[test]
fn write_through_writes_are_seen_by_every_view_at_once() {
    let (_dir, path, file) = disk_file("coherent");
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(MIB as u64).map_file(&file).unwrap();
    let ordinary = mapping.view(..).unwrap();
    let other_mapping = Mapping::from_file(&open_rw(&path), Access::ReadOnly).unwrap();
    let other = other_mapping.view(4096..).unwrap();
    let log = ViewOptions::new().offset(4096).write_through(true).map_mut(&mapping).unwrap();
    for round in 0..100u32 {
        let bytes = round.to_le_bytes();
        log.write_at(round as usize * 8, &bytes).unwrap();
        let mut seen = [0u8; 4];
        ordinary.read_at(4096 + round as usize * 8, &mut seen).unwrap();
        assert_eq!(seen, bytes, "the same mapping's view, round {round}");
        other.read_at(round as usize * 8, &mut seen).unwrap();
        assert_eq!(seen, bytes, "another mapping's view, round {round}");
        assert_eq!(
            mmf::View::atomic_u32(&log, round as usize * 8)
                .unwrap()
                .load(std::sync::atomic::Ordering::Relaxed),
            round
        );
    }
    // And a copy from another view, straight from its pages.
    let source = Mapping::anonymous(MIB as u64).unwrap();
    source.view_mut(..).unwrap().write_at(0, &[0xAB; 8192]).unwrap();
    log.copy_from(64 * 1024, &source.view(..).unwrap(), 0, 8192).unwrap();
    let mut seen = vec![0u8; 8192];
    mmf_testkit::read_file_at(&file, 4096 + 64 * 1024, &mut seen);
    assert!(seen.iter().all(|&b| b == 0xAB));
}

#[test]
fn write_through_is_refused_where_it_cannot_work() {
    let anonymous = Mapping::anonymous(4096).unwrap();
    let err = ViewOptions::new().write_through(true).map_mut(&anonymous).unwrap_err();
    assert!(matches!(err, mmf::Error::WriteThrough { .. }), "{err}");
    assert!(err.to_string().contains("ordinary read-write view"), "{err}");

    let (_dir, _path, file) = disk_file("refused");
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file).unwrap();
    for err in [
        ViewOptions::new().write_through(true).map(&mapping).unwrap_err(),
        ViewOptions::new().write_through(true).map_copy(&mapping).unwrap_err(),
    ] {
        assert!(matches!(err, mmf::Error::WriteThrough { .. }), "{err}");
    }
    let read_only = Mapping::from_file(&file, Access::ReadOnly).unwrap();
    let err = ViewOptions::new().write_through(true).map_mut(&read_only).unwrap_err();
    assert!(matches!(err, mmf::Error::AccessDenied { .. }), "{err}");

    // Safe code gets no reference that could store into the read-only pages.
    let log = ViewOptions::new().write_through(true).map_mut(&mapping).unwrap();
    let err = log.get::<std::sync::atomic::AtomicU64>(0).unwrap_err();
    assert!(matches!(err, mmf::Error::WriteThrough { .. }), "{err}");
    assert!(log.atomic_u64(0).is_err());
    // Out of range is still out of range.
    assert!(matches!(log.write_at(4090, b"too long"), Err(mmf::Error::OutOfRange { .. })));
}

#[test]
fn a_flush_says_what_it_did() {
    let anonymous = Mapping::anonymous(4096).unwrap();
    assert_eq!(anonymous.view_mut(..).unwrap().flush().unwrap(), Flushed::InMemory);
    let (_dir, _path, file) = disk_file("kinds");
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file).unwrap();
    let private = mapping.view_copy(..).unwrap();
    private.write_at(0, b"mine").unwrap();
    assert_eq!(private.flush().unwrap(), Flushed::CopyOnWrite);
    assert_eq!(private.flush_range(0, 4).unwrap(), Flushed::CopyOnWrite);
    if !target_on_tmpfs() {
        assert_eq!(mapping.view_mut(..).unwrap().flush().unwrap(), Flushed::Durable);
        assert!(Flushed::Durable.is_durable());
    }
    let name = mmf_testkit::unique_name("flushed");
    let named = mmf_testkit::create_named(&name, 4096).unwrap();
    assert_eq!(named.view_mut(..).unwrap().flush().unwrap(), Flushed::InMemory);
    // The copy-on-write view never wrote the file.
    let mut buf = [0u8; 4];
    mmf_testkit::read_file_at(&file, 0, &mut buf);
    assert_eq!(buf, [0; 4]);
}

/// Windows: a file's section opened by name has no handle to the file, so its flush writes
/// the pages and says it could not make the metadata durable.
#[cfg(windows)]
#[test]
fn a_file_section_opened_by_name_flushes_its_pages_only() {
    let (_dir, _path, file) = disk_file("by-name");
    let name = mmf_testkit::unique_name("pages-only");
    let _created = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(65536)
        .name(&name)
        .map_file(&file)
        .unwrap();
    let opened = Mapping::open(&name, Access::ReadWrite).unwrap();
    let view = opened.view_mut(..).unwrap();
    view.write_at(0, b"by name").unwrap();
    assert_eq!(view.flush().unwrap(), Flushed::PagesOnly);
    let err = ViewOptions::new().write_through(true).map_mut(&opened).unwrap_err();
    assert!(matches!(err, mmf::Error::WriteThrough { .. }), "{err}");
    // Reached by a create that found the name taken: still the file's section.
    let again = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(65536)
        .name(&name)
        .map_anonymous()
        .unwrap();
    assert!(!again.created());
    assert_eq!(again.view_mut(..).unwrap().flush().unwrap(), Flushed::PagesOnly);
}

/// Linux appends every `pwrite` of an `O_APPEND` file at its end, whatever the offset: a
/// write-through view of one would write in the wrong place, so it is refused.
#[cfg(unix)]
#[test]
fn a_file_opened_for_appending_cannot_write_through() {
    let (_dir, path, _file) = disk_file("append");
    let appending = File::options().read(true).append(true).open(&path).unwrap();
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(8192).map_file(&appending).unwrap();
    let err = ViewOptions::new().write_through(true).map_mut(&mapping).unwrap_err();
    assert!(err.to_string().contains("O_APPEND"), "{err}");
    // O_DIRECT writes must be block-aligned: refused too (Linux).
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .unwrap();
        let mapping = Mapping::from_file(&direct, Access::ReadWrite).unwrap();
        let err = ViewOptions::new().write_through(true).map_mut(&mapping).unwrap_err();
        assert!(err.to_string().contains("O_DIRECT"), "{err}");
    }
    // An ordinary view writes where it is told.
    mapping.view_mut(..).unwrap().write_at(100, b"here").unwrap();
    let mut buf = [0u8; 4];
    mmf_testkit::read_file_at(&appending, 100, &mut buf);
    assert_eq!(&buf, b"here");
}

/// After a peer truncates the file, a write-through write is the file's own `pwrite`: it
/// extends the file again and the cut range reads as zeros — where a store through the
/// mapping would fault (and is refused as `Truncated`).
#[cfg(unix)]
#[test]
fn a_write_through_write_after_a_truncation_extends_the_file() {
    let (_dir, path, file) = disk_file("truncated");
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(65536).map_file(&file).unwrap();
    let log = ViewOptions::new().write_through(true).map_mut(&mapping).unwrap();
    log.write_at(0, &[7u8; 65536]).unwrap();
    open_rw(&path).set_len(4096).unwrap();
    let ordinary = mapping.view_mut(..).unwrap();
    assert!(matches!(ordinary.write_at(50_000, b"x"), Err(mmf::Error::Truncated { .. })));
    log.write_at(50_000, b"back").unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 50_004);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes[..4096].iter().all(|&b| b == 7));
    assert!(bytes[4096..50_000].iter().all(|&b| b == 0), "the cut range reads as zeros");
    assert_eq!(&bytes[50_000..], b"back");
    // The flush of a range past the file's end says the bytes there are lost.
    assert!(matches!(log.flush_range(60_000, 10), Err(mmf::Error::Truncated { .. })));
}
