//! The mark is bytes another process wrote: round trips, and every malformed input refused
//! without a panic.

use std::path::PathBuf;

use proptest::prelude::*;

use super::*;

/// A path that is not UTF-8 (Linux paths are bytes).
fn non_utf8() -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(b"/data/caf\xe9.bin").into()
}

fn file_mark(path: &str) -> Mark {
    Mark {
        kept: false,
        file: Some(FileMark { dev: 64769, ino: 42, size: 1 << 40, path: path.into() }),
    }
}

#[test]
fn marks_round_trip() {
    for mark in [
        Mark { kept: false, file: None },
        Mark { kept: true, file: None },
        file_mark("/data/big file.bin"),
        file_mark("/odd/na\nme with a newline"),
        Mark { kept: false, file: Some(FileMark { dev: 1, ino: 2, size: 3, path: non_utf8() }) },
        Mark {
            kept: true,
            file: Some(FileMark { dev: u64::MAX, ino: 0, size: 1, path: "/x".into() }),
        },
    ] {
        assert_eq!(Mark::parse(&mark.render()), Some(mark.clone()), "{:?}", mark.render());
    }
    assert_eq!(Mark::parse(b"mmf1 scoped pagefile"), Some(Mark { kept: false, file: None }));
    let parsed = Mark::parse(b"mmf1 kept file 1 2 3\n/p").unwrap();
    assert_eq!(parsed.file.unwrap().path, PathBuf::from("/p"));
}

#[test]
fn malformed_marks_are_refused() {
    for bad in [
        "",
        "mmf1",
        "mmf1 scoped",
        "mmf2 scoped pagefile",
        "MMF1 scoped pagefile",
        "mmf1 forever pagefile",
        "mmf1  scoped pagefile",
        "mmf1 scoped pagefile extra",
        "mmf1 scoped pagefile\n/a path where none belongs",
        "mmf1 scoped memory",
        "mmf1 scoped file 1 2 3",
        "mmf1 scoped file 1 2 3\n",
        "mmf1 scoped file 1 2\n/p",
        "mmf1 scoped file 1 2 3 4\n/p",
        "mmf1 scoped file x 2 3\n/p",
        "mmf1 scoped file -1 2 3\n/p",
        "mmf1 scoped file 1 2 18446744073709551616\n/p",
        "mmf1 scoped file 1 2 3\n/nul\0inside",
        "\nmmf1 scoped pagefile",
    ] {
        assert_eq!(Mark::parse(bad.as_bytes()), None, "{bad:?}");
    }
    assert_eq!(Mark::parse(b"mmf1 scoped \xffpagefile"), None, "a header that is not UTF-8");
}

proptest! {
    #[test]
    fn any_bytes_parse_or_are_refused_without_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        if let Some(mark) = Mark::parse(&bytes) {
            prop_assert_eq!(Mark::parse(&mark.render()), Some(mark));
        }
    }

    #[test]
    fn mark_like_text_never_panics(
        head in "(mmf1|mmf2|x) (kept|scoped|z) (pagefile|file)( [0-9-]{0,22}){0,5}",
        path in proptest::option::of("[^\0]{0,40}"),
    ) {
        let text = match &path { Some(p) => format!("{head}\n{p}"), None => head.clone() };
        if let Some(mark) = Mark::parse(text.as_bytes()) {
            prop_assert_eq!(Mark::parse(&mark.render()), Some(mark));
        }
    }

    #[test]
    fn every_mark_round_trips(
        kept: bool, dev: u64, ino: u64, size: u64,
        path in proptest::option::of(proptest::collection::vec(1u8.., 1..60)),
    ) {
        use std::os::unix::ffi::OsStrExt;
        let file = path.map(|p| FileMark { dev, ino, size, path: std::ffi::OsStr::from_bytes(&p).into() });
        let mark = Mark { kept, file };
        prop_assert_eq!(Mark::parse(&mark.render()), Some(mark));
    }
}

/// Through a real object in `/dev/shm` (where named objects live): the attribute another
/// process set, garbage included.
#[test]
fn marks_are_read_from_the_object_and_garbage_is_refused() {
    let file = tempfile::tempfile_in("/dev/shm").expect("a file in /dev/shm");
    let set = |bytes: &[u8]| {
        // SAFETY: the value pointer and length describe `bytes`.
        unsafe {
            libc::fsetxattr(file.as_raw_fd(), ATTR.as_ptr(), bytes.as_ptr().cast(), bytes.len(), 0)
        }
    };
    let mark = file_mark("/srv/data.bin");
    // (tmpfs has user xattrs since Linux 6.6; the named layer copes without them, this
    // test needs them.)
    write(&file, &mark).expect("user xattrs on /dev/shm");
    assert_eq!(read(&file), Some(mark));
    assert_eq!(set(b"mmf1 scoped pagefile"), 0);
    assert_eq!(read(&file), Some(Mark { kept: false, file: None }));
    assert_eq!(set(b"\xff\xfe not utf-8"), 0);
    assert_eq!(read(&file), None);
    assert_eq!(set(b"mmf1 scoped file 1 2 3"), 0);
    assert_eq!(read(&file), None);
    // Marks of any length the kernel stores are read whole (the buffer is sized by asking).
    let long = file_mark(&format!("/{}", "p".repeat(20_000)));
    write(&file, &long).unwrap();
    assert_eq!(read(&file), Some(long));
    let odd =
        Mark { kept: true, file: Some(FileMark { dev: 9, ino: 9, size: 9, path: non_utf8() }) };
    write(&file, &odd).unwrap();
    assert_eq!(read(&file), Some(odd));
}
