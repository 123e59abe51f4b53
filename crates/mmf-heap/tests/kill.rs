//! A writer SIGKILLed (`TerminateProcess`) at random points, over and over: after each
//! kill the heap opens at the last commit the writer acknowledged or the one it was
//! making, with exactly that commit's state (the model in `common`), and the next writer
//! goes on from there.
//!
//! Knob: `MMF_HEAP_KILLS` (kills, default 100; the long run is 1,000).

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{check_and_go_on, step};
use mmf_heap::{Durability, Heap, HeapOptions};
use mmf_testkit::{Peer, role, tell};

const TEST: &str = "a_writer_killed_at_random_points_loses_no_acknowledged_commit";

fn kills() -> u64 {
    std::env::var("MMF_HEAP_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(100)
}

/// The child: opens the heap, then commits steps from where it is, appending each
/// acknowledged step to the ack file, until killed.
fn writer(dir: &Path) {
    // SAFETY: only these test processes write the heap, one at a time.
    let heap = unsafe { Heap::open(dir.join("k.heap"), &HeapOptions::new()) }.unwrap();
    let mut acks = std::fs::OpenOptions::new().append(true).open(dir.join("acks")).unwrap();
    let mut s = heap.txn_id(); // the next step: txn = step + 1
    tell("started");
    loop {
        step(&heap, s, Durability::Immediate).unwrap();
        // One write(2) per ack: a kill leaves whole lines.
        acks.write_all(format!("{s}\n").as_bytes()).unwrap();
        s += 1;
    }
}

fn last_ack(dir: &Path) -> u64 {
    let acks = std::fs::read_to_string(dir.join("acks")).unwrap();
    acks.lines().filter_map(|l| l.parse().ok()).next_back().unwrap_or(0)
}

#[test]
fn a_writer_killed_at_random_points_loses_no_acknowledged_commit() {
    if let Some((role, arg)) = role() {
        assert_eq!(role, "writer");
        writer(Path::new(&arg));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.heap");
    // SAFETY: only this test and its children write the file.
    drop(unsafe { Heap::open(&path, HeapOptions::new().create(true)) }.unwrap());
    std::fs::write(dir.path().join("acks"), b"").unwrap();
    let mut rng = common::sim::Rng(0x5eed ^ u64::from(std::process::id()));
    let (mut in_flight_kept, mut last) = (0, 0);
    let kills = kills();
    for kill in 0..kills {
        let mut child = Peer::spawn(TEST, "writer", dir.path().to_str().unwrap());
        child.expect("started");
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        child.kill();
        let acked = last_ack(dir.path());
        let context = format!("kill {kill}");
        // SAFETY: the writer is dead; only this process opens the file now.
        let heap = unsafe { Heap::open(&path, &HeapOptions::new()) }
            .unwrap_or_else(|e| panic!("{context}: the heap does not open: {e}"));
        assert!(acked >= last, "{context}");
        let at = check_and_go_on(&heap, acked..=acked + 1, &context);
        in_flight_kept += u64::from(at == acked + 1);
        // The three steps the check made are acknowledged too.
        let mut acks =
            std::fs::OpenOptions::new().append(true).open(dir.path().join("acks")).unwrap();
        acks.write_all(format!("{}\n", at + 3).as_bytes()).unwrap();
        last = at + 3;
    }
    eprintln!(
        "{kills} kills, {last} commits, {in_flight_kept} kills landed after the slot reached the page cache"
    );
    assert!(last > kills * 3, "the writers committed between kills");
}
