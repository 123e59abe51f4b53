//! `mmf sum`: the XXH3-64 of files of every size (across the window boundaries), checked
//! against xxhash-rust's one-shot hash of the bytes read with `std::fs::read`; what cannot
//! be mapped is read; refusals say what was wrong.

use mmf_testkit::cli::{Tool, arg, assert_fails};
use xxhash_rust::xxh3::xxh3_64;

const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

#[test]
fn sums_match_a_one_shot_hash_of_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let window = 32 << 20; // the CLI's window
    for len in [1usize, 240, 4096, 1_000_003, window - 1, window + 7, 2 * window + 4096] {
        let path = dir.path().join(format!("f{len}"));
        let data: Vec<u8> = (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let out = MMF.ok(&["sum", arg(&path)], dir.path());
        assert_eq!(
            out,
            format!("XXH3 ({}) = {:016x}\n", arg(&path), xxh3_64(&data)),
            "{len} bytes"
        );
    }
}

#[test]
fn several_files_and_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), b"hello").unwrap();
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    let out = MMF.ok(&["sum", "a", "empty"], dir.path());
    let want =
        format!("XXH3 (a) = {:016x}\nXXH3 (empty) = {:016x}\n", xxh3_64(b"hello"), xxh3_64(b""));
    assert_eq!(out, want);
}

#[test]
#[cfg(target_os = "linux")]
fn what_cannot_be_mapped_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = MMF.ok(&["sum", "/proc/self/cmdline"], dir.path());
    assert!(out.starts_with("XXH3 (/proc/self/cmdline) = "), "{out}");
    let version = std::fs::read("/proc/version").unwrap();
    let out = MMF.ok(&["sum", "/proc/version"], dir.path());
    assert_eq!(out, format!("XXH3 (/proc/version) = {:016x}\n", xxh3_64(&version)));
}

#[test]
fn a_missing_file_or_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_fails(&MMF.run(&["sum", "nope"], dir.path()), 1, "cannot open nope");
    assert_fails(&MMF.run(&["sum", "."], dir.path()), 1, "is a directory");
}

/// The same line as `xxhsum -H3` (Debian package xxhash, which `scripts/install-deps.sh`
/// installs), and `xxhsum -c` accepts mmf's output.
#[test]
#[cfg(target_os = "linux")]
fn the_output_is_xxhsums_and_xxhsum_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("data"), &data).unwrap();
    let ours = MMF.ok(&["sum", "data"], dir.path());
    let theirs = std::process::Command::new("xxhsum")
        .args(["-H3", "data"])
        .current_dir(dir.path())
        .output()
        .expect("xxhsum (Debian package xxhash) must be installed: .ci/run installs it");
    assert_eq!(ours, String::from_utf8(theirs.stdout).unwrap());
    std::fs::write(dir.path().join("sums"), &ours).unwrap();
    let check = std::process::Command::new("xxhsum")
        .args(["-c", "sums"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}
