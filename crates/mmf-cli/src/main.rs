//! `mmf`: memory-mapped files from a shell. `mmf hello` runs the classic CreateFileMapping
//! example.
// Two exceptions, allowed where they are: `mmf heap` opens a heap file, whose safety
// contract (only mmf-heap writes it while open) is the user's to keep, as for the library;
// and `sigbus.rs` installs the heap commands' SIGBUS handler.
#![deny(unsafe_code)]
// Sizes and offsets are u64 and views are usize: on a 32-bit target an `as` between them
// would cut silently. Conversions go through `try_from` with an error that says so.
#![warn(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_possible_wrap)]

/// `println!` for the commands' output, returning the write's error from the enclosing
/// function (`cannot write the output: ...`, exit 1, e.g. stdout on a full disk) where
/// `println!` panics; a closed pipe is not an error (see [`stdout_result`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        $crate::stdout_result(writeln!(std::io::stdout(), $($arg)*))?
    }};
}

mod cache;
mod chan;
mod cp;
mod dump;
mod files;
mod heap;
mod heap_dump;
mod hello;
mod hexdump;
mod input;
mod open;
mod progress;
mod shm;
mod shm_info;
#[cfg(target_os = "linux")]
mod sigbus;
mod size;
mod sum;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Memory-mapped files the Windows way (CreateFileMapping / MapViewOfFile), from a shell.
#[derive(Parser, Debug)]
#[command(name = "mmf", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The classic CreateFileMapping example: a 20 MiB file holding "HELLO, WORLD!" in
    /// UTF-16LE, then zeros.
    ///
    /// Creates the file (replacing it), maps 20 MiB of it read-write, writes the string at
    /// offset 0 through the view, flushes it durably, unmaps, closes, and prints the file's
    /// size and a hex dump of it.
    #[command(after_help = "Examples:\n  mmf hello\n  mmf hello --path /tmp/mm.file")]
    Hello {
        /// Where to create the file.
        #[arg(long, default_value = "mm.file")]
        path: PathBuf,
    },
    /// Create a file, or grow it, to SIZE bytes through a mapping (durably).
    #[command(
        after_help = "Examples:\n  mmf create big.bin --size 2GiB\n  mmf create small.bin --size 4096"
    )]
    Create {
        /// The file.
        path: PathBuf,
        /// Its size: 4096, 0x1000, 64KiB, 20MiB, 1G ...
        #[arg(long, value_parser = size::parse_nonzero)]
        size: u64,
    },
    /// Write bytes into a file through a view and flush them durably.
    #[command(
        after_help = "Examples:\n  mmf write mm.file --text hi\n  mmf write mm.file --offset 0x20 --utf16 'HELLO'\n  mmf write mm.file --offset 1MiB --from data.bin"
    )]
    Write {
        /// The file (it must exist; writing past its end grows it).
        path: PathBuf,
        /// Where to write.
        #[arg(long, default_value = "0", value_parser = size::parse)]
        offset: u64,
        #[command(flatten)]
        input: input::Input,
    },
    /// Print a range of a file as a hex dump, in the layout of `hexdump -C`.
    #[command(
        after_help = "Examples:\n  mmf dump mm.file --len 64\n  mmf dump big.bin --offset 1GiB --len 0x100"
    )]
    Dump {
        /// The file to read (through a read-only mapping).
        path: PathBuf,
        /// First byte to show: 4096, 0x1000, 64KiB, 1G ...
        #[arg(long, default_value = "0", value_parser = size::parse)]
        offset: u64,
        /// How many bytes to show (default: to the end of the file).
        #[arg(long, value_parser = size::parse)]
        len: Option<u64>,
    },
    /// Size, page size and page-cache residency of a file (as `fincore` counts it).
    #[command(
        after_help = "Examples:\n  mmf info big.bin\n  mmf info big.bin --map\n  mmf info big.bin --json"
    )]
    Info {
        /// The file.
        path: PathBuf,
        /// A wider picture: 16 rows of 64 cells (# resident, o partly, . not).
        #[arg(long)]
        map: bool,
        /// One JSON object: {"path", "size", "page_size", "pages", "resident_pages",
        /// "resident_bytes", "map"}.
        #[arg(long)]
        json: bool,
    },
    /// Bring a file into the page cache (as `vmtouch -t`).
    #[command(after_help = "Examples:\n  mmf touch big.bin")]
    Touch {
        /// The file.
        path: PathBuf,
    },
    /// Drop a file's pages from the page cache (as `vmtouch -e`).
    #[command(after_help = "Examples:\n  mmf evict big.bin")]
    Evict {
        /// The file.
        path: PathBuf,
    },
    /// Lock a file in RAM and hold it until interrupted (as `vmtouch -l`).
    #[command(after_help = "Examples:\n  mmf lock hot.bin")]
    Lock {
        /// The file.
        path: PathBuf,
    },
    /// Copy a file through mappings; the holes of a sparse file stay holes.
    #[command(
        after_help = "Examples:\n  mmf cp big.bin copy.bin\n  mmf cp big.bin copy.bin --sync"
    )]
    Cp {
        /// The file to copy.
        src: PathBuf,
        /// The copy (replaced if it exists).
        dst: PathBuf,
        /// Flush the copy durably before exiting.
        #[arg(long)]
        sync: bool,
    },
    /// The XXH3 64-bit checksum of each file, read through a sliding view (bounded memory
    /// whatever the size), printed as `xxhsum -H3` prints it (`xxhsum -c` checks it).
    #[command(after_help = "Examples:\n  mmf sum big.bin\n  mmf sum a.bin b.bin")]
    Sum {
        /// The files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Named shared-memory objects: create, write, dump, list, rm.
    #[command(subcommand)]
    Shm(shm::Shm),
    /// Persistent heap files (mmf-heap): check, stat, dump.
    #[command(subcommand)]
    Heap(heap::HeapCommand),
    /// Message channels between processes: create, send (stdin), recv (stdout), info.
    #[command(subcommand)]
    Chan(chan::Chan),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hello { path } => hello::run(&path),
        Command::Create { path, size } => files::create(&path, size),
        Command::Write { path, offset, input } => files::write(&path, offset, &input),
        Command::Dump { path, offset, len } => dump::run(&path, offset, len),
        Command::Info { path, map, json } => cache::info(&path, map, json),
        Command::Touch { path } => cache::touch(&path),
        Command::Evict { path } => cache::evict(&path),
        Command::Lock { path } => cache::lock(&path),
        Command::Cp { src, dst, sync } => cp::run(&src, &dst, sync),
        Command::Sum { paths } => sum::run(&paths),
        Command::Shm(command) => shm::run(command),
        Command::Heap(command) => heap::run(command),
        Command::Chan(command) => chan::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mmf: {message}");
            ExitCode::FAILURE
        }
    }
}

/// An mmf error as a shell user reads it: the library's words, except where they name
/// the library's API as the way out (review 55: `NameOptions::allow_foreign_owner` was
/// advice to CLI users, who have no such switch but in `mmf shm info`).
pub fn said(e: &mmf::Error) -> String {
    match e {
        mmf::Error::ForeignOwner { name, owner } => format!(
            "the object {name:?} belongs to user {owner}, not to you: refusing to use it (an \
             object another user made may be planted to mislead this command); ask its owner \
             or root to remove it (`mmf shm rm {name}`), or use another name"
        ),
        e => e.to_string(),
    }
}

/// Writing to stdout: a closed pipe (`mmf dump big | head`) ends the output quietly.
fn stdout_result(result: std::io::Result<()>) -> Result<(), String> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| format!("cannot write the output: {e}")),
    }
}

/// Standard output as a file of its own (a duplicate of its descriptor or handle), whose
/// writes report every error; refused when standard output was closed. A closed standard
/// output must not pass for an output: `mmf chan recv q >&-` released every message it
/// "printed" and exited 0 (review 55). On Linux, Rust's runtime puts `/dev/null` on a
/// closed standard descriptor before `main` (read-write; a shell's `> /dev/null` is
/// write-only); on Windows, std's `Stdout` takes writes to a missing handle for
/// successes, and the handle does not duplicate.
///
/// # Errors
/// Standard output is not open, or was closed when the process started.
fn stdout_file() -> Result<std::fs::File, String> {
    let closed = |why: String| {
        format!(
            "standard output is {why}: give the command somewhere to write, e.g. `> FILE` or \
             `| consumer` (`> /dev/null` to discard what it receives)"
        )
    };
    #[cfg(unix)]
    let owned = {
        use std::os::fd::AsFd;
        std::io::stdout().as_fd().try_clone_to_owned()
    };
    #[cfg(windows)]
    let owned = {
        use std::os::windows::io::AsHandle;
        std::io::stdout().as_handle().try_clone_to_owned()
    };
    let file = std::fs::File::from(owned.map_err(|e| closed(format!("not open ({e})")))?);
    #[cfg(target_os = "linux")]
    if null_put_for_closed(&file) {
        return Err(closed("closed".into()));
    }
    Ok(file)
}

/// Whether standard output (`file`, a duplicate of descriptor 1) is what Rust's runtime
/// opens for a closed descriptor: `/dev/null`, opened read-write.
#[cfg(target_os = "linux")]
fn null_put_for_closed(file: &std::fs::File) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (Ok(out), Ok(null)) = (file.metadata(), std::fs::metadata("/dev/null")) else {
        return false;
    };
    if !out.file_type().is_char_device() || out.rdev() != null.rdev() {
        return false;
    }
    // The access mode of descriptor 1's open file: `flags:` in octal, O_RDWR is 2.
    let Ok(info) = std::fs::read_to_string("/proc/self/fdinfo/1") else { return false };
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & libc::O_ACCMODE as u32 == libc::O_RDWR as u32)
}

/// Waits until the process is interrupted (Ctrl-C / SIGTERM end it, releasing what it holds).
fn hold_until_interrupted() -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
