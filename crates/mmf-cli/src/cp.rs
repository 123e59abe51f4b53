//! `mmf cp SRC DST`: copies through two mappings, one part per core, each part window by
//! window straight from a source view into a write-through destination view — the
//! destination's own `pwrite` / `WriteFile` from the source's pages, one copy per byte (so
//! the process never holds more than a few windows of the source, whatever its size). The holes of a sparse
//! source (found with `SEEK_DATA`/`SEEK_HOLE`) stay holes in the copy. What cannot be
//! mapped — a FIFO, a character device, a `/proc` or `/sys` file — is copied with `read`
//! and `write`, as `cp` copies it.
//!
//! The copy is written to a new file beside DST and renamed over DST only once it is
//! complete, so a copy that fails leaves DST exactly as it was (and no new file behind).
//! With `--sync`, write-back starts after every piece, and the copy and then the rename
//! (its directory) are synced before the command returns.

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use mmf::{Access, FileKind, Mapping, MappingOptions, ViewOptions};

use crate::open::{self, Opened, WINDOW, read_some};

/// Bytes moved per copy: the unit of the progress bar.
const CHUNK: usize = 4 << 20;

pub fn run(src: &Path, dst: &Path, sync: bool) -> Result<(), String> {
    let (s, d) = (src.display(), dst.display());
    if std::fs::metadata(dst).is_ok_and(|m| m.is_dir()) {
        return Err(format!("{d} is a directory: give a file"));
    }
    let Opened { file: input, kind } = open::read(src)?;
    if same_file(src, &input, dst) {
        return Err(format!("{s} and {d} are the same file"));
    }
    let target = destination(dst)?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".mmf-cp-");
    #[cfg(unix)]
    builder.permissions(new_permissions(&input));
    let temp =
        builder.tempfile_in(dir).map_err(|e| format!("cannot create the copy beside {d}: {e}"))?;
    let output = temp.as_file();
    keep_owner_and_mode(output, &target);
    remove_when_interrupted(temp.path(), dst);

    let stat_len = input.metadata().map_err(|e| format!("cannot stat {s}: {e}"))?.len();
    // A regular file of size 0 may still be a pseudo-file mmf does not know: read it.
    if kind.is_mappable() && !(kind == FileKind::Regular && stat_len == 0) {
        copy_mapped(src, &input, kind, dst, output, sync)?;
    } else {
        copy_stream(src, &input, kind, dst, output)?;
    }
    if sync {
        output.sync_all().map_err(|e| format!("cannot flush {d}: {e}"))?;
    }
    temp.persist(&target).map_err(|e| format!("cannot replace {d}: {}", e.error))?;
    if sync {
        mmf::file::sync_parent(&target)
            .map_err(|e| format!("cannot flush the directory of {d}: {e}"))?;
    }
    Ok(())
}

/// On Ctrl-C, SIGTERM or SIGHUP, removes the copy made so far and exits with status 130:
/// the default end of the process left it beside DST (3 GB of a copy of `/dev/zero` after
/// 10 s). Once the copy is renamed over DST the file is gone from `partial`, and an
/// interrupt only ends the process. Windows (Ctrl-C, Ctrl-Break): a file with mapped
/// views cannot be removed, so the partial copy of a mapped source stays.
fn remove_when_interrupted(partial: &Path, dst: &Path) {
    let (partial, dst) = (partial.to_path_buf(), dst.display().to_string());
    let handler = move || {
        if std::fs::remove_file(&partial).is_ok() {
            // Not `eprintln!`: a terminal that hung up fails the write, and a panic here
            // would leave the signals caught and the copy going on.
            let _ = writeln!(
                std::io::stderr(),
                "mmf: interrupted: the partial copy was removed, {dst} is unchanged"
            );
        }
        std::process::exit(130);
    };
    // Without a handler (the signals ignored, as under `nohup`, or a handler set already)
    // an interrupt ends the process as before, the partial copy left.
    let _ = ctrlc::set_handler(handler);
}

/// The file the copy replaces: DST, or the file a symlink there points to (as `cp` writes
/// through it). Something other than a regular file there is refused.
fn destination(dst: &Path) -> Result<PathBuf, String> {
    let d = dst.display();
    let Ok(meta) = std::fs::metadata(dst) else {
        return Ok(dst.to_path_buf()); // nothing there yet (or a dangling link: replaced)
    };
    if !meta.is_file() {
        return Err(format!(
            "{d} exists and is not a regular file: mmf cp writes regular files; remove it or \
             give another name"
        ));
    }
    std::fs::canonicalize(dst).map_err(|e| format!("cannot resolve {d}: {e}"))
}

/// A new copy's mode is the source's (without set-id bits), less the umask, as with `cp`.
#[cfg(unix)]
fn new_permissions(input: &File) -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    let mode = input.metadata().map_or(0o644, |m| m.permissions().mode()) & 0o777;
    std::fs::Permissions::from_mode(mode)
}

/// A copy that replaces a file keeps that file's mode and (where allowed) owner.
#[cfg(unix)]
fn keep_owner_and_mode(output: &File, target: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(old) = std::fs::metadata(target) else { return };
    // Best effort, as `cp` onto an existing file keeps them: only root may give a file to
    // another owner, and a failure here does not make the copy wrong.
    let _ = std::os::unix::fs::fchown(output, Some(old.uid()), Some(old.gid()));
    let _ = output.set_permissions(old.permissions());
}

#[cfg(not(unix))]
fn keep_owner_and_mode(output: &File, target: &Path) {
    if let Ok(old) = std::fs::metadata(target) {
        let _ = output.set_permissions(old.permissions());
    }
}

/// Copies a mappable source (a regular file, a block device) into `output` through views.
fn copy_mapped(
    src: &Path,
    input: &File,
    kind: FileKind,
    dst: &Path,
    output: &File,
    sync: bool,
) -> Result<(), String> {
    let (s, d) = (src.display(), dst.display());
    let len = mmf::file::len(input, kind).map_err(|e| format!("cannot stat {s}: {e}"))?;
    if len == 0 {
        return Ok(());
    }
    let ranges = mmf::cache::data_ranges(input).map_err(|e| format!("cannot read {s}: {e}"))?;
    let from =
        Mapping::from_file(input, Access::ReadOnly).map_err(|e| format!("cannot map {s}: {e}"))?;
    // The new file is all hole; only the source's data ranges are written.
    let to = MappingOptions::new()
        .access(Access::ReadWrite)
        .size(len)
        .map_file(output)
        .map_err(|e| format!("cannot map {d}: {e}"))?;

    // Page faults and copies of different parts run in parallel: one part per core.
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4) as u64;
    let part_len = len.div_ceil(parts).next_multiple_of(CHUNK as u64);
    let bar = crate::progress::bytes(len, "cp");
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..parts)
            .map(|i| (i.saturating_mul(part_len), (i + 1).saturating_mul(part_len).min(len)))
            .filter(|(start, end)| start < end)
            .map(|(start, end)| {
                let (from, to, ranges, bar) = (&from, &to, &ranges, bar.clone());
                scope.spawn(move || copy_part(from, to, ranges, start..end, &bar, sync))
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().expect("a copy thread panicked"))
    })
    .map_err(|e| match e {
        mmf::Error::Truncated { .. } => open::read_error(src, input, &e),
        e => format!("cannot copy {s} to {d}: {e}"),
    })?;
    bar.finish_and_clear();
    Ok(())
}

/// Copies the data of `part` (file offsets) from `from` into `to`, one window of both at a
/// time.
fn copy_part(
    from: &Mapping,
    to: &Mapping,
    ranges: &[Range<u64>],
    part: Range<u64>,
    bar: &indicatif::ProgressBar,
    sync: bool,
) -> mmf::Result<()> {
    let mut done = 0;
    for range in ranges {
        let data = range.start.max(part.start)..range.end.min(part.end);
        for window in open::windows(data, WINDOW) {
            let source = from.view(window.clone())?;
            let _ = source.advise(mmf::Advice::Sequential);
            // The file's own writes, straight from the source's pages: one copy, no faults
            // on the destination, and only the written blocks dirty.
            let copy = ViewOptions::new().range(window).write_through(true).map_mut(to)?;
            for at in (0..source.len()).step_by(CHUNK) {
                let n = CHUNK.min(source.len() - at);
                let _ = source.populate(at, n);
                copy.copy_from(at, &source, at, n)?;
                if sync {
                    // Start write-back now, so the final sync finds little left to write.
                    copy.flush_async_range(at, n)?;
                }
                bar.inc(n as u64);
            }
            done += source.len() as u64;
        }
    }
    bar.inc(part.end - part.start - done); // the holes
    Ok(())
}

/// Copies what cannot be mapped with `read` and `write`, to the end of the stream. A FIFO
/// through which nothing came is an error (there was no writer), not an empty copy.
fn copy_stream(
    src: &Path,
    input: &File,
    kind: FileKind,
    dst: &Path,
    mut output: &File,
) -> Result<(), String> {
    let (s, d) = (src.display(), dst.display());
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    loop {
        let n = read_some(input, &mut buf).map_err(|e| format!("cannot read {s}: {e}"))?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n]).map_err(|e| format!("cannot write {d}: {e}"))?;
        copied += n as u64;
    }
    if copied == 0 && kind == FileKind::Fifo {
        return Err(format!(
            "{s} is a FIFO and nothing came through it (no writer had it open, or its \
             writers wrote nothing): start the writer first, then run mmf cp again ({d} is \
             unchanged)"
        ));
    }
    Ok(())
}

/// Whether `dst` is the file `src` is open on (copying onto itself would truncate it).
pub fn same_file(src: &Path, opened: &File, dst: &Path) -> bool {
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
