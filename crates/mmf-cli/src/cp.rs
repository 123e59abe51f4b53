//! `mmf cp SRC DST`: copies through two mappings, one part per core, each part straight
//! from the source view into the destination view. The holes of a sparse source (found with
//! `SEEK_DATA`/`SEEK_HOLE`) stay holes in the copy.

use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::path::Path;

use mmf::{Access, Mapping, MappingOptions};

/// Bytes moved per copy: the unit of the progress bar and of the work split.
const CHUNK: usize = 4 << 20;

pub fn run(src: &Path, dst: &Path, sync: bool) -> Result<(), String> {
    let (s, d) = (src.display(), dst.display());
    for p in [src, dst] {
        if std::fs::metadata(p).is_ok_and(|m| m.is_dir()) {
            return Err(format!("{} is a directory: give a file", p.display()));
        }
    }
    let input = File::open(src).map_err(|e| format!("cannot open {s}: {e}"))?;
    let len = input.metadata().map_err(|e| format!("cannot stat {s}: {e}"))?.len();
    if same_file(src, &input, dst) {
        return Err(format!("{s} and {d} are the same file"));
    }
    let output = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)
        .map_err(|e| format!("cannot create {d}: {e}"))?;
    if len == 0 {
        return Ok(());
    }
    let ranges = mmf::cache::data_ranges(&input).map_err(|e| format!("cannot read {s}: {e}"))?;
    let from = Mapping::from_file(&input, Access::ReadOnly)
        .and_then(|m| m.view(..))
        .map_err(|e| format!("cannot map {s}: {e}"))?;
    // The new file is all hole; only the source's data ranges are written.
    let to = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(len)
        .map_file(&output)
        .map_err(|e| format!("cannot map {d}: {e}"))?;
    let _ = from.advise(mmf::Advice::Sequential);

    // Page faults and copies of different parts run in parallel: one part per core.
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
    let part_len = (len as usize).div_ceil(parts).next_multiple_of(CHUNK);
    let bar = crate::progress::bytes(len, "cp");
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..parts)
            .map(|i| (i * part_len, ((i + 1) * part_len).min(len as usize)))
            .filter(|(start, end)| start < end)
            .map(|(start, end)| {
                let (from, to, ranges, bar) = (&from, &to, &ranges, bar.clone());
                scope.spawn(move || copy_part(from, to, ranges, start..end, &bar))
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().expect("a copy thread panicked"))
    })
    .map_err(|e| format!("cannot copy {s} to {d}: {e}"))?;
    bar.finish_and_clear();
    if sync {
        to.view(..).and_then(|v| v.flush()).map_err(|e| format!("cannot flush {d}: {e}"))?;
    }
    Ok(())
}

/// Copies the data of `part` (file offsets) from `from` into a view of `to` of its own.
fn copy_part(
    from: &mmf::View,
    to: &Mapping,
    ranges: &[Range<u64>],
    part: Range<usize>,
    bar: &indicatif::ProgressBar,
) -> mmf::Result<()> {
    let view = to.view_mut(part.start as u64..part.end as u64)?;
    let mut done = 0;
    for range in ranges {
        let start = (range.start as usize).max(part.start);
        let end = (range.end as usize).min(part.end);
        let mut at = start;
        while at < end {
            let n = CHUNK.min(end - at);
            view.copy_from(at - part.start, from, at, n)?;
            at += n;
            done += n;
            bar.inc(n as u64);
        }
    }
    bar.inc((part.end - part.start - done) as u64); // the holes
    Ok(())
}

/// Whether `dst` is the file `src` is open on (copying onto itself would truncate it).
fn same_file(src: &Path, opened: &File, dst: &Path) -> bool {
    let Ok(d) = std::fs::canonicalize(dst) else { return false };
    if std::fs::canonicalize(src).is_ok_and(|s| s == d) {
        return true;
    }
    match (opened.metadata(), std::fs::metadata(&d)) {
        (Ok(s), Ok(dm)) => same_identity(&s, &dm),
        _ => false,
    }
}

#[cfg(unix)]
fn same_identity(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_identity(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}
