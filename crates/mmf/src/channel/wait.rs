//! Waiting for the other side: the spinning wait with its rationed yields, the sleep
//! handshake's two halves (ring.rs gives the protocol), and the CPU hint each side records
//! so that a spinning waiter yields only when its peer may need its CPU.

use std::time::{Duration, Instant};

use super::layout::{Lines, Signal};
use super::ring::{Look, Park, Which};
use crate::error::Result;
use crate::primitive::spin_loop;
use crate::primitive::sync::atomic::AtomicU32;
use crate::primitive::sync::atomic::Ordering::{Relaxed, SeqCst};
#[cfg(mmf_loom)]
use crate::primitive::sync::atomic::fence;

/// The handshake's order point under loom, which models SeqCst accesses as
/// acquire/release only (as in `sync::protocol`).
#[inline(always)]
fn handshake_fence() {
    #[cfg(mmf_loom)]
    fence(SeqCst);
}

/// The waker's half of the handshake: after a record's header and a SeqCst fence, or a
/// SeqCst store of `head`, wakes the signal's sleepers if there are any and they armed the
/// signal since the last wake-up.
/// `seq`'s low bit is that arming: the first waker clears it (and moves `seq` on) and makes
/// the one system call; wakers after it, before a sleeper arms again, make none.
#[inline]
pub(super) fn wake<P: Park>(signal: &Signal, which: Which, park: &P) -> Result<()> {
    handshake_fence();
    let sleepers = signal.sleepers.load(SeqCst);
    if sleepers == 0 {
        return Ok(());
    }
    let mut seq = signal.seq.load(SeqCst);
    while seq & 1 == 1 {
        match signal.seq.compare_exchange(seq, seq.wrapping_add(1), SeqCst, SeqCst) {
            Ok(_) => return park.unpark(signal, which, sleepers),
            Err(now) => seq = now,
        }
    }
    Ok(())
}

/// The longest a sleeper sleeps before `attempt` looks again (peer liveness).
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// How often a spinning waiter calls `attempt` although `ready` says nothing changed:
/// its look at the peers' liveness.
const ATTEMPT_EVERY: u32 = 256;

/// How many polls a spinning waiter makes before it may yield: ~110 µs (26 ns a `pause`
/// on this host's EPYC). A waiter that yielded to a peer on its CPU from 256 polls on gave
/// the spinning round trip a p99.9 of 25–32 µs in 6 of 10 runs (0.7–6.4 µs in 10 of 10
/// from 4,096); two processes pinned to one CPU take 0.36 ms a round trip this way (8 ms
/// when the waiter never yields).
const YIELD_FROM: u32 = 4096;

/// How often, past [`YIELD_FROM`], a spinning waiter may yield.
const YIELD_EVERY: u32 = 1024;

/// How often, past [`YIELD_FROM`], a spinning waiter yields whatever the hint says: every
/// 65,536 polls (~1.7 ms here for SPSC, ~5.6 ms for MPMC, whose polls take a look). A hint
/// is stale when the peer moved to this CPU since it last recorded, and only the peer's
/// next operation refreshes it; under `SCHED_FIFO`, which never preempts a spinner for a
/// peer of the same priority, a waiter that trusted it would never let the peer run. The
/// default budget (20,000 polls) sleeps before.
const YIELD_ANYWAY: u32 = 1 << 16;

/// Whether a spinning waiter yields at poll `i`, given the peer's CPU word `peer` and the
/// CPU it runs on `mine` ([`should_yield`]): from [`YIELD_FROM`] polls on, every
/// [`YIELD_EVERY`] if the peer may share its CPU, every [`YIELD_ANYWAY`] regardless.
/// `peer` is read only at those polls.
#[inline(always)]
#[cfg_attr(mmf_loom, allow(dead_code))]
fn yields_at(i: u32, peer: impl FnOnce() -> u32, mine: impl FnOnce() -> Option<u32>) -> bool {
    i >= YIELD_FROM
        && i % YIELD_EVERY == 0
        && (i % YIELD_ANYWAY == 0 || should_yield(peer(), mine()))
}

/// How often a spinning waiter with a deadline reads the clock: every 1,024 polls (~26 µs
/// SPSC here, a `clock_gettime` of ~20 ns).
const DEADLINE_EVERY: u32 = 1024;

/// Records the CPU this thread runs on in `word` (1 + its number) every
/// [`CPU_EVERY`](super::layout::CPU_EVERY)
/// calls, the first included: the hint the other side's spinning waiter reads
/// ([`should_yield`]). A call of `sched_getcpu` (a load from the thread's `rseq` area with
/// glibc 2.35+) and a store to a line the caller writes anyway, once per 64 operations.
/// Not under loom: a hint tells the model nothing.
#[inline(always)]
pub(super) fn record_cpu(word: &AtomicU32, ops: &mut u32) {
    #[cfg(not(mmf_loom))]
    {
        if *ops % super::layout::CPU_EVERY == 0 {
            let cpu = crate::sys::pal::current_cpu().map_or(0, |c| c.wrapping_add(1));
            word.store(cpu, Relaxed);
        }
        *ops = ops.wrapping_add(1);
    }
    #[cfg(mmf_loom)]
    let _ = (word, ops);
}

/// Whether a spinning waiter should yield its CPU, given `peer` (the other side's
/// [`Line::cpu`](super::layout::Line::cpu) word: 1 + the CPU it last recorded, 0 not known)
/// and `mine` (the CPU the waiter runs on, if known). Yes when the peer last ran on this
/// CPU (it may be waiting for this very CPU) or when either is not known (as if it did);
/// no when it last ran on another CPU, where a yield cannot help it and would give this
/// CPU to any other runnable thread for a time slice (measured: a spin-then-park round
/// trip's p99.9 of 221–297 µs in most runs with a yield in every long wait, 0.7–3.8 µs without).
#[inline]
#[cfg_attr(mmf_loom, allow(dead_code))]
pub(crate) fn should_yield(peer: u32, mine: Option<u32>) -> bool {
    match (peer, mine) {
        (0, _) | (_, None) => true,
        (peer, Some(mine)) => peer == mine.wrapping_add(1),
    }
}

/// Waits until `attempt` gives a result (`Ok(Some)`), spinning `spins` times first, then
/// sleeping on `which` signal of `lines` in slices of at most [`SLICE`]; `Ok(None)` once
/// `deadline` passes (looked at every [`DEADLINE_EVERY`] polls while spinning). A
/// spinning waiter yields now and then, but only when [`should_yield`] says the peer may
/// need its CPU (the other side's line's CPU word), and rarely regardless
/// ([`yields_at`]).
/// While spinning, `ready` is the cheap probe (one load of the word the other side will
/// store) and `attempt` runs when it says so (and every [`ATTEMPT_EVERY`] polls);
/// `attempt(look)` says what came before it ([`Look::Wake`] after a sleep that no waker
/// ended, [`Look::Now`] after one that the watched peer's end ended, [`Look::Op`]
/// otherwise), for its look at the peers.
pub(crate) fn wait<P: Park, R>(
    lines: &Lines,
    which: Which,
    park: &P,
    spins: u32,
    deadline: Option<Instant>,
    ready: impl Fn() -> bool,
    mut attempt: impl FnMut(Look) -> Result<Option<R>>,
) -> Result<Option<R>> {
    // A receiver sleeps on not-empty and its peer, the producer, writes the tail line; a
    // sender the other way round.
    let (signal, peer_cpu) = match which {
        Which::NotEmpty => (&lines.not_empty, &lines.tail.cpu),
        Which::NotFull => (&lines.not_full, &lines.head.cpu),
    };
    #[cfg(mmf_loom)]
    let _ = peer_cpu;
    for i in 0..spins {
        // Past the first polls (a peer that answers at once is seen before), let the peer
        // run if it shares this CPU (more runnable processes than CPUs): a poll that only
        // spins would hold the CPU the peer needs. Not when it ran elsewhere: a yield on a
        // CPU that other programs keep busy costs a time slice and helps nobody.
        #[cfg(not(mmf_loom))]
        if yields_at(i, || peer_cpu.load(Relaxed), crate::sys::pal::current_cpu) {
            std::thread::yield_now();
        }
        if let Some(deadline) = deadline {
            if i % DEADLINE_EVERY == DEADLINE_EVERY - 1 && Instant::now() >= deadline {
                return attempt(Look::Op);
            }
        }
        if ready() || i % ATTEMPT_EVERY == ATTEMPT_EVERY - 1 {
            if let Some(r) = attempt(Look::Op)? {
                return Ok(Some(r));
            }
        }
        spin_loop();
    }
    park.prepare(which)?;
    // Not a time to look at the peers before the first sleep: a look costs a clock read
    // (every sleep of a ping-pong would pay it), and a sleep lasts at most a slice, after
    // which the look comes. (A spinning wait counted a `Look::Op` every `ATTEMPT_EVERY`
    // polls.)
    loop {
        signal.sleepers.fetch_add(1, SeqCst);
        // Arm: the next waker will wake (and clear the bit).
        let seq = signal.seq.fetch_or(1, SeqCst) | 1;
        handshake_fence();
        let mut ended = false;
        let result = match attempt(Look::Op) {
            // No deadline: a slice, and no clock read.
            Ok(None) => match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                Some(left) if left.is_zero() => Some(Ok(None)),
                left => {
                    let slice = left.map_or(SLICE, |left| left.min(SLICE));
                    match park.park(signal, which, seq, slice) {
                        Ok(peer_ended) => {
                            ended = peer_ended;
                            None
                        }
                        Err(e) => Some(Err(e)),
                    }
                }
            },
            other => Some(other),
        };
        signal.sleepers.fetch_sub(1, SeqCst);
        if let Some(result) = result {
            return result;
        }
        // Woken (or a slice passed): look before arming again. The waker's record is
        // usually there, and arming would cost two read-modify-writes of the line the
        // waker has just written. A waker moved `seq` on: the other side is there, so only
        // a sleep that ended otherwise (a slice, a signal, the watched peer's end) is a time
        // to look at the peers.
        let look = if ended {
            Look::Now
        } else if signal.seq.load(Relaxed) != seq {
            Look::Op
        } else {
            Look::Wake
        };
        if let Some(r) = attempt(look)? {
            return Ok(Some(r));
        }
    }
}

/// Clears a signal's sleeper count left by a side that died asleep (trap 7), when the
/// caller knows it is the only possible sleeper (an SPSC endpoint taking over).
pub(crate) fn clear_sleepers(signal: &Signal) {
    signal.sleepers.store(0, Relaxed);
}

#[cfg(all(test, not(mmf_loom)))]
mod tests {
    use super::{should_yield, yields_at};

    #[test]
    fn a_waiter_yields_from_4096_polls_every_1024_to_a_peer_here_and_every_65536_anyway() {
        let (here, there) = (|| 4, || 6);
        let mine = || Some(3);
        assert!(yields_at(4096, here, mine), "the peer last ran on this CPU");
        assert!(yields_at(5120, here, mine));
        assert!(!yields_at(4096, there, mine), "the peer last ran on CPU 5");
        assert!(!yields_at(0, here, mine), "a peer that answers at once is seen first");
        assert!(!yields_at(3072, here, mine), "not before 4,096 polls");
        assert!(!yields_at(5000, here, mine), "every 1,024 polls only");
        assert!(yields_at(65_536, there, mine), "a stale hint is not trusted for ever");
        assert!(yields_at(131_072, there, mine));
        assert!(!yields_at(65_536 + 1024, there, mine));
    }

    #[test]
    fn a_waiter_yields_only_to_a_peer_that_last_ran_on_its_cpu_or_an_unknown_one() {
        // The peer's word is 1 + its CPU; 0 is "not known".
        assert!(should_yield(4, Some(3)), "the peer last ran on this CPU");
        assert!(!should_yield(5, Some(3)), "the peer last ran on CPU 4");
        assert!(!should_yield(1, Some(3)), "the peer last ran on CPU 0");
        assert!(should_yield(0, Some(3)), "the peer's CPU is not known");
        assert!(should_yield(9, None), "this thread's CPU is not known");
        assert!(!should_yield(u32::MAX, Some(0)), "a hostile word is just another CPU");
        assert!(should_yield(u32::MAX, Some(u32::MAX - 1)));
    }
}
