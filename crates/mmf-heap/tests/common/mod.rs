//! The workload every crash test runs, and its model: step `s` commits as transaction
//! `s + 1`, and the state after it is a pure function of `s` ([`expected`]), so a
//! reopened heap can be checked against exactly the commit it claims to be.
#![allow(dead_code, reason = "each test binary uses part of it")]

pub mod sim;

use mmf_heap::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use mmf_heap::{Backend, Durability, Heap, Off, PBytes, PMap, PVec, Result};

/// A node of the ring: a value and a payload of its own.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[zerocopy(crate = "mmf_heap::zerocopy")]
#[repr(C)]
pub struct Node {
    pub value: u64,
    pub payload: PBytes,
}
mmf_heap::persist!(Node { value: u64, payload: PBytes });

pub const RING: usize = 8;
pub type Ring = [Off<Node>; RING];

/// Step `s`'s node payload: 0 to 2,999 bytes.
pub fn payload(s: u64) -> Vec<u8> {
    let len = (s * 769) % 3000;
    (0..len).map(|i| (s.wrapping_mul(31) + i) as u8).collect()
}

/// Step `s`'s blob (every 5th step): 10 to 40 KB, so the file grows and writes span
/// many sectors.
pub fn blob(s: u64) -> Vec<u8> {
    let len = 10_000 + (s * 1013) % 30_000;
    (0..len).map(|i| (s ^ (i * 7)) as u8).collect()
}

/// Step `s` in one transaction: a counter, a ring of 8 nodes (the oldest freed and
/// replaced: space is freed and reused), their sum, a large blob every 5th step, a root
/// added and removed every 7th.
pub fn step<B: Backend>(heap: &Heap<B>, s: u64, durability: Durability) -> Result<u64> {
    let mut tx = heap.write()?;
    tx.set_root("counter", &s)?;
    let mut ring: Ring = tx.root("ring")?.unwrap_or([Off::NULL; RING]);
    let mut sum: u64 = tx.root("sum")?.unwrap_or(0);
    let at = (s % RING as u64) as usize;
    if !ring[at].is_null() {
        let old = tx.get(ring[at])?;
        tx.free_bytes(old.payload)?;
        tx.free(ring[at])?;
        sum -= old.value;
    }
    let payload = tx.bytes(&payload(s))?;
    ring[at] = tx.alloc(&Node { value: s, payload })?;
    sum += s;
    tx.set_root("ring", &ring)?;
    tx.set_root("sum", &sum)?;
    if s % 5 == 0 {
        if let Some(old) = tx.root::<PBytes>("blob")? {
            tx.free_bytes(old)?;
        }
        let b = tx.bytes(&blob(s))?;
        tx.set_root("blob", &b)?;
    }
    if s % 7 == 0 {
        if s % 14 == 0 {
            tx.remove_root("tmp");
        } else {
            tx.set_root("tmp", &s)?;
        }
    }
    // Collections: a vector that grows (and shrinks every 10th step), a map whose keys
    // are replaced and removed.
    let mut log: PVec<u64> = tx.root("log")?.unwrap_or_default();
    log.push(&mut tx, &s)?;
    if s % 10 == 0 {
        log.pop(&mut tx)?;
        log.pop(&mut tx)?;
    }
    tx.set_root("log", &log)?;
    let mut latest: PMap<u64, u64> = tx.root("latest")?.unwrap_or_default();
    latest.insert(&mut tx, &(s % LATEST_KEYS), &s)?;
    if s % 7 == 0 {
        latest.remove(&mut tx, &((s / 7) % LATEST_KEYS))?;
    }
    tx.set_root("latest", &latest)?;
    tx.commit_with(durability)
}

/// Keys of the map the steps keep.
const LATEST_KEYS: u64 = 300;

/// A ring slot's node as read: its value and payload.
pub type SeenNode = Option<(u64, Vec<u8>)>;

/// The state a heap shows, all of it copied out.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub counter: Option<u64>,
    pub sum: Option<u64>,
    pub ring: Option<Vec<SeenNode>>,
    pub blob: Option<Vec<u8>>,
    pub tmp: Option<u64>,
    pub log: Vec<u64>,
    pub latest: Vec<(u64, u64)>,
}

/// The state after step `s` (0: the new heap).
pub fn expected(s: u64) -> Seen {
    if s == 0 {
        return Seen {
            counter: None,
            sum: None,
            ring: None,
            blob: None,
            tmp: None,
            log: Vec::new(),
            latest: Vec::new(),
        };
    }
    let (mut log, mut latest_map) = (Vec::new(), std::collections::BTreeMap::new());
    for j in 1..=s {
        log.push(j);
        if j % 10 == 0 {
            log.truncate(log.len() - 2);
        }
        latest_map.insert(j % LATEST_KEYS, j);
        if j % 7 == 0 {
            latest_map.remove(&((j / 7) % LATEST_KEYS));
        }
    }
    let latest = |m: u64, k: u64| (1..=s).rev().find(|j| j % m == k);
    let ring: Vec<_> =
        (0..RING as u64).map(|k| latest(RING as u64, k).map(|j| (j, payload(j)))).collect();
    let sum = ring.iter().flatten().map(|(j, _)| j).sum();
    Seen {
        counter: Some(s),
        sum: Some(sum),
        ring: Some(ring),
        blob: latest(5, 0).map(blob),
        tmp: latest(7, 0).filter(|j| j % 14 != 0),
        log,
        latest: latest_map.into_iter().collect(),
    }
}

/// The last commit's id and state.
pub fn seen<B: Backend>(heap: &Heap<B>) -> Result<(u64, Seen)> {
    let snap = heap.read().unwrap();
    let ring = match snap.root::<Ring>("ring")? {
        None => None,
        Some(ring) => Some(
            ring.iter()
                .map(|&off| {
                    if off.is_null() {
                        return Ok(None);
                    }
                    let node = snap.get(off)?;
                    Ok(Some((node.value, snap.bytes(node.payload)?)))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    let blob = match snap.root::<PBytes>("blob")? {
        Some(b) => Some(snap.bytes(b)?),
        None => None,
    };
    let log: PVec<u64> = snap.root("log")?.unwrap_or_default();
    log.verify(&snap)?;
    let latest: PMap<u64, u64> = snap.root("latest")?.unwrap_or_default();
    latest.verify(&snap)?;
    let state = Seen {
        counter: snap.root("counter")?,
        sum: snap.root("sum")?,
        ring,
        blob,
        tmp: snap.root("tmp")?,
        log: log.iter(&snap).map(|x| x.copied()).collect::<Result<_>>()?,
        latest: latest.iter(&snap).map(|e| e.map(|(k, v)| (k, *v))).collect::<Result<_>>()?,
    };
    Ok((snap.txn_id(), state))
}

/// Checks that `heap` is at a step in `allowed` and shows exactly that step's state, then
/// runs three more steps on it, checking each (a damaged free list or root directory
/// shows there). Returns the step it was at.
pub fn check_and_go_on<B: Backend>(
    heap: &Heap<B>,
    allowed: std::ops::RangeInclusive<u64>,
    context: &str,
) -> u64 {
    let (txn, state) = seen(heap).unwrap_or_else(|e| panic!("{context}: reading: {e}"));
    // The step from the state (transaction numbers are step + 1 until a commit a crash
    // or a failed sync left in a slot makes the next writer number after it).
    let s = state.counter.unwrap_or(0);
    assert!(txn > s, "{context}: transaction {txn} at step {s}");
    assert!(allowed.contains(&s), "{context}: opened at step {s}, allowed {allowed:?}");
    assert!(state == expected(s), "{context}: step {s}'s state differs from the model");
    let mut last = txn;
    for next in s + 1..=s + 3 {
        step(heap, next, Durability::Immediate)
            .unwrap_or_else(|e| panic!("{context}: step {next} after reopening: {e}"));
        let (txn, state) = seen(heap).unwrap();
        // The first commit after reopening may number past a slot the crash or failure
        // left; the ones after it, one apart.
        if next == s + 1 {
            assert!(txn > last, "{context}: transaction {txn} after {last}");
        } else {
            assert_eq!(txn, last + 1, "{context}: transactions after reopening");
        }
        last = txn;
        assert!(state == expected(next), "{context}: step {next} after reopening differs");
    }
    s
}
