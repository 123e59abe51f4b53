//! [`SyncArea`]: the header, the participant table, joining and leaving, and the
//! [`Host`] the state machines run on.

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::{Duration, Instant};

use super::layout::{
    self, HEADER_SIZE, Header, Ident, Kind, MAGIC, MAGIC_INIT, MAX_OBJECTS, MAX_PARTICIPANTS,
    OBJECT_SIZE, Object, PARTICIPANT_SIZE, Participant, VERSION,
};
use super::protocol::Host;
use crate::ViewMut;
use crate::error::{Error, Result};
use crate::primitive::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::sys::sync::{self as sys, AreaKey, Liveness, ProcessIdent};

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

/// This process's membership of one area (shared by all its `SyncArea`s of that area).
#[derive(Debug)]
struct Member {
    key: AreaKey,
    slot: u32,
    token: u32,
    fork_generation: u64,
    _membership: sys::Membership,
    parker: sys::Parker,
}

/// Every area this process has joined, so that two views of one area share one slot.
static MEMBERS: StdMutex<Vec<Weak<Member>>> = StdMutex::new(Vec::new());

/// The view an area lives in: borrowed, or owned (the named forms).
#[derive(Debug)]
enum ViewRef<'v> {
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
#[derive(Debug)]
pub struct SyncArea<'v> {
    view: ViewRef<'v>,
    offset: usize,
    participants: u32,
    objects: u32,
    key: AreaKey,
    probe: Option<Arc<File>>,
    spins: StdAtomicU32,
    /// `fork generation << 32 | token` once joined (0: not yet).
    joined: StdAtomicU64,
    member: StdMutex<Option<Arc<Member>>>,
}

fn area_error(offset: usize, reason: impl Into<String>) -> Error {
    Error::SyncArea { offset, reason: reason.into() }
}

fn default_spins() -> u32 {
    match std::thread::available_parallelism() {
        Ok(n) if n.get() > 1 => 100,
        _ => 0,
    }
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
        let (_, probe) = v.sync_backing();
        let key = AreaKey { id, offset: v.offset() + offset as u64 };
        Ok(SyncArea {
            view,
            offset,
            participants,
            objects,
            key,
            probe,
            spins: StdAtomicU32::new(default_spins()),
            joined: StdAtomicU64::new(0),
            member: StdMutex::new(None),
        })
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

    /// The slot this process holds in the participant table, if it has joined.
    pub fn slot(&self) -> Option<u32> {
        self.current_member().map(|m| m.slot)
    }

    fn current_member(&self) -> Option<Arc<Member>> {
        let member = self.member.lock().unwrap_or_else(|e| e.into_inner());
        member.as_ref().filter(|m| m.fork_generation == sys::fork_generation()).cloned()
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

    /// This process's token, joining the area first if needed.
    #[inline]
    fn my_token(&self) -> Result<u32> {
        let joined = self.joined.load(std::sync::atomic::Ordering::Acquire);
        if joined != 0 && joined >> 32 == sys::fork_generation() & 0xffff_ffff {
            return Ok(joined as u32);
        }
        self.join()
    }

    #[cold]
    fn join(&self) -> Result<u32> {
        let mut member = self.member.lock().unwrap_or_else(|e| e.into_inner());
        let generation = sys::fork_generation();
        if let Some(m) = member.as_ref().filter(|m| m.fork_generation == generation) {
            return Ok(m.token);
        }
        let mut members = MEMBERS.lock().unwrap_or_else(|e| e.into_inner());
        members.retain(|m| m.strong_count() > 0);
        let found = members.iter().filter_map(Weak::upgrade).find(|m| {
            m.key.id == self.key.id
                && m.key.offset == self.key.offset
                && m.fork_generation == generation
        });
        let m = match found {
            Some(m) => m,
            None => {
                let m = Arc::new(self.claim_slot(generation)?);
                members.push(Arc::downgrade(&m));
                m
            }
        };
        drop(members);
        let token = m.token;
        *member = Some(m);
        self.joined.store(
            (generation & 0xffff_ffff) << 32 | u64::from(token),
            std::sync::atomic::Ordering::Release,
        );
        Ok(token)
    }

    fn claim_slot(&self, generation: u64) -> Result<Member> {
        let me = sys::process_ident();
        let mut membership = sys::Membership::new(self.probe.as_deref())
            .map_err(Error::os("open (sync area membership)"))?;
        for slot in 0..self.participants {
            let p = self.participant(slot)?;
            let id = Ident::unpack(p.ident.load(Acquire));
            if !id.is_free() && self.liveness(slot, id)? != Liveness::Dead {
                continue;
            }
            if !membership.try_claim(self.key, slot).map_err(Error::os("fcntl(F_OFD_SETLK)"))? {
                continue;
            }
            let new = Ident { generation: id.next_generation(), ready: false, pid: me.pid };
            if p.ident.compare_exchange(id.pack(), new.pack(), AcqRel, Acquire).is_err() {
                membership.release(self.key, slot);
                continue;
            }
            p.start_time.store(me.start_time, Release);
            p.ident.store(Ident { ready: true, ..new }.pack(), Release);
            return Ok(Member {
                key: self.key,
                slot,
                token: layout::token(slot, new.generation),
                fork_generation: generation,
                _membership: membership,
                parker: sys::Parker::new(self.key),
            });
        }
        Err(area_error(
            self.offset,
            format!(
                "all {} participant slots are taken by live processes: make the area with more participants",
                self.participants
            ),
        ))
    }

    /// Whether the process recorded in `slot` (as `id`) runs.
    pub(crate) fn liveness(&self, slot: u32, id: Ident) -> Result<Liveness> {
        if id.is_free() {
            return Ok(Liveness::Dead);
        }
        let start_time =
            if id.ready { self.participant(slot)?.start_time.load(Acquire) } else { 0 };
        sys::alive(self.probe.as_deref(), self.key, slot, ProcessIdent { pid: id.pid, start_time })
            .map_err(Error::os("fcntl(F_OFD_GETLK)"))
    }

    /// This process's member (joining first): its parker caches what waking needs.
    fn joined_member(&self) -> Result<Arc<Member>> {
        loop {
            self.my_token()?;
            if let Some(m) = self.current_member() {
                return Ok(m);
            }
        }
    }
}

impl Drop for SyncArea<'_> {
    fn drop(&mut self) {
        let Ok(mut member) = self.member.lock() else { return };
        let Some(m) = member.take() else { return };
        if m.fork_generation != sys::fork_generation() {
            return; // the parent's membership, inherited by a fork child: not ours to end
        }
        let members = MEMBERS.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&m) == 1 {
            // The last of this process's handles to the area: give the slot back (the
            // membership's descriptor, and with it the slot lock, closes as `m` drops).
            if let Ok(p) = self.participant(m.slot) {
                let id = Ident::unpack(p.ident.load(Acquire));
                if layout::token(m.slot, id.generation) == m.token && !id.is_free() {
                    let free = Ident { generation: id.generation, ready: false, pid: 0 };
                    let _ = p.ident.compare_exchange(id.pack(), free.pack(), AcqRel, Relaxed);
                }
            }
        }
        drop(m);
        drop(members);
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
    h.flags.store(0, Relaxed);
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

fn header(v: &ViewMut, offset: usize) -> Result<&Header> {
    v.get(offset)
}

fn objects_at(participants: u32) -> usize {
    HEADER_SIZE + participants as usize * PARTICIPANT_SIZE
}

fn participant_at(v: &ViewMut, offset: usize, slot: u32) -> Result<&Participant> {
    v.get(offset + HEADER_SIZE + slot as usize * PARTICIPANT_SIZE)
}

// This thread's number for relock detection (0: not drawn yet). A `const` thread local:
// no lazy-initialisation check on the lock's fast path.
thread_local! {
    // Clippy 1.96 with -Zbuild-std (the Windows leg) asks for `const` although it is there.
    #[allow(clippy::missing_const_for_thread_local)]
    static THREAD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Draws the calling thread's number on its first lock.
#[cold]
fn draw_thread_number() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).max(1);
    THREAD.with(|t| t.set(n));
    n
}

impl Host for SyncArea<'_> {
    #[inline]
    fn token(&self) -> Result<u32> {
        self.my_token()
    }

    #[inline]
    fn thread(&self) -> u32 {
        match THREAD.with(std::cell::Cell::get) {
            0 => draw_thread_number(),
            n => n,
        }
    }

    fn owner_dead(&self, token: u32) -> Result<bool> {
        let (slot, generation) = layout::untoken(token);
        if slot >= self.participants {
            return Err(area_error(
                self.offset,
                format!(
                    "a lock names participant slot {slot}, past the table's {} (corrupted by a peer?)",
                    self.participants
                ),
            ));
        }
        let id = Ident::unpack(self.participant(slot)?.ident.load(Acquire));
        if id.is_free() || id.generation != generation {
            return Ok(true);
        }
        if self.current_member().is_some_and(|m| m.slot == slot) {
            return Ok(false); // another thread of this process
        }
        Ok(self.liveness(slot, id)? == Liveness::Dead)
    }

    fn prepare(&self, index: u32) -> Result<()> {
        self.joined_member()?.parker.prepare(index).map_err(Error::os("CreateSemaphore"))
    }

    fn park(
        &self,
        object: &Object,
        index: u32,
        expected: u32,
        deadline: Option<Instant>,
        owner: Option<u32>,
    ) -> Result<()> {
        let owner = match owner {
            Some(token) => self.owner_ident(token),
            None => None,
        };
        let word =
            (&object.state as *const crate::primitive::sync::atomic::AtomicU32).cast::<u32>();
        let m = self.joined_member()?;
        m.parker.park(word, index, expected, deadline, owner).map_err(Error::os(sys::PARK_CALL))
    }

    fn unpark(&self, object: &Object, index: u32, n: u32) -> Result<()> {
        let word =
            (&object.state as *const crate::primitive::sync::atomic::AtomicU32).cast::<u32>();
        // Only as many as sleep (Windows releases that many tokens).
        let n = n.min(object.sleepers.load(std::sync::atomic::Ordering::SeqCst));
        let m = self.joined_member()?;
        m.parker.unpark(word, index, n).map_err(Error::os(sys::UNPARK_CALL))
    }

    #[inline]
    fn spins(&self) -> u32 {
        self.spins.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl SyncArea<'_> {
    /// The pid and start time of the process a token names, for a waiter to watch.
    fn owner_ident(&self, token: u32) -> Option<ProcessIdent> {
        let (slot, _) = layout::untoken(token);
        let p = self.participant(slot).ok()?;
        let id = Ident::unpack(p.ident.load(Acquire));
        (!id.is_free()).then(|| ProcessIdent {
            pid: id.pid,
            start_time: if id.ready { p.start_time.load(Acquire) } else { 0 },
        })
    }
}

impl SyncArea<'static> {
    /// [`open`](Self::open) of an area in a view it owns.
    pub(crate) fn open_owned(view: ViewMut, offset: usize) -> Result<Self> {
        Self::attach(ViewRef::Owned(view), offset)
    }

    /// An area in a view it owns (the named forms keep their view this way).
    pub(crate) fn open_or_init_owned(
        view: ViewMut,
        offset: usize,
        options: &SyncAreaOptions,
    ) -> Result<Self> {
        Self::open_or_format(ViewRef::Owned(view), offset, options)
    }
}
