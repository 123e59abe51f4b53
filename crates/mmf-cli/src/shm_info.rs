//! `mmf shm info NAME`: what a sync area in a named object says — participants alive or
//! dead, mutex holders, sleepers — for debugging a stuck system from a shell.

use mmf::sync::{AreaInfo, Liveness, ObjectInfo, ObjectKind};
use mmf::{Access, Mapping};

pub fn info(name: &str, offset: u64, json: bool) -> Result<(), String> {
    let mapping =
        Mapping::open(name, Access::ReadOnly).map_err(|e| format!("cannot open {name}: {e}"))?;
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
        println!("{}", to_json(name, offset, &area));
    } else {
        print_text(name, offset, &area);
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

/// The holder's slot, pid (`None`: the process that locked has ended and its slot is free
/// or reused) and liveness, as the lock's token and the participant table say.
fn holder(_area: &AreaInfo, o: &ObjectInfo) -> Option<(u32, Option<u32>, Liveness)> {
    let slot = o.holder?;
    Some((slot, o.holder_pid, o.holder_liveness.unwrap_or(Liveness::Dead)))
}

fn print_text(name: &str, offset: u64, area: &AreaInfo) {
    println!(
        "sync area in {name} at offset {offset}: {} of {} participant slots in use",
        area.participants.len(),
        area.slots
    );
    for p in &area.participants {
        println!("  slot {:<4} pid {:<8} {}", p.slot, p.pid, liveness(p.liveness));
    }
    println!("objects:");
    if area.objects.is_empty() {
        println!("  (none in use)");
    }
    for o in &area.objects {
        let state = match o.kind {
            ObjectKind::Mutex => match holder(area, o) {
                Some((slot, Some(pid), l)) => {
                    format!("held by slot {slot} (pid {pid}, {})", liveness(l))
                }
                Some((slot, None, _)) => format!(
                    "held by slot {slot} (a process that has ended, {}; the slot is free or \
                     reused since)",
                    liveness(Liveness::Dead)
                ),
                None => "free".into(),
            },
            ObjectKind::ManualResetEvent | ObjectKind::AutoResetEvent => {
                if o.value == 1 {
                    "set".into()
                } else {
                    "not set".into()
                }
            }
            ObjectKind::Semaphore => format!("count {} of {}", o.value, o.maximum),
            _ => String::new(),
        };
        let inconsistent = if o.inconsistent { ", inconsistent (owner died)" } else { "" };
        println!(
            "  {:<4} {:<20} {state}{inconsistent}; {} waiting",
            o.index,
            kind(o.kind),
            o.sleepers
        );
    }
}

fn to_json(name: &str, offset: u64, area: &AreaInfo) -> serde_json::Value {
    let participants: Vec<_> = area
        .participants
        .iter()
        .map(|p| {
            serde_json::json!({
                "slot": p.slot, "pid": p.pid,
                "alive": match p.liveness {
                    Liveness::Alive => serde_json::Value::from(true),
                    Liveness::Dead => serde_json::Value::from(false),
                    Liveness::Unknown => serde_json::Value::Null,
                },
            })
        })
        .collect();
    let objects: Vec<_> = area
        .objects
        .iter()
        .map(|o| {
            let h = holder(area, o);
            serde_json::json!({
                "index": o.index, "kind": kind(o.kind), "holder": o.holder,
                "holder_pid": h.and_then(|(_, pid, _)| pid),
                "holder_alive": h.map(|(_, _, l)| l != Liveness::Dead),
                "inconsistent": o.inconsistent,
                "value": o.value, "maximum": o.maximum, "sleepers": o.sleepers,
            })
        })
        .collect();
    serde_json::json!({
        "name": name, "offset": offset, "slots": area.slots,
        "participants": participants, "objects": objects,
    })
}
