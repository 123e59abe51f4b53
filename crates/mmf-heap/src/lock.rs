//! What the processes sharing one heap file share besides the file: the lock area
//! (`docs/heap-format.md`, "Lock area"), a small named mapping whose name comes from the
//! file's identity. It holds an mmf [`SyncArea`] with the robust writer mutex, the
//! published transaction, and a reader table with one row per participant of the area.
//!
//! A read-only process that does not own the file (another user's) uses no area: it pins
//! with byte-range locks on the heap file ([`Readers::outside`], `presence.rs`).
//!
//! Readers pin a commit with LMDB's loop: write the transaction into the row, fence,
//! read the published transaction again, retry if it moved. A writer reuses space freed
//! by transaction `F` only when `F ≤` every live row; rows of processes that died are
//! ignored (the participant slot's liveness says so) and cleared by the next process that
//! takes the slot.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst, fence};

use mmf::sync::{Liveness, LockError, SyncArea, SyncAreaOptions};
use mmf::{Access, Mapping, MappingOptions, ViewMut};

use crate::error::{Error, Result};
use crate::opened::{GenGuard, GenLock};
use crate::presence::{self, Presence};

/// Processes that may have one heap file open at once (participants of the area).
pub const PARTICIPANTS: u32 = 128;
/// Where the heap's table starts in the lock area (after the sync area).
const TABLE: usize = 8192;
/// The table's magic.
const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"MMFHLCK1");
/// Table words: magic, published transaction, newest durable transaction, the largest
/// allocated end any published commit had, the area's nonce (`presence.rs`).
const MAGIC_AT: usize = TABLE;
const CURRENT_AT: usize = TABLE + 8;
const DURABLE_AT: usize = TABLE + 16;
const MAX_END_AT: usize = TABLE + 24;
const NONCE_AT: usize = TABLE + 32;
/// The reader rows: `{pid u64, txn u64}` per participant slot.
const ROWS_AT: usize = TABLE + 64;
const ROW: usize = 16;
/// The lock area's size.
const SIZE: u64 = 16384;
/// Object 0: the writer mutex; object 1: taken once by a reader-only process to join.
const WRITER: u32 = 0;
const JOIN: u32 = 1;

/// The lock area of one heap file, opened by this process.
pub(crate) struct LockArea {
    area: SyncArea<'static>,
    table: ViewMut,
    /// This process's row (its participant slot), once joined: `(fork generation + 1)
    /// << 32 | slot`, 0 before. A `fork` child has a slot of its own: the parent's row,
    /// cached here, is not its to write (`opened::generation`).
    row: AtomicU64,
    _mapping: Mapping,
}

/// The name of a heap file's lock area: its device and file number, and the heap's own
/// id (so that a reused file number never shares a lock area with a deleted heap).
pub(crate) fn area_name(file: &File, file_id: &[u8; 16]) -> Result<String> {
    let id = u64::from_le_bytes(file_id[..8].try_into().unwrap_or_default());
    Ok(format!("mmf-heap-{}-{id:016x}", file_identity(file)?))
}

#[cfg(unix)]
fn file_identity(file: &File) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().map_err(|e| Error::io("stat", e))?;
    Ok(format!("{:x}-{:x}", meta.dev(), meta.ino()))
}

#[cfg(windows)]
fn file_identity(file: &File) -> Result<String> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{
        BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle,
    };
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: the handle is the open file's, valid while `file` lives; `info` is a
    // writable struct of the size the call fills.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) };
    if ok == 0 {
        return Err(Error::io("GetFileInformationByHandle", std::io::Error::last_os_error()));
    }
    let index = u64::from(info.nFileIndexHigh) << 32 | u64::from(info.nFileIndexLow);
    Ok(format!("{:x}-{index:x}", info.dwVolumeSerialNumber))
}

/// What the lock area is, before its name, in messages.
const AREA_PLACE: &str =
    if cfg!(windows) { "named section " } else { "shared memory object /dev/shm/" };

/// Whether an error of `kind` opening the lock area says it could not be made: no room
/// or no place for it (a full, read-only or missing `/dev/shm`). A read-only open then
/// reads without it (`Heap::open`).
pub(crate) fn unmade(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(kind, K::StorageFull | K::ReadOnlyFilesystem | K::NotFound)
}

fn area_err(op: &'static str, e: mmf::Error) -> Error {
    Error::io(op, std::io::Error::other(e))
}

/// An error opening the lock area `name`, with what to do about it: the area is a shared
/// object anyone may have made (another user who can read the heap file can work out its
/// name), and only removing it helps.
fn open_err(name: &str, why: impl std::fmt::Display) -> Error {
    Error::io(
        "open the lock area",
        std::io::Error::other(format!(
            "{why}; the heap's lock area is the {AREA_PLACE}{name}: if no process has this heap \
             open, remove it (as its owner or root: `mmf shm rm {name}`) and open the heap again"
        )),
    )
}

/// [`open_err`] for an area another user owns (`ForeignOwner`), as `PermissionDenied`: a
/// read-only open then reads without the area (`Heap::open`).
fn foreign_err(name: &str, why: impl std::fmt::Display) -> Error {
    Error::io(
        "open the lock area",
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{why}; the heap's lock area is the {AREA_PLACE}{name}, made by another user: \
                 a process of theirs has the heap open for writing (wait for it to end), or \
                 it was planted; once no process has the heap open, remove it (as its \
                 owner or root: `mmf shm rm {name}`)"
            ),
        ),
    )
}

/// The error of opening the area: [`foreign_err`] for another user's, else [`open_err`].
fn area_open_err(name: &str, e: mmf::Error) -> Error {
    match e {
        // mmf's own advice (a `NameOptions` switch) is not one a heap's user can follow.
        mmf::Error::ForeignOwner { owner, .. } => {
            foreign_err(name, format!("the lock area belongs to user {owner}, not to you"))
        }
        // No room for a new area (an existing one needs none): removing it is no advice.
        mmf::Error::NoSpace { size, available } => unmade_err(
            name,
            std::io::ErrorKind::StorageFull,
            format!("no space in /dev/shm for it ({size} bytes; {available} free)"),
            "free space there",
        ),
        // No place to make it: /dev/shm read-only or missing (review 57).
        e if unmade(e.kind()) => unmade_err(name, e.kind(), e, "make /dev/shm a writable tmpfs"),
        e => open_err(name, e),
    }
}

/// The area could not be made (a full, read-only or missing `/dev/shm`): an
/// [`Error::Io`] of `kind` naming it: a read-only open then reads without the area
/// (`Heap::open`); a writer needs it, and is told `fix`.
fn unmade_err(
    name: &str,
    kind: std::io::ErrorKind,
    why: impl std::fmt::Display,
    fix: &str,
) -> Error {
    Error::Io {
        op: "open the lock area",
        source: std::io::Error::new(
            kind,
            format!(
                "the heap's lock area, the {AREA_PLACE}{name}, could not be made: {why}; writers \
                 need it ({fix} and try again); read-only opens read without it"
            ),
        ),
    }
}

impl LockArea {
    /// Opens (or creates) the lock area `name`.
    fn open(name: &str) -> Result<LockArea> {
        let mapping = MappingOptions::new()
            .access(Access::ReadWrite)
            .size(SIZE)
            .name(name)
            .map_anonymous()
            .map_err(|e| area_open_err(name, e))?;
        let options = SyncAreaOptions::new().participants(PARTICIPANTS).objects(2).clone();
        debug_assert!(options.size() <= TABLE);
        let view = mapping.view_mut(..).map_err(|e| area_err("map the lock area", e))?;
        let area =
            SyncArea::open_or_init_owned(view, 0, &options).map_err(|e| area_open_err(name, e))?;
        let table = mapping.view_mut(..).map_err(|e| area_err("map the lock area", e))?;
        let lock = LockArea { area, table, row: AtomicU64::new(0), _mapping: mapping };
        match lock.word(MAGIC_AT)?.compare_exchange(0, TABLE_MAGIC, SeqCst, SeqCst) {
            Ok(_) => Ok(lock),
            Err(TABLE_MAGIC) => Ok(lock),
            Err(_) => Err(open_err(name, "it holds something other than a heap's table")),
        }
    }

    /// This area's nonce: random, nonzero, set by the first process that asks (each
    /// proposes one; the first to land stays).
    fn nonce(&self) -> Result<u64> {
        use std::hash::{BuildHasher, Hasher};
        let word = self.word(NONCE_AT)?;
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let proposed = hasher.finish().max(1);
        Ok(match word.compare_exchange(0, proposed, SeqCst, SeqCst) {
            Ok(_) => proposed,
            Err(found) => found,
        })
    }

    fn word(&self, at: usize) -> Result<&AtomicU64> {
        self.table.atomic_u64(at).map_err(|e| area_err("lock area", e))
    }

    /// The published transaction (0: none yet).
    pub fn current(&self) -> Result<u64> {
        Ok(self.word(CURRENT_AT)?.load(SeqCst))
    }

    /// The newest transaction known durable.
    pub fn durable(&self) -> Result<u64> {
        Ok(self.word(DURABLE_AT)?.load(SeqCst))
    }

    /// The largest allocated end of any published commit.
    pub fn max_end(&self) -> Result<u64> {
        Ok(self.word(MAX_END_AT)?.load(SeqCst))
    }

    /// Publishes `txn` (a commit written in full; durable or not), whose allocated area
    /// ends at `end`. Called with the writer lock held.
    pub fn publish(&self, txn: u64, durable: bool, end: u64) -> Result<()> {
        self.word(MAX_END_AT)?.fetch_max(end, SeqCst);
        if durable {
            self.word(DURABLE_AT)?.store(txn, SeqCst);
        }
        self.word(CURRENT_AT)?.store(txn, SeqCst);
        Ok(())
    }

    /// Publishes `txn` if nothing is published yet (a process that opened the file).
    pub fn publish_first(&self, txn: u64, durable: bool, end: u64) -> Result<()> {
        self.word(MAX_END_AT)?.fetch_max(end, SeqCst);
        if self.word(CURRENT_AT)?.compare_exchange(0, txn, SeqCst, SeqCst).is_ok() && durable {
            let _ = self.word(DURABLE_AT)?.compare_exchange(0, txn, SeqCst, SeqCst);
        }
        Ok(())
    }

    /// Takes the writer mutex: the guard, and whether its last owner died holding it.
    pub fn lock_writer(&self) -> Result<(mmf::sync::MutexGuard<'_>, bool)> {
        let mutex = self.area.mutex(WRITER).map_err(|e| area_err("writer lock", e))?;
        match mutex.lock() {
            Ok(guard) => Ok((guard, false)),
            Err(LockError::OwnerDied(guard)) => Ok((guard, true)),
            Err(e) => Err(Error::io("writer lock", e.into())),
        }
    }

    /// Joins the area (this process's participant slot), if this process has not: the
    /// system calls of a first read, made before `Readers::pin` locks its pins.
    fn join(&self) -> Result<()> {
        if self.area.slot().is_none() {
            // Joining happens on a first lock: take and give back a mutex no writer uses.
            let mutex = self.area.mutex(JOIN).map_err(|e| area_err("join", e))?;
            match mutex.lock() {
                Ok(_) => {}
                Err(LockError::OwnerDied(g)) => g.mark_consistent(),
                Err(e) => return Err(Error::io("join the lock area", e.into())),
            }
        }
        Ok(())
    }

    /// This process's reader row (of this fork generation), if it has one.
    fn cached_row(&self) -> Option<u32> {
        let row = self.row.load(SeqCst);
        (row >> 32 == crate::opened::generation() + 1).then_some(row as u32)
    }

    /// This process's reader row, joining the area first (and clearing what a dead
    /// process left in the row). Called with the pins locked.
    fn my_row(&self) -> Result<(&AtomicU64, &AtomicU64)> {
        let slot = match self.cached_row() {
            Some(slot) => slot,
            None => {
                self.join()?;
                let slot = self.area.slot().ok_or_else(|| {
                    Error::io("join the lock area", std::io::Error::other("no participant slot"))
                })?;
                let (pid, txn) = self.row_words(slot)?;
                txn.store(0, SeqCst);
                pid.store(u64::from(std::process::id()), SeqCst);
                self.row.store((crate::opened::generation() + 1) << 32 | u64::from(slot), SeqCst);
                slot
            }
        };
        self.row_words(slot)
    }

    fn row_words(&self, slot: u32) -> Result<(&AtomicU64, &AtomicU64)> {
        let at = ROWS_AT + slot as usize * ROW;
        Ok((self.word(at)?, self.word(at + 8)?))
    }

    /// The oldest transaction a live reader of any process has pinned.
    fn oldest_row(&self) -> Result<Option<u64>> {
        let mut rows = Vec::new();
        for slot in 0..PARTICIPANTS {
            let (pid, txn) = self.row_words(slot)?;
            // The transaction first: a row's pid is stored before its transaction.
            let t = txn.load(SeqCst);
            if t != 0 {
                rows.push((slot, pid.load(SeqCst), t));
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let info = mmf::sync::inspect(&self.table, 0).map_err(|e| area_err("liveness", e))?;
        let live = |slot: u32, pid: u64| {
            info.participants
                .iter()
                .any(|p| p.slot == slot && u64::from(p.pid) == pid && p.liveness != Liveness::Dead)
        };
        Ok(rows.into_iter().filter(|&(slot, pid, _)| live(slot, pid)).map(|(_, _, t)| t).min())
    }
}

/// The snapshots one process holds on one heap file (all its `Heap`s of the file share
/// it), and the file's lock area when it has one.
pub(crate) struct Readers {
    /// Pinned transaction → open snapshots, of this process. A `fork` child starts with
    /// none: its copies of its parent's snapshots are not protected in it (nor counted: a
    /// child's copy of another thread's snapshot would never be given back), and the lock
    /// may have been copied held by a thread of the parent (`GenLock`).
    pins: GenLock<BTreeMap<u64, usize>>,
    /// An outside reader's own handle of the file, where it locks the byte of each
    /// transaction it pins (`presence::pin_outside`); it has no lock area.
    outside: Option<File>,
    /// The fork generation `outside` was opened in: a child's copy is its parent's.
    outside_generation: u64,
    /// This process's presence lock on the file, for the lock area's nonce. Before
    /// `lock`: fields drop in order, and the lock goes before its area, or an opener
    /// that came after the area went would find a lock naming no area.
    _presence: Option<Presence>,
    pub lock: Option<LockArea>,
}

impl Readers {
    /// For a heap no other process sees (a backend other than a file).
    pub fn local() -> Arc<Readers> {
        Arc::new(Readers {
            pins: GenLock::new(BTreeMap::new()),
            outside: None,
            outside_generation: 0,
            _presence: None,
            lock: None,
        })
    }

    /// For a process that reads a heap file it does not own (another user's read-only
    /// open): no lock area (it could neither join the owner's, made `0600`, nor make one
    /// without locking the owner out of it); its snapshots are pinned by byte-range locks
    /// on the file, which every writer looks at (`presence.rs`).
    pub fn outside(file: &File) -> Result<Arc<Readers>> {
        // Its pins last exactly as long as this handle (`presence::own_description`).
        let file = presence::own_description(file)?;
        crate::opened::register_fork_handlers();
        Ok(Arc::new(Readers {
            pins: GenLock::new(BTreeMap::new()),
            outside: Some(file),
            outside_generation: crate::opened::generation(),
            _presence: None,
            lock: None,
        }))
    }

    /// Whether this is an outside reader's (see [`outside`](Self::outside)).
    pub fn is_outside(&self) -> bool {
        self.outside.is_some()
    }

    /// The process's `Readers` of the heap file `file`, whose lock area is `name`; the
    /// first in the process takes the file's presence lock (`presence.rs`), which fails
    /// if processes using another lock area have the file open.
    pub fn shared(name: &str, file: &File) -> Result<Arc<Readers>> {
        // One `Readers` (one participant, one presence lock) per area in a process;
        // `opened.rs` keeps the list, and says what `fork` does to it.
        crate::opened::shared(name, || {
            let lock = LockArea::open(name)?;
            let presence = presence::join(file, lock.nonce()?, name)?;
            Ok(Arc::new(Readers {
                pins: GenLock::new(BTreeMap::new()),
                outside: None,
                outside_generation: 0,
                _presence: Some(presence),
                lock: Some(lock),
            }))
        })
    }

    /// The pins, locked (a `fork` child's first look starts from none).
    fn pins(&self) -> GenGuard<'_, BTreeMap<u64, usize>> {
        self.pins.lock()
    }

    /// A `fork` child's error for an outside reader's handle copied from its parent.
    fn check_outside_generation(&self) -> Result<()> {
        if self.outside_generation == crate::opened::generation() {
            return Ok(());
        }
        Err(Error::io(
            "pin a snapshot",
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this heap was opened, read without its lock area (another user's file), \
                 by the parent of this fork child, and its pins are locks the two processes \
                 would share: open the heap again in the child",
            ),
        ))
    }

    /// An outside reader's pin of `txn`: the byte of every transaction it has pinned is
    /// locked (each pin has its own byte, so giving one back never leaves another
    /// unprotected for a moment). The caller then looks at the slots again and
    /// [`unpin`](Self::unpin)s if they moved (`Heap::pin_newest_outside`).
    pub fn pin_outside(&self, txn: u64) -> Result<()> {
        let Some(file) = &self.outside else {
            return Err(Error::InvalidArgument {
                what: "an outside pin without an outside reader",
            });
        };
        self.check_outside_generation()?;
        let mut pins = self.pins();
        if !pins.contains_key(&txn) {
            presence::pin_outside(file, txn)?;
        }
        *pins.entry(txn).or_insert(0) += 1;
        // As the area's loop fences between its row and its second look.
        fence(SeqCst);
        Ok(())
    }

    /// Pins the newest commit: the published one, or `local()` without a lock area.
    /// Returns its transaction; [`unpin`](Self::unpin) it when done. (Outside readers
    /// pin with [`pin_outside`](Self::pin_outside).)
    pub fn pin(&self, local: impl Fn() -> u64) -> Result<u64> {
        if let Some(lock) = &self.lock {
            // The system calls of a first read (of this fork generation), without the
            // pins locked; later reads find the row cached and skip the look.
            if lock.cached_row().is_none() {
                lock.join()?;
            }
        }
        let mut pins = self.pins();
        let Some(lock) = &self.lock else {
            let t = local();
            *pins.entry(t).or_insert(0) += 1;
            return Ok(t);
        };
        let (_, row) = lock.my_row()?;
        let t = loop {
            let t = lock.current()?;
            if pins.keys().next().is_some_and(|&oldest| oldest <= t) {
                // The row holds this process's oldest pin, older than `t`: it protects
                // `t` too (what `t` reaches is freed by later transactions).
                break t;
            }
            row.store(t, SeqCst);
            fence(SeqCst);
            if lock.current()? == t {
                break t;
            }
        };
        *pins.entry(t).or_insert(0) += 1;
        Ok(t)
    }

    /// Ends a pin of `txn`; the row then holds the oldest pin left (or none).
    pub fn unpin(&self, txn: u64) {
        let mut pins = self.pins();
        let mut last = false;
        if let Some(n) = pins.get_mut(&txn) {
            *n -= 1;
            if *n == 0 {
                pins.remove(&txn);
                last = true;
            }
        }
        if let Some(file) = &self.outside {
            if self.check_outside_generation().is_err() {
                return; // the parent's pin, on the description it shares with its parent
            }
            // Its own byte: the other pins keep theirs. (If giving it back fails, the
            // byte stays locked until the heap is closed: a pin held too long, never one
            // missing.)
            if last {
                let _ = presence::unpin_outside(file, txn);
            }
            return;
        }
        if let Some(lock) = &self.lock {
            // A row of this process (a snapshot copied from a fork's parent has none to
            // give back: the parent's row is not the child's).
            if let Some(slot) = lock.cached_row() {
                if let Ok((_, row)) = lock.row_words(slot) {
                    row.store(pins.keys().next().copied().unwrap_or(0), SeqCst);
                }
            }
        }
    }

    /// The oldest commit any snapshot has pinned: of this process, of the processes of
    /// the lock area, and of outside readers (their locks on the file).
    pub fn oldest(&self) -> Result<Option<u64>> {
        let local = self.pins().keys().next().copied();
        let shared = match &self.lock {
            Some(lock) => lock.oldest_row()?,
            None => None,
        };
        // Outside readers of other processes (other users' read-only opens), looked at
        // through this process's own handle (its own pins are `local`).
        let outside = match (&self._presence, &self.outside) {
            (Some(p), _) => presence::oldest_outside(p.file())?,
            (None, Some(file)) => presence::oldest_outside(file)?,
            (None, None) => None,
        };
        Ok([local, shared, outside].into_iter().flatten().min())
    }
}
