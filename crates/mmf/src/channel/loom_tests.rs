//! The ring's positions, record headers and the sleep handshake under loom: the very code
//! of `ring.rs`, with model memory whose data words are both a loom `UnsafeCell` (a
//! consumer reading bytes the producer may still be writing is a causality violation loom
//! reports) and a loom atomic (a record header is committed and polled through it), and a
//! model kernel whose park/unpark behave as a futex (Linux) or a semaphore of wake-up
//! tokens (Windows). A lost wake-up leaves both threads parked, which loom reports as a
//! deadlock; a header read where an earlier lap's payload lies gives `Corrupted` (the
//! payloads' bytes are not headers), which fails the model.
//!
//! ```text
//! RUSTFLAGS="--cfg mmf_loom" cargo test -p mmf --lib --release --target-dir target/loom -- channel::loom
//! ```

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use super::layout::{Line, Lines, Signal};
use super::ring::{Bytes, Park, Ring, Which};
use super::wait;
use crate::error::Result;
use crate::primitive::sync::atomic::Ordering::{self, Relaxed, SeqCst};
use crate::primitive::sync::atomic::{AtomicU32, AtomicU64};

const CAPACITY: u64 = 64;
const MAX: u32 = 16;

/// The data in 8-byte words (records are 8-aligned), each twice: a loom `UnsafeCell` for
/// the payload bytes, so that a consumer reading bytes the producer may still be writing
/// (or a producer writing bytes not yet released) is a race loom reports, and a loom
/// atomic for the word read as a record header. The two are kept the same bytes: a payload
/// write stores its word into the atomic too, so a header read where a payload of an
/// earlier lap lies sees those bytes (and fails), as it would in a real mapping; a header
/// store writes the cell too, so a header stored over a payload still being read races.
struct Memory([(AtomicU64, UnsafeCell<[u8; 8]>); CAPACITY as usize / 8]);

// SAFETY: loom checks every access to the cells for races; that is the point of the model.
unsafe impl Sync for Memory {}

impl Memory {
    fn new() -> Memory {
        Memory(std::array::from_fn(|_| (AtomicU64::new(0), UnsafeCell::new([0; 8]))))
    }

    fn read(&self, offset: u64, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let at = offset as usize + i;
            // SAFETY: loom's cell: a read racing a write panics the model instead.
            *b = self.0[at / 8].1.with(|p| unsafe { (*p)[at % 8] });
        }
    }

    fn write(&self, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let at = offset as usize + i;
            let (word, cell) = &self.0[at / 8];
            // SAFETY: as above.
            let bytes = cell.with_mut(|p| unsafe {
                (*p)[at % 8] = b;
                *p
            });
            word.store(u64::from_le_bytes(bytes), Relaxed);
        }
    }
}

impl Bytes for Memory {
    fn load_header(&self, offset: u64, order: Ordering) -> Result<u64> {
        Ok(self.0[offset as usize / 8].0.load(order))
    }
    fn store_header(&self, offset: u64, word: u64, order: Ordering) -> Result<()> {
        let (atomic, cell) = &self.0[offset as usize / 8];
        // SAFETY: as above.
        cell.with_mut(|p| unsafe { *p = word.to_le_bytes() });
        atomic.store(word, order);
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wake {
    Futex,
    Tokens,
}

struct Kernel {
    wake: Wake,
    tokens: Mutex<[u32; 2]>,
    cv: Condvar,
}

fn slot(which: Which) -> usize {
    match which {
        Which::NotEmpty => 0,
        Which::NotFull => 1,
    }
}

impl Park for Kernel {
    fn prepare(&self, _: Which) -> Result<()> {
        Ok(())
    }
    fn park(&self, signal: &Signal, which: Which, expected: u32, _: Duration) -> Result<bool> {
        let mut tokens = self.tokens.lock().unwrap();
        match self.wake {
            Wake::Futex => {
                if signal.seq.load(SeqCst) == expected {
                    drop(self.cv.wait(tokens).unwrap());
                }
            }
            Wake::Tokens => {
                while tokens[slot(which)] == 0 {
                    tokens = self.cv.wait(tokens).unwrap();
                }
                tokens[slot(which)] -= 1;
            }
        }
        Ok(false)
    }
    fn unpark(&self, _: &Signal, which: Which, n: u32) -> Result<()> {
        let mut tokens = self.tokens.lock().unwrap();
        if self.wake == Wake::Tokens {
            tokens[slot(which)] += n;
        }
        self.cv.notify_all();
        Ok(())
    }
}

fn line() -> Line {
    Line {
        pos: AtomicU64::new(0),
        cpu: AtomicU32::new(0),
        _pad: AtomicU32::new(0),
        _reserved: std::array::from_fn(|_| AtomicU64::new(0)),
    }
}

fn signal() -> Signal {
    Signal {
        seq: AtomicU32::new(0),
        sleepers: AtomicU32::new(0),
        _reserved: std::array::from_fn(|_| AtomicU64::new(0)),
    }
}

struct World {
    lines: Lines,
    memory: Memory,
    kernel: Kernel,
}

impl World {
    fn ring(&self) -> Ring<'_, Memory> {
        Ring { lines: &self.lines, bytes: &self.memory, capacity: CAPACITY, max_message: MAX }
    }
}

/// The messages, in a 64-byte ring: two 24-byte records, a pad and a wrap (the producer
/// waits for room), then an empty record at 0 and one whose header lies where the first
/// lap's first payload was (the zeroing of the next header is what keeps the consumer from
/// reading those bytes as a header).
const MESSAGES: [(u8, u32); 4] = [(1, 16), (2, 16), (3, 0), (4, 8)];

/// Records that fill the 64-byte ring exactly while the producer's cached head is still 0:
/// the third claim must leave room for the header after it, or zeroing that header erases
/// the first record's before the consumer has it (the fast path's claim by the cached head
/// without those 8 bytes hangs the consumer here).
const FILL_EXACTLY: [(u8, u32); 4] = [(1, 16), (2, 16), (3, 8), (4, 0)];

fn send_all(w: &World, messages: &[(u8, u32)]) {
    let ring = w.ring();
    let mut p = ring.producer().unwrap();
    for &(fill, len) in messages {
        let claim = wait::wait(
            &w.lines,
            Which::NotFull,
            &w.kernel,
            0,
            None,
            || true,
            // The endpoints' fast path first, the general one where it gives up.
            |_| match ring.claim_cached(&p, len) {
                Some(claim) => Ok(Some(claim)),
                None => ring.try_claim(&mut p, len, &w.kernel),
            },
        )
        .unwrap()
        .unwrap();
        w.memory.write(claim.payload, &vec![fill; len as usize]);
        ring.commit(&mut p, claim, &w.kernel).unwrap();
    }
}

fn receive_all(w: &World, messages: &[(u8, u32)]) {
    let ring = w.ring();
    let mut c = ring.consumer().unwrap();
    for &(fill, len) in messages {
        let record = wait::wait(
            &w.lines,
            Which::NotEmpty,
            &w.kernel,
            0,
            None,
            || true,
            |_| match ring.peek_message(&c) {
                Some(record) => Ok(Some(record)),
                None => ring.try_peek(&mut c, &w.kernel),
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(record.len, len);
        let mut buf = vec![0; len as usize];
        w.memory.read(record.payload, &mut buf);
        assert!(buf.iter().all(|&b| b == fill), "message {fill} torn: {buf:?}");
        ring.release(&mut c, record, &w.kernel).unwrap();
    }
}

fn ring_hands_over_every_message(wake: Wake, messages: &'static [(u8, u32)]) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(move || {
        let world = Arc::new(World {
            lines: Lines { tail: line(), head: line(), not_empty: signal(), not_full: signal() },
            memory: Memory::new(),
            kernel: Kernel { wake, tokens: Mutex::new([0; 2]), cv: Condvar::new() },
        });
        let w2 = Arc::clone(&world);
        let producer = thread::spawn(move || send_all(&w2, messages));
        receive_all(&world, messages);
        producer.join().unwrap();
        assert_eq!(world.lines.head.pos.load(SeqCst), world.lines.tail.pos.load(SeqCst));
        assert_eq!(world.lines.not_empty.sleepers.load(SeqCst), 0);
        assert_eq!(world.lines.not_full.sleepers.load(SeqCst), 0);
    });
}

#[test]
fn channel_ring_and_handshake_futex() {
    ring_hands_over_every_message(Wake::Futex, &MESSAGES);
}

#[test]
fn channel_ring_and_handshake_tokens() {
    ring_hands_over_every_message(Wake::Tokens, &MESSAGES);
}

#[test]
fn channel_ring_filled_exactly_by_a_cached_head() {
    ring_hands_over_every_message(Wake::Futex, &FILL_EXACTLY);
}

/// An MPMC endpoint attaching while the others stream reads positions that move under it:
/// its start must check out on a sound ring. (A sender's start read the tail, then the
/// head: a head that had passed that tail meanwhile was called corrupted; a receiver's
/// start read the head, then the tail, and could see them more than a lap apart.) The
/// others are a thread moving both positions as a producer's commits and a consumer's
/// releases of 24-byte records would, always a sound pair.
#[test]
fn channel_attach_while_streaming_sees_sound_positions() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let world = Arc::new(World {
            lines: Lines { tail: line(), head: line(), not_empty: signal(), not_full: signal() },
            memory: Memory::new(),
            kernel: Kernel { wake: Wake::Futex, tokens: Mutex::new([0; 2]), cv: Condvar::new() },
        });
        let w2 = Arc::clone(&world);
        let others = thread::spawn(move || {
            for end in [24, 48, 72] {
                w2.lines.tail.pos.store(end, SeqCst);
                w2.lines.head.pos.store(end, SeqCst);
            }
        });
        let ring = world.ring();
        ring.producer_unlocked().expect("a sender's start on a sound ring");
        ring.consumer().expect("a receiver's start on a sound ring");
        others.join().unwrap();
    });
}
