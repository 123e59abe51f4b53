//! One process sends and receives 64-byte messages through an SPSC channel in a loop: what
//! a send and a receive cost in instructions and time without a peer's cache lines in the
//! way. Under `valgrind --tool=callgrind`, which counts instructions whatever else the
//! machine does, two runs of different lengths give the instructions a message takes
//! (their difference over the difference of messages); `perf record` shows where.
//!
//! `cargo run --release -p mmf-bench --example chan_loop -- [MESSAGES]` (default 100,000);
//! prints the nanoseconds a message took (send and receive) and a checksum.

use std::time::Instant;

use mmf::channel::{self, ChannelOptions};

fn main() {
    let n: u64 = std::env::args().nth(1).map_or(100_000, |s| s.parse().unwrap());
    let name = format!("chan-loop-{}", std::process::id());
    let ch = channel::create(&name, ChannelOptions::new().capacity(1 << 16)).unwrap();
    let (mut tx, mut rx) = (ch.sender().unwrap(), ch.receiver().unwrap());
    let mut buf = [7u8; 64];
    let mut sum = 0u64;
    let t = Instant::now();
    for i in 0..n {
        buf[0] = i as u8;
        tx.send(buf).unwrap();
        let m = rx.recv().unwrap();
        m.read_at(0, &mut buf).unwrap();
        drop(m);
        sum += buf[0] as u64;
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("{ns:.1} ns a message (send and receive), checksum {sum}");
}
