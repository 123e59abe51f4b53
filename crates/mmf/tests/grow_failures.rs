//! Linux: a growth that fails never shrinks the file. Another process may have grown the
//! file between this grower's `fstat` and its failure; giving the file the size this one
//! read would cut that growth, and the bytes written into it, off. So a failed map leaves
//! the file longer, and a full disk fails before the size changes (blocks reserved with
//! `FALLOC_FL_KEEP_SIZE` first), with nothing to undo.
#![cfg(target_os = "linux")]

use std::fs::File;
use std::os::fd::FromRawFd;

use mmf::{Access, Error, Mapping, MappingOptions};
use mmf_testkit::{Peer, hear, role, tell};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn file_mapping(file: &File, size: u64) -> Mapping {
    MappingOptions::new().access(Access::ReadWrite).size(size).map_file(file).unwrap()
}

/// The map of the grown part fails (a memfd sealed `F_SEAL_FUTURE_WRITE` refuses new
/// writable shared maps, but not growth): `grow` says so, the view keeps its length, and
/// the file keeps the size it was given — never cut back to what this grower read before.
#[test]
fn a_failed_map_leaves_the_grown_file_longer() {
    // SAFETY: a new memfd; its descriptor is owned by the File below.
    let fd = unsafe { libc::memfd_create(c"grow-map-fails".as_ptr(), libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a new descriptor nobody else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(4096).unwrap();
    let mapping = file_mapping(&file, 4096);
    let mut view = mapping.view_growable_mut(0, 256 * MIB).unwrap();
    // SAFETY: plain fcntl on our descriptor.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_FUTURE_WRITE) }, 0);
    // Past the first 64 MiB, which the view maps when it is made.
    let err = view.grow(100 * MIB).expect_err("a writable map of the sealed memfd fails");
    assert!(matches!(err, Error::Os { .. } | Error::AccessDenied { .. }), "{err:?}");
    assert_eq!(view.len(), 4096, "the view keeps its length");
    view.write_at(0, b"still works").unwrap();
    assert_eq!(file.metadata().unwrap().len(), 100 * MIB, "the grown file was cut back");
}

/// On a 1 MiB tmpfs one process grows a file in small steps and writes every new byte,
/// while another keeps trying to grow it past what the file system holds. Every such
/// try fails with `GrowNoSpace`, and none of them ever shrinks the file under the first
/// process or loses a byte it wrote (a failed growth that set the size it had read would).
#[test]
fn a_grower_on_a_full_disk_never_cuts_back_another() {
    const TARGET: u64 = 640 * KIB;
    let test = "a_grower_on_a_full_disk_never_cuts_back_another";
    match role() {
        Some((role, _)) if role == "small-fs" => {
            let dir = mmf_testkit::small_tmpfs();
            let path = dir.path().join("log");
            File::create(&path).unwrap().set_len(4096).unwrap();
            let path = path.to_str().unwrap();
            let mut grower = Peer::spawn(test, "grower", path);
            let mut filler = Peer::spawn(test, "filler", path);
            grower.expect("ready");
            filler.expect("ready");
            filler.say("go");
            grower.say("go");
            let report = grower.expect("grower");
            filler.say("stop");
            tell(&format!("grower {report}"));
            tell(&format!("filler {}", filler.expect("filler")));
            grower.wait_success();
            filler.wait_success();
        }
        Some((role, path)) if role == "grower" => {
            let file = File::options().read(true).write(true).open(&path).unwrap();
            let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
            let mut view = mapping.view_growable_mut(0, 64 * MIB).unwrap();
            tell("ready");
            assert_eq!(hear().as_deref(), Some("go"));
            let (mut shrunk, mut lost, mut full) = (0, 0, 0);
            let mut len = 4096u64;
            while len < TARGET {
                let next = (len + 1 + len * 7919 % 4093).min(TARGET);
                match view.grow(next) {
                    Ok(()) => {}
                    // Another writer may fill the disk for a moment: try again.
                    Err(Error::GrowNoSpace { .. }) => {
                        full += 1;
                        continue;
                    }
                    Err(e) => panic!("grow to {next}: {e}"),
                }
                let fill: Vec<u8> = (len..next).map(|i| (i % 251) as u8 + 1).collect();
                let written = view.write_at(len as usize, &fill); // fails if cut back
                len = next;
                if written.is_err() || file.metadata().unwrap().len() < len {
                    shrunk += 1;
                }
            }
            let mut back = vec![0u8; len as usize];
            if view.read_at(0, &mut back).is_err() {
                lost = len;
            } else {
                lost +=
                    (4096..len).filter(|&i| back[i as usize] != (i % 251) as u8 + 1).count() as u64;
            }
            tell(&format!("grower shrunk {shrunk} lost {lost} full-retries {full}"));
        }
        Some((role, path)) if role == "filler" => {
            let file = File::options().read(true).write(true).open(&path).unwrap();
            let mapping = Mapping::from_file(&file, Access::ReadWrite).unwrap();
            let mut view = mapping.view_growable_mut(0, 64 * MIB).unwrap();
            tell("ready");
            assert_eq!(hear().as_deref(), Some("go"));
            let (mut tries, mut other) = (0u64, 0u64);
            // Until the grower is done: keep trying to grow past the file system's size.
            let stop = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|s| {
                s.spawn(|| {
                    // "stop", or the parent is gone: stop either way.
                    let _ = hear();
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                });
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match view.grow(2 * MIB) {
                        Err(Error::GrowNoSpace { .. }) => tries += 1,
                        _ => other += 1,
                    }
                }
            });
            tell(&format!("filler no-space {tries} other {other}"));
        }
        Some(_) => unreachable!(),
        None => {
            let mut child =
                Peer::spawn_under(&["unshare", "-Urm", "--"], test, "small-fs", "", |_| {});
            let grower = child.expect("grower");
            let filler = child.expect("filler");
            child.wait_success();
            eprintln!("{grower}; {filler}");
            let words: Vec<&str> = grower.split_whitespace().collect();
            assert_eq!((words[1], words[3]), ("0", "0"), "a failed growth cut back: {grower}");
            let words: Vec<&str> = filler.split_whitespace().collect();
            assert_eq!(words[3], "0", "the filler's growth did not fail for space: {filler}");
            assert!(words[1].parse::<u64>().unwrap() > 0, "the filler never tried: {filler}");
        }
    }
}
