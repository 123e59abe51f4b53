//! Temporary files with a known pattern, reading files without a mapping, and the dirty
//! pages of a mapping.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// A new file of `len` bytes (`byte(i)` each) in a fresh temporary directory, open
/// read-write.
pub fn file_with(len: usize, byte: impl Fn(usize) -> u8) -> (tempfile::TempDir, PathBuf, File) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    let bytes: Vec<u8> = (0..len).map(byte).collect();
    std::fs::write(&path, bytes).expect("write test file");
    let file = open_rw(&path);
    (dir, path, file)
}

/// Opens `path` for reading and writing.
pub fn open_rw(path: &Path) -> File {
    OpenOptions::new().read(true).write(true).open(path).expect("open read-write")
}

/// The byte pattern the tests write: distinct for every offset modulo 251.
pub fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// The value of a field (`"Shared_Dirty:"`, `"VmFlags:"`, ...) of the `/proc/self/smaps`
/// entry of the mapping that contains `addr`, as written there (`"12 kB"`, `"rd mr dd"`).
#[cfg(target_os = "linux")]
pub fn smaps_field(addr: *const u8, field: &str) -> String {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("read smaps");
    let addr = addr as usize;
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ') {
            if let Some((lo, hi)) = range.split_once('-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    inside = lo <= addr && addr < hi;
                    continue;
                }
            }
        }
        if inside {
            if let Some(value) = line.strip_prefix(field) {
                return value.trim().to_owned();
            }
        }
    }
    panic!("no {field} for the mapping at {addr:#x}");
}

/// A field of [`smaps_field`] in kB.
#[cfg(target_os = "linux")]
pub fn smaps_kb(addr: *const u8, field: &str) -> u64 {
    smaps_field(addr, field).trim_end_matches(" kB").parse().expect("a kB value")
}

/// Dirty bytes (`Shared_Dirty` + `Private_Dirty`, in kB) of the mapping that contains
/// `addr`, from `/proc/self/smaps`.
#[cfg(target_os = "linux")]
pub fn dirty_kb(addr: *const u8) -> u64 {
    smaps_kb(addr, "Shared_Dirty:") + smaps_kb(addr, "Private_Dirty:")
}

/// Reads `buf.len()` bytes of `file` at `offset` with the file API (not a mapping).
pub fn read_file_at(file: &File, offset: u64, buf: &mut [u8]) {
    #[cfg(unix)]
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset).unwrap();
    #[cfg(windows)]
    {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset).unwrap();
        assert_eq!(n, buf.len());
    }
}

/// A new empty file named `tag`, open read-write, in a fresh directory under `parent` (tests
/// pass Cargo's `CARGO_TARGET_TMPDIR`, the disk file system of `target/`).
pub fn new_file_in(parent: &Path, tag: &str) -> (tempfile::TempDir, PathBuf, File) {
    let dir = tempfile::tempdir_in(parent).expect("tempdir");
    let path = dir.path().join(tag);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("create test file");
    (dir, path, file)
}

/// Whether files under `parent` live in memory (tmpfs): a flush of one says
/// [`mmf::Flushed::InMemory`], and there is no device to test durability against.
pub fn in_memory_under(parent: &Path) -> bool {
    let (_dir, _path, file) = new_file_in(parent, "probe");
    let mapping = mmf::MappingOptions::new()
        .access(mmf::Access::ReadWrite)
        .size(4096)
        .map_file(&file)
        .expect("map the probe file");
    mapping.view_mut(..).and_then(|v| v.flush()).expect("flush the probe") == mmf::Flushed::InMemory
}

/// A new temporary directory with a 1 MiB tmpfs mounted on it: a small file system to fill.
/// Call it in a role run under `unshare -Urm` ([`Peer::spawn_under`](crate::Peer::spawn_under)),
/// whose private mount namespace takes the mount away when the role ends.
#[cfg(target_os = "linux")]
pub fn small_tmpfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a small tmpfs");
    dir
}
