//! `mmf info`, `touch`, `evict`, `lock`: a file's pages in the page cache, as `fincore` and
//! `vmtouch` show and control them. Files are walked one window view at a time and
//! residency is kept as counts, so memory does not grow with the file.

use std::path::Path;

use mmf::{Access, Mapping};

use crate::open::{self, Opened, WINDOW};

/// Bytes whose residency is asked in one call: the flags of this many bytes' pages are
/// all that is held at once (256 KiB of them for 1 GiB of 4 KiB pages).
const RESIDENCY_WINDOW: u64 = 1 << 30;

/// A file opened for one of these commands: regular files and block devices only.
struct Target {
    opened: Opened,
    /// `None` for an empty file (nothing to map, nothing resident).
    mapping: Option<Mapping>,
    size: u64,
}

fn open_target(path: &Path, command: &str) -> Result<Target, String> {
    let shown = path.display();
    let opened = open::read(path)?;
    open::require_mappable(path, opened.kind, command)?;
    let size = mmf::file::len(&opened.file, opened.kind)
        .map_err(|e| format!("cannot stat {shown}: {e}"))?;
    if size == 0 {
        return Ok(Target { opened, mapping: None, size });
    }
    let mapping = Mapping::from_file(&opened.file, Access::ReadOnly)
        .map_err(|e| format!("cannot map {shown}: {e}"))?;
    let size = mapping.size();
    Ok(Target { opened, mapping: Some(mapping), size })
}

/// Resident pages counted into `cells` equal runs of pages, as the pictures show them:
/// cell `c` holds pages `c * pages / cells .. (c + 1) * pages / cells`.
struct Cells {
    pages: u64,
    /// Resident pages of each cell.
    resident: Vec<u64>,
    /// The page the next flag belongs to, and the cell it falls in.
    next: u64,
    cell: usize,
}

impl Cells {
    fn new(pages: u64, cells: usize) -> Cells {
        let cells = usize::try_from(pages).map_or(cells, |p| p.min(cells));
        Cells { pages, resident: vec![0; cells], next: 0, cell: 0 }
    }

    /// The first page of cell `c`.
    fn start(&self, c: usize) -> u64 {
        let cells = self.resident.len() as u128;
        u64::try_from(c as u128 * u128::from(self.pages) / cells).unwrap_or(u64::MAX)
    }

    /// Adds the flags of the next pages, in order.
    fn add(&mut self, mut flags: &[bool]) {
        while !flags.is_empty() && self.cell < self.resident.len() {
            let end = self.start(self.cell + 1);
            let n = open::take(end - self.next, flags.len());
            let (head, rest) = flags.split_at(n);
            self.resident[self.cell] += head.iter().filter(|&&r| r).count() as u64;
            self.next += n as u64;
            flags = rest;
            if self.next == end {
                self.cell += 1;
            }
        }
    }

    fn total(&self) -> u64 {
        self.resident.iter().sum()
    }

    /// One character per cell: `#` all of its pages resident, `o` some, `.` none.
    fn picture(&self) -> String {
        (0..self.resident.len())
            .map(|c| match self.resident[c] {
                0 => '.',
                n if n == self.start(c + 1) - self.start(c) => '#',
                _ => 'o',
            })
            .collect()
    }
}

/// Counts the resident pages of the target into each of `grids`, one window at a time.
fn count(target: &Target, path: &Path, grids: &mut [&mut Cells]) -> Result<(), String> {
    let Some(mapping) = &target.mapping else { return Ok(()) };
    for window in open::windows(0..target.size, RESIDENCY_WINDOW) {
        let residency = mapping
            .view(window)
            .and_then(|view| view.residency())
            .map_err(|e| format!("cannot read the residency of {}: {e}", path.display()))?;
        for grid in grids.iter_mut() {
            grid.add(residency.as_slice());
        }
    }
    Ok(())
}

fn page_count(size: u64) -> u64 {
    size.div_ceil(mmf::page_size() as u64)
}

pub fn info(path: &Path, map: bool, json: bool) -> Result<(), String> {
    let target = open_target(path, "info")?;
    let page = mmf::page_size() as u64;
    let pages = page_count(target.size);
    let mut bar = Cells::new(pages, 64);
    let mut grid = Cells::new(pages, if map { 64 * 16 } else { 0 });
    count(&target, path, &mut [&mut bar, &mut grid])?;
    let (len, resident) = (target.size, bar.total());
    let resident_bytes = resident.saturating_mul(page);
    if json {
        let value = serde_json::json!({
            "path": path.display().to_string(),
            "size": len,
            "page_size": page,
            "pages": pages,
            "resident_pages": resident,
            "resident_bytes": resident_bytes,
            "map": bar.picture(),
        });
        outln!("{value}");
        return Ok(());
    }
    let percent = if pages == 0 { 0.0 } else { 100.0 * resident as f64 / pages as f64 };
    outln!("{}: {len} bytes, {pages} pages of {page} bytes", path.display());
    outln!("resident: {resident} pages, {resident_bytes} bytes ({percent:.1}%)");
    if map {
        for (row, line) in grid.picture().as_bytes().chunks(64).enumerate() {
            let first = grid.start(row * 64);
            outln!("{:>10} |{}|", first.saturating_mul(page), String::from_utf8_lossy(line));
        }
    } else if pages > 0 {
        outln!("[{}]", bar.picture());
    }
    Ok(())
}

/// `mmf touch`: reads the file into the page cache, faulting it in window by window in
/// the kernel (`MADV_POPULATE_READ`), whose read-ahead sees one long sequential read.
/// (Extra `MADV_WILLNEED` or `MADV_SEQUENTIAL` made it slower here: see the README's
/// figures.) Each window is unmapped before the next, so the process never holds more
/// than one window of the file; the pages stay in the page cache.
pub fn touch(path: &Path) -> Result<(), String> {
    let target = open_target(path, "touch")?;
    let shown = path.display();
    if let Some(mapping) = &target.mapping {
        let bar = crate::progress::bytes(target.size, "touch");
        for window in open::windows(0..target.size, WINDOW) {
            let view = mapping.view(window).map_err(|e| format!("cannot map {shown}: {e}"))?;
            view.populate(0, view.len()).map_err(|e| touch_error(path, &target, &e))?;
            bar.inc(view.len() as u64);
        }
        bar.finish_and_clear();
    }
    let mut cells = Cells::new(page_count(target.size), 1);
    count(&target, path, &mut [&mut cells])?;
    outln!("{shown}: {} pages resident", cells.total());
    Ok(())
}

fn touch_error(path: &Path, target: &Target, e: &mmf::Error) -> String {
    let shown = path.display();
    match e {
        mmf::Error::Truncated { .. } => {
            let now = target.opened.file.metadata().map_or(0, |m| m.len());
            format!(
                "cannot touch {shown}: it was truncated while mmf touched it ({} bytes when \
                 it started, {now} now): run mmf touch again",
                target.size
            )
        }
        e => format!("cannot touch {shown}: {e}"),
    }
}

/// `mmf evict`: drops the file's pages from the page cache.
pub fn evict(path: &Path) -> Result<(), String> {
    let target = open_target(path, "evict")?;
    let shown = path.display();
    mmf::cache::evict(&target.opened.file).map_err(|e| format!("cannot evict {shown}: {e}"))?;
    let mut cells = Cells::new(page_count(target.size), 1);
    count(&target, path, &mut [&mut cells])?;
    outln!("{shown}: evicted, {} pages still resident", cells.total());
    Ok(())
}

/// `mmf lock`: locks the file in RAM and holds it until interrupted (the whole file is
/// mapped: that is what locking it means).
pub fn lock(path: &Path) -> Result<(), String> {
    let target = open_target(path, "lock")?;
    let shown = path.display();
    let Some(mapping) = &target.mapping else {
        return Err(format!("{shown} is empty: nothing to lock"));
    };
    let view = mapping.view(..).map_err(|e| format!("cannot map {shown}: {e}"))?;
    view.lock().map_err(|e| format!("cannot lock {shown}: {e}"))?;
    outln!("{shown}: {} bytes locked in RAM; interrupt (Ctrl-C) to release", view.len());
    crate::hold_until_interrupted()
}

#[cfg(test)]
mod tests {
    use super::Cells;

    /// The cells of the old whole-file picture: page `i` of `flags` in cell `c` when
    /// `c * n / cells <= i < (c + 1) * n / cells`.
    fn reference(flags: &[bool], cells: usize) -> String {
        let cells = cells.min(flags.len());
        (0..cells)
            .map(|c| {
                let span = &flags[c * flags.len() / cells..(c + 1) * flags.len() / cells];
                match span.iter().filter(|&&r| r).count() {
                    0 => '.',
                    n if n == span.len() => '#',
                    _ => 'o',
                }
            })
            .collect()
    }

    #[test]
    fn counts_in_any_chunking_equal_the_whole_picture() {
        for pages in [1usize, 5, 63, 64, 65, 100, 1000, 4099] {
            let flags: Vec<bool> = (0..pages).map(|i| (i * 7919) % 13 < 5 || i % 97 == 0).collect();
            for cells in [1, 64, 1024] {
                for chunk in [1, 3, 64, 4096] {
                    let mut c = Cells::new(pages as u64, cells);
                    flags.chunks(chunk).for_each(|f| c.add(f));
                    assert_eq!(c.picture(), reference(&flags, cells), "{pages} {cells} {chunk}");
                    assert_eq!(c.total(), flags.iter().filter(|&&r| r).count() as u64);
                }
            }
        }
    }

    #[test]
    fn no_pages_no_cells() {
        let mut c = Cells::new(0, 64);
        c.add(&[]);
        assert_eq!((c.picture(), c.total()), (String::new(), 0));
    }
}
