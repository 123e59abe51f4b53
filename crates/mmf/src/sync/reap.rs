//! Sleep records: which objects' `sleepers` counts a participant's threads are in, so that
//! the counts of a process that dies asleep are taken back.
//!
//! A waiter counts itself in its object's `sleepers` before it sleeps and takes itself out
//! when it wakes; a waker makes a system call only when the count is non-zero. A process
//! killed while its threads sleep never takes them out, and every later wake of the object
//! would pay a system call for nobody (Windows: release tokens nobody takes). So each
//! participant slot holds two records, `gen << 44 | (object + 1) << 23 | count`: how many
//! of the process's threads are counted in which object (threads asleep on the same object
//! share a record). When a dead participant is found, its records are subtracted from the
//! objects' counts and cleared ([`SyncArea::clear_records`]):
//!
//! - by a process that takes over the dead process's slot, before it uses the slot;
//! - by a waker that found nobody to wake although the count said so (Linux: `FUTEX_WAKE`
//!   woke nobody; Windows cannot tell, so every wake that released tokens counts)
//!   ([`SyncArea::reap_sleepers`], at most every 10 ms per handle): it looks at the slots
//!   whose records name the object and asks whether their processes live.
//!
//! Never too much is taken back, so a live sleeper is never left uncounted (which would
//! lose its wake-up): a record is raised *after* the object's count and lowered *before*
//! it, so it never holds more than the process added; a record is cleared with a
//! compare-and-swap that names the generation, so two reapers never both subtract it, nor
//! one subtract a later process's record in the same slot. What can stay behind: a
//! process killed between the two steps leaves one count (an extra wake-up per wake, as
//! before records), and so does a process with sleepers on more than two objects of one
//! area at once (the third is counted but not recorded).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::area::{SyncArea, participant_at};
use super::layout::{self, Ident, Object};
use crate::primitive::sync::atomic::AtomicU64;
use crate::primitive::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use crate::sys::sync::Liveness;

const COUNT_BITS: u32 = 23;
const OBJECT_BITS: u32 = 21;
const GEN_SHIFT: u32 = COUNT_BITS + OBJECT_BITS;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const OBJECT_MASK: u64 = (1 << OBJECT_BITS) - 1;

/// How often one handle looks for dead sleepers at most.
const REAP_INTERVAL: Duration = Duration::from_millis(10);

/// One sleep record, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// The generation of the slot's process that wrote it.
    pub generation: u32,
    /// The object index it counts sleepers of.
    pub object: u32,
    /// How many of that process's threads it counts.
    pub count: u32,
}

impl Record {
    /// The record a word holds (`None`: empty, or an object index of 0, which no writer
    /// makes: a corrupted word).
    pub(crate) fn unpack(v: u64) -> Option<Record> {
        let object = ((v >> COUNT_BITS) & OBJECT_MASK) as u32;
        (v != 0 && object != 0).then(|| Record {
            generation: (v >> GEN_SHIFT) as u32,
            object: object - 1,
            count: (v & COUNT_MASK) as u32,
        })
    }

    fn pack(self) -> u64 {
        u64::from(self.generation) << GEN_SHIFT
            | (u64::from(self.object) + 1) << COUNT_BITS
            | u64::from(self.count)
    }
}

/// Nanoseconds since this process first looked for dead sleepers.
fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

impl SyncArea<'_> {
    /// Records one more of this process's threads (`token`'s slot and generation) as
    /// counted in object `index`'s sleepers: `false` if both records are taken by other
    /// objects (the thread stays counted, unrecorded).
    pub(super) fn record_sleep(&self, token: u32, index: u32) -> bool {
        let (slot, generation) = layout::untoken(token);
        let Ok(p) = self.participant(slot) else { return false };
        'retry: loop {
            let mut free = None;
            for word in &p.sleeps {
                let v = word.load(Relaxed);
                match Record::unpack(v) {
                    None if v == 0 => {
                        free.get_or_insert(word);
                    }
                    Some(r) if r.generation == generation && r.object == index => {
                        if u64::from(r.count) == COUNT_MASK {
                            continue;
                        }
                        if word.compare_exchange(v, v + 1, AcqRel, Relaxed).is_ok() {
                            return true;
                        }
                        continue 'retry; // another thread of this process changed it
                    }
                    _ => {}
                }
            }
            let Some(word) = free else { return false };
            let new = Record { generation, object: index, count: 1 }.pack();
            if word.compare_exchange(0, new, AcqRel, Relaxed).is_ok() {
                return true;
            }
        }
    }

    /// Takes one thread out of this process's record of object `index` (before the thread
    /// takes itself out of the object's count).
    pub(super) fn unrecord_sleep(&self, token: u32, index: u32) {
        let (slot, generation) = layout::untoken(token);
        let Ok(p) = self.participant(slot) else { return };
        'retry: loop {
            for word in &p.sleeps {
                let v = word.load(Relaxed);
                let Some(r) = Record::unpack(v) else { continue };
                if r.generation != generation || r.object != index || r.count == 0 {
                    continue;
                }
                let new = if r.count == 1 { 0 } else { v - 1 };
                if word.compare_exchange(v, new, AcqRel, Relaxed).is_ok() {
                    return;
                }
                continue 'retry;
            }
            return; // not found: a reaper took it (this process looked dead), or a peer
        }
    }

    /// Clears `slot`'s records of the generations `stale` picks, subtracting each from
    /// its object's sleepers. The caller knows those generations' processes have ended.
    pub(super) fn clear_records(&self, slot: u32, stale: impl Fn(u32) -> bool) {
        let Ok(p) = self.participant(slot) else { return };
        for word in &p.sleeps {
            let v = word.load(Acquire);
            if v == 0 {
                continue;
            }
            let record = Record::unpack(v);
            if record.is_some_and(|r| !stale(r.generation)) {
                continue;
            }
            if word.compare_exchange(v, 0, AcqRel, Relaxed).is_err() {
                continue; // another reaper took it, or the slot's new owner changed it
            }
            if let Some(r) = record {
                if let Ok(o) = self.object_words(r.object) {
                    take_back(o, r.count);
                }
            }
        }
    }

    /// Takes back the sleepers of object `index` that dead participants left counted:
    /// called by a waker that woke nobody. At most every 10 ms per handle; a slot is asked
    /// about only if one of its records names the object.
    pub(super) fn reap_sleepers(&self, index: u32) {
        let now = clock();
        let next = self.next_reap.load(std::sync::atomic::Ordering::Relaxed);
        if now < next {
            return;
        }
        let after = now + REAP_INTERVAL.as_nanos() as u64;
        self.next_reap.store(after, std::sync::atomic::Ordering::Relaxed);
        let mine = self.current_member().map(|m| m.slot);
        for slot in 0..self.participants {
            let Ok(p) = participant_at(self.view(), self.offset, slot) else { return };
            let id = Ident::unpack(p.ident.load(Acquire));
            if id.is_free() || Some(slot) == mine || !names(&p.sleeps, id.generation, index) {
                continue;
            }
            if matches!(self.liveness(slot, id), Ok(Liveness::Dead)) {
                self.clear_records(slot, |g| g == id.generation);
            }
        }
    }
}

/// Whether one of `records` is `generation`'s and counts sleepers of `index`.
fn names(records: &[AtomicU64; 2], generation: u32, index: u32) -> bool {
    records.iter().any(|w| {
        Record::unpack(w.load(Relaxed))
            .is_some_and(|r| r.generation == generation && r.object == index && r.count > 0)
    })
}

/// Subtracts `n` from an object's sleepers, stopping at 0 (a count a peer corrupted).
fn take_back(o: &Object, n: u32) {
    let mut count = o.sleepers.load(Relaxed);
    loop {
        let new = count.saturating_sub(n);
        match o.sleepers.compare_exchange_weak(count, new, AcqRel, Relaxed) {
            Ok(_) => return,
            Err(now) => count = now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Record;

    #[test]
    fn records_pack_and_unpack() {
        let r = Record { generation: (1 << 20) - 1, object: (1 << 20) - 1, count: (1 << 23) - 1 };
        assert_eq!(Record::unpack(r.pack()), Some(r));
        let r = Record { generation: 1, object: 0, count: 1 };
        assert_eq!(Record::unpack(r.pack()), Some(r));
        assert_eq!(Record::unpack(0), None);
        assert_eq!(Record::unpack(5), None, "object field 0: no writer makes it");
    }
}
