//! Memory that does not grow with the file: the peak resident set size of the real `mmf`
//! process (`ru_maxrss`, file pages mapped into it included), measured by `/usr/bin/time`,
//! stays under a bound that does not depend on the file's size, for files larger than it.
#![cfg(target_os = "linux")]

use std::path::Path;

use mmf_testkit::cli::{Tool, arg};

/// The `mmf` binary of this crate.
const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

const MIB: u64 = 1 << 20;

/// Runs `mmf ARGS`, which must succeed, and returns its peak RSS in MiB.
fn peak_mib(args: &[&str], cwd: &Path) -> u64 {
    let (out, kib) = MMF.run_measured(args, cwd);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    kib / 1024
}

#[test]
fn info_of_a_huge_sparse_file_holds_no_flag_per_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse");
    // 64 Mi pages: one byte (or bool) per page would be 64 MiB, twice over.
    std::fs::File::create(&path).unwrap().set_len(256 << 30).unwrap();
    let peak = peak_mib(&["info", arg(&path), "--map"], dir.path());
    assert!(peak < 32, "mmf info of a 256 GiB file peaked at {peak} MiB");
}

#[test]
fn dump_and_touch_hold_one_window_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros");
    std::fs::File::create(&path).unwrap().set_len(256 * MIB).unwrap();
    // A whole-file view keeps every page it read mapped: 256 MiB and more.
    let peak = peak_mib(&["dump", arg(&path)], dir.path());
    assert!(peak < 128, "mmf dump of 256 MiB peaked at {peak} MiB");
    MMF.ok(&["evict", arg(&path)], dir.path());
    let peak = peak_mib(&["touch", arg(&path)], dir.path());
    assert!(peak < 128, "mmf touch of 256 MiB peaked at {peak} MiB");
}

#[test]
fn cp_holds_a_few_windows_of_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    // Dense, so that every byte is mapped and copied (holes are skipped).
    std::fs::write(&src, vec![0x5a; 512 << 20]).unwrap();
    let peak = peak_mib(&["cp", arg(&src), arg(&dst)], dir.path());
    // At most 4 parts, each with a window of the source and one of the copy mapped.
    assert!(peak < 320, "mmf cp of 512 MiB peaked at {peak} MiB");
    assert_eq!(std::fs::metadata(&dst).unwrap().len(), 512 << 20);
}

#[test]
fn shm_dump_json_is_streamed() {
    let name = mmf_testkit::unique_name("json-rss");
    let here = Path::new("/");
    MMF.ok(&["shm", "create", &name, "--size", "32MiB"], here);
    // Whole, the object would be held as bytes, as hex and as JSON: over 150 MiB.
    let peak = peak_mib(&["shm", "dump", &name, "--json"], here);
    MMF.ok(&["shm", "rm", &name], here);
    assert!(peak < 96, "mmf shm dump --json of 32 MiB peaked at {peak} MiB");
}

#[test]
fn sum_holds_one_window_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dense");
    // Dense, so that every page is read through the mapping.
    std::fs::write(&path, vec![0xa5; 512 << 20]).unwrap();
    let peak = peak_mib(&["sum", arg(&path)], dir.path());
    assert!(peak < 96, "mmf sum of 512 MiB peaked at {peak} MiB");
}
