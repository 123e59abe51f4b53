//! The real `mmf` binary: the classic CreateFileMapping example, `dump` against `hexdump -C`, and bad input.

#[cfg(unix)]
use std::path::Path;
#[cfg(unix)]
use std::process::Command;

use mmf_testkit::cli::{Tool, assert_fails, stdout};

/// The `mmf` binary of this crate.
const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

/// The real `hexdump -C`. A Windows test binary under Wine cannot run it (Wine starts the
/// Linux program but cannot hand it the test's pipes), so the comparisons with it are Linux
/// tests here, and `scripts/test-windows.sh` compares the Windows `mmf.exe dump` with
/// `hexdump -C` from the shell.
#[cfg(unix)]
fn hexdump(args: &[&str], file: &Path) -> String {
    let out =
        Command::new("hexdump").arg("-C").args(args).arg(file).output().expect(
            "hexdump (Debian package bsdextrautils) must be installed: .ci/run installs it",
        );
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn hello_writes_the_classic_example_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = MMF.run(&["hello"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = dir.path().join("mm.file");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 20_971_520);
    let text: Vec<u8> = "HELLO, WORLD!".encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(&bytes[..26], &text[..]);
    assert!(bytes[26..].iter().all(|&b| b == 0));
    let shown = stdout(&out);
    assert!(shown.contains("mm.file: 20971520 bytes"), "{shown}");
    #[cfg(unix)]
    assert!(shown.ends_with(&hexdump(&[], &path)), "{shown}");
    assert!(shown.ends_with("*\n01400000\n"), "{shown}");
}

#[test]
fn hello_replaces_an_existing_file_and_takes_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.bin");
    std::fs::write(&path, vec![0xff; 30 << 20]).unwrap();
    let out = MMF.run(&["hello", "--path", path.to_str().unwrap()], dir.path());
    assert!(out.status.success());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 20_971_520);
    assert!(bytes[26..].iter().all(|&b| b == 0));
    assert!(!dir.path().join("mm.file").exists());
}

#[test]
fn hello_into_a_missing_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = MMF.run(&["hello", "--path", "no/such/dir/mm.file"], dir.path());
    assert_fails(&out, 1, "cannot create no/such/dir/mm.file");
}

#[test]
#[cfg(unix)]
fn dump_equals_hexdump_on_every_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    // Text, runs of identical lines (folded into '*'), and a ragged end.
    let mut bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    bytes.extend(std::iter::repeat_n(0u8, 5000));
    bytes.extend(b"the end, not aligned to 16".iter());
    bytes.extend(std::iter::repeat_n(b'x', 70_000));
    std::fs::write(&path, &bytes).unwrap();
    let size = bytes.len() as u64;
    let ranges: &[(u64, Option<u64>)] = &[
        (0, None),
        (1, None),
        (15, Some(1)),
        (17, Some(33)),
        (999, Some(5100)),
        (4095, Some(4097)),
        (6000, Some(50)),
        (size - 1, None),
        (size - 100, Some(1000)),
        (70_000, None),
    ];
    for &(offset, len) in ranges {
        let (o, l) = (offset.to_string(), len.map(|l| l.to_string()));
        let mut args = vec!["dump", path.to_str().unwrap(), "--offset", &o];
        let mut hd_args = vec!["-s", &o];
        if let Some(l) = &l {
            args.extend(["--len", l]);
            hd_args.extend(["-n", l]);
        }
        let out = MMF.run(&args, dir.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout(&out), hexdump(&hd_args, &path), "offset {offset} len {len:?}");
    }
    // Sizes in the documented forms.
    let out = MMF
        .run(&["dump", path.to_str().unwrap(), "--offset", "0x1000", "--len", "1KiB"], dir.path());
    assert_eq!(stdout(&out), hexdump(&["-s", "4096", "-n", "1024"], &path));
}

#[test]
fn dump_of_an_empty_file_prints_nothing_like_hexdump() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty");
    std::fs::write(&path, b"").unwrap();
    let out = MMF.run(&["dump", path.to_str().unwrap()], dir.path());
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
    #[cfg(unix)]
    assert_eq!(stdout(&out), hexdump(&[], &path));
    // An offset into it: "empty", not "give an offset below 0".
    let out = MMF.run(&["dump", path.to_str().unwrap(), "--offset", "16"], dir.path());
    assert_fails(&out, 1, "empty is empty: there is no byte at offset 16");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("below 0"));
}

/// The file truncated while `dump` reads it: a read error that says so (it used to say
/// "writing the dump failed").
#[test]
#[cfg(target_os = "linux")]
fn dump_of_a_file_truncated_under_it_says_so() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    // No two lines alike, so that the dump is long and fills the pipe.
    let bytes: Vec<u8> =
        (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmf"))
        .args(["dump", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read the first lines; mmf then waits on the full pipe, in its first megabyte.
    let mut out = child.stdout.take().unwrap();
    let mut first = vec![0; 4096];
    out.read_exact(&mut first).unwrap();
    std::fs::File::options().write(true).open(&path).unwrap().set_len(0).unwrap();
    let rest = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let output = mmf_testkit::cli::finish_within(
        child,
        std::time::Duration::from_secs(120),
        "mmf dump of a truncated file",
    );
    rest.join().unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(stderr.contains("was truncated while mmf read it (it has 0 bytes now)"), "{stderr}");
    assert!(!stderr.contains("writing"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn dump_refuses_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small");
    std::fs::write(&path, b"0123456789").unwrap();
    let p = path.to_str().unwrap();
    assert_fails(&MMF.run(&["dump", "missing.bin"], dir.path()), 1, "cannot open missing.bin");
    assert_fails(&MMF.run(&["dump", "."], dir.path()), 1, "is a directory");
    assert_fails(&MMF.run(&["dump", p, "--offset", "10"], dir.path()), 1, "past the end");
    assert_fails(&MMF.run(&["dump", p, "--offset", "1Q"], dir.path()), 2, "invalid size '1Q'");
    assert_fails(&MMF.run(&["dump", p, "--len=-5"], dir.path()), 2, "invalid size '-5'");
    assert_fails(&MMF.run(&["dump"], dir.path()), 2, "Usage");
    assert_fails(&MMF.run(&["frobnicate"], dir.path()), 2, "unrecognized subcommand");
}

#[test]
fn every_subcommand_has_help_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["hello", "dump"] {
        let out = MMF.run(&[sub, "--help"], dir.path());
        assert!(out.status.success());
        assert!(stdout(&out).contains("Examples:"), "{sub}");
    }
}
