//! Opening the paths users give: never waiting in `open` (a FIFO without a writer opens at
//! once), and knowing what was opened before anything else is done with it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::ops::Range;
use std::path::Path;

use mmf::FileKind;

/// Bytes mapped at a time by the commands that walk a whole file: the most of it that is
/// ever mapped (and so resident in the process) at once, whatever the file's size.
pub const WINDOW: u64 = 32 << 20;

/// An open file and what it is.
pub struct Opened {
    pub file: File,
    pub kind: FileKind,
}

/// Opens `path` for reading without blocking and tells what it is.
pub fn read(path: &Path) -> Result<Opened, String> {
    open(path, OpenOptions::new().read(true), "", false)
}

/// Opens `path` for reading and writing (creating it if `create`) without blocking.
pub fn read_write(path: &Path, create: bool) -> Result<Opened, String> {
    let options = OpenOptions::new().read(true).write(true).create(create).clone();
    open(path, &options, " for writing", !create)
}

/// Creates `path`, which must not exist, without blocking; `None` if something exists
/// there already.
pub fn create_new(path: &Path) -> Result<Option<Opened>, String> {
    let options = OpenOptions::new().read(true).write(true).create_new(true).clone();
    match mmf::file::open(path, &options) {
        Ok((file, kind)) => Ok(Some(Opened { file, kind })),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(format!("cannot open {} for writing: {e}", path.display())),
    }
}

/// `purpose` follows "cannot open PATH" in messages; `hint_create` adds how to create a
/// missing file.
fn open(
    path: &Path,
    options: &OpenOptions,
    purpose: &str,
    hint_create: bool,
) -> Result<Opened, String> {
    let shown = path.display();
    // Asked before opening: Windows refuses to open a directory as a file at all.
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(format!("{shown} is a directory: give a file"));
    }
    match mmf::file::open(path, options) {
        Ok((_, FileKind::Directory)) => Err(format!("{shown} is a directory: give a file")),
        Ok((file, kind)) => Ok(Opened { file, kind }),
        Err(_) if socket(path) => Err(format!(
            "{shown} is a socket, which cannot be opened as a file: connect to it with a \
             socket client instead"
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound && hint_create => Err(format!(
            "cannot open {shown}: {e}; create it first with `mmf create {shown} --size N`"
        )),
        Err(e) => Err(format!("cannot open {shown}{purpose}: {e}")),
    }
}

/// Whether `path` names a Unix domain socket (which `open` refuses with `ENXIO`).
#[cfg(unix)]
fn socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

#[cfg(not(unix))]
fn socket(_: &Path) -> bool {
    false
}

/// Refuses what `command` cannot do through a mapping, saying what the file is and what
/// to use instead.
pub fn require_mappable(path: &Path, kind: FileKind, command: &str) -> Result<(), String> {
    if kind.is_mappable() {
        return Ok(());
    }
    let shown = path.display();
    let instead = match (kind, command) {
        (FileKind::Pseudo { .. }, "write") => {
            format!("the kernel takes writes to it as they come: use `printf ... > {shown}`")
        }
        (FileKind::Pseudo { .. }, _) => format!(
            "the kernel makes its content as it is read, and it has no pages in the page cache; \
             see it with `mmf dump {shown}`"
        ),
        (_, "write" | "create") => {
            format!("it is a stream, not a file to map: write to it with `... > {shown}`")
        }
        _ => format!(
            "it is a stream, with no size and no pages in the page cache; read some of it \
             with `mmf dump {shown} --len N`, or all of it, to its end if it has one, with \
             `mmf cp {shown} FILE`"
        ),
    };
    Err(format!(
        "{shown} is {kind}: mmf {command} works on regular files and block devices; {instead}"
    ))
}

/// The message for a read of `path` that failed: a truncation under the view says so, with
/// the file's size now.
pub fn read_error(path: &Path, file: &File, e: &mmf::Error) -> String {
    let shown = path.display();
    match e {
        mmf::Error::Truncated { .. } => {
            let now = file.metadata().map_or_else(|_| "?".into(), |m| m.len().to_string());
            format!(
                "cannot read {shown}: it was truncated while mmf read it (it has {now} bytes \
                 now): run the command again"
            )
        }
        e => format!("cannot read {shown}: {e}"),
    }
}

/// `range` cut into pieces of at most `step` bytes (`step` > 0), each starting at a
/// multiple of `step` except perhaps the first.
pub fn windows(range: Range<u64>, step: u64) -> impl Iterator<Item = Range<u64>> {
    let mut at = range.start;
    std::iter::from_fn(move || {
        (at < range.end).then(|| {
            let end = (at / step + 1).saturating_mul(step).min(range.end);
            let piece = at..end;
            at = end;
            piece
        })
    })
}

/// How many bytes of a buffer of `cap` to use when `left` bytes are wanted.
pub fn take(left: u64, cap: usize) -> usize {
    usize::try_from(left).map_or(cap, |left| left.min(cap))
}

/// `read`, retried when a signal interrupts it.
pub fn read_some(mut from: &File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match from.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{take, windows};

    #[test]
    fn windows_cover_the_range_at_multiples_of_the_step() {
        let all: Vec<_> = windows(5..25, 10).collect();
        assert_eq!(all, [5..10, 10..20, 20..25]);
        assert_eq!(windows(0..0, 10).count(), 0);
        assert_eq!(windows(u64::MAX - 3..u64::MAX, 1 << 20).collect::<Vec<_>>().len(), 1);
    }

    #[test]
    fn take_never_exceeds_the_buffer() {
        assert_eq!(take(u64::MAX, 10), 10);
        assert_eq!(take(3, 10), 3);
    }
}
