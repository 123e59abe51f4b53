//! A peer that truncates the channel's object: reading a small message from the cut-off
//! page is an error, not a SIGBUS (a fast path that copied payloads of ≤ 256 B with
//! unguarded atomic loads, tried on 2026-11-30, failed this and was taken out). Linux only
//! (a named object is a /dev/shm file).
#![cfg(target_os = "linux")]

use mmf::channel::{self, ChannelOptions};
use mmf_testkit::{Peer, hear, role, tell, unique_name};

/// A channel whose ring holds 16 KiB, messages up to 4 KiB.
fn options() -> ChannelOptions {
    ChannelOptions::new().capacity(16384).max_message(4096).clone()
}

/// Truncates the channel's /dev/shm object to `len` bytes, as a hostile peer would.
fn cut(name: &str, len: u64) {
    let path = format!("/dev/shm/{}", name.trim_start_matches('/'));
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len).unwrap();
}

/// [`cut`]s the channel's object to `len` bytes, then tells `peer` to go on; returns what it says after `prefix` (`None` if it died first)
/// and how it ended.
fn cut_then_hear(name: &str, len: u64, peer: &mut Peer, prefix: &str) -> (Option<String>, String) {
    cut(name, len);
    peer.say("go");
    let said = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| peer.expect(prefix)));
    let status = peer.child.wait().unwrap();
    let ended = if status.success() { "success".to_owned() } else { status.to_string() };
    (said.ok(), ended)
}

/// A message whose header is the last word of a page and whose 64-byte payload is the
/// next page; a peer truncates the object between the two. Reading the message is the
/// channel's truncation error: the receive's early load of the record's last line (or, for
/// a record within one line, the view's guarded copy) meets the lost page, the handler puts
/// a zero page over it, and the copy reports the flag. With unguarded loads it is a SIGBUS
/// that kills the receiver.
#[test]
fn a_truncated_channel_is_an_error_for_a_small_message_not_a_sigbus() {
    if let Some((role, name)) = role() {
        assert_eq!(role, "receiver");
        let ch = channel::open(&name).unwrap();
        let mut rx = ch.receiver().unwrap();
        let first = rx.recv().unwrap().to_vec().unwrap();
        tell(&format!("first {}", first.len()));
        assert_eq!(hear().as_deref(), Some("go"));
        let m = rx.recv().unwrap();
        let r = m.to_vec();
        tell(&format!("second {}", said_of(r.err().map(|e| e.to_string()))));
        return;
    }
    let name = unique_name("chan-trunc");
    let ch = channel::create(&name, &options()).unwrap();
    let mut tx = ch.sender().unwrap();
    // Data starts at 4096; a record is an 8-byte header and its payload (8-aligned): the
    // first ends at data offset 4088, so the second's header is file bytes 8184..8192 and
    // its payload starts the next page.
    tx.send(vec![1u8; 4080]).unwrap();
    tx.send(vec![2u8; 64]).unwrap();
    let test = "a_truncated_channel_is_an_error_for_a_small_message_not_a_sigbus";
    let mut rx = Peer::spawn(test, "receiver", &name);
    assert_eq!(rx.expect("first"), "4080");
    let (said, ended) = cut_then_hear(&name, 8192, &mut rx, "second");
    assert!(
        said.as_deref() == Some("truncated") && ended == "success",
        "the receiver said {said:?} and ended with {ended}"
    );
}

/// The sender's side (review of chan-s5): a small message whose header is the last word
/// of a page and whose payload is on the next page, which a peer has truncated away. The
/// payload's copy into the ring (the small-copy routine for every size class it has:
/// below 8 bytes, words, one and two pairs of vectors) is `Error::Truncated` from `send`,
/// not a SIGBUS that kills the sender.
#[test]
fn a_truncated_channel_is_an_error_for_a_small_send_not_a_sigbus() {
    if let Some((role, arg)) = role() {
        assert_eq!(role, "sender");
        let (name, len) = arg.split_once(',').unwrap();
        let ch = channel::open(name).unwrap();
        let mut tx = ch.sender().unwrap();
        tx.send(vec![1u8; 4080]).unwrap();
        tell("first sent");
        assert_eq!(hear().as_deref(), Some("go"));
        let r = tx.send(vec![2u8; len.parse().unwrap()]);
        let what = match r {
            Err(channel::SendError::Failed { error: mmf::Error::Truncated { .. }, .. }) => "error",
            Err(_) => "other-error",
            Ok(()) => "sent",
        };
        tell(&format!("second {what}"));
        return;
    }
    for len in [5usize, 12, 24, 64] {
        let name = unique_name("chan-trunc-send");
        let ch = channel::create(&name, &options()).unwrap();
        let _rx = ch.receiver().unwrap();
        let test = "a_truncated_channel_is_an_error_for_a_small_send_not_a_sigbus";
        let mut tx = Peer::spawn(test, "sender", &format!("{name},{len}"));
        assert_eq!(tx.expect("first"), "sent");
        // The first record ends at data offset 4088: the second's header is file bytes
        // 8184..8192, its payload the page cut off here.
        let (said, ended) = cut_then_hear(&name, 8192, &mut tx, "second");
        assert!(
            said.as_deref() == Some("error") && ended == "success",
            "{len} bytes: the sender said {said:?} and ended with {ended}"
        );
    }
}

/// The record headers, like the ring's lines and the epoch, are plain atomics (not guarded
/// copies). A peer truncates the object below the next record's header: the receiver's next
/// look is an error naming the truncation (the handler put a zero page over the lost page
/// and the channel saw its flag), not a SIGBUS that kills it. Before the channel registered
/// its mapping for zero pages (review of chan-s5), this test died of SIGBUS.
#[test]
fn a_channel_truncated_below_a_record_header_is_an_error_not_a_sigbus() {
    if let Some((role, name)) = role() {
        assert_eq!(role, "receiver");
        let ch = channel::open(&name).unwrap();
        let mut rx = ch.receiver().unwrap();
        let first = rx.recv().unwrap().to_vec().unwrap();
        tell(&format!("first {}", first.len()));
        assert_eq!(hear().as_deref(), Some("go"));
        let r = rx.try_recv().map(|m| m.len());
        tell(&format!("second {}", said_of(r.err().map(|e| e.to_string()))));
        // Sticky: the next operation is the same error, whatever a peer does now.
        let again = rx.try_recv().map(|m| m.len());
        tell(&format!("third {}", said_of(again.err().map(|e| e.to_string()))));
        return;
    }
    let name = unique_name("chan-trunc-hdr");
    let ch = channel::create(&name, &options()).unwrap();
    let mut tx = ch.sender().unwrap();
    tx.send(vec![1u8; 4080]).unwrap();
    tx.send(vec![2u8; 64]).unwrap();
    let test = "a_channel_truncated_below_a_record_header_is_an_error_not_a_sigbus";
    let mut rx = Peer::spawn(test, "receiver", &name);
    assert_eq!(rx.expect("first"), "4080");
    // Only the control page stays: the second record's header (file bytes 8184..8192) is gone.
    cut(&name, 4096);
    rx.say("go");
    let second = rx.expect("second");
    let third = rx.expect("third");
    let status = rx.child.wait().unwrap();
    assert!(status.success(), "the receiver ended with {status}");
    assert_eq!(second, "truncated");
    assert_eq!(third, "truncated");
}

/// What a role tells of an operation's error: `truncated` for the channel's truncation
/// error, the error itself for any other, `ok` for none.
fn said_of(error: Option<String>) -> String {
    match error {
        // A cut grown back before this process touched a lost page shows as the
        // header's magic gone.
        Some(e)
            if e.contains("truncated under this process")
                || e.contains("overwritten under this process") =>
        {
            "truncated".into()
        }
        Some(e) => e.replace('\n', " "),
        None => "ok".into(),
    }
}

/// A receiver asleep in `recv` (parked on the ring's futex word) when a peer truncates the
/// channel to nothing, control page and all: it wakes within its sleep slice, touches the
/// lost page, and returns the truncation error — no SIGBUS, no sleep until its timeout.
#[test]
fn a_receiver_asleep_on_a_channel_truncated_to_nothing_gets_an_error() {
    if let Some((role, name)) = role() {
        assert_eq!(role, "receiver");
        let ch = channel::open(&name).unwrap();
        let mut rx = ch.receiver().unwrap();
        tell("waiting");
        let start = std::time::Instant::now();
        let r = rx.recv_timeout(std::time::Duration::from_secs(20)).map(|m| m.len());
        let what = match r {
            Err(channel::RecvError::Timeout) => "timeout".to_owned(),
            other => said_of(other.err().map(|e| e.to_string())),
        };
        tell(&format!("woke {what} {}", u8::from(start.elapsed().as_secs() < 10)));
        return;
    }
    let name = unique_name("chan-trunc-park");
    let ch = channel::create(&name, &options()).unwrap();
    let _tx = ch.sender().unwrap();
    let test = "a_receiver_asleep_on_a_channel_truncated_to_nothing_gets_an_error";
    let mut rx = Peer::spawn(test, "receiver", &name);
    rx.expect("waiting");
    // Long past the receiver's spinning: it sleeps on the futex word.
    std::thread::sleep(std::time::Duration::from_millis(300));
    cut(&name, 0);
    let woke = rx.expect("woke");
    let status = rx.child.wait().unwrap();
    assert!(status.success(), "the receiver ended with {status}");
    assert_eq!(woke, "truncated 1", "the receiver's recv after the cut (error, before 10 s)");
}

/// A sender whose channel a peer truncated to nothing: its next send is the truncation
/// error (the control page with the positions is gone too), not a SIGBUS.
#[test]
fn a_send_on_a_channel_truncated_to_nothing_is_an_error_not_a_sigbus() {
    if let Some((role, name)) = role() {
        assert_eq!(role, "sender");
        let ch = channel::open(&name).unwrap();
        let mut tx = ch.sender().unwrap();
        tx.send(vec![1u8; 100]).unwrap();
        tell("first sent");
        assert_eq!(hear().as_deref(), Some("go"));
        let r = tx.send(vec![2u8; 100]);
        let what = match r {
            Err(channel::SendError::Failed { error, .. }) => said_of(Some(error.to_string())),
            Err(e) => format!("other {e}"),
            Ok(()) => "sent".into(),
        };
        tell(&format!("second {what}"));
        return;
    }
    let name = unique_name("chan-trunc-send0");
    let ch = channel::create(&name, &options()).unwrap();
    let _rx = ch.receiver().unwrap();
    let test = "a_send_on_a_channel_truncated_to_nothing_is_an_error_not_a_sigbus";
    let mut tx = Peer::spawn(test, "sender", &name);
    tx.expect("first sent");
    let (said, ended) = cut_then_hear(&name, 0, &mut tx, "second");
    assert!(
        said.as_deref() == Some("truncated") && ended == "success",
        "the sender said {said:?} and ended with {ended}"
    );
}
