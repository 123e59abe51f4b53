//! `mmf heap ...`: a persistent heap file (`mmf-heap`) from a shell — check it, or say
//! what it holds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use mmf_heap::{Heap, HeapOptions, Snapshot, Stats};

#[derive(Subcommand, Debug)]
pub enum HeapCommand {
    /// Verify a heap file: the superblock, the commit slots, the checksum of every block
    /// the last commits wrote, the root directory and the free list. Exit status 1 on
    /// damage (also a newest commit whose slot checks out but whose blocks do not; a slot
    /// that does not check out itself, which a crash while it was written leaves too, is
    /// a warning on stderr, exit status 0).
    #[command(
        after_help = "Examples:\n  mmf heap check state.heap\n  mmf heap check state.heap --json"
    )]
    Check {
        /// The heap file.
        path: PathBuf,
        /// One JSON object for scripts: {"path", "ok", "txn", "roots", "allocated_end",
        /// "collections", "pointers", "strings", "opaque_roots", "passed_over"}, or
        /// {"path", "ok": false, "error"} (exit status 1 as without it). "passed_over":
        /// null, or {"offset", "txn", "error"} for a commit slot that does not check out
        /// (a commit cut off by a crash, or damage), also said on stderr.
        #[arg(long)]
        json: bool,
    },
    /// What a heap file holds: its length, last transaction, roots with their types, free
    /// space, the oldest commit a reader has pinned.
    #[command(
        after_help = "Examples:\n  mmf heap stat state.heap\n  mmf heap stat state.heap --json"
    )]
    Stat {
        /// The heap file.
        path: PathBuf,
        /// JSON for scripts; on an error, {"path", "ok": false, "error"} (exit status 1).
        #[arg(long)]
        json: bool,
    },
    /// What a heap's roots hold, walked by the shapes the heap stores with them: structs
    /// by field, strings as text, bytes in hex, pointers followed, collections checked in
    /// full (every node's checksum) and their first entries shown. Without ROOT, every
    /// root's top level, checked to the depth shown (`mmf heap check` checks everything).
    /// Exit status 1 on damage, naming its offset.
    #[command(
        after_help = "Examples:\n  mmf heap dump state.heap\n  mmf heap dump state.heap inventory --items 100\n  mmf heap dump state.heap inventory --json"
    )]
    Dump {
        /// The heap file.
        path: PathBuf,
        /// The root to show in depth.
        root: Option<String>,
        /// Levels of nesting shown (1 to 64; default 6, or 1 without ROOT).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
        depth: Option<u16>,
        /// Entries shown per collection (default 20, or 3 without ROOT).
        #[arg(long)]
        items: Option<usize>,
        /// Bytes shown per string or byte string.
        #[arg(long, default_value_t = 64)]
        bytes: usize,
        /// JSON for scripts; on an error, {"path", "ok": false, "error"} (exit status 1).
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: HeapCommand) -> Result<(), String> {
    // A file truncated under the command: one line and exit status 1, not a silent death.
    #[cfg(target_os = "linux")]
    super::sigbus::exit_on_truncation(match &command {
        HeapCommand::Check { path, .. } | HeapCommand::Stat { path, .. } => path,
        HeapCommand::Dump { path, .. } => path,
    });
    match command {
        HeapCommand::Check { path, json: false } => check(&path).and_then(|ok| print(ok.text)),
        HeapCommand::Check { path, json: true } => {
            let value = match check(&path) {
                Ok(ok) => ok.json,
                Err(e) => return json_error(&path, e),
            };
            print(format!("{value}\n"))
        }
        HeapCommand::Stat { path, json: true } => {
            stat(&path, true).or_else(|e| json_error(&path, e))
        }
        HeapCommand::Stat { path, json: false } => stat(&path, false),
        HeapCommand::Dump { path, root, depth, items, bytes, json } => {
            // Without a root, each root's top level unless asked for more (review 55: an
            // explicit --items was ignored there).
            let (d, i) = if root.is_some() { (6, 20) } else { (1, 3) };
            let limits = mmf_heap::dump::Limits {
                depth: depth.map_or(d, usize::from),
                items: items.unwrap_or(i),
                bytes,
            };
            let dumped = super::heap_dump::run(&path, root.as_deref(), limits, json);
            if json { dumped.or_else(|e| json_error(&path, e)) } else { dumped }
        }
    }
}

/// The error of a `--json` command: one object on stdout, {"path", "ok": false, "error"}
/// (review 55: `stat` and `dump` printed none, so a script parsing stdout met nothing),
/// and the error as without `--json` (one line on stderr, exit status 1). Nothing else is
/// on stdout then: the commands print only once everything succeeded.
fn json_error(path: &Path, error: String) -> Result<(), String> {
    let value = serde_json::json!({
        "path": path.display().to_string(),
        "ok": false,
        "error": error,
    });
    print(format!("{value}\n"))?;
    Err(error)
}

#[allow(unsafe_code, reason = "Heap::open's contract is the file's user's to keep")]
pub fn open(path: &Path) -> Result<Heap, String> {
    // SAFETY: the heap's promise is the user's: only mmf-heap writes the file while it is
    // open. Opened read-only: this command writes nothing.
    unsafe { Heap::open(path, HeapOptions::new().read_only(true)) }
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// What `check` found, as text and as JSON.
struct Checked {
    text: String,
    json: serde_json::Value,
}

fn check(path: &Path) -> Result<Checked, String> {
    let heap = open(path)?;
    let mut tries = 0;
    loop {
        let snap = heap.read().map_err(|e| format!("{}: {e}", path.display()))?;
        match snap.verify().and_then(|()| snap.verify_reachable()) {
            Ok(reached) => {
                // A slot that does not check out itself (what a crash mid-commit leaves,
                // or damage): not a failure, but said (verify failed on any other).
                let passed_over = warn_if_passed_over(path, &snap);
                let stats = snap.stats();
                let opaque = match reached.opaque_roots {
                    0 => String::new(),
                    1 => " (1 root has no stored shape: what it points to was not followed)".into(),
                    n => format!(
                        " ({n} roots have no stored shape: what they point to was not followed)"
                    ),
                };
                let text = format!(
                    "{}: ok: transaction {}, {} roots, {} bytes allocated; every block the last commit relies on checks out, and all the roots reach: {} collections, {} pointers, {} strings{opaque}\n",
                    path.display(),
                    stats.txn_id,
                    stats.roots,
                    stats.allocated_end,
                    reached.collections,
                    reached.pointers,
                    reached.strings,
                );
                let json = serde_json::json!({
                    "path": path.display().to_string(),
                    "ok": true,
                    "txn": stats.txn_id,
                    "roots": stats.roots,
                    "allocated_end": stats.allocated_end,
                    "collections": reached.collections,
                    "pointers": reached.pointers,
                    "strings": reached.strings,
                    "opaque_roots": reached.opaque_roots,
                    "passed_over": passed_over,
                });
                return Ok(Checked { text, json });
            }
            // A writer committed meanwhile: look again at the newer commit.
            Err(_) if heap.txn_id() != snap.txn_id() && tries < 3 => tries += 1,
            Err(e) => return Err(format!("{}: damaged: {e}", path.display())),
        }
    }
}

/// The commit slot opening passed over ([`Snapshot::passed_over`]), said on stderr —
/// `check`, `stat` and `dump` show the newest whole commit, as any reader would, but not
/// silently (review 55: a damaged newest slot made `check` say ok with no word of it) —
/// and given back for `--json` (`null` when there is none).
pub fn warn_if_passed_over<B: mmf_heap::Backend>(
    path: &Path,
    snap: &Snapshot<'_, B>,
) -> serde_json::Value {
    let Ok(Some(passed)) = snap.passed_over() else { return serde_json::Value::Null };
    let (offset, txn) = (passed.offset, snap.txn_id());
    let what = match passed.txn_id {
        Some(newer) => format!(
            "the newest commit, transaction {newer} (slot at byte {offset}), does not check \
             out ({}): a commit cut off by a crash before it was durable, or damage",
            passed.error
        ),
        // (Its error says no more than this.)
        None => format!(
            "the commit slot at byte {offset} does not check out: a newer commit cut off by \
             a crash while its slot was written (never acknowledged: nothing is lost), or \
             damage to the slot (if it held the newest commit, that commit is lost)"
        ),
    };
    eprintln!(
        "mmf: warning: {}: {what}; transaction {txn} checks out and is shown",
        path.display()
    );
    serde_json::json!({
        "offset": offset,
        "txn": passed.txn_id,
        "error": passed.error.to_string(),
    })
}

fn stat(path: &Path, json: bool) -> Result<(), String> {
    let heap = open(path)?;
    // Before this command's own snapshot pins a commit.
    let oldest = heap.oldest_reader().map_err(|e| format!("{}: {e}", path.display()))?;
    // Read without the heap's lock area (another user's heap, a full /dev/shm): the
    // readers that use the area are not seen.
    let partial = if heap.sees_every_reader() {
        ""
    } else {
        " among the readers this command can see (read without the heap's lock area, it \
         does not see the snapshots of processes that use it)"
    };
    let snap = heap.read().map_err(|e| format!("{}: {e}", path.display()))?;
    let passed_over = warn_if_passed_over(path, &snap);
    let stats = snap.stats();
    if json {
        let mut value = to_json(path, &snap, &stats, oldest);
        value["oldest_reader_complete"] = heap.sees_every_reader().into();
        value["passed_over"] = passed_over;
        return print(format!("{value}\n"));
    }
    let mut out = format!("heap {}\n", path.display());
    let _ = writeln!(out, "  format          {}", mmf_heap::format::FORMAT_VERSION);
    let _ = writeln!(out, "  file length     {} bytes", stats.file_len);
    let _ = writeln!(out, "  transaction     {}", stats.txn_id);
    let _ = writeln!(out, "  allocated       {} bytes", stats.allocated_end);
    let _ = writeln!(
        out,
        "  free            {} bytes in {} ranges",
        stats.free_bytes, stats.free_ranges
    );
    match oldest {
        Some(txn) => _ = writeln!(out, "  oldest reader   transaction {txn}{partial}"),
        None => _ = writeln!(out, "  oldest reader   none{partial}"),
    }
    let roots = snap.roots();
    let _ = writeln!(out, "  roots           {}", roots.len());
    for r in roots {
        let shape = snap.type_name(&r.name).ok().flatten().unwrap_or_default();
        let _ = writeln!(
            out,
            "    {:<24} type {:#018x}  {} bytes  {shape}",
            r.name, r.type_hash, r.len
        );
    }
    print(out)
}

/// Writes `out` to stdout: a full disk or a closed reader is the command's error (exit
/// status 1, one line), not a panic as `println!` makes it.
fn print(out: String) -> Result<(), String> {
    super::stdout_result(std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes()))
}

fn to_json(
    path: &Path,
    snap: &Snapshot<'_, mmf_heap::FileBackend>,
    stats: &Stats,
    oldest: Option<u64>,
) -> serde_json::Value {
    let roots: Vec<_> = snap
        .roots()
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                // As a string: JSON numbers past 2^53 lose digits in many readers.
                "type_hash": format!("{:#018x}", r.type_hash),
                "len": r.len,
            })
        })
        .collect();
    serde_json::json!({
        "path": path.display().to_string(),
        "format": mmf_heap::format::FORMAT_VERSION,
        "file_len": stats.file_len,
        "txn": stats.txn_id,
        "allocated_end": stats.allocated_end,
        "free_bytes": stats.free_bytes,
        "free_ranges": stats.free_ranges,
        "oldest_reader": oldest,
        "roots": roots,
    })
}
