//! Several processes on one heap file: writers that take turns through the lock area's
//! robust mutex, readers whose snapshots stay whole while a writer frees and reuses space,
//! and a writer killed holding the lock.
//!
//! Knobs: `MMF_HEAP_INCREMENTS` (commits per writer process, default 150),
//! `MMF_HEAP_READER_COMMITS` (commits while readers read, default 400),
//! `MMF_HEAP_LOCK_KILLS` (writers killed holding the heap open beside this one, default 10).

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{check_and_go_on, step};
use mmf_heap::{Durability, Heap, HeapOptions, Off, PBytes, PMap};
use mmf_testkit::{Peer, role, tell};

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn open(path: &Path, read_only: bool) -> Heap {
    // SAFETY: only these test processes write the heap file, through mmf-heap.
    unsafe { Heap::open(path, HeapOptions::new().read_only(read_only)) }.unwrap()
}

fn create(path: &Path) -> Heap {
    // SAFETY: as `open`.
    unsafe { Heap::open(path, HeapOptions::new().create(true)) }.unwrap()
}

/// Runs `f` in a thread and fails the test if it takes longer than `limit` (a writer
/// waiting for a dead owner forever would otherwise hang the suite).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
}

// ---------------------------------------------------------------------------------------
// Two writer processes increment one counter.

const INCREMENT: &str = "two_writer_processes_never_interleave";

/// A child: `n` read-modify-write transactions on the counter, every other one without
/// a sync (so that the other writer takes over commits that are not durable).
fn incrementer(path: &Path, n: u64) {
    let heap = open(path, false);
    tell("ready");
    for i in 0..n {
        increment(&heap, i);
    }
    tell("done");
}

/// Increment `i`: a read-modify-write of the counter.
fn increment(heap: &Heap, i: u64) {
    {
        let mut tx = heap.write().unwrap();
        let counter: Off<u64> = tx.root("counter").unwrap().unwrap();
        let value = tx.get(counter).unwrap();
        // Widen the window in which an unprotected writer would lose the other's update.
        std::thread::yield_now();
        let fresh = tx.alloc(&(value + 1)).unwrap();
        tx.free(counter).unwrap();
        tx.set_root("counter", &fresh).unwrap();
        let durability = if i % 2 == 0 { Durability::Immediate } else { Durability::None };
        tx.commit_with(durability).unwrap();
    }
}

/// A child that opens the heap for each increment and closes it after (as a command-line
/// program does): the other writer may commit and close between its look at the file and
/// its joining the lock area.
fn reopening_incrementer(path: &Path, n: u64) {
    tell("ready");
    for i in 0..n {
        increment(&open(path, false), i);
    }
    tell("done");
}

#[test]
fn two_writer_processes_never_interleave() {
    two_incrementers(INCREMENT, 150);
}

const REOPEN: &str = "writers_that_open_the_heap_per_commit_lose_nothing";

#[test]
fn writers_that_open_the_heap_per_commit_lose_nothing() {
    two_incrementers(REOPEN, 200);
}

/// Two child processes increment one counter `n` times each (`MMF_HEAP_INCREMENTS`):
/// every increment is there afterwards, one commit each.
fn two_incrementers(test: &str, default: u64) {
    if let Some((role, arg)) = role() {
        let (n, path) = arg.split_once(':').unwrap();
        match role.as_str() {
            "increment" => incrementer(Path::new(path), n.parse().unwrap()),
            "reopen" => reopening_incrementer(Path::new(path), n.parse().unwrap()),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("count.heap");
    let heap = create(&path);
    let mut tx = heap.write().unwrap();
    let counter = tx.alloc(&0u64).unwrap();
    tx.set_root("counter", &counter).unwrap();
    tx.commit().unwrap();
    drop(heap);

    let n = knob("MMF_HEAP_INCREMENTS", default);
    let arg = format!("{n}:{}", path.display());
    let role = if test == REOPEN { "reopen" } else { "increment" };
    let mut peers: Vec<Peer> = (0..2).map(|_| Peer::spawn(test, role, &arg)).collect();
    for p in &mut peers {
        p.expect("ready");
    }
    for p in &mut peers {
        p.expect("done");
    }
    for p in peers {
        p.wait_success();
    }
    let heap = open(&path, true);
    let snap = heap.read().unwrap();
    let counter: Off<u64> = snap.root("counter").unwrap().unwrap();
    assert_eq!(snap.get(counter).unwrap(), 2 * n, "an increment was lost: writers interleaved");
    assert_eq!(snap.txn_id(), 2 + 2 * n, "one commit per increment");
}

// ---------------------------------------------------------------------------------------
// Readers in other processes while a writer moves money between accounts.

const READERS: &str = "readers_in_other_processes_see_every_snapshot_whole";
/// Accounts in the map: enough for several leaves and a branch.
const ACCOUNTS: u64 = 2_000;
const TOTAL: u64 = 1_000_000_000;
/// Account number → balance.
type Accounts = PMap<u64, u64>;

/// Padding whose every byte is a function of its length: a reader can tell whether the
/// bytes it reads are the ones its snapshot committed.
fn pad(len: u64) -> Vec<u8> {
    vec![(len % 251) as u8; len as usize]
}

/// The writer: `commits` transfers, each replacing two account blocks and the padding
/// (freeing the old ones, so space is reused as soon as no snapshot needs it), then
/// `done`.
fn transfer_writer(path: &Path, commits: u64) {
    let heap = open(path, false);
    tell("ready");
    let mut rng = common::sim::Rng(0xacc0 ^ u64::from(std::process::id()));
    for i in 0..commits {
        let mut tx = heap.write().unwrap();
        let mut accounts: Accounts = tx.root("accounts").unwrap().unwrap();
        // Moves between random accounts, several per commit.
        for _ in 0..1 + rng.below(4) {
            let (a, b) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
            let va = *accounts.get(&tx, &a).unwrap().unwrap();
            let amount = rng.below(va + 1);
            accounts.insert(&mut tx, &a, &(va - amount)).unwrap();
            let vb = *accounts.get(&tx, &b).unwrap().unwrap();
            accounts.insert(&mut tx, &b, &(vb + amount)).unwrap();
        }
        tx.set_root("accounts", &accounts).unwrap();
        let old: PBytes = tx.root("pad").unwrap().unwrap();
        tx.free_bytes(old).unwrap();
        let fresh = tx.bytes(&pad(rng.below(20_000) + 1)).unwrap();
        tx.set_root("pad", &fresh).unwrap();
        let durability = if i % 4 == 3 { Durability::None } else { Durability::Immediate };
        tx.commit_with(durability).unwrap();
    }
    let mut tx = heap.write().unwrap();
    tx.set_root("done", &1u64).unwrap();
    tx.commit().unwrap();
    tell("done");
}

/// A reader: snapshots until the writer is done; in each, the sum of the accounts read
/// twice (a pause between) and the padding checked. Tells how many snapshots it took and
/// how many broke the invariant.
fn reader(path: &Path) {
    let heap = open(path, true);
    tell("ready");
    let (mut snapshots, mut violations, mut txns) = (0u64, 0u64, std::collections::BTreeSet::new());
    loop {
        let snap = heap.read().unwrap();
        let check = || -> mmf_heap::Result<bool> {
            let accounts: Accounts = snap.root("accounts")?.unwrap();
            // In place: the balances are references into the mapped file.
            let sum = |s: &mmf_heap::Snapshot<'_, mmf_heap::FileBackend>| -> mmf_heap::Result<u64> {
                accounts.iter(s).map(|e| e.map(|(_, v)| *v)).sum()
            };
            let first = sum(&snap)?;
            std::thread::sleep(Duration::from_micros(200));
            let second = sum(&snap)?;
            let count = accounts.iter(&snap).count() as u64;
            let pad_bytes: PBytes = snap.root("pad")?.unwrap();
            let pad_ok = snap.bytes(pad_bytes)? == pad(pad_bytes.len());
            Ok(first == TOTAL && second == TOTAL && count == ACCOUNTS && pad_ok)
        };
        snapshots += 1;
        txns.insert(snap.txn_id());
        if !matches!(check(), Ok(true)) {
            violations += 1;
        }
        if snap.root::<u64>("done").unwrap().is_some() {
            break;
        }
    }
    tell(&format!("seen {snapshots} {violations} {}", txns.len()));
}

#[test]
fn readers_in_other_processes_see_every_snapshot_whole() {
    if let Some((role, arg)) = role() {
        match role.as_str() {
            "writer" => {
                let (n, path) = arg.split_once(':').unwrap();
                transfer_writer(Path::new(path), n.parse().unwrap());
            }
            "reader" => reader(Path::new(&arg)),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.heap");
    let heap = create(&path);
    let mut tx = heap.write().unwrap();
    let mut accounts = Accounts::new();
    for a in 0..ACCOUNTS {
        accounts.insert(&mut tx, &a, &(TOTAL / ACCOUNTS)).unwrap();
    }
    tx.set_root("accounts", &accounts).unwrap();
    let fresh = tx.bytes(&pad(100)).unwrap();
    tx.set_root("pad", &fresh).unwrap();
    tx.commit().unwrap();
    drop(heap);

    let path_arg = path.to_str().unwrap();
    let mut readers: Vec<Peer> = (0..2).map(|_| Peer::spawn(READERS, "reader", path_arg)).collect();
    for r in &mut readers {
        r.expect("ready");
    }
    let commits = knob("MMF_HEAP_READER_COMMITS", 400);
    let mut writer = Peer::spawn(READERS, "writer", &format!("{commits}:{path_arg}"));
    writer.expect("ready");
    writer.expect("done");
    writer.wait_success();
    let mut total = 0;
    for mut r in readers {
        let seen = r.expect("seen ");
        let v: Vec<u64> = seen.split(' ').map(|x| x.parse().unwrap()).collect();
        eprintln!("reader: {} snapshots of {} commits, {} violations", v[0], v[2], v[1]);
        assert_eq!(v[1], 0, "a snapshot saw bytes its commit did not have");
        assert!(v[2] > 10, "the reader saw the writer's commits as they came");
        total += v[0];
        r.wait_success();
    }
    assert!(total > 20);
    // The file checks out, and at the last commit.
    let heap = open(&path, true);
    assert_eq!(heap.txn_id(), 2 + commits + 1);
}

// ---------------------------------------------------------------------------------------
// Writers killed holding the lock while this process has the heap open.

const KILL: &str = "a_writer_killed_holding_the_lock_lets_the_next_writer_go_on";

/// A child: commits steps (acknowledging each) until killed, or with `hold` opens a
/// transaction and waits holding the lock.
fn stepper(dir: &Path, hold: bool) {
    let heap = open(&dir.join("k.heap"), false);
    if hold {
        let mut tx = heap.write().unwrap();
        tx.set_root("counter", &u64::MAX).unwrap();
        tell("holding");
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let mut acks = std::fs::OpenOptions::new().append(true).open(dir.join("acks")).unwrap();
    let mut s = heap.txn_id();
    tell("started");
    loop {
        step(&heap, s, Durability::Immediate).unwrap();
        acks.write_all(format!("{s}\n").as_bytes()).unwrap();
        s += 1;
    }
}

fn last_ack(dir: &Path) -> u64 {
    let acks = std::fs::read_to_string(dir.join("acks")).unwrap();
    acks.lines().filter_map(|l| l.parse().ok()).next_back().unwrap_or(0)
}

#[test]
fn a_writer_killed_holding_the_lock_lets_the_next_writer_go_on() {
    if let Some((role, arg)) = role() {
        stepper(Path::new(&arg), role == "hold");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.heap");
    std::fs::write(dir.path().join("acks"), b"").unwrap();
    // This process keeps the heap (and its lock area) open all along.
    let heap = std::sync::Arc::new(create(&path));
    let arg = dir.path().to_str().unwrap();

    // 1. Killed inside a transaction, holding the lock for certain.
    let mut child = Peer::spawn(KILL, "hold", arg);
    child.expect("holding");
    let h = std::sync::Arc::clone(&heap);
    let blocked = std::thread::spawn(move || {
        let start = Instant::now();
        let tx = h.write().unwrap(); // waits for the holder, then takes over
        drop(tx);
        start.elapsed()
    });
    std::thread::sleep(Duration::from_millis(100));
    child.kill();
    let waited = blocked.join().unwrap();
    assert!(waited < Duration::from_secs(10), "the next writer waited {waited:?}");
    check_and_go_on(&*heap, 0..=0, "after a kill holding the lock");
    let mut last = 3;

    // 2. Killed at random points of a commit loop.
    let kills = knob("MMF_HEAP_LOCK_KILLS", 10);
    let mut rng = common::sim::Rng(0x10c4 ^ u64::from(std::process::id()));
    for kill in 0..kills {
        let mut child = Peer::spawn(KILL, "step", arg);
        child.expect("started");
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        child.kill();
        let acked = last_ack(dir.path()).max(last);
        let context = format!("kill {kill}");
        let h = std::sync::Arc::clone(&heap);
        within(Duration::from_secs(10), "taking over from a killed writer", move || {
            drop(h.write().unwrap());
        });
        let at = check_and_go_on(&*heap, acked..=acked + 1, &context);
        let mut acks =
            std::fs::OpenOptions::new().append(true).open(dir.path().join("acks")).unwrap();
        acks.write_all(format!("{}\n", at + 3).as_bytes()).unwrap();
        last = at + 3;
    }
    eprintln!("{kills} kills, {last} commits");
}
