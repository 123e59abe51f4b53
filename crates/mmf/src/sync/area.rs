//! [`SyncArea`]: the header, the participant table, joining and leaving, and the
//! [`Host`] the state machines run on.

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use super::join::Member;
use super::layout::{
    self, ASYMMETRIC, HEADER_SIZE, Header, Kind, MAGIC, MAGIC_INIT, MAX_OBJECTS, MAX_PARTICIPANTS,
    OBJECT_SIZE, Object, PARTICIPANT_SIZE, Participant, VERSION,
};
use crate::ViewMut;
use crate::error::{Error, Result};
use crate::primitive::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::sys::sync::AreaKey;

/// How to lay out a new [`SyncArea`]: how many processes may take part at once, how many
/// objects it holds, how long waiters spin before they sleep.
///
/// ```
/// let options = mmf::sync::SyncAreaOptions::new().participants(16).objects(4).clone();
/// assert_eq!(options.size(), 64 + 16 * 32 + 4 * 32);
/// ```
#[derive(Clone, Debug)]
pub struct SyncAreaOptions {
    participants: u32,
    objects: u32,
    spins: Option<u32>,
}

impl Default for SyncAreaOptions {
    fn default() -> Self {
        SyncAreaOptions { participants: 64, objects: 16, spins: None }
    }
}

impl SyncAreaOptions {
    /// 64 participants, 16 objects, the default spin.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many processes may use the area at the same time (1 to 1024; default 64). A
    /// slot is taken by a process on its first lock or wait, and given back when its last
    /// [`SyncArea`] of the area is dropped or the process dies.
    pub fn participants(&mut self, n: u32) -> &mut Self {
        self.participants = n;
        self
    }

    /// How many objects (mutexes, events, semaphores, 32 bytes each) the area holds
    /// (default 16).
    pub fn objects(&mut self, n: u32) -> &mut Self {
        self.objects = n;
        self
    }

    /// How many times a waiter polls before it sleeps (default 100, 0 on a single CPU).
    /// Not stored in the area: each process chooses its own
    /// ([`SyncArea::set_spins`]).
    pub fn spins(&mut self, spins: u32) -> &mut Self {
        self.spins = Some(spins);
        self
    }

    /// The bytes the area takes in the view: 64 + 32 per participant + 32 per object.
    pub fn size(&self) -> usize {
        layout::area_size(self.participants, self.objects)
    }
}

/// The view an area lives in: borrowed, or owned (the named forms).
#[derive(Debug)]
pub(super) enum ViewRef<'v> {
    Borrowed(&'v ViewMut),
    Owned(ViewMut),
}

/// A sync area: a header, a table of the processes taking part, and the mutexes, events
/// and semaphores, in a shared writable view of any mapping (anonymous, named or file).
///
/// One process formats it ([`init`](Self::init)); the others [`open`](Self::open) it in
/// their own views of the same mapping. Each process joins on its first lock or wait,
/// taking a slot in the participant table; that slot is how a lock names its owner, and
/// how a waiter learns that the owner died.
///
/// ```
/// use mmf::Mapping;
/// use mmf::sync::{SyncArea, SyncAreaOptions};
///
/// let mapping = Mapping::anonymous(4096)?;
/// let view = mapping.view_mut(..)?;
/// let area = SyncArea::init(&view, 0, SyncAreaOptions::new().objects(2))?;
/// let mutex = area.mutex(0)?;
/// let guard = mutex.lock().expect("nobody else holds it");
/// drop(guard);
/// # Ok::<(), mmf::Error>(())
/// ```
///
/// # Platform-specific behaviour
///
/// Linux: a participant holds an open-file-description lock (`F_OFD_SETLK`) on one byte per
/// slot far past the end of the mapping's file, which the kernel drops however the process
/// ends; it works across PID namespaces. Windows: the slot records pid and creation time,
/// and waiters watch the owner's process handle.
///
/// Linux: an area formatted by a process that can use `membarrier(2)` (kernel 4.16 and
/// later, not refused by seccomp) is *asymmetric*: its mutexes unlock with a plain store,
/// and a thread about to sleep on one pays for it with a `membarrier` call. Elsewhere
/// (Windows, whose `FlushProcessWriteBuffers` reaches only the calling process's threads;
/// older kernels) an unlock is a compare-and-swap. See [`plain_unlock`](Self::plain_unlock).
///
/// # References
/// [`membarrier(2)`](https://man7.org/linux/man-pages/man2/membarrier.2.html),
/// [`fcntl(2)` (OFD locks)](https://man7.org/linux/man-pages/man2/fcntl.2.html)
///
/// Limits:
/// - Linux: joining reopens the mapping's file as `/proc/self/fd/N` read-write (a
///   description of its own, for the slot lock), so a process without permission on the
///   file's path (handed a descriptor, or after dropping privileges) cannot join.
/// - Linux: a live owner that closes its slot-lock descriptor (`close_range`, closing every
///   descriptor in a daemon or sandbox) looks dead, and its locks are taken over.
/// - Linux: a process joins at most 1,024 areas at once.
/// - A thread that exits holding a guard it forgot (`mem::forget`) keeps the lock for as
///   long as its process lives: only a process's death frees a lock, not a thread's (unlike
///   Windows' abandoned mutexes).
/// - Windows: the wake semaphores are named after the mapping: its name for a named mapping
///   (in `Global\` for a `Global\` one, so that peers in other sessions share them), else
///   the file's volume serial number and index. Two processes that name one mapping
///   differently (one maps the file, the other opens its named mapping by name) do not
///   share them, and their waits fall back to polling: a waiter on Windows sleeps at most
///   50 ms at a time and looks again.
/// - Linux: in an area whose mutexes unlock with a plain store ([`SyncArea::plain_unlock`]),
///   opening it registers the process for `membarrier(2)`'s global expedited barriers; the
///   kernel makes a multithreaded process wait for an RCU grace period there (~10 ms
///   measured here), once per process.
#[derive(Debug)]
pub struct SyncArea<'v> {
    pub(super) view: ViewRef<'v>,
    /// The flag of the view's zero-fill registration (named objects: a page a peer truncated
    /// away became a zero page), checked after each operation (`Host::intact`).
    pub(super) lost_pages: Option<&'static std::sync::atomic::AtomicBool>,
    pub(super) offset: usize,
    pub(super) participants: u32,
    pub(super) objects: u32,
    pub(super) key: AreaKey,
    pub(super) probe: Option<Arc<File>>,
    pub(super) spins: StdAtomicU32,
    /// The header's `ASYMMETRIC` flag: mutexes unlock with a plain store (`protocol.rs`).
    pub(super) asymmetric: bool,
    /// `fork generation << 32 | mode bits | token` once joined (0: not yet; see `join.rs`).
    pub(super) joined: StdAtomicU64,
    /// When this handle may next look for dead sleepers (`reap.rs`), in nanoseconds since
    /// the process's first look.
    pub(super) next_reap: StdAtomicU64,
    pub(super) member: StdMutex<Option<Arc<Member>>>,
    /// What wakes sleepers: needs no participant slot, so that `set`, `release` and
    /// unlocking wake however full the table is (Linux: a futex wake needs nothing;
    /// Windows: this handle's own cache of the wake semaphores).
    pub(super) waker: crate::sys::sync::Parker,
}

pub(super) fn area_error(offset: usize, reason: impl Into<String>) -> Error {
    Error::SyncArea { offset, reason: reason.into() }
}

fn default_spins() -> u32 {
    match std::thread::available_parallelism() {
        Ok(n) if n.get() > 1 => 100,
        _ => 0,
    }
}

/// A stable 64-bit hash of a named object's name (FNV-1a), never 0: the same in every
/// process, so that all of a named mapping's processes name its wake semaphores alike.
fn name_hash(name: &str) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    hash.max(1)
}

/// Two random words for a new area's id.
fn random_id(salt: usize) -> [u64; 2] {
    let word = |n: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        h.write_usize(salt);
        h.finish()
    };
    [word(1), word(2)]
}

impl<'v> SyncArea<'v> {
    /// Formats a new area at `offset` of `view` (8-byte aligned), with the participant and
    /// object counts of `options`, every object unused; then opens it.
    ///
    /// # Errors
    /// [`Error::SyncArea`] if an area (or anything else non-zero) is already at `offset`
    /// (use [`open`](Self::open) or [`open_or_init`](Self::open_or_init)), or the counts are
    /// out of range; [`Error::OutOfRange`] if the view is too small; [`Error::Misaligned`];
    /// [`Error::Unsupported`] for a read-only or copy-on-write view (sync objects must be
    /// in memory every process shares).
    pub fn init(view: &'v ViewMut, offset: usize, options: &SyncAreaOptions) -> Result<Self> {
        Self::format_new(ViewRef::Borrowed(view), offset, options)
    }

    /// Opens the area a peer formatted at `offset` of `view`.
    ///
    /// # Errors
    /// [`Error::SyncArea`] if there is no area, one of another version, or a header that
    /// does not add up (written by a peer that is not mmf, or corrupted); the rest as
    /// [`init`](Self::init).
    pub fn open(view: &'v ViewMut, offset: usize) -> Result<Self> {
        Self::attach(ViewRef::Borrowed(view), offset)
    }

    /// Opens the area at `offset`, formatting it first if the bytes there are all zero (a
    /// new mapping): what every peer of a fresh mapping can call, whoever comes first. A
    /// peer that finds another one formatting waits up to 2 s for it.
    ///
    /// # Errors
    /// As [`init`](Self::init) and [`open`](Self::open).
    pub fn open_or_init(
        view: &'v ViewMut,
        offset: usize,
        options: &SyncAreaOptions,
    ) -> Result<Self> {
        Self::open_or_format(ViewRef::Borrowed(view), offset, options)
    }

    fn open_or_format(view: ViewRef<'v>, offset: usize, options: &SyncAreaOptions) -> Result<Self> {
        let start = Instant::now();
        loop {
            let magic = header(view.get(), offset)?.magic.load(Acquire);
            if magic == 0 && format_area(view.get(), offset, options)? {
                break;
            }
            if magic == 0 {
                continue; // another process began formatting first
            }
            if magic != MAGIC_INIT || start.elapsed() > Duration::from_secs(2) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let area = Self::attach(view, offset)?;
        if let Some(spins) = options.spins {
            area.set_spins(spins);
        }
        Ok(area)
    }

    fn format_new(view: ViewRef<'v>, offset: usize, options: &SyncAreaOptions) -> Result<Self> {
        if !format_area(view.get(), offset, options)? {
            let what = if header(view.get(), offset)?.magic.load(Acquire) == MAGIC {
                "a sync area is already here: open it instead"
            } else {
                "the bytes here are not zero (an area being formatted, or other data): \
                 format only fresh zeroed memory, or open the area"
            };
            return Err(area_error(offset, what));
        }
        let area = Self::attach(view, offset)?;
        if let Some(spins) = options.spins {
            area.set_spins(spins);
        }
        Ok(area)
    }

    fn attach(view: ViewRef<'v>, offset: usize) -> Result<Self> {
        let v = view.get();
        check_view(v, offset, HEADER_SIZE)?;
        let h = header(v, offset)?;
        let available = v.len().saturating_sub(offset);
        let values = h.values();
        let (participants, objects) =
            layout::check_header(values, available).map_err(|reason| area_error(offset, reason))?;
        let id = values.id;
        if values.flags & ASYMMETRIC != 0 {
            // Registers for the sleepers' barrier now, not on the first lock: the kernel
            // makes a multithreaded process wait for an RCU grace period (~10 ms here).
            crate::sys::sync::barrier_registered();
        }
        let (_, probe) = v.sync_backing();
        let file = crate::sys::sync::file_identity(probe.as_deref());
        let (name, global) = v.sync_name().map_or((0, false), |(n, g)| (name_hash(n), g));
        let key = AreaKey { id, offset: v.offset() + offset as u64, file, name, global };
        Ok(SyncArea {
            view,
            lost_pages: None,
            offset,
            participants,
            objects,
            key,
            probe,
            spins: StdAtomicU32::new(default_spins()),
            asymmetric: values.flags & ASYMMETRIC != 0,
            joined: StdAtomicU64::new(0),
            next_reap: StdAtomicU64::new(0),
            member: StdMutex::new(None),
            waker: crate::sys::sync::Parker::new(key),
        })
    }

    /// Makes every operation check `flag`, the zero-fill registration's of the view the area
    /// lies in (`ViewMut::zero_fill_lost_pages`): named objects and channels, whose whole
    /// mapping is mmf's.
    pub(crate) fn set_lost_pages(&mut self, flag: &'static std::sync::atomic::AtomicBool) {
        self.lost_pages = Some(flag);
    }

    /// How many participant slots the area has.
    pub fn participants(&self) -> u32 {
        self.participants
    }

    /// How many objects the area has.
    pub fn objects(&self) -> u32 {
        self.objects
    }

    /// How many times this process's waiters poll before sleeping (see
    /// [`SyncAreaOptions::spins`]).
    pub fn set_spins(&self, spins: u32) {
        self.spins.store(spins, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether this process unlocks the area's mutexes with a plain store (joining first):
    /// `true` in an asymmetric area (formatted on Linux with `membarrier(2)` available) once
    /// this process is registered for its barriers; `false` on Windows, in areas formatted
    /// without `membarrier`, and for a process that cannot use it (seccomp), which then
    /// unlocks with a compare-and-swap and caps its mutex sleeps at 2 ms (the plain unlocks
    /// of its peers are not ordered against its sleeps).
    ///
    /// # Errors
    /// As joining on a first lock: [`Error::SyncArea`] if the participant table is full.
    #[doc(alias = "membarrier")]
    pub fn plain_unlock(&self) -> Result<bool> {
        Ok(self.me()? & super::join::PLAIN != 0)
    }

    /// The slot this process holds in the participant table, if it has joined.
    pub fn slot(&self) -> Option<u32> {
        self.current_member().map(|m| m.slot)
    }

    pub(crate) fn view(&self) -> &ViewMut {
        self.view.get()
    }

    pub(crate) fn participant(&self, slot: u32) -> Result<&Participant> {
        participant_at(self.view(), self.offset, slot)
    }

    /// The object at `index`, claimed for `kind` with `param` if unused.
    pub(crate) fn object(&self, index: u32, kind: Kind, param: u32) -> Result<(&Object, bool)> {
        if index >= self.objects {
            return Err(area_error(
                self.offset,
                format!(
                    "object {index} asked for; the area has {} (0 to {})",
                    self.objects,
                    self.objects.saturating_sub(1)
                ),
            ));
        }
        let o = object_at(self.view(), self.offset, self.participants, index)?;
        let desc = (kind as u64) << 32 | u64::from(param);
        match o.desc.compare_exchange(0, desc, AcqRel, Acquire) {
            Ok(_) => Ok((o, true)),
            Err(found) if found >> 32 == kind as u64 => Ok((o, false)),
            Err(found) => Err(area_error(
                self.offset,
                match Kind::from_u32((found >> 32) as u32) {
                    Some(other) => {
                        format!("object {index} is a {}, not a {}", other.name(), kind.name())
                    }
                    None => format!(
                        "object {index} has an unknown kind {} (corrupted, or a newer format)",
                        found >> 32
                    ),
                },
            )),
        }
    }

    /// The words of object `index`, whatever it is.
    pub(crate) fn object_words(&self, index: u32) -> Result<&Object> {
        if index >= self.objects {
            return Err(area_error(self.offset, format!("no object {index}")));
        }
        object_at(self.view(), self.offset, self.participants, index)
    }

    /// The kind and parameter of object `index`, if it is in use.
    pub(crate) fn object_desc(&self, index: u32) -> Result<Option<(Kind, u32)>> {
        let o = object_at(self.view(), self.offset, self.participants, index)?;
        let desc = o.desc.load(Acquire);
        if desc == 0 {
            return Ok(None);
        }
        match Kind::from_u32((desc >> 32) as u32) {
            Some(kind) => Ok(Some((kind, desc as u32))),
            None => Err(area_error(
                self.offset,
                format!("object {index} has an unknown kind {}", desc >> 32),
            )),
        }
    }
}

impl ViewRef<'_> {
    fn get(&self) -> &ViewMut {
        match self {
            ViewRef::Borrowed(v) => v,
            ViewRef::Owned(v) => v,
        }
    }
}

/// Formats an area at `offset` if the magic there is 0: `Ok(false)` if it is not (an area,
/// another formatter, or other data).
fn format_area(v: &ViewMut, offset: usize, options: &SyncAreaOptions) -> Result<bool> {
    let (participants, objects) = (options.participants, options.objects);
    if participants == 0 || participants > MAX_PARTICIPANTS {
        let reason = format!("{participants} participants: give 1 to {MAX_PARTICIPANTS}");
        return Err(area_error(offset, reason));
    }
    if objects > MAX_OBJECTS {
        return Err(area_error(offset, format!("{objects} objects: give at most {MAX_OBJECTS}")));
    }
    check_view(v, offset, layout::area_size(participants, objects))?;
    let h = header(v, offset)?;
    if h.magic.compare_exchange(0, MAGIC_INIT, AcqRel, Acquire).is_err() {
        return Ok(false);
    }
    for slot in 0..participants {
        let p = participant_at(v, offset, slot)?;
        p.ident.store(0, Relaxed);
        p.start_time.store(0, Relaxed);
        for record in &p.sleeps {
            record.store(0, Relaxed);
        }
    }
    for index in 0..objects {
        let o = object_at(v, offset, participants, index)?;
        for word in [&o.state, &o.sleepers, &o.flags, &o.owner_thread] {
            word.store(0, Relaxed);
        }
        o.desc.store(0, Relaxed);
    }
    let id = random_id(v.as_ptr() as usize + offset);
    h.version.store(VERSION, Relaxed);
    h.participants.store(participants, Relaxed);
    h.objects.store(objects, Relaxed);
    // Asymmetric if this process can take part in the sleepers' barrier (and so, on one
    // kernel, almost surely every peer: see `protocol.rs` for one that cannot).
    let flags = if crate::sys::sync::barrier_registered() { ASYMMETRIC } else { 0 };
    h.flags.store(flags, Relaxed);
    h.area_id[0].store(id[0], Relaxed);
    h.area_id[1].store(id[1], Relaxed);
    h.size.store(layout::area_size(participants, objects) as u64, Relaxed);
    h.magic.store(MAGIC, Release);
    Ok(true)
}

fn object_at(v: &ViewMut, offset: usize, participants: u32, index: u32) -> Result<&Object> {
    v.get(offset + objects_at(participants) + index as usize * OBJECT_SIZE)
}

fn check_view(v: &ViewMut, offset: usize, need: usize) -> Result<()> {
    let (shared_writable, _) = v.sync_backing();
    if !shared_writable {
        return Err(Error::Unsupported {
            what: "sync objects in a copy-on-write view (its pages are private to this process, so no peer would see the lock): use a read-write view",
        });
    }
    if offset % 8 != 0 {
        return Err(Error::Misaligned { offset, align: 8 });
    }
    match offset.checked_add(need) {
        Some(end) if end <= v.len() => Ok(()),
        Some(_) => {
            Err(Error::OutOfRange { offset: offset as u64, len: need as u64, size: v.len() as u64 })
        }
        None => Err(Error::Overflow { offset: offset as u64, len: need as u64 }),
    }
}

pub(super) fn header(v: &ViewMut, offset: usize) -> Result<&Header> {
    v.get(offset)
}

fn objects_at(participants: u32) -> usize {
    HEADER_SIZE + participants as usize * PARTICIPANT_SIZE
}

pub(super) fn participant_at(v: &ViewMut, offset: usize, slot: u32) -> Result<&Participant> {
    v.get(offset + HEADER_SIZE + slot as usize * PARTICIPANT_SIZE)
}

impl SyncArea<'static> {
    /// [`open`](Self::open) of an area in a view it owns: an area to keep in a struct
    /// (beside the mapping, or not: the view keeps the mapping's memory).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_owned(view: ViewMut, offset: usize) -> Result<Self> {
        Self::attach(ViewRef::Owned(view), offset)
    }

    /// [`open_or_init`](Self::open_or_init) of an area in a view it owns (what the named
    /// forms keep, and any struct that holds an area without borrowing a view).
    ///
    /// ```
    /// use mmf::Mapping;
    /// use mmf::sync::{SyncArea, SyncAreaOptions};
    ///
    /// struct Shared {
    ///     area: SyncArea<'static>,
    /// }
    /// let mapping = Mapping::anonymous(4096)?;
    /// let shared = Shared {
    ///     area: SyncArea::open_or_init_owned(mapping.view_mut(..)?, 0, &SyncAreaOptions::new())?,
    /// };
    /// drop(shared.area.mutex(0)?.lock().expect("free"));
    /// # Ok::<(), mmf::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`open_or_init`](Self::open_or_init).
    pub fn open_or_init_owned(
        view: ViewMut,
        offset: usize,
        options: &SyncAreaOptions,
    ) -> Result<Self> {
        Self::open_or_format(ViewRef::Owned(view), offset, options)
    }
}
