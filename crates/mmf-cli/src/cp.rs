//! `mmf cp SRC DST`: copies through two mappings. The holes of a sparse source, and runs of
//! zero bytes, stay holes in the copy.

use std::fs::{File, OpenOptions};
use std::path::Path;

use mmf::{Access, Mapping, MappingOptions};

/// Bytes moved per copy (fits in the L2 cache: the bounce costs little).
const CHUNK: usize = 256 << 10;

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
    // The new file is all hole; only chunks with data are written.
    let to_mapping = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(len)
        .map_file(&output)
        .map_err(|e| format!("cannot map {d}: {e}"))?;
    let mut to = to_mapping.view_mut(..).map_err(|e| format!("cannot map {d}: {e}"))?;
    let _ = from.advise(mmf::Advice::Sequential);

    let bar = crate::progress::bytes(len, "cp");
    let mut buf = vec![0u8; CHUNK];
    for range in ranges {
        let mut at = range.start as usize;
        while at < range.end as usize {
            let n = CHUNK.min(range.end as usize - at);
            let chunk = &mut buf[..n];
            from.read_at(at, chunk).map_err(|e| format!("cannot read {s}: {e}"))?;
            if chunk.iter().any(|&b| b != 0) {
                to.write_at(at, chunk).map_err(|e| format!("cannot write {d}: {e}"))?;
            }
            at += n;
            bar.inc(n as u64);
        }
    }
    bar.finish_and_clear();
    if sync {
        to.flush().map_err(|e| format!("cannot flush {d}: {e}"))?;
    }
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
