//! Looking inside a sync area from outside, read-only: who takes part, alive or dead, who
//! holds which mutex, who waits — what someone debugging a stuck system needs
//! (`mmf shm info NAME`).

use super::layout::{
    self, ASYMMETRIC, HEADER_SIZE, HeaderValues, INCONSISTENT, Ident, Kind, OBJECT_SIZE,
    PARTICIPANT_SIZE,
};
use super::reap::Record;
use crate::View;
use crate::error::{Error, Result};
use crate::sys::sync::{self as sys, AreaKey, Liveness, ProcessIdent};

/// A snapshot of a sync area ([`inspect`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AreaInfo {
    /// How many participant slots the area has.
    pub slots: u32,
    /// Whether the area's mutexes unlock with a plain store, their sleepers issuing a
    /// process-wide barrier (Linux `membarrier(2)`); `false`: a compare-and-swap.
    pub asymmetric: bool,
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
    /// What in the slot cannot be (written by a peer that is not mmf, or corrupted);
    /// empty if nothing.
    pub corrupt: Vec<String>,
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
    /// Mutex: the participant slot of the owner, if locked (`None` too if the lock word
    /// names a slot the table does not have: see [`corrupt`](Self::corrupt)).
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
    /// Threads that declared themselves asleep on it (including `stale_sleepers`).
    pub sleepers: u32,
    /// Of `sleepers`, those that the participant table records for processes that have
    /// ended (killed while asleep): the next wake-up that finds nobody takes them back.
    pub stale_sleepers: u32,
    /// What in the object's words cannot be (a lock word naming a slot past the table,
    /// a count past the maximum, more sleepers than a system has threads, unknown bits);
    /// empty if nothing. Values that cannot be are reported here, not interpreted.
    pub corrupt: Vec<String>,
}

/// More sleepers than this on one object cannot be: Linux has at most `pid_max` (at most
/// 2^22) threads, Windows far fewer.
const MAX_SLEEPERS: u32 = 1 << 22;

// The inspector reads through the view's guarded copies, never plain loads: the object
// may be truncated under it (another process, or a hostile one), and a fault must be an
// error (`Truncated`), not the death of the debugging tool by SIGBUS.

fn load_u32(view: &View, at: usize) -> Result<u32> {
    let mut word = [0u8; 4];
    view.read_at(at, &mut word)?;
    Ok(u32::from_ne_bytes(word))
}

fn load_u64(view: &View, at: usize) -> Result<u64> {
    let mut word = [0u8; 8];
    view.read_at(at, &mut word)?;
    Ok(u64::from_ne_bytes(word))
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
        flags: load_u32(view, offset + 20)?,
    };
    let (slots, objects) =
        layout::check_header(h, view.len().saturating_sub(offset)).map_err(area_error)?;
    let (_, probe) = view.sync_backing();
    let file = sys::file_identity(probe.as_deref());
    let key =
        AreaKey { id: h.id, offset: view.offset() + offset as u64, file, name: 0, global: false };
    let mut participants = Vec::new();
    // Each slot's generation: a lock token names its slot *and* generation.
    let mut generations = vec![None; slots as usize];
    let mut stale = vec![0u32; objects as usize];
    for slot in 0..slots {
        let at = offset + HEADER_SIZE + slot as usize * PARTICIPANT_SIZE;
        let id = Ident::unpack(load_u64(view, at)?);
        let records = [load_u64(view, at + 16)?, load_u64(view, at + 24)?];
        if id.is_free() {
            continue;
        }
        let start_time = if id.ready { load_u64(view, at + 8)? } else { 0 };
        let liveness =
            sys::alive(probe.as_deref(), key, slot, ProcessIdent { pid: id.pid, start_time })
                .map_err(Error::os("liveness query"))?;
        let mut corrupt = Vec::new();
        if id.generation == 0 {
            corrupt.push("generation 0, which no process is given".to_owned());
        }
        for v in records.into_iter().filter(|&v| v != 0) {
            match Record::unpack(v) {
                Some(r) if r.object < objects && r.count > 0 => {
                    if liveness == Liveness::Dead && r.generation == id.generation {
                        stale[r.object as usize] = stale[r.object as usize].saturating_add(r.count);
                    }
                }
                _ => corrupt.push(format!("sleep record {v:#018x} names no object of the area")),
            }
        }
        participants.push(ParticipantInfo { slot, pid: id.pid, liveness, corrupt });
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
        let words = Words {
            state: load_u32(view, at)?,
            sleepers: load_u32(view, at + 4)?,
            desc,
            flags: load_u32(view, at + 16)?,
        };
        let mut info = object_info(index, words, slots, &generations);
        info.stale_sleepers = stale[index as usize].min(info.sleepers);
        infos.push(info);
    }
    Ok(AreaInfo { slots, asymmetric: h.flags & ASYMMETRIC != 0, participants, objects: infos })
}

/// An object's words, read once.
#[derive(Clone, Copy)]
struct Words {
    state: u32,
    sleepers: u32,
    desc: u64,
    flags: u32,
}

/// What an object's words say, and what in them cannot be. `generations[slot]`: the
/// generation, pid and liveness of the process in each slot in use.
fn object_info(
    index: u32,
    w: Words,
    slots: u32,
    generations: &[Option<(u32, u32, Liveness)>],
) -> ObjectInfo {
    let mut corrupt = Vec::new();
    let (kind_bits, param) = ((w.desc >> 32) as u32, w.desc as u32);
    let kind = match Kind::from_u32(kind_bits) {
        Some(Kind::Mutex) => ObjectKind::Mutex,
        Some(Kind::ManualResetEvent) => ObjectKind::ManualResetEvent,
        Some(Kind::AutoResetEvent) => ObjectKind::AutoResetEvent,
        Some(Kind::Semaphore) => ObjectKind::Semaphore,
        None => {
            corrupt.push(format!("unknown kind {kind_bits}"));
            ObjectKind::Unknown(kind_bits)
        }
    };
    if w.sleepers > MAX_SLEEPERS {
        corrupt.push(format!(
            "{} sleepers, more than a system has threads (at most {MAX_SLEEPERS})",
            w.sleepers
        ));
    }
    let mut info = ObjectInfo {
        index,
        kind,
        holder: None,
        holder_pid: None,
        holder_liveness: None,
        inconsistent: false,
        value: w.state,
        maximum: 0,
        sleepers: w.sleepers,
        stale_sleepers: 0,
        corrupt,
    };
    match kind {
        ObjectKind::Mutex => {
            info.value = u32::from(w.state != 0);
            info.inconsistent = w.flags & INCONSISTENT != 0;
            if w.flags & !INCONSISTENT != 0 {
                info.corrupt.push(format!("unknown flags {:#x}", w.flags & !INCONSISTENT));
            }
            if param != 0 {
                info.corrupt.push(format!("parameter {param} on a mutex (always 0)"));
            }
            if w.state != 0 {
                holder(&mut info, w.state, slots, generations);
            }
        }
        ObjectKind::ManualResetEvent | ObjectKind::AutoResetEvent => {
            info.value = w.state & 1;
            if param != 0 {
                info.corrupt.push(format!("parameter {param} on an event (always 0)"));
            }
        }
        ObjectKind::Semaphore => {
            info.maximum = param;
            if param == 0 {
                info.corrupt.push("maximum count 0 (at least 1)".to_owned());
            } else if w.state > param {
                info.corrupt.push(format!("count {} past its maximum {param}", w.state));
            }
        }
        _ => {}
    }
    info
}

/// Fills in the holder a mutex's lock word (`token`) names, or says why it names none.
fn holder(
    info: &mut ObjectInfo,
    token: u32,
    slots: u32,
    generations: &[Option<(u32, u32, Liveness)>],
) {
    let (slot, generation) = layout::untoken(token);
    if slot >= slots || generation == 0 || token >> 30 != 0 {
        info.corrupt.push(format!(
            "the lock word {token:#x} names no owner (slot {slot} of {slots}, generation \
             {generation})"
        ));
        return;
    }
    info.holder = Some(slot);
    // The holder is the slot's process only if the slot is still in the generation the
    // token names; otherwise the process that locked has ended.
    (info.holder_pid, info.holder_liveness) = match generations[slot as usize] {
        Some((g, pid, liveness)) if g == generation => (Some(pid), Some(liveness)),
        _ => (None, Some(Liveness::Dead)),
    };
}
