//! [`Heap`]: creating and opening a heap, its options, and the state every transaction
//! and snapshot starts from.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use zerocopy::IntoBytes;

use crate::alloc::{Allocator, FreePages};
use crate::backend::{Backend, FileBackend};
use crate::error::{Error, Result};
use crate::format::{DATA_START, ManifestEntry, PAGE, SLOT_OFFSETS, Slot, Superblock};
use crate::lock::{self, Readers};
use crate::recover;
use crate::roots::RootDir;
use crate::snapshot::Snapshot;
use crate::txn::WriteTxn;

/// How a commit reaches the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// One sync per commit (redb's "1PC+C"): the transaction's blocks, its manifest and
    /// the commit slot are written, then one `fdatasync`. When `commit` returns, the
    /// commit survives a crash of the process or the machine. After a power loss during
    /// the sync the heap opens at this commit or the one before, told apart by the
    /// checksums of the slot and of everything the manifest lists.
    #[default]
    Immediate,
    /// Two syncs per commit: blocks and manifest, sync, then the slot, sync. The slot
    /// then never points at bytes that were not durable, without relying on checksums to
    /// tell; for files an adversary may have written.
    TwoPhase,
    /// No sync: commits are consistent (a crash opens the heap at some commit, whole) but
    /// the commits since the last durable one may be lost to a power loss or an OS crash
    /// (a killed process loses nothing: its writes are in the page cache). Space these
    /// commits free is not reused until a durable commit.
    None,
}

/// How to open a heap: create it if missing (with what permissions, on Unix), read-only,
/// durability.
///
/// ```no_run
/// use mmf_heap::{Durability, Heap, HeapOptions};
///
/// let heap = unsafe {
///     Heap::open("state.heap", HeapOptions::new().create(true).durability(Durability::Immediate))?
/// };
/// # Ok::<(), mmf_heap::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct HeapOptions {
    create: bool,
    read_only: bool,
    durability: Durability,
    /// The permission bits of a new file (`None`: `0o666`, as `open(2)` is asked by std).
    #[cfg(unix)]
    mode: Option<u32>,
    /// Appended to the lock area's name (tests: a process that reaches the file through
    /// another area, as one in another namespace or session would).
    area_tag: String,
}

impl HeapOptions {
    /// Open an existing heap, read-write, [`Durability::Immediate`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Create the file if it does not exist (default: no).
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Open for reading only: [`Heap::write`] is [`Error::ReadOnly`] (default: no).
    pub fn read_only(&mut self, read_only: bool) -> &mut Self {
        self.read_only = read_only;
        self
    }

    /// How commits reach the disk (default: [`Durability::Immediate`]).
    pub fn durability(&mut self, durability: Durability) -> &mut Self {
        self.durability = durability;
        self
    }

    /// The permission bits a new heap file is created with, before the process's umask
    /// takes its bits away (`open(2)`'s `mode`; LMDB's `mdb_env_open` takes the same
    /// argument). Default `0o666`, as `std::fs::File::create` asks: `0o644` under the usual
    /// umask `022`. Only the bits `0o777` count; an existing file keeps its own.
    ///
    /// `0o600` keeps a heap to its owner, and with it the name of its lock area, which
    /// is worked out from the file's id in its first page: another user who cannot read
    /// the file cannot make (plant) that shared-memory object before the owner opens the
    /// heap, which would block the owner until root removed it.
    ///
    /// The owner needs read and write (`0o600`) to open the heap read-write afterwards: with
    /// less, the file is made and then refused (`Error::Io`, "open").
    ///
    /// Unix only (Windows files take the ACL their directory passes on).
    ///
    /// ```no_run
    /// use mmf_heap::{Heap, HeapOptions};
    ///
    /// // SAFETY: nothing but this heap writes the file.
    /// let heap = unsafe { Heap::open("private.heap", HeapOptions::new().create(true).mode(0o600))? };
    /// # Ok::<(), mmf_heap::Error>(())
    /// ```
    #[cfg(unix)]
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = Some(mode & 0o777);
        self
    }

    /// Tests only: `tag` appended to the lock area's name, so that this process reaches
    /// the file through another lock area than the others, as a process in another mount
    /// namespace (Linux) or session (Windows) does.
    #[doc(hidden)]
    pub fn lock_area_tag(&mut self, tag: &str) -> &mut Self {
        self.area_tag = tag.to_owned();
        self
    }
}

/// A commit as the heap holds it: the slot and what it points to, parsed.
#[derive(Debug)]
pub(crate) struct Committed {
    pub slot: Slot,
    pub roots: RootDir,
    pub alloc: Allocator,
    /// Which of the two slots holds it.
    pub index: usize,
    /// The pages of `alloc` that hold free bytes, made on a snapshot's first look.
    free_pages: OnceLock<FreePages>,
    /// The hash directories its snapshots' look-ups have checked (`fast::Fast`).
    pub dirs: crate::fast::CheckedDirs,
}

impl Committed {
    pub fn new(slot: Slot, roots: RootDir, alloc: Allocator, index: usize) -> Committed {
        Committed {
            slot,
            roots,
            alloc,
            index,
            free_pages: OnceLock::new(),
            dirs: Default::default(),
        }
    }

    /// Whether any byte of `off..off + len` is free in this commit: a bit test, then
    /// (only on a page that holds free bytes) the free ranges' index.
    #[inline]
    pub fn overlaps_free(&self, off: u64, len: u64) -> bool {
        self.free_pages().may_overlap(off, len) && self.alloc.overlaps_free(off, len)
    }

    /// The pages of its allocated area that hold free bytes (made on the first call).
    #[inline]
    pub fn free_pages(&self) -> &FreePages {
        self.free_pages.get_or_init(|| FreePages::of(&self.alloc))
    }
}

/// The heap's state in this process.
pub(crate) struct State {
    /// The newest commit this handle has loaded.
    pub current: Arc<Committed>,
    /// What the next write transaction builds on.
    pub writer: WriterState,
    /// An outside reader's: the slots' bytes `current` was found in (empty otherwise).
    pub outside_head: Vec<u8>,
}

/// What the next write transaction builds on: valid while `base` is the published commit
/// (after another process's commit, this process loads that one first).
pub(crate) struct WriterState {
    /// The commit.
    pub base: Arc<Committed>,
    /// The id of the next commit: `base + 1`, or more after a writer died having
    /// published commits that did not survive (ids never go back: snapshots pin them).
    pub next_txn: u64,
    /// Space freed by transactions up to this one may be reused (when no snapshot is
    /// older): the newest durable commit's `manifest_from`, so that no block a fallback
    /// would check is overwritten.
    pub reuse_limit: u64,
    /// The slot that holds the newest durable commit (the next commit writes the other
    /// one, so the durable slot is never overwritten before a newer commit is durable).
    pub durable_slot: usize,
    /// The file length made durable (by growing, or found at open).
    pub durable_len: u64,
    /// What the commits since the last durable one wrote: the next manifest lists it too.
    pub unsynced: Vec<ManifestEntry>,
    /// The first of those commits.
    pub unsynced_from: u64,
    /// `base`'s allocator settled for the last transaction that began on it (kept so that
    /// the next one, after a rollback, does not settle the whole free list again).
    pub settled: Option<Allocator>,
}

/// A persistent heap of typed data in a file: commits are atomic and crash-safe, reads
/// are snapshots of a commit.
///
/// One write transaction at a time, across every process that has the file open
/// ([`write`](Self::write)); any number of snapshots ([`read`](Self::read)), in any
/// process, that see only committed state and never block the writer. Collections and
/// [`Snapshot::get_ref`] read in place, borrowing from the mapping; `get`, `bytes` and
/// `str` copy.
///
/// ```
/// use mmf_heap::{Heap, HeapOptions};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("app.heap");
/// {
///     // SAFETY: nothing but mmf-heap writes this new file.
///     let heap = unsafe { Heap::open(&path, HeapOptions::new().create(true))? };
///     let mut tx = heap.write()?;
///     let greeting = tx.str("hello")?;
///     tx.set_root("greeting", &greeting)?;
///     tx.commit()?; // durable: one fdatasync
/// }
/// // SAFETY: as above.
/// let heap = unsafe { Heap::open(&path, &HeapOptions::new())? };
/// let snap = heap.read()?;
/// let greeting = snap.root::<mmf_heap::PStr>("greeting")?.unwrap();
/// assert_eq!(snap.str(greeting)?, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Heap<B: Backend = FileBackend> {
    pub(crate) backend: B,
    pub(crate) superblock: Superblock,
    pub(crate) state: Mutex<State>,
    pub(crate) writer: Mutex<()>,
    /// The thread holding `writer` ([`this_thread`]), 0 if none: a second `write` on that
    /// thread is an error instead of a deadlock.
    pub(crate) writer_thread: AtomicUsize,
    /// This process's snapshots of the file, and the lock area other processes share.
    pub(crate) readers: Arc<Readers>,
    pub(crate) durability: Durability,
    pub(crate) writable: bool,
}

/// The length of a new heap file.
pub(crate) const INITIAL_LEN: u64 = 16 * PAGE;

impl Heap<FileBackend> {
    /// Opens (or with [`HeapOptions::create`], creates) the heap file at `path`.
    ///
    /// A new file is built under a temporary name and linked into place, then its
    /// directory is synced: a crash during creation leaves no half-made heap at `path`.
    /// Other processes may have the file open at the same time (see the crate's
    /// "Several processes"); this one joins the file's lock area, unless it opens
    /// read-only a file it does not own (Linux: another user's heap, or root reading a
    /// user's), or read-only when another user made the area (one who may write the file)
    /// or when it cannot be made (a full, read-only or missing `/dev/shm`): then it pins
    /// its snapshots with byte-range locks on the file instead, so that it neither needs
    /// that area nor makes one that would lock its owner out.
    /// Opening finds the newest commit whose slot, manifest and blocks check out
    /// (falling back to the one before if the newest was torn by a crash) and, read-write,
    /// syncs the file so that what it found is durable.
    ///
    /// # Safety
    /// While the heap is open, in this process or any other, the file's bytes change only
    /// through mmf-heap: no other program, no other library and no other open of the file
    /// writes, truncates or maps it for writing, and nothing writes it through
    /// [`Backend::write_at`] but the heap's own transactions. The heap relies on it for
    /// two things: committed bytes stay as committed while a snapshot can reach them, so
    /// that the `&T` a snapshot hands out (borrowed from the mapping) never sees a byte
    /// change, nor a page vanish (reading a truncated file through one would fault:
    /// `SIGBUS` on Linux, an in-page error on Windows, the end of the process); and its
    /// crash safety (another writer's bytes can make a commit fail its checks and be
    /// rolled back). Bytes that are corrupted anyway are [`Error::Corrupted`] wherever the
    /// heap checks them (every pointer, node header and length it follows).
    ///
    /// # Errors
    /// [`Error::NotAHeap`], [`Error::UnsupportedFormat`], [`Error::Corrupted`] (no commit
    /// checks out), [`Error::Io`] (opening, mapping, syncing the file; opening the lock
    /// area: `StorageFull`, `ReadOnlyFilesystem` or `NotFound` when it cannot be made, for
    /// a writable open;
    /// `ResourceBusy` when processes that reach the file through another lock area
    /// have it open: in another mount namespace with its own `/dev/shm` (a container
    /// sharing the volume), another Windows session, or after the area's name was removed
    /// while they held it. Two areas would be two writer locks; each process holds a
    /// byte-range lock on the file naming its area, see `docs/heap-format.md`).
    pub unsafe fn open(path: impl AsRef<Path>, options: &HeapOptions) -> Result<Self> {
        let path = path.as_ref();
        let writable = !options.read_only;
        let open = || {
            let mut options = OpenOptions::new();
            options.read(true).write(writable);
            // A FIFO would block `open` until a writer comes: O_NONBLOCK opens it at once,
            // to be refused below as not a regular file (no effect on regular files).
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
            let file = options.open(path)?;
            if !file.metadata()?.is_file() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file (a directory, FIFO, socket or device): a heap is a \
                     regular file",
                ));
            }
            Ok(file)
        };
        let file = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.create && writable => {
                create_file(path, options)?;
                open().map_err(|e| Error::io("open", e))?
            }
            other => other.map_err(|e| Error::io("open", e))?,
        };
        // SAFETY: this function's own contract is the one `in_place` asks for.
        let backend = unsafe { FileBackend::new(file, writable)?.in_place() };
        // Join the lock area before looking for the newest commit: a commit made after
        // this process joined is published to it (and followed by its first writer); one
        // looked for before joining could be overtaken by a process that commits and
        // closes the heap meanwhile, and the next commit here would overwrite its slot.
        // (The superblock, which names the area, never changes.)
        let superblock = recover::superblock(&backend)?;
        let readers = if !writable && !owned_by_this_user(backend.file())? {
            // Another user's read-only open: joining the owner's lock area (`0600`) would
            // fail, and making one would lock the owner out (`Readers::outside`).
            Readers::outside(backend.file())?
        } else {
            let name = lock::area_name(backend.file(), &superblock.file_id)? + &options.area_tag;
            match Readers::shared(&name, backend.file()) {
                // Another user made the area (a writer of a group-writable heap, root, or
                // one who planted it): a read-only open reads as an outside reader, whose
                // pins that writer respects (review 46). Or no room or place to make the
                // area (a full, read-only or missing `/dev/shm`; reviews 55, 57): then no
                // process has it, and a writer that makes it later respects this reader's
                // pins all the same.
                Err(Error::Io { op: "open the lock area", source })
                    if !writable
                        && (source.kind() == std::io::ErrorKind::PermissionDenied
                            || lock::unmade(source.kind())) =>
                {
                    Readers::outside(backend.file())?
                }
                other => other?,
            }
        };
        let (superblock, committed) = recover::newest_commit(&backend)?;
        Heap::assemble(backend, options, superblock, committed, readers)
    }
}

/// Whether the file belongs to the effective user (Unix). A process that reads another
/// user's heap is an outside reader. On Windows every process uses the lock area.
fn owned_by_this_user(file: &std::fs::File) -> Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().map_err(|e| Error::io("stat", e))?;
        // SAFETY: geteuid takes nothing and cannot fail.
        Ok(meta.uid() == unsafe { libc::geteuid() })
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(true)
    }
}

/// A number unique to the calling thread among live threads (the address of a
/// thread-local), never 0.
// The initializer is const already; clippy's check misreads it when the target is
// Windows (x86_64-pc-windows-gnu, the CI's Windows leg).
#[allow(clippy::missing_const_for_thread_local)]
fn this_thread() -> usize {
    thread_local!(static TOKEN: u8 = const { 0 });
    TOKEN.with(|t| std::ptr::from_ref(t) as usize)
}

/// The in-process writer lock, held by a write transaction: records its thread, so that
/// a second `write` there is an error rather than a deadlock, and clears it before the
/// lock is released.
pub(crate) struct WriterGuard<'h> {
    owner: &'h AtomicUsize,
    _guard: MutexGuard<'h, ()>,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.owner.store(0, Ordering::Relaxed);
    }
}

/// Creates a heap file at `path`: built as `path.tmp-PID-N` (N counts this process's
/// creations, so threads never share one; a name already taken is passed over for the
/// next, never reused or removed), linked to `path` (which fails rather than
/// replaces if another process or thread created it first), the name synced. The file
/// has `options`' permission bits from its creation (the link keeps them).
fn create_file(path: &Path, options: &HeapOptions) -> Result<()> {
    static CREATED: AtomicUsize = AtomicUsize::new(0);
    /// Names tried: a name taken (a leftover of a crashed process with this PID, another
    /// PID namespace's process on a shared volume, a file planted there) is passed over.
    const TRIES: usize = 64;
    let mut open = OpenOptions::new();
    // A new file, never one found at the name (O_EXCL): its permissions would be kept, a
    // symbolic link followed, and a name another process is writing would be taken over.
    open.read(true).write(true).create_new(true);
    #[cfg(unix)]
    if let Some(mode) = options.mode {
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, mode);
    }
    #[cfg(not(unix))]
    let _ = options;
    let mut tries = 0;
    let (tmp, file) = loop {
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        match open.open(&tmp) {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries + 1 < TRIES => {
                tries += 1;
            }
            Err(e) => return Err(Error::io("create", e)),
        }
    };
    let tmp = tmp.as_path();
    let made = FileBackend::new(file, true).and_then(|b| format_new(&b));
    let linked = made.and_then(|()| match std::fs::hard_link(tmp, path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(Error::io("link", e)),
        _ => Ok(()),
    });
    let _ = std::fs::remove_file(tmp); // best effort: the file is linked or failed
    linked?;
    mmf::file::sync_parent(path).map_err(|e| Error::io("sync directory", e))
}

/// Writes a new heap into an empty backend: superblock, slot A (transaction 1, empty),
/// one sync.
fn format_new<B: Backend>(backend: &B) -> Result<()> {
    if backend.len()? != 0 {
        return Err(Error::InvalidArgument { what: "a new heap needs an empty backend" });
    }
    backend.grow(INITIAL_LEN)?;
    let superblock = Superblock::new(random_id(), random_seed(), now_ns());
    backend.write_at(0, superblock.as_bytes())?;
    let slot = Slot { txn_id: 1, file_len: INITIAL_LEN, alloc_end: DATA_START, ..Slot::default() };
    backend.write_at(SLOT_OFFSETS[0], slot.seal().as_bytes())?;
    backend.sync()
}

impl<B: Backend> Heap<B> {
    /// Makes a new heap in an empty `backend` and opens it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the backend is not empty; its I/O errors.
    pub fn create_with(backend: B, options: &HeapOptions) -> Result<Self> {
        format_new(&backend)?;
        Heap::open_with(backend, options)
    }

    /// Opens the heap in `backend` (see [`Heap::open`] for what opening checks).
    ///
    /// # Errors
    /// As [`Heap::open`].
    ///
    /// A heap on a backend other than a file is this process's alone: no lock area, no
    /// readers in other processes.
    pub fn open_with(backend: B, options: &HeapOptions) -> Result<Self> {
        let (superblock, committed) = recover::newest_commit(&backend)?;
        Heap::assemble(backend, options, superblock, committed, Readers::local())
    }

    fn assemble(
        backend: B,
        options: &HeapOptions,
        superblock: Superblock,
        committed: Committed,
        readers: Arc<Readers>,
    ) -> Result<Self> {
        let writable = !options.read_only;
        if writable {
            // What was found may be in the page cache only (a process killed after a
            // commit without sync): make it durable before building on it.
            backend.sync()?;
        }
        let durable_len = backend.len()?;
        let txn = committed.slot.txn_id;
        if let Some(lock) = &readers.lock {
            lock.publish_first(txn, writable, committed.slot.alloc_end)?;
        }
        let committed = Arc::new(committed);
        let writer = WriterState {
            base: Arc::clone(&committed),
            next_txn: txn + 1,
            reuse_limit: committed.slot.manifest_from,
            durable_slot: committed.index,
            durable_len,
            unsynced: Vec::new(),
            unsynced_from: 0,
            settled: None,
        };
        let state = State { current: committed, writer, outside_head: Vec::new() };
        Ok(Heap {
            backend,
            superblock,
            state: Mutex::new(state),
            writer: Mutex::new(()),
            writer_thread: AtomicUsize::new(0),
            readers,
            durability: options.durability,
            writable,
        })
    }

    /// Starts the write transaction, waiting for the one in progress (in this process or
    /// another) to end.
    ///
    /// If the last writer's process died holding the lock, its transaction is lost and
    /// this one starts from the last commit in the file (nothing on disk needs repair).
    ///
    /// # Errors
    /// [`Error::ReadOnly`] for a heap opened read-only; [`Error::InvalidArgument`] if this
    /// thread already holds a write transaction of this `Heap` (waiting would never end);
    /// [`Error::Io`] if the lock area failed (its participant table is full: more than
    /// 128 processes); after another process's commit, what loading it returns.
    pub fn write(&self) -> Result<WriteTxn<'_, B>> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        let me = this_thread();
        // Relaxed: only this thread ever stores `me`, and it clears it before unlocking.
        if self.writer_thread.load(Ordering::Relaxed) == me {
            return Err(Error::InvalidArgument {
                what: "this thread already holds a write transaction of this heap (one at \
                       a time: commit or drop it before the next)",
            });
        }
        let guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.writer_thread.store(me, Ordering::Relaxed);
        let guard = WriterGuard { owner: &self.writer_thread, _guard: guard };
        let cross = self.take_over()?;
        WriteTxn::begin(self, guard, cross)
    }

    /// A snapshot of the last commit (of any process): it sees that commit and nothing
    /// later, however long it is held (space freed after it is not reused while it is
    /// open, in any process).
    ///
    /// # Errors
    /// [`Error::Corrupted`] if the commit another process published does not read back;
    /// [`Error::Io`] if the lock area failed.
    pub fn read(&self) -> Result<Snapshot<'_, B>> {
        let commit = self.pin_newest()?;
        Snapshot::new(self, commit)
    }

    /// The id of the last commit, of any process (1 for a new heap, +1 per commit).
    pub fn txn_id(&self) -> u64 {
        let local = self.state().current.slot.txn_id;
        if self.readers.is_outside() {
            return recover::newest_slot(&self.backend).map_or(local, |t| t.max(local));
        }
        match self.readers.lock.as_ref().map(|l| l.current()) {
            Some(Ok(t)) if t != 0 => t,
            _ => local,
        }
    }

    /// The oldest commit a snapshot of any live process has pinned (`None`: no snapshot
    /// is open). Space freed after it is not reused while it is pinned. A process reading
    /// another user's heap (see [`open`](Heap::open)) sees its own snapshots and those of
    /// other such readers, not the owner's processes' (their lock area is not open to it).
    ///
    /// # Errors
    /// [`Error::Io`] if the lock area failed (asking whether readers live).
    pub fn oldest_reader(&self) -> Result<Option<u64>> {
        self.readers.oldest()
    }

    /// Whether [`oldest_reader`](Self::oldest_reader) covers the snapshots of every
    /// process: `false` for a process reading without the heap's lock area (another
    /// user's heap, or a full `/dev/shm`; see [`open`](Heap::open)), which cannot see the
    /// snapshots of processes that use the area.
    pub fn sees_every_reader(&self) -> bool {
        !self.readers.is_outside()
    }

    /// The backend the heap runs on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The per-file hash seed (for hashed collections).
    pub fn hash_seed(&self) -> u64 {
        self.superblock.hash_seed
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn unpin(&self, txn_id: u64) {
        self.readers.unpin(txn_id);
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Bytes no other heap file is likely to have: a hash of the time, the process id and an
/// address (a file id, not a secret).
fn random_id() -> [u8; 16] {
    let seed = now_ns() ^ (u64::from(std::process::id()) << 32);
    let local = 0u8;
    let addr = &local as *const u8 as u64;
    let h = xxhash_rust::xxh3::xxh3_128_with_seed(&addr.to_le_bytes(), seed);
    h.to_le_bytes()
}

fn random_seed() -> u64 {
    let id = random_id();
    u64::from_le_bytes(id[..8].try_into().unwrap_or_default())
}
