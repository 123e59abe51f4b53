//! Growable views: in place (same address), past the reserve (refused, nothing changed),
//! another process following a file and (Linux) a named object as it grows, and growth on
//! a full file system (Linux: a 1 MiB tmpfs in `unshare -Urm`). Windows differences: a
//! pagefile-backed section cannot grow (`Unsupported`), and a failed growth may leave
//! the file longer.

use std::fs::File;

use mmf::{Access, Error, Mapping, MappingOptions};
use mmf_testkit::{Peer, hear, role, tell};

const MIB: u64 = 1 << 20;

/// Windows grows a view by unmapping and remapping it at the same base (Wine has no
/// placeholders), and a view another test maps meanwhile may land in the freed range: the
/// growth then fails with `AddressTaken`, as documented. The tests of this binary take turns
/// so that they test growth, not that race.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// `steps` growing lengths from 4 KiB, each 1 to 4096 bytes past the last (xorshift64 from
/// `seed`): small random growth steps.
fn growth_steps(seed: u64, steps: u64) -> impl Iterator<Item = u64> {
    let (mut x, mut target) = (seed | 1, 4096);
    (0..steps).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        target += 1 + x % 4096;
        target
    })
}

fn file_mapping(file: &File, size: u64) -> Mapping {
    MappingOptions::new().access(Access::ReadWrite).size(size).map_file(file).unwrap()
}

#[test]
fn a_grown_view_keeps_its_address_and_its_bytes() {
    let _turn = one_at_a_time();
    let file = tempfile::tempfile().unwrap();
    let mapping = file_mapping(&file, 5000);
    let mut view = mapping.view_growable_mut(0, 256 * MIB).unwrap();
    view.write_at(0, b"head").unwrap();
    let base = view.as_ptr();
    let mut len = 5000;
    for step in 0..40u64 {
        len += 12_345 + step * 65_536;
        view.grow(len).unwrap();
        assert_eq!(view.as_ptr(), base, "moved at step {step}");
        assert_eq!(view.len() as u64, len);
        view.write_le(len as usize - 8, step).unwrap();
    }
    assert_eq!(file.metadata().unwrap().len(), len);
    let mut head = [0; 4];
    view.read_at(0, &mut head).unwrap();
    assert_eq!(&head, b"head");
    // Every step's last word is where it was written, also for a fresh mapping.
    let fresh = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    assert_eq!(fresh.read_le::<u64>(len as usize - 8).unwrap(), 39);
    // Growing to less does nothing.
    view.grow(10).unwrap();
    assert_eq!(view.len() as u64, len);
}

#[test]
fn a_view_at_an_odd_offset_grows_too() {
    let _turn = one_at_a_time();
    let file = tempfile::tempfile().unwrap();
    let mapping = file_mapping(&file, 100_000);
    let mut view = mapping.view_growable_mut(70_001, 10 * MIB).unwrap();
    assert_eq!(view.len(), 29_999);
    view.grow(3 * MIB).unwrap();
    view.write_at(3 * MIB as usize - 3, b"end").unwrap();
    assert_eq!(file.metadata().unwrap().len(), 70_001 + 3 * MIB);
    let mut buf = [0; 3];
    mapping.view(..).unwrap().read_at(0, &mut []).unwrap();
    let all = Mapping::from_file(&file, Access::ReadOnly).unwrap();
    all.view(..).unwrap().read_at((70_001 + 3 * MIB - 3) as usize, &mut buf).unwrap();
    assert_eq!(&buf, b"end");
}

#[test]
fn growth_past_the_reserve_is_refused_and_changes_nothing() {
    let _turn = one_at_a_time();
    let file = tempfile::tempfile().unwrap();
    let mapping = file_mapping(&file, 4096);
    let mut view = mapping.view_growable_mut(0, MIB).unwrap();
    view.write_at(0, b"kept").unwrap();
    let err = view.grow(MIB + 1).unwrap_err();
    assert!(
        matches!(err, Error::GrowPastReserve { len, reserve } if len == MIB + 1 && reserve == MIB)
    );
    assert!(err.to_string().contains("nothing changed"), "{err}");
    assert_eq!((view.len(), file.metadata().unwrap().len()), (4096, 4096));
    let mut buf = [0; 4];
    view.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"kept");
    view.grow(MIB).unwrap(); // exactly the reserve fits
    // A view cannot even start larger than its reserve.
    let err = mapping.view_growable(0, 100).unwrap_err();
    assert!(matches!(err, Error::GrowPastReserve { .. }), "{err}");
    // A read-only mapping gives no growable writer.
    let ro = Mapping::from_file(&file, Access::ReadOnly).unwrap();
    assert!(matches!(ro.view_growable_mut(0, MIB), Err(Error::AccessDenied { .. })));
}

#[test]
fn a_write_through_growable_view_appends_with_the_files_writes() {
    let _turn = one_at_a_time();
    let file = tempfile::tempfile().unwrap();
    let mapping = file_mapping(&file, 4096);
    let mut log = mapping.view_growable_write_through(0, 64 * MIB).unwrap();
    let base = log.as_ptr();
    for step in 0..20u64 {
        let at = log.len();
        log.grow(at as u64 + 100_000).unwrap();
        log.write_le(at, step + 1).unwrap();
        assert_eq!(log.read_le::<u64>(at).unwrap(), step + 1, "a load sees the write");
    }
    assert_eq!(log.as_ptr(), base);
    assert_eq!(file.metadata().unwrap().len(), 4096 + 2_000_000);
    let fresh = Mapping::from_file(&file, Access::ReadOnly).unwrap().view(..).unwrap();
    assert_eq!(fresh.read_le::<u64>(4096 + 19 * 100_000).unwrap(), 20);
    // Its pages are read-only: no references that could store.
    assert!(matches!(log.get::<std::sync::atomic::AtomicU64>(0), Err(Error::WriteThrough { .. })));
    // Memory without a file has nothing to write with.
    let anonymous = Mapping::anonymous(4096).unwrap();
    let err = anonymous.view_growable_write_through(0, MIB).unwrap_err();
    assert!(matches!(err, Error::WriteThrough { .. }), "{err}");
}

/// The reader: opens the file by path, follows it with a growable view, and reports what
/// it sees after each refresh. Another process, so the size is learnt from the file alone.
#[test]
fn another_process_follows_a_file_as_it_grows() {
    let _turn = one_at_a_time();
    if let Some((role, path)) = role() {
        assert_eq!(role, "reader");
        let file = File::open(&path).unwrap();
        let mapping = Mapping::from_file(&file, Access::ReadOnly).unwrap();
        let mut view = mapping.view_growable(0, 64 * MIB).unwrap();
        let base = view.as_ptr();
        tell(&format!("len {}", view.len()));
        while let Some(line) = hear() {
            let at: usize = line.parse().unwrap();
            let len = view.refresh().unwrap();
            let word = view.read_le::<u64>(at).unwrap();
            tell(&format!("seen {len} {word} {}", view.as_ptr() == base));
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing");
    let file = File::options().read(true).write(true).create(true).truncate(true).open(&path);
    let file = file.unwrap();
    let mapping = file_mapping(&file, 65_536);
    let mut writer = mapping.view_growable_mut(0, 64 * MIB).unwrap();
    let test = "another_process_follows_a_file_as_it_grows";
    let mut reader = Peer::spawn(test, "reader", path.to_str().unwrap());
    assert_eq!(reader.expect("len"), "65536");
    for step in 1..=5u64 {
        let len = 65_536 + step * 3 * MIB + 100;
        writer.grow(len).unwrap();
        writer.write_le(len as usize - 8, step * 1000).unwrap();
        reader.say(&(len - 8).to_string());
        assert_eq!(reader.expect("seen"), format!("{len} {} true", step * 1000));
    }
    reader.wait_success();
}

/// A named pagefile-backed object grows in one process while another reads it through a
/// view that stays valid. Windows sections cannot grow: there it is `Unsupported`.
#[test]
fn a_named_object_grows_while_another_process_reads() {
    let _turn = one_at_a_time();
    if let Some((role, name)) = role() {
        assert_eq!(role, "reader");
        let mapping = Mapping::open(&name, Access::ReadOnly).unwrap();
        let mut view = mapping.view_growable(0, 256 * MIB).unwrap();
        let base = view.as_ptr();
        tell(&format!("first {}", view.read_le::<u64>(0).unwrap()));
        while let Some(line) = hear() {
            let at: usize = line.parse().unwrap();
            // The old part stays readable while the writer grows the object.
            let first = view.read_le::<u64>(0).unwrap();
            let len = view.refresh().unwrap();
            let word = view.read_le::<u64>(at).unwrap();
            tell(&format!("seen {len} {first} {word} {}", view.as_ptr() == base));
        }
        return;
    }
    let name = mmf_testkit::unique_name("grow");
    let mapping = mmf_testkit::create_named(&name, 65_536).unwrap();
    let mut writer = mapping.view_growable_mut(0, 256 * MIB).unwrap();
    writer.write_le(0, 7u64).unwrap();
    if cfg!(windows) {
        let err = writer.grow(2 * 65_536).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        return;
    }
    let test = "a_named_object_grows_while_another_process_reads";
    let mut reader = Peer::spawn(test, "reader", &name);
    assert_eq!(reader.expect("first"), "7");
    for step in 1..=4u64 {
        let len = 65_536 + step * 5 * MIB;
        writer.grow(len).unwrap();
        writer.write_le(len as usize - 8, step).unwrap();
        reader.say(&(len - 8).to_string());
        assert_eq!(reader.expect("seen"), format!("{len} 7 {step} true"));
    }
    reader.wait_success();
    // A new opener sees the grown size.
    assert_eq!(Mapping::open(&name, Access::ReadOnly).unwrap().size(), 65_536 + 20 * MIB);
}

/// Growth on a full file system is an error from `grow` itself, nothing changes, and the
/// view goes on working: never a SIGBUS at a later write.
#[test]
#[cfg(target_os = "linux")]
fn growth_on_a_full_file_system_is_an_error_and_changes_nothing() {
    let _turn = one_at_a_time();
    if let Some((role, _)) = role() {
        assert_eq!(role, "small-fs");
        let dir = mmf_testkit::small_tmpfs();
        let path = dir.path().join("log");
        let file =
            File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        let mapping = file_mapping(&file, 65_536);
        let mut log = mapping.view_growable_mut(0, 64 * MIB).unwrap();
        log.grow(512 * 1024).unwrap();
        log.write_at(0, &vec![1u8; 512 * 1024]).unwrap();
        let err = log.grow(4 * MIB).unwrap_err();
        tell(&format!("no space {}", matches!(err, Error::GrowNoSpace { .. })));
        tell(&format!("kind {:?}", std::io::Error::from(err).kind()));
        tell(&format!("sizes {} {}", log.len(), file.metadata().unwrap().len()));
        // The view still works, and small growth that fits still succeeds.
        log.write_at(512 * 1024 - 4, b"tail").unwrap();
        log.grow(600 * 1024).unwrap();
        log.write_at(600 * 1024 - 4, b"more").unwrap();
        tell(&format!("after {}", file.metadata().unwrap().len()));
        // A write-through growing view grows sparsely; its write says the disk is full.
        let path = dir.path().join("wt");
        let file = File::options().read(true).write(true).create(true).truncate(true).open(&path);
        let file = file.unwrap();
        let mapping = file_mapping(&file, 4096);
        let mut wt = mapping.view_growable_write_through(0, 64 * MIB).unwrap();
        wt.grow(4 * MIB).unwrap();
        let err = wt.write_at(0, &vec![3u8; 4 * MIB as usize]).unwrap_err();
        tell(&format!("write-through {}", matches!(err, Error::StorageFull { .. })));
        return;
    }
    let test = "growth_on_a_full_file_system_is_an_error_and_changes_nothing";
    let mut child = Peer::spawn_under(&["unshare", "-Urm", "--"], test, "small-fs", "", |_| {});
    assert_eq!(child.expect("no space"), "true");
    assert_eq!(child.expect("kind"), "StorageFull");
    assert_eq!(child.expect("sizes"), "524288 524288");
    assert_eq!(child.expect("after"), (600 * 1024).to_string());
    assert_eq!(child.expect("write-through"), "true");
    child.wait_success();
}

/// Two processes grow one file at once, in small random steps, one through a write-through
/// growing view and one through an ordinary one: the file never shrinks under either.
/// A growth that read the size, lost the race to the other process's larger growth and then
/// set its own smaller size would cut the other's bytes off (and turn its view's tail into
/// `SIGBUS`); growth only ever extends.
#[test]
fn two_processes_growing_one_file_never_shrink_it() {
    let _turn = one_at_a_time();
    const STEPS: u64 = 20_000;
    if let Some((role, path)) = role() {
        let file = File::options().read(true).write(true).open(&path).unwrap();
        let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
        let mut view = match role.as_str() {
            "write-through" => mapping.view_growable_write_through(0, 256 * MIB).unwrap(),
            _ => mapping.view_growable_mut(0, 256 * MIB).unwrap(),
        };
        tell("ready");
        assert_eq!(hear().as_deref(), Some("go"));
        let mut shrunk = 0;
        for target in growth_steps(u64::from(std::process::id()), STEPS) {
            view.grow(target).unwrap();
            if file.metadata().unwrap().len() < target {
                shrunk += 1;
            }
        }
        tell(&format!("shrunk {shrunk}"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared-log");
    File::create(&path).unwrap().set_len(4096).unwrap();
    let test = "two_processes_growing_one_file_never_shrink_it";
    let path = path.to_str().unwrap();
    let mut a = Peer::spawn(test, "write-through", path);
    let mut b = Peer::spawn(test, "allocating", path);
    a.expect("ready");
    b.expect("ready");
    a.say("go");
    b.say("go");
    assert_eq!(a.expect("shrunk"), "0", "the write-through grower saw the file shrink");
    assert_eq!(b.expect("shrunk"), "0", "the other grower saw the file shrink");
    a.wait_success();
    b.wait_success();
}

/// Linux: two threads grow one file through two write-through views of one mapping, whose
/// descriptors share one open file description (as a parent's and a forked child's do):
/// the file never shrinks under either. (Windows: each growth remaps the whole view,
/// hundreds of times here; the process's growths take turns on its address-space lock.)
#[cfg(target_os = "linux")]
#[test]
fn two_threads_growing_through_one_mapping_never_shrink_it() {
    let _turn = one_at_a_time();
    const STEPS: u64 = 100_000;
    let file = tempfile::tempfile().unwrap();
    let mapping = file_mapping(&file, 4096);
    let shrunk = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for seed in [1u64, 2] {
            let (mapping, file, shrunk) = (&mapping, &file, &shrunk);
            s.spawn(move || {
                let mut view = mapping.view_growable_write_through(0, 1 << 30).unwrap();
                for target in growth_steps(0x9e37_79b9_7f4a_7c15 ^ seed, STEPS) {
                    view.grow(target).unwrap();
                    if file.metadata().unwrap().len() < target {
                        shrunk.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(shrunk.into_inner(), 0, "a grower saw the file shrink");
}

/// A view grows while other threads of the process map and unmap views all the time: the
/// growth never loses its range to them. (Windows frees the range for a moment while it
/// maps the larger view there; mmf's own views wait for that moment to pass.)
#[test]
fn growth_while_other_threads_map_views() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let other = tempfile::tempfile().unwrap();
    let others = file_mapping(&other, 4 * MIB);
    let file = tempfile::tempfile().unwrap();
    let mapping = file_mapping(&file, 65_536);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let (others, stop) = (&others, &stop);
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let len = 65_536 * (1 + (n + t) % 48);
                    let view = others.view(0..len).unwrap();
                    assert_eq!(view.len() as u64, len);
                    n += 1;
                }
            });
        }
        let mut view = mapping.view_growable_mut(0, 512 * MIB).unwrap();
        let base = view.as_ptr();
        for step in 1..=300u64 {
            let len = 65_536 + step * 200_000;
            let grown = view.grow(len);
            if grown.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            grown.unwrap();
            view.write_le(len as usize - 8, step).unwrap();
            assert_eq!(view.as_ptr(), base);
        }
        stop.store(true, Ordering::Relaxed);
    });
}
