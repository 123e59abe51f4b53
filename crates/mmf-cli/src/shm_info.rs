//! `mmf shm info NAME`: what a sync area in a named object says — participants alive or
//! dead, mutex holders, sleepers, and what in it cannot be — for debugging a stuck system
//! from a shell. Read-only: it opens the object read-only and takes no part in the area.

use mmf::sync::{AreaInfo, Liveness, ObjectInfo, ObjectKind, ParticipantInfo};
use mmf::{Access, MappingOptions};

pub fn info(name: &str, offset: u64, json: bool, allow_foreign_owner: bool) -> Result<(), String> {
    let mapping = MappingOptions::new()
        .access(Access::ReadOnly)
        .allow_foreign_owner(allow_foreign_owner)
        .open_named(name)
        .map_err(|e| match e {
            mmf::Error::ForeignOwner { .. } => format!(
                "cannot open {name}: {} (to inspect it anyway, read-only: \
                 --allow-foreign-owner)",
                crate::said(&e)
            ),
            e => format!("cannot open {name}: {e}"),
        })?;
    if offset >= mapping.size() {
        return Err(format!(
            "offset {offset} is past the end of {name} ({} bytes)",
            mapping.size()
        ));
    }
    let view = mapping.view(offset..).map_err(|e| format!("cannot map {name}: {e}"))?;
    let area =
        mmf::sync::inspect(&view, 0).map_err(|e| format!("{name} at offset {offset}: {e}"))?;
    if json {
        outln!("{}", to_json(name, offset, &area));
    } else {
        print_text(name, offset, &area)?;
    }
    Ok(())
}

fn liveness(l: Liveness) -> &'static str {
    match l {
        Liveness::Alive => "alive",
        Liveness::Dead => "dead",
        Liveness::Unknown => "unknown (not ours to ask)",
    }
}

fn kind(k: ObjectKind) -> String {
    match k {
        ObjectKind::Mutex => "mutex".into(),
        ObjectKind::ManualResetEvent => "manual-reset event".into(),
        ObjectKind::AutoResetEvent => "auto-reset event".into(),
        ObjectKind::Semaphore => "semaphore".into(),
        ObjectKind::Unknown(n) => format!("unknown kind {n}"),
        _ => "unknown".into(),
    }
}

/// What a well-formed object's state says; `None` for a corrupt one (its words are shown
/// as what cannot be, never interpreted).
fn state(o: &ObjectInfo) -> Option<String> {
    if !o.corrupt.is_empty() {
        return None;
    }
    Some(match o.kind {
        ObjectKind::Mutex => match (o.holder, o.holder_pid) {
            (Some(slot), Some(pid)) => format!(
                "held by slot {slot} (pid {pid}, {})",
                liveness(o.holder_liveness.unwrap_or(Liveness::Dead))
            ),
            (Some(slot), None) => format!(
                "held by slot {slot} (a process that has ended, {}; the slot is free or \
                 reused since)",
                liveness(Liveness::Dead)
            ),
            (None, _) => "free".into(),
        },
        ObjectKind::ManualResetEvent | ObjectKind::AutoResetEvent => {
            if o.value == 1 { "set" } else { "not set" }.into()
        }
        ObjectKind::Semaphore => format!("count {} of {}", o.value, o.maximum),
        _ => String::new(),
    })
}

fn waiting(o: &ObjectInfo) -> String {
    match o.stale_sleepers {
        0 => format!("{} waiting", o.sleepers),
        stale => format!(
            "{} waiting ({stale} of them in processes that died: taken back at the next \
             wake-up)",
            o.sleepers
        ),
    }
}

fn print_text(name: &str, offset: u64, area: &AreaInfo) -> Result<(), String> {
    outln!(
        "sync area in {name} at offset {offset}: {} of {} participant slots in use; mutexes \
         unlock with {}",
        area.participants.len(),
        area.slots,
        if area.asymmetric {
            "a plain store (sleepers call membarrier)"
        } else {
            "a compare-and-swap"
        }
    );
    for p in &area.participants {
        outln!(
            "  slot {:<4} pid {:<8} {}{}",
            p.slot,
            p.pid,
            liveness(p.liveness),
            corrupt(&p.corrupt)
        );
    }
    outln!("objects:");
    if area.objects.is_empty() {
        outln!("  (none in use)");
    }
    for o in &area.objects {
        let Some(state) = state(o) else {
            outln!("  {:<4} {:<20} CORRUPT{}", o.index, kind(o.kind), corrupt(&o.corrupt));
            continue;
        };
        let inconsistent = if o.inconsistent { ", inconsistent (owner died)" } else { "" };
        outln!("  {:<4} {:<20} {state}{inconsistent}; {}", o.index, kind(o.kind), waiting(o));
    }
    Ok(())
}

/// `: reason; reason` for what cannot be, or nothing.
fn corrupt(reasons: &[String]) -> String {
    if reasons.is_empty() { String::new() } else { format!(": {}", reasons.join("; ")) }
}

fn participant_json(p: &ParticipantInfo) -> serde_json::Value {
    serde_json::json!({
        "slot": p.slot, "pid": p.pid,
        "alive": match p.liveness {
            Liveness::Alive => serde_json::Value::from(true),
            Liveness::Dead => serde_json::Value::from(false),
            _ => serde_json::Value::Null,
        },
        "corrupt": p.corrupt,
    })
}

fn to_json(name: &str, offset: u64, area: &AreaInfo) -> serde_json::Value {
    let participants: Vec<_> = area.participants.iter().map(participant_json).collect();
    let objects: Vec<_> = area
        .objects
        .iter()
        .map(|o| {
            serde_json::json!({
                "index": o.index, "kind": kind(o.kind), "holder": o.holder,
                "holder_pid": o.holder_pid,
                "holder_alive": o.holder_liveness.map(|l| l != Liveness::Dead),
                "inconsistent": o.inconsistent,
                "value": o.value, "maximum": o.maximum, "sleepers": o.sleepers,
                "stale_sleepers": o.stale_sleepers, "corrupt": o.corrupt,
            })
        })
        .collect();
    serde_json::json!({
        "name": name, "offset": offset, "slots": area.slots, "asymmetric": area.asymmetric,
        "participants": participants, "objects": objects,
    })
}
