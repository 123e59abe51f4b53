//! Special files through the real binary: procfs/sysfs pseudo-files, FIFOs, devices,
//! sockets and block devices. Every command answers at once (never blocks in `open`),
//! `dump` and `cp` stream what they cannot map, the rest refuse with the file's kind, and
//! nothing exits 0 having done nothing.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mmf_testkit::cli::{Tool, arg, assert_fails, finish_within, stdout};

/// The `mmf` binary of this crate.
const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

/// Longer than any of these runs takes; reaching it means the command hangs.
const LIMIT: Duration = Duration::from_secs(60);

/// `hexdump -C ARGS PATH`.
fn hexdump(args: &[&str], path: &Path) -> String {
    let out = Command::new("hexdump").arg("-C").args(args).arg(path).output().expect("hexdump");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo (coreutils)");
    assert!(status.success());
}

/// Waits until process `pid` has `path` open.
fn wait_until_open(pid: u32, path: &Path) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten();
        if fds.filter_map(|fd| std::fs::read_link(fd.path()).ok()).any(|p| p == path) {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} never opened {}", path.display());
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn pseudo_files_are_dumped_and_copied_like_hexdump_and_cp() {
    let dir = tempfile::tempdir().unwrap();
    // procfs files report size 0, sysfs attributes 4096; all have a few bytes of content.
    for path in ["/proc/version", "/proc/sys/kernel/ostype", "/sys/devices/system/cpu/online"] {
        let path = Path::new(path);
        let content = std::fs::read(path).unwrap();
        assert!(!content.is_empty());
        let out = MMF.run_within(&["dump", arg(path)], dir.path(), LIMIT);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout(&out), hexdump(&[], path), "{}", path.display());
        // (`hexdump -s` trusts the size of 0 and skips everything: compare with a copy.)
        let reference = dir.path().join("reference");
        std::fs::write(&reference, &content).unwrap();
        let args = ["dump", arg(path), "--offset", "3", "--len", "2"];
        let out = MMF.run_within(&args, dir.path(), LIMIT);
        assert_eq!(stdout(&out), hexdump(&["-s", "3", "-n", "2"], &reference));
        assert!(!stdout(&out).is_empty());

        let copy = dir.path().join("copy");
        let out = MMF.run_within(&["cp", arg(path), arg(&copy)], dir.path(), LIMIT);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read(&copy).unwrap(), content, "{}", path.display());
        std::fs::remove_file(&copy).unwrap();
    }
    // Past the end of what the stream holds.
    let out =
        MMF.run_within(&["dump", "/proc/sys/kernel/ostype", "--offset", "1000"], dir.path(), LIMIT);
    assert_fails(&out, 1, "past the end of /proc/sys/kernel/ostype");
    // The commands that need a mapping say what the file is and what to use instead.
    for cmd in ["info", "touch", "evict", "lock"] {
        let out = MMF.run_within(&[cmd, "/proc/version"], dir.path(), LIMIT);
        assert_fails(&out, 1, "is a procfs pseudo-file");
        assert!(String::from_utf8_lossy(&out.stderr).contains("mmf dump /proc/version"));
    }
}

#[test]
fn a_fifo_without_a_writer_never_hangs_any_command() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("p");
    mkfifo(&fifo);
    let p = arg(&fifo);
    for args in [
        vec!["info", p],
        vec!["touch", p],
        vec!["evict", p],
        vec!["lock", p],
        vec!["write", p, "--text", "x"],
        vec!["create", p, "--size", "1"],
    ] {
        assert_fails(&MMF.run_within(&args, dir.path(), LIMIT), 1, "p is a FIFO (named pipe)");
    }
    // dump and cp would stream it, but nothing comes: an error, not an empty success.
    assert_fails(&MMF.run_within(&["dump", p], dir.path(), LIMIT), 1, "no writer");
    let copy = dir.path().join("copy");
    assert_fails(&MMF.run_within(&["cp", p, arg(&copy)], dir.path(), LIMIT), 1, "no writer");
    assert!(!copy.exists(), "a failed copy leaves no file");
    // Nor does `write --from` wait for one: the same error, and the target is untouched.
    let target = dir.path().join("target");
    std::fs::write(&target, b"before").unwrap();
    let from = MMF.run_within(&["write", arg(&target), "--from", p], dir.path(), LIMIT);
    assert_fails(&from, 1, "no writer");
    assert_eq!(std::fs::read(&target).unwrap(), b"before");
}

/// Review (s5): `mmf sum` of a FIFO nobody writes to yet prints the XXH3 of empty input
/// and exits 0 — a checksum of data that never came, where `dump` and `cp` say "no
/// writer". `mkfifo p; mmf sum p & producer > p` races to a wrong, successful checksum.
#[test]
fn sum_of_a_fifo_without_a_writer_is_an_error_not_the_empty_hash() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("p");
    mkfifo(&fifo);
    let out = MMF.run_within(&["sum", arg(&fifo)], dir.path(), LIMIT);
    assert_fails(&out, 1, "no writer");
}

/// Runs `mmf ARGS` while this process writes `data` into the FIFO and then closes it.
fn through_fifo(fifo: &Path, data: &[u8], args: &[&str], cwd: &Path) -> std::process::Output {
    // Read-write: a writer end that does not wait for a reader, open before mmf starts, so
    // that mmf finds a writer there.
    let early = std::fs::OpenOptions::new().read(true).write(true).open(fifo).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mmf"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_open(child.id(), fifo);
    // Now a write-only end (mmf is its reader), so that the writes fail instead of filling
    // the pipe for ever once mmf has read all it wants and exited.
    let writer = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
    drop(early);
    let data = data.to_vec();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        // In pieces, more than a pipe holds: mmf must read as the bytes come.
        for piece in data.chunks(10_000) {
            if (&writer).write_all(piece).is_err() {
                break; // mmf stopped reading (--len)
            }
        }
        drop(writer); // end of the stream
    });
    let out = finish_within(child, LIMIT, &format!("{args:?}"));
    feeder.join().unwrap();
    out
}

#[test]
fn a_fifo_with_a_writer_is_streamed_by_dump_and_cp() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("p");
    mkfifo(&fifo);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let reference = dir.path().join("reference");
    std::fs::write(&reference, &data).unwrap();

    let out = through_fifo(&fifo, &data, &["dump", arg(&fifo)], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out), hexdump(&[], &reference));

    let out = through_fifo(
        &fifo,
        &data,
        &["dump", arg(&fifo), "--offset", "70000", "--len", "99"],
        dir.path(),
    );
    assert_eq!(stdout(&out), hexdump(&["-s", "70000", "-n", "99"], &reference));

    let copy = dir.path().join("copy");
    let out = through_fifo(&fifo, &data, &["cp", arg(&fifo), arg(&copy)], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&copy).unwrap(), data);

    let target = dir.path().join("target");
    std::fs::write(&target, b"").unwrap();
    let args = ["write", arg(&target), "--offset", "10", "--from", arg(&fifo)];
    let out = through_fifo(&fifo, &data, &args, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&target).unwrap()[10..], data[..]);
}

/// Review (s5): `mmf dump DEV --offset N` skips the first N bytes of a character device or
/// pseudo-file by reading them all, where `hexdump -s N` seeks (`lseek` works on
/// `/dev/zero` and `/proc/self/pagemap`): at 1 PiB it never finishes (`hexdump`: 3 ms;
/// `mmf dump /dev/zero --offset $((1<<40))` was still reading after 10 s, one core busy).
#[test]
fn dump_of_a_seekable_device_at_a_far_offset_seeks_instead_of_reading_up_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let far = (1u64 << 50).to_string();
    let zero = Path::new("/dev/zero");
    let out =
        MMF.run_within(&["dump", "/dev/zero", "--offset", &far, "--len", "16"], dir.path(), LIMIT);
    assert_eq!(stdout(&out), hexdump(&["-s", &far, "-n", "16"], zero));
}

#[test]
fn character_devices_are_streams_and_sockets_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = MMF.run_within(&["dump", "/dev/zero", "--len", "40"], d, LIMIT);
    assert_eq!(stdout(&out), hexdump(&["-n", "40"], Path::new("/dev/zero")));
    let out = MMF.run_within(&["dump", "/dev/urandom", "--offset", "16", "--len", "64"], d, LIMIT);
    assert_eq!(stdout(&out).lines().count(), 5, "{}", stdout(&out));
    assert!(stdout(&out).starts_with("00000010  ") && stdout(&out).ends_with("\n00000050\n"));
    // /dev/null is empty, as it is to hexdump and cp.
    assert_eq!(MMF.ok(&["dump", "/dev/null"], d), "");
    MMF.ok(&["cp", "/dev/null", "empty"], d);
    assert_eq!(std::fs::metadata(d.join("empty")).unwrap().len(), 0);
    for cmd in ["info", "touch", "evict", "lock"] {
        assert_fails(&MMF.run_within(&[cmd, "/dev/null"], d, LIMIT), 1, "is a character device");
    }

    let sock = d.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for args in [
        vec!["dump", arg(&sock)],
        vec!["info", arg(&sock)],
        vec!["cp", arg(&sock), "x"],
        vec!["write", arg(&sock), "--text", "x"],
    ] {
        assert_fails(&MMF.run_within(&args, d, LIMIT), 1, "sock is a socket");
    }
}

/// A loop device over a file, detached on drop; `None` where loop devices cannot be set up
/// (not root, no `/dev/loop-control`).
struct LoopDevice(PathBuf);

impl LoopDevice {
    fn over(file: &Path) -> Option<LoopDevice> {
        let out = Command::new("losetup").args(["--find", "--show", arg(file)]).output().ok()?;
        let dev = String::from_utf8(out.stdout).ok()?;
        (out.status.success() && !dev.trim().is_empty()).then(|| LoopDevice(dev.trim().into()))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn block_devices_are_mapped_with_the_devices_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let image = d.join("disk.img");
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(&image, &data).unwrap();
    let Some(device) = LoopDevice::over(&image) else {
        eprintln!("skipped: no loop device could be set up (needs root and /dev/loop-control)");
        return;
    };
    let dev = arg(&device.0);
    // Its st_size is 0; the size comes from the device.
    assert_eq!(std::fs::metadata(&device.0).unwrap().len(), 0);
    let out = MMF.run_within(&["dump", dev, "--offset", "4095", "--len", "100"], d, LIMIT);
    assert_eq!(stdout(&out), hexdump(&["-s", "4095", "-n", "100"], &device.0));
    let out = MMF.run_within(&["dump", dev, "--offset", "4MiB"], d, LIMIT);
    assert_fails(&out, 1, "past the end");

    let info: serde_json::Value =
        serde_json::from_str(&MMF.ok(&["info", dev, "--json"], d)).unwrap();
    assert_eq!((info["size"].as_u64(), info["pages"].as_u64()), (Some(4 << 20), Some(1024)));
    let out = MMF.ok(&["touch", dev], d);
    assert!(out.contains("1024 pages resident"), "{out}");
    let out = MMF.ok(&["evict", dev], d);
    assert!(out.contains("evicted"), "{out}");

    let copy = d.join("copy");
    MMF.ok(&["cp", dev, arg(&copy)], d);
    assert_eq!(std::fs::read(&copy).unwrap(), data);

    // Written in place; a write or size past its end is refused, as the device cannot grow.
    MMF.ok(&["write", dev, "--offset", "100", "--text", "on the device"], d);
    assert_eq!(&std::fs::read(&device.0).unwrap()[100..113], b"on the device");
    let out = MMF.run(&["write", dev, "--offset", "4194300", "--text", "too long"], d);
    assert_fails(&out, 1, "past the end of a block device (4194304 bytes)");
    let out = MMF.run(&["create", dev, "--size", "8MiB"], d);
    assert_fails(&out, 1, "which a mapping cannot grow");
    assert!(MMF.ok(&["create", dev, "--size", "1MiB"], d).contains("not shrunk"));
}
