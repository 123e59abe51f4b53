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
    assert_fails(&MMF.run(&["write", f, "--from", "nope"], d), 1, "cannot read nope");
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
