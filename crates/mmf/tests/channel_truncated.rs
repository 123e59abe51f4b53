//! A peer that truncates the channel's object: reading a small message from the cut-off
//! page is an error, not a SIGBUS (a fast path that copied payloads of ≤ 256 B with
//! unguarded atomic loads, tried on 2026-11-30, failed this and was taken out). Linux only
//! (a named object is a /dev/shm file).
#![cfg(target_os = "linux")]

use mmf::channel::{self, ChannelOptions};
use mmf_testkit::{Peer, hear, role, tell, unique_name};

/// A message whose header is the last word of a page and whose 64-byte payload is the
/// next page; a peer truncates the object between the two. Reading the message was an
/// error from the view's guarded copy (`Error::Truncated`); with unguarded loads it is a
/// SIGBUS that kills the receiver.
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
        tell(&format!("second {}", if r.is_err() { "error" } else { "read" }));
        return;
    }
    let name = unique_name("chan-trunc");
    let options = ChannelOptions::new().capacity(16384).max_message(4096).clone();
    let ch = channel::create(&name, &options).unwrap();
    let mut tx = ch.sender().unwrap();
    // Data starts at 4096; a record is an 8-byte header and its payload (8-aligned): the
    // first ends at data offset 4088, so the second's header is file bytes 8184..8192 and
    // its payload starts the next page.
    tx.send(vec![1u8; 4080]).unwrap();
    tx.send(vec![2u8; 64]).unwrap();
    let test = "a_truncated_channel_is_an_error_for_a_small_message_not_a_sigbus";
    let mut rx = Peer::spawn(test, "receiver", &name);
    assert_eq!(rx.expect("first"), "4080");
    let path = format!("/dev/shm/{}", name.trim_start_matches('/'));
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(8192).unwrap();
    rx.say("go");
    let said = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.expect("second")));
    let status = rx.child.wait().unwrap();
    let said = said.ok();
    assert!(
        said.as_deref() == Some("error") && status.success(),
        "the receiver said {said:?} and ended with {status}"
    );
}
