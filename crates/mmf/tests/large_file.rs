//! Large-file tools: flushing, advice, prefetch, populate, lock and residency, checked
//! against what the OS reports. On Linux the page cache is inspected directly
//! (`/proc/self/smaps` dirty counts, eviction with `posix_fadvise`); those tests are marked
//! `cfg(target_os = "linux")`, and the others run on Windows too, where residency is the
//! process's working set (`QueryWorkingSetEx`).

#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

use mmf::{Access, Advice, Advised, Mapping, MappingOptions, ViewOptions};
#[cfg(target_os = "linux")]
use mmf_testkit::files::dirty_kb;
use mmf_testkit::{file_with, pattern};

const MIB: usize = 1 << 20;

/// Drops the file's clean pages from the page cache (after making them clean).
#[cfg(target_os = "linux")]
fn evict(file: &std::fs::File) {
    file.sync_all().unwrap();
    // SAFETY: posix_fadvise only changes page-cache state of this descriptor's file.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
}

#[cfg(target_os = "linux")]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
#[cfg(target_os = "linux")]
fn flush_writes_dirty_pages_back_and_flush_range_only_its_range() {
    let file = tempfile::tempfile().unwrap();
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(8 * MIB as u64)
        .map_file(&file)
        .unwrap();
    let view = mapping.view_mut(..).unwrap();
    view.write_at(100, &[7; 64 * 1024]).unwrap();
    view.write_at(6 * MIB + 3, b"far away").unwrap();
    assert!(dirty_kb(view.as_ptr()) >= 64, "writes should dirty pages");
    // Flushing only the far range leaves the first one dirty...
    view.flush_range(6 * MIB, 100).unwrap();
    let after_range = dirty_kb(view.as_ptr());
    assert!(after_range >= 64, "flush_range must not clean other ranges: {after_range} kB dirty");
    // ...and a full flush cleans everything.
    view.flush().unwrap();
    assert_eq!(dirty_kb(view.as_ptr()), 0);
    // The bytes are in the file for any reader.
    let mut buf = [0u8; 8];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, 6 * MIB as u64 + 3).unwrap();
    assert_eq!(&buf, b"far away");
}

#[test]
#[cfg(target_os = "linux")]
fn flush_async_starts_write_back_without_waiting() {
    let file = tempfile::tempfile().unwrap();
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(4 * MIB as u64)
        .map_file(&file)
        .unwrap();
    let view = mapping.view_mut(..).unwrap();
    view.write_at(0, &vec![1; 4 * MIB]).unwrap();
    assert!(dirty_kb(view.as_ptr()) > 0);
    view.flush_async().unwrap();
    // The kernel's periodic write-back would take up to 30 s; started write-back is done
    // in well under the timeout.
    wait_until("write-back started by flush_async", || dirty_kb(view.as_ptr()) == 0);
}

#[test]
fn anonymous_and_read_only_views_flush_as_no_ops() {
    let mapping = Mapping::anonymous(65536).unwrap();
    let view = mapping.view_mut(..).unwrap();
    view.flush().unwrap();
    view.flush_async().unwrap();
    let (_dir, _path, file) = file_with(65536, pattern);
    let ro = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    ro.flush().unwrap();
    ro.flush_range(5, 10).unwrap();
    ro.flush_async_range(5, 10).unwrap();
}

#[test]
#[cfg(target_os = "linux")]
fn residency_follows_what_was_touched() {
    let pages = 64;
    let page = mmf::page_size();
    let (_dir, _path, file) = file_with(pages * page, pattern);
    evict(&file);
    let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    assert_eq!(view.advise(Advice::Random).unwrap(), Advised::Applied); // no read-ahead
    let before = view.residency().unwrap();
    assert_eq!((before.pages(), before.resident_pages(), before.page_size()), (pages, 0, page));
    let mut byte = [0];
    view.read_at(3 * page + 1, &mut byte).unwrap();
    view.read_at(40 * page, &mut byte).unwrap();
    let after = view.residency().unwrap();
    assert!(after.is_resident(3) && after.is_resident(40), "{:?}", after.as_slice());
    assert!(after.is_byte_resident(40 * page + 5));
    assert!(!after.is_resident(20) && !after.is_resident(63), "{:?}", after.as_slice());
    assert!(!after.is_resident(pages), "past the end is not resident");
}

#[test]
fn residency_of_a_view_at_an_odd_offset_counts_its_pages() {
    let page = mmf::page_size();
    let (_dir, _path, file) = file_with(10 * page, pattern);
    let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
    let view = mapping.view(page as u64 + 10..3 * page as u64 + 20).unwrap();
    let r = view.residency().unwrap();
    assert_eq!(r.pages(), 3); // pages 1, 2 and 3 of the file
}

#[test]
#[cfg(target_os = "linux")]
fn populate_brings_the_whole_view_in_at_map_time() {
    let (_dir, _path, file) = file_with(2 * MIB, pattern);
    evict(&file);
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let view = ViewOptions::new().populate(true).map(&mapping).unwrap();
    let r = view.residency().unwrap();
    assert_eq!(r.resident_pages(), r.pages());
    evict(&file);
    let view = ViewOptions::new().populate(true).map_mut(&mapping).unwrap();
    let r = view.residency().unwrap();
    assert_eq!(r.resident_pages(), r.pages());
}

#[test]
#[cfg(target_os = "linux")]
fn prefetch_reads_the_range_in_the_background() {
    let (_dir, _path, file) = file_with(4 * MIB, pattern);
    evict(&file);
    let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    assert_eq!(view.residency().unwrap().resident_pages(), 0);
    assert_eq!(view.prefetch(MIB, MIB).unwrap(), Advised::Applied);
    let page = mmf::page_size();
    wait_until("prefetched pages", || {
        let r = view.residency().unwrap();
        (MIB / page..2 * MIB / page).all(|p| r.is_resident(p))
    });
}

#[test]
#[cfg(target_os = "linux")]
fn lock_keeps_the_view_in_ram() {
    let (_dir, _path, file) = file_with(MIB, pattern);
    evict(&file);
    let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    view.lock().unwrap();
    let r = view.residency().unwrap();
    assert_eq!(r.resident_pages(), r.pages());
    // Locked pages survive an eviction request.
    // SAFETY: posix_fadvise only changes page-cache state.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(view.residency().unwrap().resident_pages(), r.pages());
    view.unlock().unwrap();
}

#[test]
#[cfg(target_os = "linux")]
fn every_advice_is_accepted_on_linux() {
    let (_dir, _path, file) = file_with(4 * MIB, pattern);
    let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    for advice in [Advice::Sequential, Advice::Random, Advice::WillNeed, Advice::Normal] {
        assert_eq!(view.advise(advice).unwrap(), Advised::Applied, "{advice:?}");
    }
    // Huge-page advice on shared memory is checked by its effect in tests/advice.rs.
    let thp = std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists();
    let expected = if thp { Advised::Applied } else { Advised::NotSupported };
    let anon = Mapping::anonymous(4 * MIB as u64).unwrap().view_mut(..).unwrap();
    assert_eq!(anon.advise(Advice::NoHugePages).unwrap(), expected);
}

// ---- the same tools on every platform ----

#[test]
fn flush_makes_writes_reach_the_file() {
    let (_dir, path, file) = file_with(3 * 65536, |_| 0);
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let view = mapping.view_mut(65536 + 7..).unwrap();
    view.write_at(0, b"durable").unwrap();
    view.write_at(100_000, b"async").unwrap();
    view.flush_range(0, 7).unwrap();
    view.flush_async_range(100_000, 5).unwrap();
    view.flush().unwrap();
    view.flush_async().unwrap();
    drop((view, mapping, file));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[65536 + 7..65536 + 14], b"durable");
    assert_eq!(&bytes[65536 + 7 + 100_000..65536 + 7 + 100_005], b"async");
}

#[test]
fn growth_is_flushed_with_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grown");
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).unwrap();
    let mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(5 * MIB as u64)
        .map_file(&file)
        .unwrap();
    let view = mapping.view_mut(5 * MIB as u64 - 3..).unwrap();
    view.write_at(0, b"end").unwrap();
    view.flush().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 5 * MIB as u64);
    assert_eq!(&std::fs::read(&path).unwrap()[5 * MIB - 3..], b"end");
}

#[test]
fn residency_of_anonymous_memory_follows_what_was_touched() {
    let page = mmf::page_size();
    let mapping = Mapping::anonymous(64 * page as u64).unwrap();
    let view = mapping.view_mut(..).unwrap();
    let before = view.residency().unwrap();
    assert_eq!((before.pages(), before.resident_pages()), (64, 0), "{:?}", before.as_slice());
    view.write_at(3 * page, b"x").unwrap();
    view.write_at(40 * page + 9, b"y").unwrap();
    let after = view.residency().unwrap();
    assert!(after.is_resident(3) && after.is_resident(40), "{:?}", after.as_slice());
    assert!(!after.is_resident(20) && !after.is_resident(63), "{:?}", after.as_slice());
}

#[test]
fn populate_and_lock_make_every_page_resident() {
    let pages = 256;
    let page = mmf::page_size();
    let mapping = Mapping::anonymous((pages * page) as u64).unwrap();
    let view = ViewOptions::new().populate(true).map_mut(&mapping).unwrap();
    let r = view.residency().unwrap();
    assert_eq!((r.pages(), r.resident_pages()), (pages, pages));
    let other = Mapping::anonymous((pages * page) as u64).unwrap();
    let view = other.view(..).unwrap();
    view.lock().unwrap();
    let r = view.residency().unwrap();
    assert_eq!(r.resident_pages(), pages);
    view.unlock().unwrap();
}

#[test]
fn advice_is_applied_or_reported_as_not_supported() {
    let (_dir, _path, file) = file_with(MIB, pattern);
    let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    // Windows has no equivalent for access-pattern advice and says so.
    let pattern_advice = if cfg!(windows) { Advised::NotSupported } else { Advised::Applied };
    for advice in [Advice::Sequential, Advice::Random, Advice::Normal] {
        assert_eq!(view.advise(advice).unwrap(), pattern_advice, "{advice:?}");
    }
    assert_eq!(view.advise(Advice::WillNeed).unwrap(), Advised::Applied);
    assert_eq!(view.prefetch(4096, 8192).unwrap(), Advised::Applied);
}

/// Sizes and offsets past 4 GiB: on Windows they travel as two 32-bit halves
/// (`dwMaximumSizeHigh`/`Low`, `dwFileOffsetHigh`/`Low`), so a mistake in the split shows
/// here as wrong bytes. The file is sparse: nothing but the written pages takes space.
#[test]
fn views_past_4_gib_of_a_sparse_file() {
    const GIB: u64 = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse");
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).unwrap();
    file.set_len(4 * GIB + 100).unwrap(); // sparse
    // The mapping grows the file past 5 GiB itself.
    let size = 5 * GIB + 12_345;
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(size).map_file(&file).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    for offset in [4 * GIB - 3, 4 * GIB, 4 * GIB + 65_536 * 3 + 17, 5 * GIB + 12_000] {
        let view = mapping.view_mut(offset..offset + 300).unwrap();
        let tag = format!("at {offset}");
        view.write_at(0, tag.as_bytes()).unwrap();
        view.flush().unwrap();
        let mut got = vec![0; tag.len()];
        mmf_testkit::read_file_at(&file, offset, &mut got);
        assert_eq!(got, tag.as_bytes(), "{offset}");
        if offset >= 4 * GIB {
            // Nothing landed at the offset truncated to 32 bits.
            let mut low = vec![0; tag.len()];
            mmf_testkit::read_file_at(&file, offset % (4 * GIB), &mut low);
            assert_ne!(low, tag.as_bytes(), "{offset} must not wrap around 4 GiB");
        }
    }
    let last = mapping.view(size - 1..).unwrap();
    assert_eq!((last.offset(), last.len()), (size - 1, 1));
}

#[test]
#[cfg(target_os = "linux")]
fn data_ranges_skip_the_holes_of_a_sparse_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse");
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).unwrap();
    file.set_len(8 * MIB as u64).unwrap();
    let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
    let view = mapping.view_mut(..).unwrap();
    view.write_at(0, &[1; 4096]).unwrap();
    view.write_at(5 * MIB, &[2; 8192]).unwrap();
    view.flush().unwrap();
    use std::io::Seek;
    let mut cursor = &file;
    cursor.seek(std::io::SeekFrom::Start(123)).unwrap();
    let ranges = mmf::cache::data_ranges(&file).unwrap();
    assert_eq!(cursor.stream_position().unwrap(), 123, "the caller's file offset must not move");
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert!(
        ranges[0].start == 0 && ranges[0].end >= 4096 && ranges[0].end <= MIB as u64,
        "{ranges:?}"
    );
    assert!(
        ranges[1].start <= 5 * MIB as u64 && ranges[1].end >= 5 * MIB as u64 + 8192,
        "{ranges:?}"
    );
    assert!(ranges[1].start > MIB as u64, "{ranges:?}");
}

#[test]
#[cfg(target_os = "linux")]
fn evict_drops_a_files_pages_from_the_cache() {
    let (_dir, _path, file) = file_with(4 * MIB, pattern);
    file.sync_all().unwrap();
    let view = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    assert!(view.residency().unwrap().resident_pages() > 0);
    mmf::cache::evict(&file).unwrap();
    assert_eq!(view.residency().unwrap().resident_pages(), 0);
}
