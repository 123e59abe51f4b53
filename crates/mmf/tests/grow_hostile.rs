//! Growth while mapped against hostile peers, Linux: a file another process truncates
//! under a growable view, a grower SIGKILLed while another process grows the same file, a
//! growth that fails on a full ext4 (it must give the space back), and a reserve of 0.
//! (From the session-5 review; each test failed on the code it was written against.)
#![cfg(target_os = "linux")]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use mmf::{Access, Error, Mapping, MappingOptions};
use mmf_testkit::{Peer, role, tell};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Truncates `path` to `len` bytes from another process (coreutils `truncate`).
fn truncate_from_another_process(path: &std::path::Path, len: u64) {
    let status =
        Command::new("truncate").args(["-s", &len.to_string()]).arg(path).status().unwrap();
    assert!(status.success());
}

/// A new file `log` in `dir`, 4 KiB long, and a read-write mapping of it.
fn new_log(dir: &Path) -> (PathBuf, File, Mapping) {
    let path = dir.join("log");
    let file = File::options().read(true).write(true).create(true).truncate(true).open(&path);
    let file = file.unwrap();
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file).unwrap();
    (path, file, mapping)
}

/// Another process cuts the file to 256 KiB under a view grown to 1 MiB. `grow(512 KiB)`
/// must then give the file 512 KiB again (it used to answer `Ok` doing nothing, as the
/// view was longer, and the next write inside the promised length failed with
/// `Truncated`): `grow(len)` returning `Ok` means the file holds `len` bytes.
#[test]
fn grow_after_another_process_truncated_the_file_makes_it_hold_len() {
    let dir = tempfile::tempdir().unwrap();
    let (path, file, mapping) = new_log(dir.path());
    let mut view = mapping.view_growable_mut(0, 64 * MIB).unwrap();
    view.grow(MIB).unwrap();
    view.write_at(MIB as usize - 4, b"tail").unwrap();
    truncate_from_another_process(&path, 256 * KIB);
    // Reading past the cut is an error, not a SIGBUS (this holds).
    let mut buf = [0u8; 4];
    assert!(matches!(view.read_at(MIB as usize - 4, &mut buf), Err(Error::Truncated { .. })));
    view.grow(512 * KIB).unwrap();
    let now = file.metadata().unwrap().len();
    let wrote = view.write_at(512 * KIB as usize - 4, b"next");
    assert!(
        now >= 512 * KIB && wrote.is_ok(),
        "grow(512 KiB) said Ok but the file has {now} bytes and the write inside it gave {wrote:?}"
    );
}

/// After another process truncated the file, `refresh` ("returns the view's length now")
/// answers what the file holds (it used to answer the old length, 1 MiB, for a file of
/// 256 KiB, and a reader that trusted it read into `Truncated` errors).
#[test]
fn refresh_after_another_process_truncated_the_file_reports_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _file, mapping) = new_log(dir.path());
    let mut writer = mapping.view_growable_mut(0, 64 * MIB).unwrap();
    let mut reader = mapping.view_growable(0, 64 * MIB).unwrap();
    writer.grow(MIB).unwrap();
    assert_eq!(reader.refresh().unwrap(), MIB);
    truncate_from_another_process(&path, 256 * KIB);
    let len = reader.refresh().unwrap();
    assert_eq!(len, 256 * KIB, "refresh says the view has {len} bytes; the file has 256 KiB");
}

/// Two real processes grow one file in small steps and write every byte they add; one is
/// SIGKILLed in the middle of its growths. The survivor's growths all succeed, the file is
/// never shorter than what the survivor grew it to, and every byte it wrote is intact.
/// (A smoke test of the kill: it did not catch a mutation that grows with `ftruncate` —
/// the fstat-to-ftruncate window is too short to hit in a few runs; grow_failures.rs's
/// full-disk test is the one that catches shrinking.)
#[test]
fn a_grower_killed_mid_growth_never_cuts_back_the_other() {
    let test = "a_grower_killed_mid_growth_never_cuts_back_the_other";
    const TARGET: u64 = 48 * MIB;
    match role() {
        Some((role, path)) if role == "victim" => {
            let file = File::options().read(true).write(true).open(&path).unwrap();
            let mapping = mmf::Mapping::from_file(&file, Access::ReadWrite).unwrap();
            let mut view = mapping.view_growable_mut(0, 256 * MIB).unwrap();
            tell("ready");
            let mut told = false;
            loop {
                // Just past the file's end now: the growths race the survivor's.
                let now = view.refresh().unwrap();
                if now < 2 * TARGET {
                    let _ = view.grow(now + 1 + now % 4093);
                }
                if !told {
                    tell("grew"); // once: a full pipe would stop the growths
                    told = true;
                }
            }
        }
        Some(_) => unreachable!(),
        None => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log");
            File::create(&path).unwrap().set_len(4096).unwrap();
            let mut victim = Peer::spawn(test, "victim", path.to_str().unwrap());
            victim.expect("ready");
            let file = File::options().read(true).write(true).open(&path).unwrap();
            let mapping = mmf::Mapping::from_file(&file, Access::ReadWrite).unwrap();
            let mut view = mapping.view_growable_mut(0, 256 * MIB).unwrap();
            let mut len = 4096u64;
            let mut killed = false;
            let pattern = |i: u64| (i.wrapping_mul(0x9e37_79b9) >> 7) as u8 | 1;
            while len < TARGET {
                let next = (len + 1 + (len * 7919) % 65_521).min(TARGET);
                view.grow(next).unwrap();
                let fill: Vec<u8> = (len..next).map(pattern).collect();
                view.write_at(len as usize, &fill).unwrap();
                len = next;
                let size = file.metadata().unwrap().len();
                assert!(size >= len, "the file was cut to {size} under a view of {len}");
                if !killed && len > TARGET / 2 {
                    victim.expect("grew");
                    victim.kill(); // SIGKILL
                    killed = true;
                }
            }
            let mut back = vec![0u8; len as usize];
            view.read_at(0, &mut back).unwrap();
            let bad = (4096..len).filter(|&i| back[i as usize] != pattern(i)).count();
            assert_eq!(bad, 0, "{bad} bytes the survivor wrote were lost");
        }
    }
}

/// Free bytes of the file system holding `path` (`statvfs`).
fn free_bytes(path: &std::path::Path) -> u64 {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: statvfs is plain data; all zeros is a valid value.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a statvfs to fill.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_bavail as u64 * s.f_frsize as u64
}

/// A 32 MiB ext4 loop mount (needs root: ext4 cannot be mounted in a user namespace).
/// A growth past the free space fails with `GrowNoSpace`, keeps the file's size and
/// leaves the free space as it was. (A failed `fallocate(FALLOC_FL_KEEP_SIZE)` keeps the
/// blocks it got past the end of the file: the file system was left 100% full, and every
/// other writer got `ENOSPC`; growth now checks the free space with `fstatvfs` first.)
#[test]
fn a_failed_growth_on_a_full_ext4_gives_the_space_back() {
    if !mmf_testkit::root_for("mounting an ext4 image") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("fs.img");
    File::create(&image).unwrap().set_len(32 * MIB).unwrap();
    let ok = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image).status().unwrap();
    assert!(ok.success(), "mkfs.ext4");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&mnt).status().unwrap();
    assert!(ok.success(), "mount -o loop (root)");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let (_, file, mapping) = new_log(&mnt);
    let mut view = mapping.view_growable_mut(0, 256 * MIB).unwrap();
    let before = free_bytes(&mnt);
    let err = view.grow(100 * MIB).unwrap_err();
    assert!(matches!(err, Error::GrowNoSpace { .. }), "{err:?}");
    assert_eq!(file.metadata().unwrap().len(), 4096, "the size is kept (this holds)");
    let after = free_bytes(&mnt);
    let other = std::fs::write(mnt.join("other"), vec![1u8; MIB as usize]);
    assert!(
        after + MIB >= before && other.is_ok(),
        "free space {before} before the failed growth, {after} after; another writer's 1 MiB: \
         {other:?}"
    );
}

/// A growable view at the mapping's end with a reserve of 0 bytes (hostile but legal
/// input: "up to 0 bytes") is an empty view, as `view(4096..)` gives, which cannot grow
/// (it used to be `Error::Os { op: "mmap(PROT_NONE)", EINVAL }`).
#[test]
fn a_zero_reserve_is_an_empty_view_or_a_clear_error() {
    let file = tempfile::tempfile().unwrap();
    let mapping =
        MappingOptions::new().access(Access::ReadWrite).size(4096).map_file(&file).unwrap();
    let mut view = mapping.view_growable_mut(4096, 0).unwrap();
    assert_eq!(view.len(), 0);
    assert!(matches!(view.grow(1), Err(Error::GrowPastReserve { len: 1, reserve: 0 })));
}
