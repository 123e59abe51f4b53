//! `mmf create`, `write` and `cp` through the real binary, with their bad inputs.

use mmf_testkit::cli::{Tool, arg, assert_fails};

/// The `mmf` binary of this crate.
const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

#[test]
fn create_makes_and_grows_a_file_but_never_shrinks_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    let out = MMF.ok(&["create", arg(&path), "--size", "20MiB"], dir.path());
    assert!(out.contains("20971520 bytes (was 0)"), "{out}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 20 << 20);
    MMF.ok(&["write", arg(&path), "--text", "keep"], dir.path());
    MMF.ok(&["create", arg(&path), "--size", "0x2000000"], dir.path());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 32 << 20);
    let out = MMF.ok(&["create", arg(&path), "--size", "1k"], dir.path());
    assert!(out.contains("not shrunk"), "{out}");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!((bytes.len(), &bytes[..4]), (32 << 20, &b"keep"[..]));
}

#[test]
fn write_puts_each_input_form_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    MMF.ok(&["create", arg(&path), "--size", "8192"], dir.path());
    let from = dir.path().join("from.bin");
    std::fs::write(&from, b"FROM-FILE").unwrap();
    MMF.ok(&["write", arg(&path), "--text", "text"], dir.path());
    MMF.ok(&["write", arg(&path), "--offset", "16", "--utf16", "HI"], dir.path());
    MMF.ok(&["write", arg(&path), "--offset", "0x20", "--hex", "de ad be ef"], dir.path());
    let out = MMF.ok(&["write", arg(&path), "--offset", "4096", "--from", arg(&from)], dir.path());
    assert!(out.contains("wrote 9 bytes at offset 4096"), "{out}");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], b"text");
    assert_eq!(&bytes[16..20], b"H\0I\0");
    assert_eq!(&bytes[32..36], [0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(&bytes[4096..4105], b"FROM-FILE");
    // Past the end: the file grows.
    MMF.ok(&["write", arg(&path), "--offset", "10000", "--text", "tail"], dir.path());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 10_004);
}

#[test]
fn cp_copies_exactly_and_keeps_holes() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src.bin"), dir.path().join("dst.bin"));
    MMF.ok(&["create", arg(&src), "--size", "64MiB"], dir.path());
    MMF.ok(&["write", arg(&src), "--offset", "0", "--text", "start"], dir.path());
    MMF.ok(&["write", arg(&src), "--offset", "40MiB", "--hex", "0102030405"], dir.path());
    MMF.ok(&["write", arg(&src), "--offset", "67108860", "--text", "end!"], dir.path());
    MMF.ok(&["cp", arg(&src), arg(&dst)], dir.path());
    assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let blocks = std::fs::metadata(&dst).unwrap().blocks() * 512;
        assert!(blocks < 4 << 20, "the copy must stay sparse: {blocks} bytes allocated");
    }
    // A dense source with zeros inside is copied byte for byte.
    let dense = dir.path().join("dense.bin");
    let mut data = vec![0u8; 8 << 20];
    data[0] = 1;
    data[(8 << 20) - 1] = 2;
    std::fs::write(&dense, &data).unwrap();
    let copy = dir.path().join("copy.bin");
    MMF.ok(&["cp", arg(&dense), arg(&copy), "--sync"], dir.path());
    assert_eq!(std::fs::read(&copy).unwrap(), data);
    // An empty file copies to an empty file.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    MMF.ok(&["cp", arg(&empty), arg(&dst)], dir.path());
    assert_eq!(std::fs::metadata(&dst).unwrap().len(), 0);
}

#[test]
fn bad_input_gets_one_line_and_the_right_status() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("f.bin");
    std::fs::write(&file, b"0123456789").unwrap();
    let f = arg(&file);
    // usage: exit 2
    assert_fails(&MMF.run(&["create", f, "--size", "0"], d), 2, "at least 1 byte");
    assert_fails(&MMF.run(&["create", f, "--size", "12XB"], d), 2, "invalid size");
    assert_fails(&MMF.run(&["create", f], d), 2, "--size");
    assert_fails(&MMF.run(&["write", f, "--hex", "xyz"], d), 2, "invalid hex");
    assert_fails(&MMF.run(&["write", f, "--hex", "123"], d), 2, "odd number");
    assert_fails(&MMF.run(&["write", f], d), 2, "required");
    assert_fails(
        &MMF.run(&["write", f, "--text", "a", "--hex", "00"], d),
        2,
        "cannot be used with",
    );
    assert_fails(&MMF.run(&["cp", f], d), 2, "DST");
    // failed operations: exit 1
    assert_fails(&MMF.run(&["write", "missing.bin", "--text", "x"], d), 1, "create it first");
    assert_fails(&MMF.run(&["write", ".", "--text", "x"], d), 1, "is a directory");
    assert_fails(&MMF.run(&["write", f, "--text", ""], d), 1, "nothing to write");
    assert_fails(&MMF.run(&["write", f, "--from", "nope"], d), 1, "cannot open nope");
    assert_fails(&MMF.run(&["create", ".", "--size", "1k"], d), 1, "is a directory");
    assert_fails(&MMF.run(&["create", "no/such/dir/x", "--size", "1k"], d), 1, "cannot open");
    assert_fails(&MMF.run(&["cp", "missing.bin", "x"], d), 1, "cannot open missing.bin");
    assert_fails(&MMF.run(&["cp", f, f], d), 1, "the same file");
    assert_fails(&MMF.run(&["cp", ".", "x"], d), 1, "is a directory");
    assert_fails(&MMF.run(&["cp", f, "."], d), 1, "is a directory");
    assert_fails(&MMF.run(&["dump", f, "--offset", "10"], d), 1, "past the end");
    assert_eq!(std::fs::read(&file).unwrap(), b"0123456789", "nothing was changed");
}

/// Permission denied, as an unprivileged user (root reads everything, so a root run drops
/// to `nobody` with `setpriv` for this check).
#[test]
#[cfg(target_os = "linux")]
fn no_permission_is_a_clean_failure() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.bin");
    std::fs::write(&file, b"secret").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let run = |args: &[&str]| {
        let mut command = if root {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_mmf")]);
            c
        } else {
            std::process::Command::new(env!("CARGO_BIN_EXE_mmf"))
        };
        command.args(args).current_dir("/").output().expect("run mmf (setpriv from util-linux)")
    };
    for args in [
        vec!["dump", arg(&file)],
        vec!["write", arg(&file), "--text", "x"],
        vec!["info", arg(&file)],
    ] {
        assert_fails(&run(&args), 1, "Permission denied");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"secret");
}

/// The names in a directory, sorted: a failed command leaves no temporary file behind.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_failed_copy_leaves_the_destination_exactly_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dst = d.join("dst.bin");
    std::fs::write(&dst, b"the original destination").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let before = names(d);
    let unchanged = |why: &str| {
        assert_eq!(std::fs::read(&dst).unwrap(), b"the original destination", "{why}");
        assert_eq!(names(d), before, "{why}: nothing else left behind");
    };
    assert_fails(&MMF.run(&["cp", "missing.bin", arg(&dst)], d), 1, "cannot open missing.bin");
    unchanged("missing source");
    #[cfg(target_os = "linux")]
    {
        // A source that opens but cannot be read: the copy fails after it has begun.
        let out = MMF.run(&["cp", "/proc/self/mem", arg(&dst)], d);
        assert_fails(&out, 1, "cannot read /proc/self/mem");
        unchanged("unreadable source");
    }
    // A good copy replaces the destination and keeps its permissions.
    let src = d.join("src.bin");
    std::fs::write(&src, b"new").unwrap();
    MMF.ok(&["cp", arg(&src), arg(&dst)], d);
    assert_eq!(std::fs::read(&dst).unwrap(), b"new");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dst).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }
}

/// The source truncated while `cp` copies it: the copy fails and the destination is as it
/// was (the copy used to truncate the destination first).
#[test]
#[cfg(target_os = "linux")]
fn a_source_truncated_during_the_copy_leaves_the_destination_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (src, dst) = (d.join("src.bin"), d.join("dst.bin"));
    std::fs::write(&dst, b"the original destination").unwrap();
    for _ in 0..5 {
        std::fs::write(&src, vec![0x77u8; 256 << 20]).unwrap();
        let before = names(d);
        let truncate =
            || std::fs::File::options().write(true).open(&src).unwrap().set_len(0).unwrap();
        let Some(out) =
            MMF.run_paused_when_mapped(&["cp", arg(&src), arg(&dst)], d, &src, truncate)
        else {
            continue; // it finished before it could be stopped: try again
        };
        assert_fails(&out, 1, "src.bin: it was truncated while mmf read it (it has 0 bytes now)");
        assert_eq!(std::fs::read(&dst).unwrap(), b"the original destination");
        assert_eq!(names(d), before, "no temporary file left behind");
        return;
    }
    panic!("cp always finished before it could be stopped");
}

#[test]
fn a_failed_create_leaves_no_new_file_and_changes_no_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 100 TiB is past what the file system allows (ext4: 16 TiB).
    let out = MMF.run(&["create", "big.bin", "--size", "100TiB"], d);
    assert_fails(&out, 1, "cannot grow big.bin to 109951162777600 bytes");
    assert!(!d.join("big.bin").exists(), "the file it created is removed again");
    std::fs::write(d.join("old.bin"), b"old").unwrap();
    let out = MMF.run(&["create", "old.bin", "--size", "100TiB"], d);
    assert_fails(&out, 1, "cannot grow old.bin");
    assert_eq!(std::fs::read(d.join("old.bin")).unwrap(), b"old");
}

#[test]
fn bad_hex_is_a_usage_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, b"0123").unwrap();
    // "é" is two bytes in one character: slicing the text in byte pairs used to cut it.
    for hex in ["1é1", "é", "éé", "4é", "0xé1", "1 é 1", "12 3"] {
        let out = MMF.run(&["write", arg(&file), "--hex", hex], dir.path());
        assert_fails(&out, 2, "invalid hex");
    }
    let out = MMF.run(&["write", arg(&file), "--hex", "1é1"], dir.path());
    assert_fails(&out, 2, "'é' is not a hex digit");
    assert_eq!(std::fs::read(&file).unwrap(), b"0123");
}

/// `mmf write F --from F` at another offset: the ranges overlap, and the result is what
/// the file held before the command, as with a copy through a buffer.
#[test]
fn write_from_the_same_file_copies_what_it_held_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    let before: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &before).unwrap();
    MMF.ok(&["write", arg(&path), "--offset", "4096", "--from", arg(&path)], dir.path());
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after.len(), 4096 + before.len());
    assert_eq!(&after[..4096], &before[..4096]);
    assert!(after[4096..] == before[..], "the copy must be of the bytes before the write");
}

/// Output that cannot be written (stdout on a full disk, `/dev/full`) is the command's
/// one-line error and exit status 1 in every command that prints, not a panic (exit
/// status 101) as `println!` made it (review s7 found it in `info`).
#[cfg(target_os = "linux")]
#[test]
fn output_to_a_full_disk_is_an_error_in_every_printing_command() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    MMF.ok(&["create", arg(&path), "--size", "8KiB"], dir.path());
    let p = arg(&path);
    let name = format!("mmf-full-stdout-{}", std::process::id());
    let chan = format!("mmf-full-stdout-chan-{}", std::process::id());
    let runs: [&[&str]; 9] = [
        &["info", p],
        &["info", p, "--json"],
        &["info", p, "--map"],
        &["create", p, "--size", "16KiB"],
        &["write", p, "--text", "x"],
        &["shm", "create", &name, "--size", "4KiB"],
        &["shm", "list"],
        &["chan", "create", &chan],
        &["chan", "info", &chan],
    ];
    for args in runs {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = std::process::Command::new(MMF.0)
            .args(args)
            .current_dir(dir.path())
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot write the output") && !err.contains("panicked"), "{err}");
    }
    for made in [name, chan] {
        let _ = std::fs::remove_file(format!("/dev/shm/{made}"));
    }
}

/// A copy interrupted by SIGINT or SIGTERM (here of `/dev/zero`, which has no end) removes
/// what it copied so far and leaves DST as it was: the default end of the process left a
/// `.mmf-cp-*` file of gigabytes beside it.
#[test]
#[cfg(target_os = "linux")]
fn an_interrupted_copy_leaves_no_partial_file() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("out");
        std::fs::write(&dst, b"old").unwrap();
        let mut command = std::process::Command::new(MMF.0);
        command.args(["cp", "/dev/zero", arg(&dst)]).stderr(std::process::Stdio::piped());
        let child = mmf_testkit::spawn(&mut command).unwrap();
        let partial = || names(dir.path()).into_iter().find(|n| n.starts_with(".mmf-cp-"));
        let started = std::time::Instant::now();
        while partial().is_none_or(|p| std::fs::metadata(dir.path().join(p)).unwrap().len() == 0) {
            assert!(started.elapsed().as_secs() < 30, "no copy under way: {:?}", names(dir.path()));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // SAFETY: a signal to our own child, which has not been waited for (its pid is
        // still its own).
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "signal {signal}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("partial copy was removed"));
        assert_eq!(names(dir.path()), ["out"], "signal {signal}");
        assert_eq!(std::fs::read(&dst).unwrap(), b"old");
    }
}
