//! Looking inside a sync area from outside, read-only: who takes part, alive or dead, who
//! holds which mutex, who waits — what someone debugging a stuck system needs
//! (`mmf shm info NAME`).

use super::layout::{
    self, HEADER_SIZE, HeaderValues, INCONSISTENT, Ident, Kind, OBJECT_SIZE, PARTICIPANT_SIZE,
};
use crate::View;
use crate::error::{Error, Result};
use crate::sys::sync::{self as sys, AreaKey, Liveness, ProcessIdent};

/// A snapshot of a sync area ([`inspect`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AreaInfo {
    /// How many participant slots the area has.
    pub slots: u32,
    /// The slots in use (or left in use by a process that died).
    pub participants: Vec<ParticipantInfo>,
    /// The objects in use.
    pub objects: Vec<ObjectInfo>,
}

/// One participant slot in use ([`AreaInfo::participants`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ParticipantInfo {
    /// The slot.
    pub slot: u32,
    /// The process id it recorded (Linux: in its own PID namespace).
    pub pid: u32,
    /// Whether that process runs.
    pub liveness: Liveness,
}

/// What an object is ([`ObjectInfo::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A [`Mutex`](super::Mutex).
    Mutex,
    /// A manual-reset [`Event`](super::Event).
    ManualResetEvent,
    /// An auto-reset [`Event`](super::Event).
    AutoResetEvent,
    /// A [`Semaphore`](super::Semaphore).
    Semaphore,
    /// A kind this version does not know (a newer format, or corruption).
    Unknown(u32),
}

/// One object in use ([`AreaInfo::objects`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// Its index in the area.
    pub index: u32,
    /// What it is.
    pub kind: ObjectKind,
    /// Mutex: the participant slot of the owner, if locked.
    pub holder: Option<u32>,
    /// Mutex: the owner's pid, if the slot still records the process that locked it
    /// (`None` if that process ended and the slot is free or taken by a later process:
    /// the slot's generation moved on).
    pub holder_pid: Option<u32>,
    /// Mutex, if locked: whether the owner runs ([`Liveness::Dead`] too when the slot no
    /// longer records it).
    pub holder_liveness: Option<Liveness>,
    /// Mutex: marked inconsistent (an owner died or panicked; not repaired yet).
    pub inconsistent: bool,
    /// Event: 1 if set. Semaphore: the count. Mutex: 1 if locked.
    pub value: u32,
    /// Semaphore: the maximum count.
    pub maximum: u32,
    /// Threads that declared themselves asleep on it (a process killed while asleep stays
    /// counted: it only costs wake-ups).
    pub sleepers: u32,
}

fn load_u32(view: &View, at: usize) -> Result<u32> {
    Ok(view.atomic_u32(at)?.load(std::sync::atomic::Ordering::Acquire))
}

fn load_u64(view: &View, at: usize) -> Result<u64> {
    Ok(view.atomic_u64(at)?.load(std::sync::atomic::Ordering::Acquire))
}

/// Reads the sync area at `offset` of `view` (any view, read-only is enough) and asks the
/// OS which participants are alive. It takes no part and changes nothing.
///
/// ```
/// use mmf::Mapping;
/// use mmf::sync::{ObjectKind, SyncArea, SyncAreaOptions, inspect};
///
/// let mapping = Mapping::anonymous(4096)?;
/// let view = mapping.view_mut(..)?;
/// let area = SyncArea::init(&view, 0, &SyncAreaOptions::new())?;
/// let _guard = area.mutex(2)?.lock().unwrap();
/// let info = inspect(&mapping.view(..)?, 0)?;
/// assert_eq!(info.participants.len(), 1);
/// assert_eq!(info.participants[0].pid, std::process::id());
/// assert_eq!(info.objects[0].kind, ObjectKind::Mutex);
/// assert_eq!(info.objects[0].holder, Some(info.participants[0].slot));
/// # Ok::<(), mmf::Error>(())
/// ```
///
/// # Errors
/// [`Error::SyncArea`] if there is no valid area at `offset`; [`Error::OutOfRange`],
/// [`Error::Misaligned`]; [`Error::Os`] if a liveness query failed.
pub fn inspect(view: &View, offset: usize) -> Result<AreaInfo> {
    let area_error = |reason: String| Error::SyncArea { offset, reason };
    let h = HeaderValues {
        magic: load_u64(view, offset)?,
        version: load_u32(view, offset + 8)?,
        participants: load_u32(view, offset + 12)?,
        objects: load_u32(view, offset + 16)?,
        size: load_u64(view, offset + 40)?,
        id: [load_u64(view, offset + 24)?, load_u64(view, offset + 32)?],
    };
    let (slots, objects) =
        layout::check_header(h, view.len().saturating_sub(offset)).map_err(area_error)?;
    let (_, probe) = view.sync_backing();
    let file = sys::file_identity(probe.as_deref());
    let key = AreaKey { id: h.id, offset: view.offset() + offset as u64, file };
    let mut participants = Vec::new();
    // Each slot's generation: a lock token names its slot *and* generation.
    let mut generations = vec![None; slots as usize];
    for slot in 0..slots {
        let at = offset + HEADER_SIZE + slot as usize * PARTICIPANT_SIZE;
        let id = Ident::unpack(load_u64(view, at)?);
        if id.is_free() {
            continue;
        }
        let start_time = if id.ready { load_u64(view, at + 8)? } else { 0 };
        let liveness =
            sys::alive(probe.as_deref(), key, slot, ProcessIdent { pid: id.pid, start_time })
                .map_err(Error::os("liveness query"))?;
        participants.push(ParticipantInfo { slot, pid: id.pid, liveness });
        generations[slot as usize] = Some((id.generation, id.pid, liveness));
    }
    let mut infos = Vec::new();
    let objects_at = offset + layout::area_size(slots, 0);
    for index in 0..objects {
        let at = objects_at + index as usize * OBJECT_SIZE;
        let desc = load_u64(view, at + 8)?;
        if desc == 0 {
            continue;
        }
        let state = load_u32(view, at)?;
        let sleepers = load_u32(view, at + 4)?;
        let flags = load_u32(view, at + 16)?;
        let kind = match Kind::from_u32((desc >> 32) as u32) {
            Some(Kind::Mutex) => ObjectKind::Mutex,
            Some(Kind::ManualResetEvent) => ObjectKind::ManualResetEvent,
            Some(Kind::AutoResetEvent) => ObjectKind::AutoResetEvent,
            Some(Kind::Semaphore) => ObjectKind::Semaphore,
            None => ObjectKind::Unknown((desc >> 32) as u32),
        };
        let (holder, value) = match kind {
            ObjectKind::Mutex => {
                ((state != 0).then(|| layout::untoken(state).0), u32::from(state != 0))
            }
            ObjectKind::ManualResetEvent | ObjectKind::AutoResetEvent => (None, state & 1),
            _ => (None, state),
        };
        // The holder is the slot's process only if the slot is still in the generation the
        // token names; otherwise the process that locked has ended.
        let (holder_pid, holder_liveness) = match holder {
            Some(slot) => {
                let (_, generation) = layout::untoken(state);
                match generations.get(slot as usize).copied().flatten() {
                    Some((g, pid, liveness)) if g == generation => (Some(pid), Some(liveness)),
                    _ => (None, Some(Liveness::Dead)),
                }
            }
            None => (None, None),
        };
        infos.push(ObjectInfo {
            index,
            kind,
            holder,
            holder_pid,
            holder_liveness,
            inconsistent: kind == ObjectKind::Mutex && flags & INCONSISTENT != 0,
            value,
            maximum: if kind == ObjectKind::Semaphore { desc as u32 } else { 0 },
            sleepers,
        });
    }
    Ok(AreaInfo { slots, participants, objects: infos })
}
