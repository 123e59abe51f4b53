//! The entry points of the fuzz targets (`crates/mmf-heap/fuzz`, cargo-fuzz) and of the
//! corpus replay that `cargo test` runs on stable (`tests/fuzz_corpus.rs`): a heap opened
//! from arbitrary bytes, everything in it walked, a transaction committed on it. Any
//! panic, hang or abort here is a bug; errors are the expected outcome for most inputs.
//!
//! An input is a knob byte, then a heap file image with its trailing zeros cut (zeros are
//! put back up to a new heap's 64 KiB, so that seeds stay a few KiB). Knob bit
//! [`RESEAL`] recomputes every checksum the image's own fields point to before opening:
//! without it nearly every mutation ends at a checksum, with it the fuzzer reaches what
//! lies behind them — the checks a hostile file must also pass (hashes are not a
//! defence against a file made to pass them).
//!
//! Not for applications: this module is public only for the fuzz crate and the tests.

use xxhash_rust::xxh3::xxh3_64;
use zerocopy::{FromBytes, IntoBytes};

use crate::backend::{Backend, MemoryBackend};
use crate::error::Result;
use crate::format::{BlockHeader, ManifestEntry, SLOT_OFFSETS, Slot, Superblock};
use crate::heap::{Durability, Heap, HeapOptions, INITIAL_LEN};
use crate::persist::{Off, PBytes, PStr};
use crate::phash::PHashMap;
use crate::pmap::PMap;
use crate::snapshot::Snapshot;

/// Knob bit: recompute the image's checksums before opening it.
pub const RESEAL: u8 = 0x80;

/// The heap image an input stands for, its checksums recomputed if the knob says so.
pub fn image(input: &[u8]) -> Vec<u8> {
    let Some((&knob, bytes)) = input.split_first() else { return Vec::new() };
    let mut image = bytes.to_vec();
    if image.len() < INITIAL_LEN as usize {
        image.resize(INITIAL_LEN as usize, 0);
    }
    if knob & RESEAL != 0 {
        reseal(&mut image);
    }
    image
}

/// Opens the image read-only and walks everything reachable without knowing the
/// application's types: what `mmf heap check` verifies, every root, and every word of a
/// root's value tried as a pointer and as a byte string.
pub fn open_and_walk(input: &[u8]) {
    let options = HeapOptions::new().read_only(true).clone();
    let Ok(heap) = Heap::open_with(MemoryBackend::from_bytes(image(input)), &options) else {
        return;
    };
    walk(&heap);
}

/// Opens the image read-write, walks it, commits a transaction that allocates, frees and
/// changes roots (how depends on the knob), and checks that the commit reads back: a
/// commit that returned `Ok` must be what the file opens at.
///
/// # Panics
/// When the heap breaks that promise (the fuzzer's finding).
pub fn open_and_commit(input: &[u8]) {
    let knob = input.first().copied().unwrap_or(0);
    let Ok(heap) = Heap::open_with(MemoryBackend::from_bytes(image(input)), &HeapOptions::new())
    else {
        return;
    };
    walk(&heap);
    let durability = match knob & 3 {
        0 | 1 => Durability::Immediate,
        2 => Durability::TwoPhase,
        _ => Durability::None,
    };
    let value = [u64::from(knob); 3];
    let blob = &input[..input.len().min(usize::from(knob & 0x3f) * 7)];
    let Ok(committed) = change(&heap, knob, durability, &value, blob) else { return };

    // The commit must be what the bytes open at, whole.
    let reopened =
        Heap::open_with(MemoryBackend::from_bytes(heap.backend().to_bytes()), &options());
    let reopened = reopened.expect("a heap opens after a commit that returned Ok");
    let snap = reopened.read().expect("a snapshot of a reopened heap");
    assert_eq!(snap.txn_id(), committed, "the heap opens at the commit that returned Ok");
    let off = snap.root::<Off<[u64; 3]>>("fuzz.value").expect("root").expect("present");
    assert_eq!(snap.get(off).expect("the committed value"), value);
    let text = snap.root::<PBytes>("fuzz.blob").expect("root").expect("present");
    assert_eq!(snap.bytes(text).expect("the committed blob"), blob);
    snap.verify().expect("a heap checks out after a commit that returned Ok");
    walk(&reopened);

    // A second commit: it may reuse what the first one freed.
    drop(snap);
    if let Ok(next) = change(&heap, knob ^ 0x0c, Durability::Immediate, &value, blob) {
        let bytes = heap.backend().to_bytes();
        let reopened = Heap::open_with(MemoryBackend::from_bytes(bytes), &options())
            .expect("a heap opens after a second commit");
        assert_eq!(reopened.read().expect("snapshot").txn_id(), next);
    }
}

fn options() -> HeapOptions {
    HeapOptions::new().read_only(true).clone()
}

/// One transaction: read every root through it, allocate, free and set roots.
fn change<B: Backend>(
    heap: &Heap<B>,
    knob: u8,
    durability: Durability,
    value: &[u64; 3],
    blob: &[u8],
) -> Result<u64> {
    let mut tx = heap.write()?;
    let names: Vec<String> = tx.roots.keys().cloned().collect();
    for name in &names {
        let words = root_words(&tx.roots[name].bytes);
        for pair in words.windows(2) {
            let _ = tx.get(Off::<[u64; 2]>::from_raw(pair[0]));
            let _ = tx.read_bytes(PBytes { off: pair[0], len: pair[1] });
            let _ = tx.read_str(PStr { bytes: PBytes { off: pair[0], len: pair[1] } });
        }
    }
    if knob & 4 != 0 {
        // Free what the roots point to, as an application dropping its data would.
        for name in &names {
            if let Ok(Some(bytes)) = tx.root::<PBytes>(name) {
                let _ = tx.free_bytes(bytes);
            }
            if let Ok(Some(off)) = tx.root::<Off<[u64; 3]>>(name) {
                let _ = tx.free(off);
            }
        }
    }
    if knob & 8 != 0 {
        for name in names.iter().take(2) {
            tx.remove_root(name);
        }
    }
    let off = tx.alloc(value)?;
    let bytes = tx.bytes(blob)?;
    let scratch = tx.alloc(&[0u64; 8])?;
    tx.free(scratch)?;
    tx.set_root("fuzz.value", &off)?;
    tx.set_root("fuzz.blob", &bytes)?;
    tx.commit_with(durability)
}

/// Everything a snapshot of the newest commit can reach without the application's types.
fn walk<B: Backend>(heap: &Heap<B>) {
    let _ = heap.txn_id();
    let _ = heap.oldest_reader();
    let Ok(snap) = heap.read() else { return };
    // What `mmf heap check` runs: the last commit's blocks, then everything the roots
    // reach by their stored shapes (collections, pointers, strings).
    let _ = snap.verify();
    let _ = snap.passed_over();
    let _ = snap.verify_reachable();
    let _ = snap.stats();
    // The roots' raw values: the snapshot's commit is the heap's newest (no other
    // process shares a heap in memory).
    let roots = heap.state().current.roots.clone();
    for (name, value) in &roots {
        walk_root(&snap, name, &value.bytes);
    }
}

fn walk_root<B: Backend>(snap: &Snapshot<'_, B>, name: &str, value: &[u8]) {
    let _ = snap.root::<PStr>(name).map(|s| s.map(|s| snap.str(s)));
    let _ = snap.root::<PBytes>(name).map(|b| b.map(|b| snap.bytes(b)));
    let _ = snap.root::<Off<u64>>(name).map(|o| o.map(|o| snap.get(o)));
    // The seeds' hash map type: every get through the snapshot's hot path (which skips
    // the checks of directories it has checked before) answers as the checked path.
    if let Ok(Some(map)) = snap.root::<PHashMap<u64, u8>>(name) {
        for k in (0..300u64).chain([u64::MAX, 1 << 40]) {
            let (hot, checked) = map.get_both(snap, &k);
            paths_agree(format_args!("key {k}"), hot, checked);
        }
    }
    // And an ordered map's: the hot path checks each node's header words itself.
    if let Ok(Some(map)) = snap.root::<PMap<u64, u8>>(name) {
        for k in (0..1200u64).step_by(7).chain([u64::MAX, 1 << 40]) {
            let (hot, checked) = map.get_both(snap, &k);
            paths_agree(format_args!("key {k}"), hot, checked);
        }
    }
    for pair in root_words(value).windows(2) {
        let _ = snap.get(Off::<[u64; 2]>::from_raw(pair[0]));
        let _ = snap.get(Off::<u8>::from_raw(pair[0]));
        let _ = snap.bytes(PBytes { off: pair[0], len: pair[1] });
        let _ = snap.str(PStr { bytes: PBytes { off: pair[0], len: pair[1] } });
    }
}

/// Whether a look-up's two paths agree — its hot path (`None` where it gave up) and its
/// checked one: the same answer, or the hot path gave up where the checked one errs.
/// Returns whether the hot path gave up; panics, naming `what`, where they disagree (the
/// fuzz targets' finding, and the tests' failure).
pub(crate) fn paths_agree<T: PartialEq + std::fmt::Debug, E: std::fmt::Display>(
    what: impl std::fmt::Display,
    hot: Option<T>,
    checked: std::result::Result<T, E>,
) -> bool {
    match (hot, checked) {
        (Some(f), Ok(c)) => {
            assert_eq!(f, c, "{what}: both paths answered, differently");
            false
        }
        (None, Err(_)) => true,
        (Some(f), Err(e)) => {
            panic!("{what}: the hot path answered {f:?} where the checked one says {e}")
        }
        (None, Ok(c)) => {
            panic!("{what}: the hot path gave up where the checked one answered {c:?}")
        }
    }
}

/// A root value's bytes as little-endian words (the last one zero-padded), at most 16.
fn root_words(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .take(16)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect()
}

/// Recomputes, in place, every checksum the image's fields point to, innermost first: the
/// payload hash of each slot's root directory and free list, each manifest entry's hash
/// and the manifest's payload hash, the slot's manifest hash, the slot's and the
/// superblock's own hash. Fields that point outside the image are left alone.
pub fn reseal(image: &mut [u8]) {
    let sb_hash = size_of::<Superblock>() - 8;
    if image.len() >= size_of::<Superblock>() {
        let h = xxh3_64(&image[..sb_hash]);
        image[sb_hash..sb_hash + 8].copy_from_slice(&h.to_le_bytes());
    }
    for at in SLOT_OFFSETS.map(|a| a as usize) {
        let Some(bytes) = image.get(at..at + size_of::<Slot>()) else { continue };
        let Ok(mut slot) = Slot::read_from_bytes(bytes) else { continue };
        for block in [slot.roots, slot.free] {
            reseal_block(image, block.off, block.len);
        }
        if let Some(range) = range(image, slot.manifest.off, slot.manifest.len) {
            reseal_manifest(image, range.clone());
            slot.manifest_hash = xxh3_64(&image[range]);
        }
        slot.hash = xxh3_64(&slot.as_bytes()[..size_of::<Slot>() - 8]);
        image[at..at + size_of::<Slot>()].copy_from_slice(slot.as_bytes());
    }
}

/// `off..off+len` as an index range of the image, if it lies inside.
fn range(image: &[u8], off: u64, len: u64) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= image.len()).then_some(start..end)
}

/// Sets a system block's payload hash; returns the payload's range.
fn reseal_block(image: &mut [u8], off: u64, len: u64) -> Option<std::ops::Range<usize>> {
    let block = range(image, off, len)?;
    let (mut header, _) = BlockHeader::read_from_prefix(&image[block.clone()]).ok()?;
    let start = block.start + size_of::<BlockHeader>();
    let payload = start..start.checked_add(usize::try_from(header.payload_len).ok()?)?;
    if payload.end > block.end {
        return None;
    }
    header.hash = xxh3_64(&image[payload.clone()]);
    image[block.start..start].copy_from_slice(header.as_bytes());
    Some(payload)
}

/// Sets each manifest entry's hash to its range's, then the manifest's payload hash.
fn reseal_manifest(image: &mut [u8], block: std::ops::Range<usize>) {
    let Some(payload) = reseal_block(image, block.start as u64, block.len() as u64) else {
        return;
    };
    let entry = size_of::<ManifestEntry>();
    for at in payload.clone().step_by(entry) {
        let Some(Ok(mut e)) = image.get(at..at + entry).map(ManifestEntry::read_from_bytes) else {
            continue;
        };
        if let Some(r) = range(image, e.off, e.len) {
            e.hash = xxh3_64(&image[r]);
            image[at..at + entry].copy_from_slice(e.as_bytes());
        }
    }
    reseal_block(image, block.start as u64, block.len() as u64);
}
