//! A large durable commit sends each large write on to the device as soon as it is made
//! (`Backend::start_sync`), before the sync that makes the commit durable; a small commit
//! and a commit without durability do not.

use std::sync::Mutex;

use mmf_heap::{Backend, Durability, Heap, HeapOptions, MemoryBackend, PHashMap, Result};

/// What the heap asked of the storage, in order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Call {
    Write(u64, u64),
    StartSync(u64, u64),
    Sync,
}

#[derive(Default)]
struct Recording {
    inner: MemoryBackend,
    calls: Mutex<Vec<Call>>,
}

impl Recording {
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.calls.lock().unwrap())
    }
}

impl Backend for Recording {
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.calls.lock().unwrap().push(Call::Write(offset, data.len() as u64));
        self.inner.write_at(offset, data)
    }
    fn start_sync(&self, offset: u64, len: u64) {
        self.calls.lock().unwrap().push(Call::StartSync(offset, len));
    }
    fn sync(&self) -> Result<()> {
        self.calls.lock().unwrap().push(Call::Sync);
        self.inner.sync()
    }
    fn grow(&self, len: u64) -> Result<()> {
        self.inner.grow(len)
    }
}

/// Commits `keys` inserts (u64 → 64 bytes) with `durability`; returns the storage's calls.
fn commit(heap: &Heap<Recording>, keys: u64, durability: Durability) -> Vec<Call> {
    let mut tx = heap.write().unwrap();
    let mut map: PHashMap<u64, [u8; 64]> = tx.root("m").unwrap().unwrap_or_default();
    for k in 0..keys {
        map.insert(&mut tx, &k.wrapping_mul(0x9e37_79b9_7f4a_7c15), &[k as u8; 64]).unwrap();
    }
    tx.set_root("m", &map).unwrap();
    heap.backend().take();
    tx.commit_with(durability).unwrap();
    heap.backend().take()
}

#[test]
fn a_large_durable_commit_starts_each_large_write_on_its_way_before_the_sync() {
    let heap = Heap::create_with(Recording::default(), &HeapOptions::new()).unwrap();
    let calls = commit(&heap, 100_000, Durability::Immediate);
    let starts: Vec<_> = calls.iter().filter(|c| matches!(c, Call::StartSync(..))).collect();
    let written: u64 = calls.iter().map(|c| if let Call::Write(_, n) = c { *n } else { 0 }).sum();
    assert!(written > 8 << 20, "{written} bytes: a large commit");
    assert!(starts.len() >= 2, "{calls:?}");
    for (i, call) in calls.iter().enumerate() {
        if let Call::StartSync(off, len) = *call {
            // Right after the write of that range, of 1 MiB or more.
            assert_eq!(calls[i - 1], Call::Write(off, len));
            assert!(len >= 1 << 20);
        }
    }
    // The sync that makes the commit durable comes after them all.
    let last_start = calls.iter().rposition(|c| matches!(c, Call::StartSync(..))).unwrap();
    assert!(calls[last_start..].contains(&Call::Sync));
    assert_eq!(calls.last(), Some(&Call::Sync));
}

#[test]
fn small_commits_and_commits_without_durability_start_nothing() {
    let heap = Heap::create_with(Recording::default(), &HeapOptions::new()).unwrap();
    let calls = commit(&heap, 100_000, Durability::None);
    assert!(calls.iter().all(|c| !matches!(c, Call::StartSync(..) | Call::Sync)), "{calls:?}");
    let calls = commit(&heap, 1, Durability::Immediate);
    assert!(calls.iter().all(|c| !matches!(c, Call::StartSync(..))), "{calls:?}");
    assert!(calls.contains(&Call::Sync));
}
