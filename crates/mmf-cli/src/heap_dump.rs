//! `mmf heap dump FILE [ROOT]`: what a heap's roots hold, walked by the shapes the heap
//! stores with them — structs by field, strings as text, bytes in hex, collections
//! checked in full and their first entries shown; damage is reported with its offset.

use std::fmt::Write as _;
use std::path::Path;

use mmf_heap::dump::{Limits, RootDump, Value};
use serde_json::json;

/// Runs the dump of `root` (all roots if `None`) to `limits`.
pub fn run(path: &Path, root: Option<&str>, limits: Limits, json: bool) -> Result<(), String> {
    let heap = super::heap::open(path)?;
    let snap = heap.read().map_err(|e| format!("{}: {e}", path.display()))?;
    super::heap::warn_if_passed_over(path, &snap);
    let names: Vec<String> = match root {
        Some(name) => vec![name.to_owned()],
        None => snap.roots().into_iter().map(|r| r.name).collect(),
    };
    let mut dumps = Vec::new();
    for name in &names {
        match snap.dump(name, limits) {
            Ok(Some(d)) => dumps.push(d),
            Ok(None) => return Err(format!("{}: no root named {name:?}", path.display())),
            // Nothing on stdout for a damaged heap: scripts see the failure alone.
            Err(e) => return Err(format!("{}: root {name:?}: {e}", path.display())),
        }
    }
    print_dumps(path, snap.txn_id(), &dumps, json)
}

fn print_dumps(path: &Path, txn: u64, dumps: &[RootDump], json: bool) -> Result<(), String> {
    let out = if json {
        let roots: Vec<_> = dumps
            .iter()
            .map(|d| json!({ "name": d.name, "type": d.type_name, "value": to_json(&d.value) }))
            .collect();
        format!("{}\n", json!({ "path": path.display().to_string(), "txn": txn, "roots": roots }))
    } else {
        let mut out = format!("heap {} at transaction {txn}\n", path.display());
        for d in dumps {
            let _ = write!(out, "{}: {} = ", d.name, d.type_name);
            text(&mut out, &d.value, 1);
            out.push('\n');
        }
        out
    };
    super::stdout_result(std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn more(out: &mut String, shown: usize, len: u64, indent: usize) {
    if (shown as u64) < len {
        let _ = write!(out, "\n{}… {} more", "  ".repeat(indent), len - shown as u64);
    }
}

/// Whether a value prints on one line.
fn flat(v: &Value) -> bool {
    match v {
        Value::Struct { fields, .. } => fields.iter().all(|(_, f)| flat(f)),
        Value::Vec { items, .. } | Value::Array { items, .. } => items.is_empty(),
        Value::Map { entries, .. } => entries.is_empty(),
        Value::Off { target, .. } => target.as_deref().is_none_or(flat),
        _ => true,
    }
}

/// Appends `v` as readable text, nested lines indented by `indent` levels.
fn text(out: &mut String, v: &Value, indent: usize) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Unsigned(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Signed(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(x) => {
            let _ = write!(out, "{x}");
        }
        Value::Str { text, len } => {
            let _ = write!(out, "{text:?}");
            if (text.len() as u64) < *len {
                let _ = write!(out, "… ({len} bytes)");
            }
        }
        Value::Bytes { head, len } => {
            let cut = if (head.len() as u64) < *len { "…" } else { "" };
            let _ = write!(out, "<{len} bytes: {}{cut}>", hex(head));
        }
        Value::Off { off, target: None } if *off == 0 => out.push_str("null"),
        Value::Off { off, target } => {
            let _ = write!(out, "→ {off:#x}");
            if let Some(t) = target {
                out.push_str(": ");
                text(out, t, indent);
            }
        }
        Value::Deeper => out.push('…'),
        Value::Struct { name, fields } if flat(v) => {
            let _ = write!(out, "{name} {{ ");
            for (i, (f, fv)) in fields.iter().enumerate() {
                let _ = write!(out, "{}{f}: ", if i > 0 { ", " } else { "" });
                text(out, fv, indent);
            }
            out.push_str(" }");
        }
        Value::Struct { name, fields } => {
            let _ = write!(out, "{name} {{");
            for (f, fv) in fields {
                let _ = write!(out, "\n{pad}{f}: ");
                text(out, fv, indent + 1);
            }
            let _ = write!(out, "\n{}}}", "  ".repeat(indent.saturating_sub(1)));
        }
        Value::Vec { items, len } | Value::Array { items, len } => {
            let what = if matches!(v, Value::Vec { .. }) { "elements" } else { "items" };
            let _ = write!(out, "({len} {what})");
            for (i, item) in items.iter().enumerate() {
                let _ = write!(out, "\n{pad}[{i}] ");
                text(out, item, indent + 1);
            }
            more(out, items.len(), *len, indent);
        }
        Value::Map { entries, len, hashed } => {
            let order = if *hashed { ", hash order" } else { "" };
            let _ = write!(out, "({len} entries{order})");
            for (k, val) in entries {
                let _ = write!(out, "\n{pad}");
                text(out, k, indent + 1);
                out.push_str(": ");
                text(out, val, indent + 1);
            }
            more(out, entries.len(), *len, indent);
        }
        _ => out.push('?'),
    }
}

/// `v` as JSON: numbers, strings (an object with the length when cut), bytes in hex,
/// collections as `{len, items}` / `{len, entries: [[key, value]]}`.
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Unsigned(n) => json!(n),
        Value::Signed(n) => json!(n),
        Value::Float(x) => json!(x),
        Value::Str { text, len } if text.len() as u64 == *len => json!(text),
        Value::Str { text, len } => json!({ "text": text, "len": len }),
        Value::Bytes { head, len } => json!({ "hex": hex(head), "len": len }),
        Value::Off { off, target } => {
            json!({ "off": off, "target": target.as_deref().map(to_json) })
        }
        Value::Array { items, len } | Value::Vec { items, len } => {
            json!({ "len": len, "items": items.iter().map(to_json).collect::<Vec<_>>() })
        }
        Value::Struct { name, fields } => {
            let mut map = serde_json::Map::new();
            map.insert("type".into(), json!(name));
            for (f, fv) in fields {
                map.insert(f.clone(), to_json(fv));
            }
            serde_json::Value::Object(map)
        }
        Value::Map { entries, len, hashed } => json!({
            "len": len,
            "hashed": hashed,
            "entries": entries.iter().map(|(k, v)| json!([to_json(k), to_json(v)])).collect::<Vec<_>>(),
        }),
        Value::Deeper => json!({ "deeper": true }),
        _ => serde_json::Value::Null,
    }
}
