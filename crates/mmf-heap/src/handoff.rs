//! Several processes on one heap file: a writer taking over from another process (or
//! from one that died holding the lock), and snapshots of commits other processes made.
//!
//! The published transaction in the lock area is the heap's newest commit. A writer
//! that finds it changed since its own last commit loads that commit (trusting it: a
//! live writer published it after writing it in full) and, if it was not made durable,
//! syncs the file, so that the slot it writes next never replaces the only durable one.
//! A writer that finds the lock's owner dead opens the file again as at startup (the
//! newest commit that checks out), syncs, and goes on from there: nothing on disk is
//! repaired, a transaction in flight is simply not there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::format::SLOT_OFFSETS;
use crate::heap::{Committed, Heap, WriterState};
use crate::lock::LockArea;
use crate::recover;

/// How long a snapshot waits for a published commit's slot to read back before calling
/// it corrupted (a commit without a sync rewrites its slot just before publishing), and
/// how long an outside reader looks for slots that stand still (`pin_newest_outside`).
const SLOT_PATIENCE: Duration = Duration::from_secs(2);

/// An outside reader's error when the slots moved under every look for [`SLOT_PATIENCE`].
fn moving() -> Error {
    Error::io(
        "pin a snapshot",
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "a writer committed throughout 2 s of looks: no commit stood still long enough \
             to be checked and pinned; try again",
        ),
    )
}

impl<B: Backend> Heap<B> {
    /// Takes the writer lock of the lock area (if the heap has one) and brings this
    /// process's writer state up to the published commit.
    pub(crate) fn take_over(&self) -> Result<Option<mmf::sync::MutexGuard<'_>>> {
        let Some(lock) = &self.readers.lock else { return Ok(None) };
        let (guard, died) = lock.lock_writer()?;
        let published = lock.current()?;
        if died {
            self.recover_from_death(lock, published)?;
            // Marked only once the state is rebuilt: if this fails, the next writer
            // recovers too.
            guard.mark_consistent();
        } else if published != self.state().writer.base.slot.txn_id {
            self.follow(lock, published)?;
        }
        Ok(Some(guard))
    }

    /// Builds on commit `txn`, which another process of this file published.
    fn follow(&self, lock: &LockArea, txn: u64) -> Result<()> {
        let cached = {
            let state = self.state();
            (state.current.slot.txn_id == txn).then(|| Arc::clone(&state.current))
        };
        let commit = match cached {
            Some(commit) => commit,
            None => match recover::published(&self.backend, txn)? {
                Some(commit) => Arc::new(commit),
                // Its slot was overwritten by a commit that failed before publishing:
                // what the file holds is the truth, as after a crash.
                None => return self.recover_from_death(lock, txn),
            },
        };
        self.backend.refresh()?;
        if lock.durable()? != txn {
            // A commit without a sync: make it durable, so that its slot is the one the
            // next commit must not overwrite.
            self.backend.sync_all()?;
        }
        self.adopt(lock, commit, txn)
    }

    /// Builds on the newest commit in the file that checks out, after a writer died
    /// holding the lock (`published`: the last commit it published).
    fn recover_from_death(&self, lock: &LockArea, published: u64) -> Result<()> {
        self.backend.refresh()?;
        let (_, committed) = recover::newest_commit(&self.backend)?;
        self.backend.sync_all()?;
        self.adopt(lock, Arc::new(committed), published)
    }

    /// Makes `commit` (durable now) the base of this process's next write transaction and
    /// the published commit.
    ///
    /// If it is older than `published` (a dead writer's commits without a sync did not
    /// survive), snapshots in other processes may still read those lost commits: the next
    /// commits are numbered after them, allocate past everything they reached, and reuse
    /// nothing free now until those snapshots end.
    fn adopt(&self, lock: &LockArea, mut commit: Arc<Committed>, published: u64) -> Result<()> {
        let txn = commit.slot.txn_id;
        let mut next_txn = txn + 1;
        if txn < published {
            let mut alloc = commit.alloc.clone();
            alloc.quarantine(lock.max_end()?, published + 1)?;
            next_txn = published + 1;
            commit =
                Arc::new(Committed::new(commit.slot, commit.roots.clone(), alloc, commit.index));
        }
        let writer = WriterState {
            base: Arc::clone(&commit),
            next_txn,
            reuse_limit: commit.slot.manifest_from,
            durable_slot: commit.index,
            durable_len: self.backend.len()?,
            unsynced: Vec::new(),
            unsynced_from: 0,
            settled: None,
        };
        let end = commit.slot.alloc_end;
        {
            let mut state = self.state();
            state.current = commit;
            state.writer = writer;
        }
        lock.publish(txn, true, end)
    }

    /// Pins the newest commit (of any process) and returns it, loading it if another
    /// process made it.
    pub(crate) fn pin_newest(&self) -> Result<Arc<Committed>> {
        if self.readers.is_outside() {
            return self.pin_newest_outside();
        }
        let start = Instant::now();
        loop {
            let txn = self.readers.pin(|| self.state().current.slot.txn_id)?;
            match self.commit_at(txn) {
                Ok(Some(commit)) => return Ok(commit),
                Ok(None) => {
                    // Overwritten by a newer commit (publishing soon, or already).
                    self.readers.unpin(txn);
                    if start.elapsed() > SLOT_PATIENCE {
                        return Err(Error::corrupted("commit slot", SLOT_OFFSETS[0]));
                    }
                    std::thread::yield_now();
                }
                Err(e) => {
                    self.readers.unpin(txn);
                    return Err(e);
                }
            }
        }
    }

    /// An outside reader's pin (`Readers::outside`): the newest commit in the file that
    /// checks out, as opening finds it (a slot whose blocks a crash left bad is passed
    /// over, as the next writer will; review 46 read such a commit's bytes, which that
    /// writer then reused), its transaction's byte locked, and the slots read again: if
    /// they moved, again. A commit is loaded and checked once, and known again by its
    /// slots' bytes, not its number (a failed commit's number comes again).
    ///
    /// A writer committing all the while moves the slots under each look, and a check
    /// can then fail on blocks it is reusing (review 47): such a look is tried again, for
    /// up to [`SLOT_PATIENCE`]; then the last error, or `Io` (`TimedOut`) if the checks
    /// passed but the slots never stood still.
    fn pin_newest_outside(&self) -> Result<Arc<Committed>> {
        let start = Instant::now();
        loop {
            let head = recover::head_slots(&self.backend)?;
            let cached = {
                let state = self.state();
                (state.outside_head == head).then(|| Arc::clone(&state.current))
            };
            let commit = match cached {
                Some(commit) => commit,
                None => match recover::newest_in(&self.backend, &head) {
                    Ok(commit) => Arc::new(commit),
                    Err(e) => {
                        if recover::head_slots(&self.backend)? == head {
                            return Err(e); // damage that stays, not a writer moving on
                        }
                        if start.elapsed() > SLOT_PATIENCE {
                            return Err(moving());
                        }
                        self.backend.refresh()?;
                        std::thread::yield_now();
                        continue;
                    }
                },
            };
            let txn = commit.slot.txn_id;
            self.readers.pin_outside(txn)?;
            if recover::head_slots(&self.backend)? == head {
                let mut state = self.state();
                state.current = Arc::clone(&commit);
                state.outside_head = head;
                return Ok(commit);
            }
            self.readers.unpin(txn);
            if start.elapsed() > SLOT_PATIENCE {
                return Err(moving());
            }
            std::thread::yield_now();
        }
    }

    /// Commit `txn`: this handle's newest, or read from its slot (`None`: neither slot
    /// holds it any more).
    fn commit_at(&self, txn: u64) -> Result<Option<Arc<Committed>>> {
        {
            let state = self.state();
            if state.current.slot.txn_id == txn {
                return Ok(Some(Arc::clone(&state.current)));
            }
        }
        let Some(commit) = recover::published(&self.backend, txn)? else { return Ok(None) };
        let commit = Arc::new(commit);
        self.state().current = Arc::clone(&commit);
        Ok(Some(commit))
    }
}
