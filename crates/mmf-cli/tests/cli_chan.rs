//! `mmf chan`: two shells connected by `mmf chan send` and `mmf chan recv` (lines and raw
//! bytes, either one started first), `create` and `info` (text and JSON), and the errors.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mmf_testkit::cli::{Tool, assert_fails, finish_within, stdout};
use mmf_testkit::unique_name;

const MMF: Tool = Tool(env!("CARGO_BIN_EXE_mmf"));

fn here() -> &'static Path {
    Path::new(".")
}

/// `mmf chan send NAME [args]` fed `input` on stdin.
fn send(name: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut command = Command::new(MMF.0);
    command.args(["chan", "send", name]).args(args).stdin(Stdio::piped());
    let mut child =
        mmf_testkit::spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped())).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = finish_within(child, Duration::from_secs(60), "mmf chan send");
    writer.join().unwrap();
    out
}

fn recv(name: &str, args: &[&str]) -> std::process::Child {
    let mut command = Command::new(MMF.0);
    command.args(["chan", "recv", name]).args(args);
    mmf_testkit::spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped())).unwrap()
}

/// `mmf chan create NAME ARGS --hold` (held on every platform: Windows cannot keep a name
/// without a holder); dropped, it lets go (also when a test fails: a holder left running
/// kept the test harness's output pipe open). Returns it and its first line.
fn hold(name: &str, args: &[&str]) -> (Holder, String) {
    let mut all = vec!["chan", "create", name, "--hold"];
    all.extend_from_slice(args);
    let (child, line) = MMF.spawn(&all, here());
    (Holder(child), line)
}

struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn let_go(holder: Holder) {
    drop(holder);
}

fn lines(n: usize) -> String {
    (0..n).map(|i| format!("line {i} {}\n", "x".repeat(i % 50))).collect()
}

#[test]
fn send_and_recv_connect_two_shells_whichever_starts_first() {
    for receiver_first in [true, false] {
        let name = unique_name("cli-chan");
        let input = lines(20_000);
        let out = if receiver_first {
            let rx = recv(&name, &[]);
            let rx =
                std::thread::spawn(|| finish_within(rx, Duration::from_secs(60), "mmf chan recv"));
            std::thread::sleep(Duration::from_millis(200));
            let sent = send(&name, &[], input.as_bytes());
            assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
            rx.join().unwrap()
        } else {
            // A channel that outlives the sender (held), so that a late receiver finds it.
            let (holder, _) = hold(&name, &["--capacity", "4MiB"]);
            let sent = send(&name, &[], input.as_bytes());
            assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
            let out = finish_within(recv(&name, &[]), Duration::from_secs(60), "mmf chan recv");
            let_go(holder);
            out
        };
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout(&out), input, "receiver first: {receiver_first}");
    }
}

/// `mmf chan send NAME` fed `input` by a thread, and the first line it says on stderr
/// (within 60 s; the sender is still running, or has ended, when it comes).
fn sender_saying(name: &str, input: String) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut command = Command::new(MMF.0);
    command.args(["chan", "send", name]).stdin(Stdio::piped());
    let mut sender =
        mmf_testkit::spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped())).unwrap();
    let mut stdin = sender.stdin.take().unwrap();
    std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut err = std::io::BufReader::new(sender.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = err.read_line(&mut line);
        let _ = tx.send(line);
    });
    let said = rx.recv_timeout(Duration::from_secs(60)).expect("the sender said nothing");
    (sender, said)
}

/// A sender on a name nobody made, whose input ends before any receiver comes: it waits
/// for one, as a FIFO's writer waits for its reader (the channel goes with its last
/// holder; it ended with status 0 and its messages went with the name).
#[test]
fn a_sender_that_made_the_channel_waits_for_a_receiver() {
    let name = unique_name("cli-chan-first");
    let input = lines(500);
    // Its word that it waits: all of stdin sent, the channel its own.
    let (mut sender, said) = sender_saying(&name, input.clone());
    assert!(said.contains("waiting for a receiver"), "{said:?}");
    assert!(sender.try_wait().unwrap().is_none(), "the sender left with its messages");
    let out = finish_within(recv(&name, &[]), Duration::from_secs(60), "mmf chan recv");
    assert_eq!(stdout(&out), input);
    let sent = finish_within(sender, Duration::from_secs(60), "mmf chan send");
    assert!(sent.status.success(), "{sent:?}");
    // Gone with its holders: the next session on the name starts afresh.
    assert_fails(&MMF.run(&["chan", "info", &name], here()), 1, "no named object");
}

/// A kept channel, session after session: a sender with no receiver queues, a receiver
/// that finds messages of a sender that has gone prints them and ends, and one that finds
/// the channel empty waits for the next sender. (A kept channel remembered the first
/// session's receiver: the second session's sender failed at once with "receiver has
/// gone".)
#[test]
fn a_kept_channel_serves_session_after_session() {
    let name = unique_name("cli-chan-sessions");
    let (holder, _) = hold(&name, &[]);
    for session in ["1\n2\n3\n", "4\n5\n6\n"] {
        let sent = send(&name, &[], session.as_bytes());
        assert!(sent.status.success(), "{session:?}: {}", String::from_utf8_lossy(&sent.stderr));
        let out = finish_within(recv(&name, &[]), Duration::from_secs(60), "mmf chan recv");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout(&out), session);
    }
    let rx = recv(&name, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let mut rx = rx;
    assert!(rx.try_wait().unwrap().is_none(), "a receiver of an empty channel ended");
    let sent = send(&name, &[], b"7\n");
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let out = finish_within(rx, Duration::from_secs(60), "mmf chan recv");
    assert_eq!(stdout(&out), "7\n");
    let_go(holder);
}

/// A sender on a kept channel with no receiver fills the ring, says it waits for one, and
/// finishes once a receiver takes the rest.
#[test]
fn a_sender_with_no_receiver_fills_the_ring_and_says_it_waits() {
    let name = unique_name("cli-chan-full");
    let (_holder, _) = hold(&name, &["--capacity", "4KiB", "--max-message", "64"]);
    let input = lines(2_000);
    let (sender, said) = sender_saying(&name, input.clone());
    assert!(
        said.contains("is full and no receiver runs") && said.contains("stays queued"),
        "{said:?}"
    );
    let out = finish_within(recv(&name, &[]), Duration::from_secs(60), "mmf chan recv");
    let sent = finish_within(sender, Duration::from_secs(60), "mmf chan send");
    assert!(sent.status.success(), "{sent:?}");
    assert_eq!(stdout(&out), input);
    // A channel the sender made goes with it: Ctrl-C there drops what is queued, and the
    // note says so (review 45: it said "stays queued").
    let (mut sender, said) = sender_saying(&unique_name("cli-chan-full-fresh"), lines(60_000));
    assert!(said.contains("drops what is queued"), "{said:?}");
    sender.kill().unwrap();
    sender.wait().unwrap();
}

/// A receiver killed mid-stream: every message it took off the ring is in its output, so
/// its output and the next receiver's join with no gap (the one message it held at the
/// kill may be in both). A buffer of printed messages died with the process (the first
/// receiver writes to a file, as fast as it can, so that the kill finds it mid-buffer;
/// the old receiver lost messages in 4 runs of 4; 100k messages, as each is a write, slow
/// under Wine).
#[test]
fn a_receiver_killed_mid_stream_loses_no_message() {
    let name = unique_name("cli-chan-kill");
    // All queued first: the receiver never waits, and the kill finds it mid-stream.
    let (holder, _) = hold(&name, &["--capacity", "4MiB"]);
    let input: String = (0..100_000u32).map(|i| format!("{i}\n")).collect();
    let sent = send(&name, &[], input.as_bytes());
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("first");
    let mut command = Command::new(MMF.0);
    command.args(["chan", "recv", &name]);
    command.stdout(std::fs::File::create(&file).unwrap()).stderr(Stdio::null());
    let mut first = mmf_testkit::spawn(&mut command).unwrap();
    let started = std::time::Instant::now();
    while std::fs::metadata(&file).unwrap().len() < 128 << 10 {
        assert!(started.elapsed() < Duration::from_secs(60), "the first receiver got nothing");
        std::thread::sleep(Duration::from_millis(1));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let got = std::fs::read(&file).unwrap();
    let rest = finish_within(recv(&name, &[]), Duration::from_secs(60), "mmf chan recv");
    let_go(holder);
    let text = String::from_utf8(got).unwrap();
    let mut seen: Vec<u32> = text.lines().map(|l| l.parse().unwrap()).collect();
    let second: Vec<u32> = stdout(&rest).lines().map(|l| l.parse().unwrap()).collect();
    assert!(!second.is_empty(), "the kill came after the whole stream");
    let seam = *seen.last().unwrap();
    seen.extend(second.iter().skip_while(|&&n| n == seam));
    let gap = seen.iter().zip(0..).find(|&(&n, i)| n != i);
    assert!(gap.is_none(), "messages lost at {gap:?} (the first receiver's last: {seam})");
}

#[test]
fn raw_mode_carries_binary_bytes_in_chunks() {
    let name = unique_name("cli-chan-raw");
    let (holder, _) = hold(&name, &["--capacity", "64KiB", "--max-message", "1000"]);
    let data: Vec<u8> =
        (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let rx = recv(&name, &["--raw"]);
    // Read on the side: a receiver whose stdout nobody reads would stall the pipeline.
    let rx = std::thread::spawn(|| finish_within(rx, Duration::from_secs(60), "mmf chan recv"));
    let sent = send(&name, &["--raw"], &data);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let out = rx.join().unwrap();
    assert!(out.status.success());
    assert!(out.stdout == data, "{} bytes back of {}", out.stdout.len(), data.len());
    let_go(holder);
}

#[test]
fn create_and_info_describe_the_channel() {
    let name = unique_name("cli-chan-info");
    let (holder, created) = hold(&name, &["--mpmc", "--capacity", "8KiB"]);
    assert!(created.contains("MPMC, capacity 8192, messages up to 1024 bytes"), "{created}");
    let sent = send(&name, &[], b"one\ntwo\n");
    assert!(sent.status.success());
    let info = MMF.ok(&["chan", "info", &name], here());
    assert!(info.contains("MPMC channel, capacity 8192 bytes"), "{info}");
    assert!(info.contains("queued: 32 bytes"), "{info}");
    assert!(info.contains("senders alive: 0"), "{info}");
    let json: serde_json::Value =
        serde_json::from_str(&MMF.ok(&["chan", "info", &name, "--json"], here())).unwrap();
    assert_eq!(json["kind"], "mpmc");
    assert_eq!(json["queued_bytes"], 32);
    assert_eq!(json["receivers"], 0);
    let got = MMF.ok(&["chan", "recv", &name, "--count", "1"], here());
    assert_eq!(got, "one\n");
    assert_eq!(MMF.ok(&["chan", "recv", &name], here()), "two\n", "then the close");
    let_go(holder);
}

#[test]
fn errors_are_one_line() {
    let name = unique_name("cli-chan-err");
    assert_fails(&MMF.run(&["chan", "info", &name], here()), 1, "no named object");
    let bad = MMF.run(&["chan", "create", &name, "--capacity", "1000", "--hold"], here());
    assert_fails(&bad, 1, "give a power of two");
    let (holder, _) = hold(&name, &["--capacity", "4KiB", "--max-message", "16"]);
    assert_fails(&MMF.run(&["chan", "create", &name, "--hold"], here()), 1, "exists");
    let long = send(&name, &[], b"short\nthis line is longer than sixteen bytes\n");
    assert_fails(&long, 1, "line 2 is 38 bytes, more than");
    let plain = unique_name("cli-chan-plain");
    let _m = mmf_testkit::create_named(&plain, 8192).unwrap();
    let plain_info = MMF.run(&["chan", "info", &plain], here());
    assert_fails(&plain_info, 1, "no channel here");
    // A peer's bytes are escaped, not printed raw (review 55).
    assert!(String::from_utf8_lossy(&plain_info.stderr).contains(r#""\x00\x00"#), "{plain_info:?}");
    assert!(!plain_info.stderr.contains(&0), "{plain_info:?}");
    let_go(holder);
}

/// Linux keeps a created channel without a holder until `mmf shm rm`; Windows cannot, and
/// says so.
#[test]
fn create_without_hold_keeps_it_on_linux_and_is_refused_on_windows() {
    let name = unique_name("cli-chan-keep");
    if cfg!(windows) {
        assert_fails(&MMF.run(&["chan", "create", &name], here()), 1, "--hold");
        return;
    }
    let created = MMF.ok(&["chan", "create", &name], here());
    assert!(created.contains("it stays until `mmf shm rm"), "{created}");
    assert!(send(&name, &[], b"kept\n").status.success());
    assert_eq!(MMF.ok(&["chan", "recv", &name], here()), "kept\n");
    MMF.ok(&["shm", "rm", &name], here());
}

/// A receiver killed asleep stays in the channel's sleeper count (it costs a waker only a
/// look); `info` does not show more sleeping than alive.
#[test]
fn info_counts_no_sleeper_among_the_dead() {
    let name = unique_name("cli-chan-asleep");
    let (holder, _) = hold(&name, &[]);
    let mut rx = recv(&name, &[]);
    let asleep = |name: &str| -> serde_json::Value {
        serde_json::from_str(&MMF.ok(&["chan", "info", name, "--json"], here())).unwrap()
    };
    let started = std::time::Instant::now();
    while asleep(&name)["sleeping_receivers"] != 1 {
        assert!(started.elapsed() < Duration::from_secs(30), "the receiver never slept");
        std::thread::sleep(Duration::from_millis(20));
    }
    rx.kill().unwrap();
    rx.wait().unwrap();
    let info = asleep(&name);
    assert_eq!(
        (info["receivers"].as_u64(), info["sleeping_receivers"].as_u64()),
        (Some(0), Some(0))
    );
    let text = MMF.ok(&["chan", "info", &name], here());
    assert!(text.contains("receivers alive: 0 (0 asleep)"), "{text}");
    let_go(holder);
}

/// A receiver whose standard output is closed prints nowhere: it must fail and leave every
/// message queued, not release them as printed (review 55: `mmf chan recv q >&-` exited 0
/// with the queue emptied, since Rust's runtime puts /dev/null on a closed descriptor).
/// `> /dev/null`, asked for, still discards.
#[cfg(target_os = "linux")]
#[test]
fn a_receiver_with_stdout_closed_fails_and_leaves_the_messages() {
    let name = unique_name("cli-chan-closed-out");
    let (holder, _) = hold(&name, &[]);
    let sent = send(&name, &[], b"1\n2\n3\n");
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let shell = |redirect: &str| {
        let mut command = Command::new("sh");
        command
            .args(["-c", &format!("exec \"$0\" chan recv \"$1\" {redirect}")])
            .args([MMF.0, name.as_str()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        finish_within(mmf_testkit::spawn(&mut command).unwrap(), Duration::from_secs(60), "recv")
    };
    let closed = shell("--count 3 >&-");
    let said = String::from_utf8_lossy(&closed.stderr);
    assert!(!closed.status.success(), "a receiver printing nowhere succeeded: {said}");
    assert!(said.contains("standard output is closed"), "{said}");
    let out = finish_within(recv(&name, &["--count", "3"]), Duration::from_secs(60), "recv");
    assert_eq!(stdout(&out), "1\n2\n3\n", "messages lost to a closed output");
    let sent = send(&name, &[], b"4\n");
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let discarded = shell("--count 1 > /dev/null");
    assert!(discarded.status.success(), "{}", String::from_utf8_lossy(&discarded.stderr));
    let_go(holder);
}
