//! `mmf info`, `touch`, `evict`, `lock`: a file's pages in the page cache, as `fincore` and
//! `vmtouch` show and control them.

use std::fs::File;
use std::path::Path;

use mmf::{Access, Mapping, View};

/// Bytes brought in per step of `touch` (the unit of its progress bar).
const STEP: usize = 64 << 20;

fn open_view(path: &Path) -> Result<(File, Option<View>), String> {
    let shown = path.display();
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(format!("{shown} is a directory: give a file"));
    }
    let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let len = file.metadata().map_err(|e| format!("cannot stat {shown}: {e}"))?.len();
    if len == 0 {
        return Ok((file, None)); // nothing to map, nothing resident
    }
    let view = Mapping::from_file(&file, Access::ReadOnly)
        .and_then(|m| m.view(..))
        .map_err(|e| format!("cannot map {shown}: {e}"))?;
    Ok((file, Some(view)))
}

/// Resident flags of every page of the file.
fn residency(path: &Path) -> Result<(u64, Vec<bool>), String> {
    let (file, view) = open_view(path)?;
    let len = file.metadata().map_err(|e| format!("cannot stat {}: {e}", path.display()))?.len();
    let pages = match view {
        None => Vec::new(),
        Some(view) => view
            .residency()
            .map_err(|e| format!("cannot read the residency of {}: {e}", path.display()))?
            .as_slice()
            .to_vec(),
    };
    Ok((len, pages))
}

/// One character per cell: `#` all of its pages resident, `o` some, `.` none.
fn picture(pages: &[bool], cells: usize) -> String {
    if pages.is_empty() {
        return String::new();
    }
    let cells = cells.min(pages.len());
    (0..cells)
        .map(|c| {
            let span = &pages[c * pages.len() / cells..(c + 1) * pages.len() / cells];
            match span.iter().filter(|&&r| r).count() {
                0 => '.',
                n if n == span.len() => '#',
                _ => 'o',
            }
        })
        .collect()
}

pub fn info(path: &Path, map: bool, json: bool) -> Result<(), String> {
    let (len, pages) = residency(path)?;
    let page = mmf::page_size();
    let resident = pages.iter().filter(|&&r| r).count();
    let bar = picture(&pages, 64);
    if json {
        let value = serde_json::json!({
            "path": path.display().to_string(),
            "size": len,
            "page_size": page,
            "pages": pages.len(),
            "resident_pages": resident,
            "resident_bytes": resident * page,
            "map": bar,
        });
        println!("{value}");
        return Ok(());
    }
    let percent = if pages.is_empty() { 0.0 } else { 100.0 * resident as f64 / pages.len() as f64 };
    println!("{}: {len} bytes, {} pages of {page} bytes", path.display(), pages.len());
    println!("resident: {resident} pages, {} bytes ({percent:.1}%)", resident * page);
    if map {
        let grid = picture(&pages, 64 * 16);
        for (row, line) in grid.as_bytes().chunks(64).enumerate() {
            let first = row * 64 * pages.len() / grid.len().max(1);
            println!("{:>10} |{}|", first * page, String::from_utf8_lossy(line));
        }
    } else if !bar.is_empty() {
        println!("[{bar}]");
    }
    Ok(())
}

/// `mmf touch`: reads the file into the page cache, faulting it in step by step in the
/// kernel (`MADV_POPULATE_READ`), whose read-ahead sees one long sequential read. (Extra
/// `MADV_WILLNEED` or `MADV_SEQUENTIAL` made it slower here: see the README's figures.)
pub fn touch(path: &Path) -> Result<(), String> {
    let (_file, view) = open_view(path)?;
    let Some(view) = view else { return Ok(()) };
    let fail = |e: mmf::Error| format!("cannot touch {}: {e}", path.display());
    let bar = crate::progress::bytes(view.len() as u64, "touch");
    for at in (0..view.len()).step_by(STEP) {
        let n = STEP.min(view.len() - at);
        view.populate(at, n).map_err(fail)?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    let resident = view.residency().map_err(fail)?.resident_pages();
    println!("{}: {resident} pages resident", path.display());
    Ok(())
}

/// `mmf evict`: drops the file's pages from the page cache.
pub fn evict(path: &Path) -> Result<(), String> {
    let (file, _) = open_view(path)?;
    mmf::cache::evict(&file).map_err(|e| format!("cannot evict {}: {e}", path.display()))?;
    let (_, pages) = residency(path)?;
    let resident = pages.iter().filter(|&&r| r).count();
    println!("{}: evicted, {resident} pages still resident", path.display());
    Ok(())
}

/// `mmf lock`: locks the file in RAM and holds it until interrupted.
pub fn lock(path: &Path) -> Result<(), String> {
    let (_file, view) = open_view(path)?;
    let Some(view) = view else {
        return Err(format!("{} is empty: nothing to lock", path.display()));
    };
    view.lock().map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    println!(
        "{}: {} bytes locked in RAM; interrupt (Ctrl-C) to release",
        path.display(),
        view.len()
    );
    crate::hold_until_interrupted()
}
