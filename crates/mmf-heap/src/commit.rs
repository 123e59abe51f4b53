//! The commit protocol (`docs/heap-format.md`, "Commit"):
//!
//! 1. the new root directory (if a root changed), the new free list and the manifest are
//!    allocated like any block — the old ones are freed by this transaction;
//! 2. if the allocated area outgrew the durable file length, the file grows durably
//!    (`ftruncate` + `fsync`) before anything relies on it;
//! 3. every new block is written (`pwrite`, sorted and coalesced), then the manifest;
//! 4. ([`Durability::TwoPhase`] only: sync;)
//! 5. the slot that does not hold the last durable commit is written;
//! 6. one sync ([`Durability::None`]: none).
//!
//! A crash anywhere before the sync completes leaves the previous durable commit whole
//! (nothing it reaches was written) and the new slot either absent, torn (its hash fails)
//! or pointing at bytes that must match the manifest's hashes — or the open falls back.

use std::sync::Arc;

use xxhash_rust::xxh3::{Xxh3, xxh3_64};
use zerocopy::IntoBytes;

use crate::alloc::Allocator;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::format::{
    BlockHeader, Extent, FREE_MAGIC, MANIFEST_MAGIC, ManifestEntry, PAGE, ROOTS_MAGIC,
    SLOT_OFFSETS, Slot, seal_block,
};
use crate::heap::{Committed, Durability};
use crate::roots;
use crate::txn::WriteTxn;

/// The largest step a file grows by at once.
const MAX_GROWTH: u64 = 1 << 30;
/// Growth is in multiples of this (Windows' allocation granularity).
const GROWTH_UNIT: u64 = 64 * 1024;

impl<B: Backend> WriteTxn<'_, B> {
    /// Commits the transaction; returns its id. With [`Durability::Immediate`] (the
    /// default) it is durable when this returns.
    ///
    /// A transaction that changed nothing commits nothing and returns the current id.
    ///
    /// # Errors
    /// [`Error::StorageFull`](crate::Error::StorageFull) (the disk is full),
    /// [`Error::Io`](crate::Error::Io) (a write or sync failed). The transaction is then
    /// not committed and the heap stays at its last commit; after a failed *sync* the
    /// commit may or may not survive a crash (the heap opens at it or at the one
    /// before), and further transactions build on the last commit.
    /// [`Error::Corrupted`] when a change to a collection in this transaction met damage
    /// half way (a split or a merge that found a bad node after it had begun rewriting):
    /// its nodes may be half rebuilt, so the transaction cannot commit; drop it (as LMDB
    /// refuses a transaction that met an error).
    pub fn commit(self) -> Result<u64> {
        let durability = self.heap.durability;
        self.commit_with(durability)
    }

    /// [`commit`](Self::commit) with another durability than the heap's: for example
    /// many [`Durability::None`] commits, then an [`Durability::Immediate`] one that makes
    /// them all durable.
    ///
    /// ```
    /// use mmf_heap::{Durability, Heap, MemoryBackend};
    ///
    /// let heap = Heap::create_with(MemoryBackend::new(), &Default::default())?;
    /// for i in 0..10u64 {
    ///     let mut tx = heap.write()?;
    ///     tx.set_root("i", &i)?;
    ///     let durability = if i == 9 { Durability::Immediate } else { Durability::None };
    ///     tx.commit_with(durability)?;
    /// }
    /// # Ok::<(), mmf_heap::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    pub fn commit_with(mut self, durability: Durability) -> Result<u64> {
        if let Some(off) = self.failed {
            return Err(Error::corrupted(
                "collection node (a change met damage half way and the transaction cannot \
                 commit: drop it; `mmf heap check` names what is damaged)",
                off,
            ));
        }
        if !self.changed {
            return Ok(self.base.slot.txn_id);
        }
        self.flush_shapes()?;
        let heap = self.heap;
        let txn = self.txn_id;
        let base = self.base.slot;
        let mut slot = Slot { txn_id: txn, roots: base.roots, ..Slot::default() };

        // 1. System blocks, copy-on-write.
        if self.roots_changed {
            if !base.roots.is_none() {
                self.alloc.free(base.roots.off, base.roots.len, txn)?;
            }
            slot.roots = Extent::NONE;
            if !self.roots.is_empty() {
                let block = seal_block(ROOTS_MAGIC, txn, &roots::encode(&self.roots));
                let off = self.alloc_block(block.len() as u64)?;
                self.dirty_mut(off, block.len())?.copy_from_slice(&block);
                slot.roots = Extent { off, len: block.len() as u64 };
            }
        }
        for old in [base.free, base.manifest] {
            if !old.is_none() {
                self.alloc.free(old.off, old.len, txn)?;
            }
        }
        // Allocating never adds a free range (it takes one or shortens one), so the free
        // list's length now bounds it after the two allocations below.
        let free_cap =
            size_of::<BlockHeader>() as u64 + Allocator::encoded_len(self.alloc.ranges());
        let free_off = self.alloc_block(free_cap)?;
        let runs = runs(&self.dirty);
        // The manifest covers every write since the last durable commit: a commit without
        // a sync builds on blocks that may not have reached the disk either.
        let (carried, manifest_from) = {
            let state = heap.state();
            let w = &state.writer;
            let from = if w.unsynced.is_empty() { txn } else { w.unsynced_from };
            (w.unsynced.clone(), from)
        };
        let entry_count = carried.len() + runs.len();
        let manifest_len =
            (size_of::<BlockHeader>() + entry_count * size_of::<ManifestEntry>()) as u64;
        let manifest_off = self.alloc.alloc(manifest_len, self.reusable)?;

        let free_block = seal_block(FREE_MAGIC, txn, &self.alloc.encode());
        self.dirty_mut(free_off, free_block.len())?.copy_from_slice(&free_block);
        slot.free = Extent { off: free_off, len: free_cap };
        slot.manifest = Extent { off: manifest_off, len: manifest_len };
        slot.manifest_from = manifest_from;
        slot.alloc_end = self.alloc.end();

        // 2. Growth, durable before anything relies on it.
        let (durable_len, durable_slot) = {
            let state = heap.state();
            (state.writer.durable_len, state.writer.durable_slot)
        };
        slot.file_len = durable_len;
        if slot.alloc_end > durable_len {
            let grown = grow_target(durable_len, slot.alloc_end);
            heap.backend.grow(grown)?;
            heap.state().writer.durable_len = grown;
            slot.file_len = grown;
        }

        // 3. Blocks (collection nodes sealed with their checksums now that their bytes
        // are final), each run hashed for the manifest as it is written; then the
        // manifest. Nothing reaches these blocks until the slot below is written.
        let mut written = carried;
        let mut stage = Vec::new();
        for &(start, end) in &runs {
            let hash = self.write_run(start, end, &mut stage, durability != Durability::None)?;
            written.push(ManifestEntry { off: start, len: end - start, hash });
        }
        let manifest = seal_block(MANIFEST_MAGIC, txn, written.as_bytes());
        debug_assert_eq!(manifest.len() as u64, manifest_len);
        slot.manifest_hash = xxh3_64(&manifest);
        heap.backend.write_at(manifest_off, &manifest)?;
        // 4.
        if durability == Durability::TwoPhase {
            heap.backend.sync()?;
        }
        // 5. The slot the last durable commit is not in.
        let target = 1 - durable_slot;
        let slot = slot.seal();
        heap.backend.write_at(SLOT_OFFSETS[target], slot.as_bytes())?;
        // 6.
        let durable = durability != Durability::None;
        if durable {
            heap.backend.sync()?;
        }

        let committed = Arc::new(Committed::new(
            slot,
            std::mem::take(&mut self.roots),
            std::mem::take(&mut self.alloc),
            target,
        ));
        let end = slot.alloc_end;
        {
            let mut state = heap.state();
            state.current = Arc::clone(&committed);
            let w = &mut state.writer;
            w.base = committed;
            w.settled = None;
            w.next_txn = txn + 1;
            if durable {
                // Blocks the manifest lists were written by `manifest_from` or later and
                // can only have been freed after they were written: space freed up to
                // `manifest_from` is not among them.
                w.reuse_limit = manifest_from;
                w.durable_slot = target;
                w.unsynced.clear();
            } else {
                w.unsynced = written;
                w.unsynced_from = manifest_from;
            }
        }
        // Other processes see it from now on (the writer lock is still held).
        if let Some(lock) = &heap.readers.lock {
            lock.publish(txn, durable, end)?;
        }
        Ok(txn)
    }
}

impl<B: Backend> WriteTxn<'_, B> {
    /// Writes the run of adjacent new blocks `start..end` (sealing its collection nodes),
    /// through `stage` (up to [`STAGE`] bytes at a time: a big transaction's blocks are
    /// not copied into one buffer of their total size first); returns the run's xxh3-64.
    /// For a `durable` commit, each large write is sent on to the device at once
    /// ([`Backend::start_sync`]), while the next is copied: the commit's final sync then
    /// waits for little more than the last write.
    fn write_run(
        &mut self,
        start: u64,
        end: u64,
        stage: &mut Vec<u8>,
        durable: bool,
    ) -> Result<u64> {
        let backend = &self.heap.backend;
        let write = |at: u64, bytes: &[u8]| {
            backend.write_at(at, bytes)?;
            if durable && bytes.len() >= START_SYNC {
                backend.start_sync(at, bytes.len() as u64);
            }
            Ok(())
        };
        let mut hash = Xxh3::new();
        let mut at = start;
        stage.clear();
        let mut result = Ok(());
        self.dirty.range_mut(start, end, |off, block| {
            if result.is_err() {
                return;
            }
            if block.node() {
                crate::node::seal(block.bytes_mut());
            }
            let bytes = block.bytes();
            hash.update(bytes);
            if !stage.is_empty() && stage.len() + bytes.len() > STAGE {
                result = write(at, stage);
                stage.clear();
                at = off;
            }
            if result.is_ok() && stage.is_empty() && bytes.len() >= STAGE {
                result = write(off, bytes);
                at = off + bytes.len() as u64;
            } else {
                stage.extend_from_slice(bytes);
            }
        });
        result?;
        if !stage.is_empty() {
            write(at, stage)?;
        }
        Ok(hash.digest())
    }
}

/// The most bytes of small blocks one write takes. Not less: ext4 caches a write in
/// folios no bigger than the write, and a file cached in 2 MiB folios is mapped with
/// 2 MiB pages (random reads of the heap then miss the TLB far less).
const STAGE: usize = 8 << 20;

/// Writes of this many bytes or more are sent on to the device as soon as they are made
/// (1 MiB): the device then works while the next stage is copied, where it used to start
/// at the commit's sync (1M inserts, 129 MB: `msync` took 52–55 ms after the writes). A
/// small commit's one write is not worth the extra system call.
const START_SYNC: usize = 1 << 20;

/// The coalesced runs of adjacent blocks, as (start, end).
fn runs(dirty: &crate::dirty::Dirty) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (off, block) in dirty.iter() {
        let end = off + block.len() as u64;
        match runs.last_mut() {
            Some(last) if last.1 == off => last.1 = end,
            _ => runs.push((off, end)),
        }
    }
    runs
}

/// The new file length for an allocated area ending at `needed`: at least double (up to
/// 1 GiB more), in 64 KiB units.
fn grow_target(len: u64, needed: u64) -> u64 {
    let doubled = len.saturating_add(len.clamp(PAGE, MAX_GROWTH));
    needed.max(doubled).next_multiple_of(GROWTH_UNIT)
}
