//! Crash consistency against a model of the commits, on a simulated disk
//! (`common/sim.rs`): a power loss at every sync point (unsynced writes dropped, kept or
//! torn sector by sector, with garbage), a process killed at every write, and I/O errors
//! at every write and sync, once and forever. After each, the heap must open, be exactly
//! at a commit the rules allow, and go on committing.

mod common;

use common::sim::{Fault, Op, Rng, SimDisk};
use common::{check_and_go_on, step};
use mmf_heap::{Durability, Heap, HeapOptions};

/// Steps each run attempts: enough for growths, reuse and every root change. (Fewer
/// under Windows: the simulated disk is the same there, and debug builds run slowly
/// under Wine.)
const STEPS: u64 = if cfg!(windows) { 16 } else { 30 };

/// A new heap's durable image.
fn new_heap() -> Vec<u8> {
    let disk = SimDisk::default();
    drop(Heap::create_with(disk.backend(), &HeapOptions::new()).unwrap());
    disk.durable()
}

/// Opens `image` and runs steps until one fails: (the last step acknowledged, the last
/// acknowledged durably, the step in flight when it failed).
fn run(disk: &SimDisk, durability: impl Fn(u64) -> Durability) -> (u64, u64, Option<u64>) {
    let heap = match Heap::open_with(disk.backend(), &HeapOptions::new()) {
        Ok(heap) => heap,
        Err(_) => return (0, 0, None), // the fault hit the open's own sync
    };
    let (mut acked, mut durable) = (0, 0);
    for s in 1..=STEPS {
        let d = durability(s);
        match step(&heap, s, d) {
            Ok(txn) => {
                assert_eq!(txn, s + 1);
                acked = s;
                if d != Durability::None {
                    durable = s;
                }
            }
            Err(_) => return (acked, durable, Some(s)),
        }
    }
    (acked, durable, None)
}

fn reopen(image: Vec<u8>, context: &str) -> Heap<common::sim::SimBackend> {
    Heap::open_with(SimDisk::with_image(image).backend(), &HeapOptions::new())
        .unwrap_or_else(|e| panic!("{context}: the heap does not open: {e}"))
}

/// The number of (writes, sync points — syncs and growths) of a clean run.
fn op_counts(durability: &dyn Fn(u64) -> Durability) -> (u64, u64) {
    let disk = SimDisk::with_image(new_heap());
    assert_eq!(run(&disk, durability), (STEPS, disk_durable_steps(durability), None));
    disk.counts()
}

fn disk_durable_steps(durability: &dyn Fn(u64) -> Durability) -> u64 {
    (1..=STEPS).rev().find(|&s| durability(s) != Durability::None).unwrap_or(0)
}

/// A power loss at every sync point (and with `at_writes`, at every write), each with
/// every way of keeping the unsynced writes: the heap opens at a commit between the last
/// durable one and the one in flight.
fn power_loss_everywhere(durability: &dyn Fn(u64) -> Durability, at_writes: bool) {
    let base = new_heap();
    let (writes, syncs) = op_counts(durability);
    let mut points: Vec<Op> = (1..=syncs).map(Op::Sync).collect();
    if at_writes {
        points.extend((1..=writes).map(Op::Write));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut opened_after = 0;
    for &k in &points {
        for mode in 0..6 {
            let disk = SimDisk::with_image(base.clone());
            disk.inject(k, Fault::PowerLoss);
            let (acked, durable, in_flight) = run(&disk, durability);
            let image = disk.after_power_loss(&mut rng, mode.min(3));
            let context = format!("power loss at {k:?}, mode {mode}");
            let heap = reopen(image, &context);
            let newest = in_flight.unwrap_or(acked);
            let at = check_and_go_on(&heap, durable..=newest, &context);
            opened_after += u64::from(in_flight == Some(at));
            // Immediate commits: nothing acknowledged is lost.
            if durability(acked) != Durability::None {
                assert!(at >= acked, "{context}: acknowledged step {acked} lost (at {at})");
            }
        }
    }
    // The cases must include crashes that kept the commit in flight.
    assert!(opened_after > 0, "no power loss kept the commit in flight");
}

#[test]
fn power_loss_at_every_sync_point_immediate() {
    power_loss_everywhere(&|_| Durability::Immediate, false);
}

#[test]
fn power_loss_at_every_sync_point_two_phase() {
    power_loss_everywhere(&|_| Durability::TwoPhase, false);
}

#[test]
fn power_loss_at_every_sync_point_with_unsynced_commits_between() {
    // Three commits without a sync, then a durable one: a power loss may lose the
    // unsynced ones, never the durable one before them.
    let durability = |s| if s % 4 == 0 { Durability::Immediate } else { Durability::None };
    power_loss_everywhere(&durability, true);
}

/// A process killed at every write: the page cache keeps every completed write, and the
/// heap opens at the last acknowledged commit or the one in flight.
#[test]
fn a_kill_at_every_write_opens_at_the_last_commit_or_the_one_in_flight() {
    let base = new_heap();
    let disk = SimDisk::with_image(base.clone());
    run(&disk, |_| Durability::Immediate);
    let writes = disk.counts().0;
    for w in 1..=writes {
        let disk = SimDisk::with_image(base.clone());
        disk.inject(Op::Write(w), Fault::Kill);
        let (acked, _, in_flight) = run(&disk, |_| Durability::Immediate);
        let context = format!("kill at write {w}");
        let heap = reopen(disk.after_kill(), &context);
        check_and_go_on(&heap, acked..=in_flight.unwrap_or(acked), &context);
    }
}

/// An I/O error at every write and every sync, once or forever. The failing commit is an
/// error to the caller; once, the next attempt succeeds and the run goes on; forever,
/// nothing more commits. Either way the heap then opens at the last acknowledged commit
/// (or the failed one, when only its sync failed and its bytes made it), whether the
/// page cache survived (a restart) or only what was synced (a power loss).
#[test]
fn io_errors_at_every_write_and_sync_once_and_forever() {
    let base = new_heap();
    let disk = SimDisk::with_image(base.clone());
    run(&disk, |_| Durability::Immediate);
    let (writes, syncs) = disk.counts();
    let ops = (1..=writes).map(Op::Write).chain((1..=syncs).map(Op::Sync));
    for op in ops {
        for fault in [Fault::ErrorOnce, Fault::ErrorForever] {
            let disk = SimDisk::with_image(base.clone());
            disk.inject(op, fault);
            let context = format!("{fault:?} at {op:?}");
            let Ok(heap) = Heap::open_with(disk.backend(), &HeapOptions::new()) else {
                assert_eq!(op, Op::Sync(1), "{context}: only the open's sync fails the open");
                continue;
            };
            let (mut acked, mut acked_txn, mut errors) = (0, 1, 0);
            let mut s = 1;
            while s <= STEPS && errors < 3 {
                match step(&heap, s, Durability::Immediate) {
                    Ok(txn) => {
                        acked = s;
                        acked_txn = txn;
                        s += 1;
                    }
                    Err(e) => {
                        assert!(matches!(e, mmf_heap::Error::Io { .. }), "{context}: {e}");
                        errors += 1;
                        // The heap is still at its last commit, readable.
                        let (txn, state) = common::seen(&heap).unwrap();
                        assert_eq!(txn, acked_txn, "{context}");
                        assert!(state == common::expected(acked), "{context}");
                    }
                }
            }
            if fault == Fault::ErrorOnce {
                assert_eq!((acked, errors), (STEPS, 1), "{context}: one error, then all commits");
            }
            drop(heap);
            let newest = if fault == Fault::ErrorOnce { acked } else { acked + 1 };
            for (image, how) in [(disk.after_kill(), "restart"), (disk.durable(), "power loss")] {
                let context = format!("{context}, then a {how}");
                check_and_go_on(&reopen(image, &context), acked..=newest, &context);
            }
        }
    }
}
