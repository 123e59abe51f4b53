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

/// Dirty bytes (`Shared_Dirty` + `Private_Dirty`, in kB) of the mapping that contains
/// `addr`, from `/proc/self/smaps`.
#[cfg(target_os = "linux")]
pub fn dirty_kb(addr: *const u8) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("read smaps");
    let addr = addr as usize;
    let mut inside = false;
    let mut dirty = 0;
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
        if inside && (line.starts_with("Shared_Dirty:") || line.starts_with("Private_Dirty:")) {
            dirty += line.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()).unwrap();
        }
    }
    dirty
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
