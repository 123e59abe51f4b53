//! Views (`MapViewOfFile`/`Ex`, `UnmapViewOfFile`): offsets, kinds, addresses, refusals.

use mmf::{Access, Error, Mapping, ViewOptions};
use mmf_testkit::{file_with, open_rw, pattern};

fn read(view: &mmf::View, offset: usize, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    view.read_at(offset, &mut buf).unwrap();
    buf
}

#[test]
fn views_at_any_byte_offset_see_the_right_bytes() {
    let size = 5 * 65536 + 123;
    let (_dir, _path, file) = file_with(size, pattern);
    let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
    let granularity = mmf::allocation_granularity();
    for offset in [0, 1, 7, 4095, 4096, 4097, 65535, 65536, 65537, 3 * 65536 + 999, size - 1] {
        for len in [1, 2, 100, 4096, 70_000] {
            let Some(end) = Some(offset + len).filter(|&e| e <= size) else { continue };
            let view = mapping.view(offset as u64..end as u64).unwrap();
            assert_eq!((view.offset(), view.len()), (offset as u64, len));
            assert_eq!(view.as_ptr() as usize % granularity, offset % granularity);
            let got = read(&view, 0, len);
            assert!(
                got.iter().enumerate().all(|(i, &b)| b == pattern(offset + i)),
                "{offset}+{len}"
            );
        }
        let to_end = mapping.view(offset as u64..).unwrap();
        assert_eq!(to_end.len(), size - offset);
        assert_eq!(read(&to_end, to_end.len() - 1, 1)[0], pattern(size - 1));
    }
}

#[test]
fn overlapping_views_see_each_others_writes() {
    let (_dir, path, file) = file_with(4 * 65536, |_| 0);
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let a = mapping.view_mut(1000..200_000).unwrap();
    let b = mapping.view_mut(70_000..).unwrap();
    let c = mapping.view(..).unwrap();
    a.write_at(100_000 - 1000, b"from-a").unwrap(); // file offset 100_000
    assert_eq!(read(&b, 30_000, 6), b"from-a");
    b.write_at(0, b"from-b").unwrap(); // file offset 70_000
    assert_eq!(read(&a, 69_000, 6), b"from-b");
    assert_eq!(read(&c, 70_000, 6), b"from-b");
    assert_eq!(read(&c, 100_000, 6), b"from-a");
    drop((a, b, c));
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[70_000..70_006], b"from-b");
}

#[test]
fn copy_on_write_views_keep_their_writes_private() {
    let (_dir, path, file) = file_with(3 * 4096, pattern);
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let shared = mapping.view(..).unwrap();
    let private = mapping.view_copy(4096..).unwrap();
    private.write_at(10, b"private").unwrap();
    assert_eq!(private.flush().unwrap(), mmf::Flushed::CopyOnWrite); // nothing to write back
    assert_eq!(read(&private, 10, 7), b"private");
    assert_eq!(read(&shared, 4106, 7), (4106..4113).map(pattern).collect::<Vec<_>>());
    drop(private);
    assert_eq!(&std::fs::read(&path).unwrap()[4106..4113], &read(&shared, 4106, 7)[..]);
    // A copy-on-write mapping allows copy-on-write views, and its file never changes.
    let cow = Mapping::from_file(&file, Access::CopyOnWrite).unwrap();
    cow.view_copy(..).unwrap().write_at(0, b"nope").unwrap();
    assert_eq!(std::fs::read(&path).unwrap()[0], pattern(0));
}

/// Populating or locking a copy-on-write view reads its pages in without copying them:
/// the view keeps showing the file, and a peer's later writes to it, until it writes a
/// page itself. (Populating for writing would fill the view with private copies of
/// whatever the pages held then — zeros where the file had not been read.)
#[test]
fn populated_and_locked_copy_on_write_views_keep_seeing_the_file() {
    // Windows: Wine implements VirtualLock with mlock, which does copy a private writable
    // mapping's pages; so the lock case is Linux's only (see View::lock).
    let cases: &[&str] = if cfg!(windows) {
        &["populate", "populate option"]
    } else {
        &["populate", "populate option", "lock"]
    };
    for &how in cases {
        let (_dir, path, file) = file_with(64 * 1024, |_| b'o');
        let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
        let writer = open_rw(&path);
        let private = match how {
            "populate option" => {
                write_file_at(&writer, 100, b"NEW");
                ViewOptions::new().populate(true).map_copy(&mapping).unwrap()
            }
            _ => {
                let view = mapping.view_copy(..).unwrap();
                write_file_at(&writer, 100, b"NEW");
                match how {
                    "populate" => view.populate(0, view.len()).unwrap(),
                    _ => view.lock().unwrap(),
                }
                view
            }
        };
        assert_eq!(read(&private, 100, 3), b"NEW", "{how}: the peer's write before");
        write_file_at(&writer, 200, b"LATER");
        write_file_at(&writer, 60_000, b"LATER");
        assert_eq!(read(&private, 200, 5), b"LATER", "{how}: a peer's write after");
        assert_eq!(read(&private, 60_000, 5), b"LATER", "{how}: the last page");
        // A page the view writes becomes its own; the others keep following the file.
        private.write_at(300, b"mine").unwrap();
        write_file_at(&writer, 310, b"peer");
        write_file_at(&writer, 40_000, b"peer");
        assert_eq!(read(&private, 310, 4), b"oooo", "{how}: the private page");
        assert_eq!(read(&private, 40_000, 4), b"peer", "{how}: a page not written");
        if how == "lock" {
            private.unlock().unwrap();
        }
    }
}

/// Writes with the file API, as another program would.
fn write_file_at(file: &std::fs::File, offset: u64, data: &[u8]) {
    #[cfg(unix)]
    std::os::unix::fs::FileExt::write_all_at(file, data, offset).unwrap();
    #[cfg(windows)]
    assert_eq!(std::os::windows::fs::FileExt::seek_write(file, data, offset).unwrap(), data.len());
}

#[test]
fn unsafe_slices_read_and_write_the_same_bytes() {
    let mapping = Mapping::anonymous(10_000).unwrap();
    let mut view = mapping.view_mut(3..).unwrap();
    // SAFETY: this test owns the only views of the mapping and makes no other access
    // while the slice lives.
    let slice = unsafe { view.as_mut_slice() };
    slice[..5].copy_from_slice(b"slice");
    let mut got = [0; 5];
    view.read_at(0, &mut got).unwrap();
    assert_eq!(&got, b"slice");
    // SAFETY: as above.
    assert_eq!(&unsafe { view.as_slice() }[..5], b"slice");
}

#[test]
fn explicit_unmap_reports_success_and_views_drop_cleanly() {
    let mapping = Mapping::anonymous(65536).unwrap();
    let view = mapping.view(..).unwrap();
    view.unmap().unwrap();
    let view = mapping.view_mut(..).unwrap();
    view.write_at(0, b"x").unwrap();
    view.unmap().unwrap();
    assert_eq!(read(&mapping.view(..1).unwrap(), 0, 1), b"x");
}

#[test]
fn views_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<mmf::View>();
    check::<mmf::ViewMut>();
    check::<Mapping>();
    let mapping = Mapping::anonymous(4096).unwrap();
    let view = mapping.view_mut(..).unwrap();
    std::thread::spawn(move || view.write_at(0, b"thread").unwrap()).join().unwrap();
    assert_eq!(read(&mapping.view(..).unwrap(), 0, 6), b"thread");
}

// ---- requested addresses (MapViewOfFileEx) ----

/// An address range that was free a moment ago: map a probe view there and unmap it.
fn free_address(len: u64) -> usize {
    let probe = Mapping::anonymous(len).unwrap();
    let view = probe.view(..).unwrap();
    let addr = view.as_ptr() as usize;
    view.unmap().unwrap();
    addr
}

#[test]
fn a_view_goes_exactly_where_it_is_asked() {
    let granularity = mmf::allocation_granularity();
    let (_dir, _path, file) = file_with(4 * 65536, pattern);
    let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
    // Another test's thread may take the probed range before we map it: probe again then.
    let (addr, view) = (0..20)
        .find_map(|_| {
            let addr = free_address(4 * 65536);
            match ViewOptions::new().address(addr).map(&mapping) {
                Ok(view) => Some((addr, view)),
                Err(Error::AddressTaken { .. }) => None,
                Err(e) => panic!("{e}"),
            }
        })
        .expect("a free address range in 20 tries");
    assert_eq!(view.as_ptr() as usize, addr);
    assert_eq!(read(&view, 5, 3), [pattern(5), pattern(6), pattern(7)]);
    drop(view);
    // A byte offset needs an address the same distance past the granularity.
    let offset = granularity as u64 + 100;
    let (addr, view) = (0..20)
        .find_map(|attempt| {
            let addr = if attempt == 0 { addr } else { free_address(4 * 65536) };
            match ViewOptions::new().offset(offset).len(50).address(addr + 100).map(&mapping) {
                Ok(view) => Some((addr, view)),
                Err(Error::AddressTaken { .. }) => None,
                Err(e) => panic!("{e}"),
            }
        })
        .expect("a free address range in 20 tries");
    assert_eq!(view.as_ptr() as usize, addr + 100);
    assert_eq!(read(&view, 0, 1)[0], pattern(offset as usize));
}

#[test]
fn a_taken_address_is_refused_and_left_alone() {
    let mapping = Mapping::anonymous(4 * 65536).unwrap();
    let existing = mapping.view_mut(..).unwrap();
    existing.write_at(0, b"keep me").unwrap();
    let other = Mapping::anonymous(65536).unwrap();
    for addr in
        [existing.as_ptr() as usize, existing.as_ptr() as usize + mmf::allocation_granularity()]
    {
        let err = ViewOptions::new().address(addr).map(&other).unwrap_err();
        assert!(matches!(err, Error::AddressTaken { .. }), "{err:?}");
        assert!(err.to_string().contains("already in use"), "{err}");
    }
    assert_eq!(read(&existing, 0, 7), b"keep me");
}

#[test]
fn a_misaligned_address_is_refused() {
    let mapping = Mapping::anonymous(65536).unwrap();
    let addr = free_address(65536);
    let err = ViewOptions::new().address(addr + 1).map(&mapping).unwrap_err();
    assert!(
        matches!(err, Error::AddressMisaligned { address, expected_remainder: 0, .. } if address == addr + 1)
    );
    let err = ViewOptions::new().offset(8).address(addr).map(&mapping).unwrap_err();
    assert!(matches!(err, Error::AddressMisaligned { expected_remainder: 8, .. }), "{err:?}");
    assert!(err.to_string().contains("past a multiple of"), "{err}");
}

// ---- bad ranges ----

#[test]
fn offsets_past_the_end_are_refused() {
    let mapping = Mapping::anonymous(10_000).unwrap();
    for (offset, len) in [(10_001, None), (10_001, Some(0)), (9_999, Some(2)), (0, Some(10_001))] {
        let mut opts = ViewOptions::new();
        opts.offset(offset);
        if let Some(len) = len {
            opts.len(len);
        }
        let err = opts.map(&mapping).unwrap_err();
        assert!(matches!(err, Error::OutOfRange { size: 10_000, .. }), "{offset} {len:?}: {err:?}");
        assert!(err.to_string().contains("past the end"), "{err}");
    }
}

#[test]
fn offset_plus_length_overflowing_is_refused() {
    let mapping = Mapping::anonymous(10_000).unwrap();
    let err = ViewOptions::new().offset(u64::MAX - 5).len(10).map(&mapping).unwrap_err();
    assert!(
        matches!(err, Error::Overflow { offset, len: 10 } if offset == u64::MAX - 5),
        "{err:?}"
    );
    assert!(err.to_string().contains("overflows"), "{err}");
    let err = mapping.view(..=u64::MAX).unwrap_err();
    assert!(matches!(err, Error::Overflow { .. }), "{err:?}");
}

/// An empty view (a range of length 0 anywhere up to the end) maps nothing and works:
/// an empty log or table needs no special case.
#[test]
fn empty_views_work_and_reversed_ranges_are_refused() {
    let mapping = Mapping::anonymous(10_000).unwrap();
    for view in [
        mapping.view(5..5).unwrap(),
        mapping.view(10_000..).unwrap(),
        ViewOptions::new().len(0).map(&mapping).unwrap(),
    ] {
        assert!(view.is_empty());
        assert_eq!(view.len(), 0);
        view.read_at(0, &mut []).unwrap();
        assert!(matches!(view.read_at(0, &mut [0]), Err(Error::OutOfRange { .. })));
        view.flush().unwrap();
        view.flush_async().unwrap();
        assert_eq!(view.advise(mmf::Advice::Sequential).unwrap(), mmf::Advised::Applied);
        view.lock().unwrap();
        view.unlock().unwrap();
        assert_eq!(view.residency().unwrap().pages(), 0);
        assert!(matches!(view.atomic_u64(0), Err(Error::OutOfRange { .. })));
        // SAFETY: nothing writes the (zero) bytes of an empty view.
        assert!(unsafe { view.as_slice() }.is_empty());
        view.unmap().unwrap();
    }
    let empty = mapping.view_mut(3..3).unwrap();
    empty.write_at(0, b"").unwrap();
    assert!(matches!(empty.write_at(0, b"x"), Err(Error::OutOfRange { .. })));
    assert!(matches!(empty.get::<std::sync::atomic::AtomicU32>(0), Err(Error::OutOfRange { .. })));
    assert!(matches!(mapping.view(10_001..), Err(Error::OutOfRange { .. })));
    let (start, end) = (9, 5);
    let err = mapping.view(start..end).unwrap_err();
    assert!(matches!(err, Error::ReversedRange { start: 9, end: 5 }), "{err:?}");
    assert!(err.to_string().contains("ends before it starts"), "{err}");
}

#[test]
fn copies_outside_the_view_are_refused() {
    let mapping = Mapping::anonymous(10_000).unwrap();
    let view = mapping.view_mut(100..200).unwrap();
    let mut buf = [0; 10];
    assert!(matches!(view.read_at(91, &mut buf), Err(Error::OutOfRange { size: 100, .. })));
    assert!(matches!(view.write_at(95, b"123456"), Err(Error::OutOfRange { .. })));
    assert!(matches!(view.read_at(usize::MAX, &mut buf), Err(Error::Overflow { .. })));
    view.read_at(90, &mut buf).unwrap();
    view.write_at(94, b"123456").unwrap();
    assert!(matches!(view.flush_range(50, 51), Err(Error::OutOfRange { .. })));
    assert!(matches!(view.prefetch(101, 0), Err(Error::OutOfRange { .. })));
}

/// Large copies into a view (which stream past the caches) are exact at any alignment and
/// length, from a view and from a buffer.
#[test]
fn large_copies_into_views_are_exact_at_any_alignment() {
    const SIZE: usize = 1 << 20;
    let src = Mapping::anonymous(SIZE as u64).unwrap();
    let src_view = src.view_mut(..).unwrap();
    let pattern: Vec<u8> = (0..SIZE).map(|i| (i * 131 % 251) as u8).collect();
    src_view.write_at(0, &pattern).unwrap();
    for (from, to, len) in
        [(0, 0, 512 * 1024), (3, 17, 300_001), (4096, 1, 262_144), (15, 64, 700_000)]
    {
        let dst = Mapping::anonymous(SIZE as u64).unwrap();
        let dst_view = dst.view_mut(..).unwrap();
        dst_view.copy_from(to, &src_view, from, len).unwrap();
        let mut got = vec![0u8; SIZE];
        dst_view.read_at(0, &mut got).unwrap();
        assert_eq!(&got[to..to + len], &pattern[from..from + len], "{from} {to} {len}");
        assert!(got[..to].iter().all(|&b| b == 0) && got[to + len..].iter().all(|&b| b == 0));
        let again = Mapping::anonymous(SIZE as u64).unwrap().view_mut(..).unwrap();
        again.write_at(to, &pattern[from..from + len]).unwrap();
        again.read_at(0, &mut got).unwrap();
        assert_eq!(&got[to..to + len], &pattern[from..from + len], "write_at {from} {to} {len}");
    }
}

/// Copies up to 64 bytes take their own routine on x86-64 (overlapping pairs of words or
/// vectors): every length from 0 to 65, at aligned and odd offsets, writes exactly its
/// bytes (not one around them) and reads them back.
#[test]
fn small_copies_of_every_length_are_exact() {
    let view = mmf::Mapping::anonymous(4096).unwrap().view_mut(..).unwrap();
    for len in 0..=65usize {
        for at in [64, 131] {
            view.write_at(0, &[0xEE; 512]).unwrap();
            let data: Vec<u8> = (0..len).map(|i| i as u8 + 1).collect();
            view.write_at(at, &data).unwrap();
            let mut all = [0u8; 512];
            view.read_at(0, &mut all).unwrap();
            assert!(all[..at].iter().all(|&b| b == 0xEE), "len {len} at {at}: before");
            assert_eq!(&all[at..at + len], &data[..], "len {len} at {at}");
            assert!(all[at + len..].iter().all(|&b| b == 0xEE), "len {len} at {at}: after");
            let mut back = vec![0u8; len];
            view.read_at(at, &mut back).unwrap();
            assert_eq!(back, data, "len {len} at {at}: read back");
        }
    }
}
