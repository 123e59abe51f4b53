//! The commands that write leave their files durable (Linux): after `mmf write`, `mmf cp
//! --sync`, `mmf create` and `mmf hello` return, the page cache holds none of the file's
//! pages dirty (`cachestat`) and a read past the cache (`O_DIRECT`) has the bytes; and a
//! file a command created has its directory synced (seen with `strace`).
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;

use mmf_testkit::cli::{Tool, arg};
use mmf_testkit::durability::{page_cache, read_direct};

/// The `mmf` binary of this crate.
const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

const MIB: usize = 1 << 20;

/// A directory on the disk file system under `target/`, or `None` (with the reason
/// printed) when that is tmpfs and has no device to check against.
fn disk_dir() -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"x").unwrap();
    let file = std::fs::File::open(&probe).unwrap();
    let mapping = mmf::Mapping::from_file(&file, mmf::Access::ReadOnly).unwrap();
    if mapping.view(..).unwrap().flush().unwrap() == mmf::Flushed::InMemory {
        eprintln!("SKIPPED: target/ is on tmpfs, which has no device to check against");
        return None;
    }
    Some(dir)
}

/// `len` bytes that differ from page to page, written and synced (so only what the
/// command writes is dirty afterwards).
fn source(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
    let path = dir.join("source.bin");
    let bytes: Vec<u8> = (0..len).map(|i| (i / 4096 * 7 + i % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    std::fs::File::open(&path).unwrap().sync_all().unwrap();
    (path, bytes)
}

/// Asserts that nothing of `path` waits in the page cache and that the device holds
/// `expected` at a few offsets.
fn assert_durable(path: &Path, expected: &[u8], what: &str) {
    let file = std::fs::File::open(path).unwrap();
    let cache = page_cache(&file, 0, 0);
    assert!(cache.clean(), "{what}: {} still has pages to write: {cache:?}", path.display());
    for at in [0, expected.len() / 3, expected.len() - 4096] {
        assert_eq!(read_direct(path, at as u64, 4096), &expected[at..at + 4096], "{what} at {at}");
    }
}

#[test]
fn write_cp_create_and_hello_leave_their_files_durable() {
    let Some(dir) = disk_dir() else { return };
    let d = dir.path();
    let (src, bytes) = source(d, 24 * MIB);

    let dst = d.join("written.bin");
    std::fs::File::create(&dst).unwrap().sync_all().unwrap();
    MMF.ok(&["write", arg(&dst), "--from", arg(&src)], d);
    assert_durable(&dst, &bytes, "mmf write --from");

    let copy = d.join("copy.bin");
    MMF.ok(&["cp", "--sync", arg(&src), arg(&copy)], d);
    assert_durable(&copy, &bytes, "mmf cp --sync");

    let small = d.join("small.bin");
    MMF.ok(&["create", arg(&small), "--size", "64KiB"], d);
    MMF.ok(&["write", arg(&small), "--offset", "8192", "--text", "durable"], d);
    let mut expected = vec![0u8; 64 * 1024];
    expected[8192..8199].copy_from_slice(b"durable");
    assert_durable(&small, &expected, "mmf create + mmf write --text");

    MMF.ok(&["hello", "--path", "hello.bin"], d);
    let mut hello = vec![0u8; 20 * MIB];
    let text: Vec<u8> = "HELLO, WORLD!".encode_utf16().flat_map(u16::to_le_bytes).collect();
    hello[..text.len()].copy_from_slice(&text);
    assert_durable(&d.join("hello.bin"), &hello, "mmf hello");
}

/// Runs `mmf ARGS` in `cwd` under `strace`, and returns the calls it traced.
fn traced(args: &[&str], cwd: &Path) -> String {
    let log = cwd.join("strace.log");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=openat,fsync,fdatasync,msync", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_mmf"))
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("strace (scripts/install-deps.sh installs it)");
    assert!(status.success(), "mmf {args:?} under strace");
    std::fs::read_to_string(log).unwrap()
}

/// Whether the trace opens `dir` as a directory and then `fsync`s that descriptor.
fn syncs_directory(trace: &str, dir: &str) -> bool {
    let opened: Vec<String> = trace
        .lines()
        .filter(|l| l.contains(&format!("\"{dir}\"")) && l.contains("O_DIRECTORY"))
        .filter_map(|l| l.rsplit("= ").next().map(|fd| fd.trim().to_owned()))
        .collect();
    opened.iter().any(|fd| trace.lines().any(|l| l.contains(&format!("fsync({fd})"))))
}

#[test]
fn commands_that_create_a_file_sync_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shown = d.to_str().unwrap();
    let trace = traced(&["create", &format!("{shown}/new.bin"), "--size", "1MiB"], d);
    assert!(syncs_directory(&trace, shown), "mmf create, absolute path:\n{trace}");
    // A bare name: the directory is the current one.
    let trace = traced(&["hello", "--path", "hello.bin"], d);
    assert!(syncs_directory(&trace, "."), "mmf hello, relative path:\n{trace}");
    std::fs::write(d.join("src"), b"some bytes").unwrap();
    let trace = traced(&["cp", "--sync", "src", "dst"], d);
    assert!(syncs_directory(&trace, "."), "mmf cp --sync:\n{trace}");
    // An existing file grown by `create` has no new name to sync.
    let trace = traced(&["create", "hello.bin", "--size", "30MiB"], d);
    assert!(!syncs_directory(&trace, "."), "mmf create of an existing file:\n{trace}");
}

/// In a directory its user may write but not read (mode 0333), a new file's name is still
/// made durable (`syncfs` through the file) and the commands succeed: nothing they made is
/// removed for want of reading the directory. Run as `nobody` (root only; CI requires it).
#[test]
fn a_write_only_directory_still_gets_its_new_names_synced() {
    use std::os::unix::fs::PermissionsExt;
    if !mmf_testkit::root_for("acting as nobody in a write-only directory") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wo = dir.path().join("wo");
    std::fs::create_dir(&wo).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&wo, std::fs::Permissions::from_mode(0o333)).unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, b"some bytes").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_nobody = |args: &[&str]| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_mmf")])
            .args(args)
            .current_dir("/")
            .output()
            .unwrap();
        assert!(out.status.success(), "mmf {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let new = wo.join("new.bin");
    as_nobody(&["create", arg(&new), "--size", "64KiB"]);
    assert_eq!(std::fs::metadata(&new).unwrap().len(), 64 * 1024);
    as_nobody(&["hello", "--path", arg(&wo.join("hello.bin"))]);
    as_nobody(&["cp", "--sync", arg(&src), arg(&wo.join("copy"))]);
    assert_eq!(std::fs::read(wo.join("copy")).unwrap(), b"some bytes");
}
