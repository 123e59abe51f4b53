//! `mmf sum FILE...`: the XXH3 64-bit checksum of each file, computed through a stream
//! over its mapping ([`mmf::Stream`]): one window of the file mapped at a time and copied
//! out in pieces that stay in the CPU's cache while they are hashed, so a file of any size
//! is summed in bounded memory. What cannot be mapped (a FIFO, a character device, a
//! `/proc` file) is read as a stream; a FIFO through which nothing came is an error. The
//! output is `xxhsum -H3`'s, `XXH3 (NAME) = HEX`, which `xxhsum -c` checks.

use std::io::{self, Read, Write};
use std::path::Path;

use mmf::{Access, FileKind, Mapping, Stream};
use xxhash_rust::xxh3::Xxh3;

use crate::open::{self, Opened, WINDOW};

/// Bytes copied out and hashed at a time: small enough to stay in the L2 cache between
/// the copy and the hash.
const PIECE: usize = 256 << 10;

pub fn run(paths: &[std::path::PathBuf]) -> Result<(), String> {
    let mut out = io::stdout().lock();
    for path in paths {
        let hash = sum(path)?;
        crate::stdout_result(writeln!(out, "XXH3 ({}) = {hash:016x}", path.display()))?;
    }
    Ok(())
}

/// The XXH3-64 of the file at `path`.
pub fn sum(path: &Path) -> Result<u64, String> {
    let shown = path.display();
    let Opened { file, kind } = open::read(path)?;
    let stat_len = file.metadata().map_err(|e| format!("cannot stat {shown}: {e}"))?.len();
    let mut hasher = Xxh3::new();
    // A regular file of size 0 may still be a pseudo-file mmf does not know: read it.
    if !kind.is_mappable() || (kind == FileKind::Regular && stat_len == 0) {
        let n = hash_reader(&mut hasher, &file).map_err(|e| format!("cannot read {shown}: {e}"))?;
        if n == 0 && kind == FileKind::Fifo {
            // The open never waits for a writer: an empty FIFO is no input, not empty input.
            return Err(format!(
                "{shown} is a FIFO and nothing came through it (no writer had it open, or its \
                 writers wrote nothing): start the writer first, then run mmf sum again"
            ));
        }
        return Ok(hasher.digest());
    }
    let mapping = match Mapping::from_file(&file, Access::ReadOnly) {
        Err(mmf::Error::EmptyFile) => return Ok(hasher.digest()), // a 0-byte device
        other => other.map_err(|e| format!("cannot map {shown}: {e}"))?,
    };
    let stream = Stream::new(&mapping).with_window(WINDOW);
    hash_reader(&mut hasher, stream).map_err(|e| match mmf_error(&e) {
        Some(e) => open::read_error(path, &file, e),
        None => format!("cannot read {shown}: {e}"),
    })?;
    Ok(hasher.digest())
}

/// Feeds everything `reader` gives to the hasher, a piece at a time; returns how many
/// bytes that was.
fn hash_reader(hasher: &mut Xxh3, mut reader: impl Read) -> io::Result<u64> {
    let mut buf = vec![0u8; PIECE];
    let mut total = 0;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The mmf error inside an I/O error from a stream.
fn mmf_error(e: &io::Error) -> Option<&mmf::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<mmf::Error>())
}
