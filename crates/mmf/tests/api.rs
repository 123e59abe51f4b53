//! What a newcomer meets on the first day: defaults that work, errors that say what to do,
//! calls that can be repeated.

use std::sync::atomic::Ordering;

use mmf::{Access, Error, Mapping, MappingOptions};

#[test]
fn anonymous_memory_is_read_write_by_default_and_read_only_is_refused() {
    let mapping = MappingOptions::new().size(4096).map_anonymous().unwrap();
    assert_eq!(mapping.access(), Access::ReadWrite);
    mapping.view_mut(..).unwrap().write_at(0, b"writable").unwrap();
    let err =
        MappingOptions::new().access(Access::ReadOnly).size(4096).map_anonymous().unwrap_err();
    assert!(matches!(err, Error::ReadOnlyAnonymous), "{err}");
    assert!(err.to_string().contains("only ever hold zeros"), "{err}");
    // A file still maps read-only unless asked.
    let file = tempfile::tempfile().unwrap();
    file.set_len(4096).unwrap();
    assert_eq!(MappingOptions::new().map_file(&file).unwrap().access(), Access::ReadOnly);
}

#[test]
fn unlocking_twice_succeeds() {
    let mapping = Mapping::anonymous(64 * 1024).unwrap();
    let view = mapping.view(..).unwrap();
    view.unlock().unwrap(); // never locked
    view.lock().unwrap();
    view.unlock().unwrap();
    view.unlock().unwrap();
}

/// A read-only view of a file opened read-only (its pages are read-only) loads atomics.
#[test]
fn a_read_only_view_of_a_read_only_file_loads_atomics() {
    let (_dir, path, _file) = mmf_testkit::file_with(4096, |i| if i < 8 { 7 } else { 0 });
    let file = std::fs::File::open(&path).unwrap();
    let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    assert_eq!(view.atomic_u64(0).unwrap().load(Ordering::Acquire), 0x0707_0707_0707_0707);
    assert_eq!(view.atomic_u8(3).unwrap().load(Ordering::Relaxed), 7);
    assert!(matches!(view.atomic_u64(4), Err(Error::Misaligned { .. })));
    assert!(matches!(view.atomic_u64(4090), Err(Error::OutOfRange { .. })));
}

/// `wait` gives up with NotFound once its time is up, and not before.
#[test]
fn waiting_for_a_name_that_never_comes_ends_in_not_found() {
    let start = std::time::Instant::now();
    let err = MappingOptions::new()
        .wait(std::time::Duration::from_millis(300))
        .open_named(&mmf_testkit::unique_name("never"))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let waited = start.elapsed();
    assert!(waited >= std::time::Duration::from_millis(300), "{waited:?}");
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
}
